//! The `table!` schema the queries are checked against (`storage_diesel_common::schema`) is the
//! migrated SQLite database's: the same tables, the same columns, each of its type and
//! nullability.

use std::collections::BTreeMap;

use diesel::sql_types::{Integer, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use storage_diesel_common::schema::describe::tables;
use storage_sqlite_diesel::run_migrations;

#[derive(QueryableByName)]
struct DbColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Integer)]
    not_null: i32,
}

/// SQLite's (STRICT) name of a portable column type.
fn sqlite_type(portable: &str) -> &'static str {
    match portable {
        "DbUuid" | "DbJson" | "Text" => "TEXT",
        "DbTime" | "Integer" | "BigInt" => "INTEGER",
        other => panic!("no SQLite type for {other}"),
    }
}

#[tokio::test]
async fn schema_matches_the_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metadata.db");
    let url = path.to_str().unwrap().to_owned();
    run_migrations(&url).await.unwrap();
    let mut conn = SqliteConnection::establish(&url).unwrap();
    let rows: Vec<DbColumn> = diesel::sql_query(
        "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type, \
                p.\"notnull\" AS not_null \
         FROM sqlite_schema m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
           AND m.name NOT LIKE '\\_\\_diesel%' ESCAPE '\\'",
    )
    .load(&mut conn)
    .unwrap();
    let mut in_db: BTreeMap<String, Vec<(String, String, bool)>> = BTreeMap::new();
    for r in rows {
        in_db
            .entry(r.table_name)
            .or_default()
            .push((r.column_name, r.data_type, r.not_null == 0));
    }
    let mut in_schema: BTreeMap<String, Vec<(String, String, bool)>> = BTreeMap::new();
    for (table, columns) in tables() {
        in_schema.insert(
            table.to_owned(),
            columns
                .iter()
                .map(|c| {
                    (
                        c.name.to_owned(),
                        sqlite_type(c.type_name).to_owned(),
                        c.nullable,
                    )
                })
                .collect(),
        );
    }
    for columns in in_db.values_mut().chain(in_schema.values_mut()) {
        columns.sort();
    }
    assert_eq!(in_schema, in_db);
}
