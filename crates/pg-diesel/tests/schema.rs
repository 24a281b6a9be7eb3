//! The `table!` schema the queries are checked against (`storage_diesel_common::schema`) is the
//! migrated PostgreSQL database's: the same tables, the same columns, each of its type and
//! nullability.

use std::collections::BTreeMap;
use std::path::Path;

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use storage_diesel_common::schema::describe::{ColumnInfo, tables};
use storage_pg_diesel::run_migrations;
use storage_test_support::postgres::{TestDatabase, fingerprint_dir};

#[derive(QueryableByName)]
struct DbColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

/// PostgreSQL's name of a portable column type.
fn pg_type(portable: &str) -> &'static str {
    match portable {
        "DbUuid" => "uuid",
        "DbTime" => "timestamp with time zone",
        "DbJson" => "jsonb",
        "Text" => "text",
        "Integer" => "integer",
        "BigInt" => "bigint",
        other => panic!("no PostgreSQL type for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_matches_the_migrations() {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let db = TestDatabase::new(&fingerprint_dir(&migrations), |url| async move {
        run_migrations(&url).await.map(|_| ())
    })
    .await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let rows: Vec<DbColumn> = diesel::sql_query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                data_type::text AS data_type, is_nullable::text AS is_nullable \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_\\_diesel%'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let mut in_db: BTreeMap<String, Vec<(String, String, bool)>> = BTreeMap::new();
    for r in rows {
        in_db.entry(r.table_name).or_default().push((
            r.column_name,
            r.data_type,
            r.is_nullable == "YES",
        ));
    }
    let mut in_schema: BTreeMap<String, Vec<(String, String, bool)>> = BTreeMap::new();
    for (table, columns) in tables() {
        in_schema.insert(
            table.to_owned(),
            columns
                .iter()
                .map(|c: &ColumnInfo| {
                    (
                        c.name.to_owned(),
                        pg_type(c.type_name).to_owned(),
                        c.nullable,
                    )
                })
                .collect(),
        );
    }
    for columns in in_db.values_mut() {
        columns.sort();
    }
    for columns in in_schema.values_mut() {
        columns.sort();
    }
    assert_eq!(in_schema, in_db);
}
