//! `TestDatabase::cut_off` and `restore`: an outage of one test database, on demand.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use storage_test_support::postgres::TestDatabase;

#[tokio::test]
async fn cut_off_ends_sessions_and_refuses_connections_until_restored() {
    let db = TestDatabase::empty().await;
    let mut open = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("SELECT 1")
        .execute(&mut open)
        .await
        .unwrap();

    db.cut_off().await;
    assert!(
        diesel::sql_query("SELECT 1")
            .execute(&mut open)
            .await
            .is_err(),
        "the open session is ended"
    );
    assert!(
        AsyncPgConnection::establish(db.url()).await.is_err(),
        "new connections are refused"
    );

    db.restore().await;
    let mut again = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("SELECT 1")
        .execute(&mut again)
        .await
        .unwrap();
}
