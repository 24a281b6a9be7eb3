//! Column types whose encoding depends on the backend, so that one row struct reads both.
//!
//! | type       | Rust value      | PostgreSQL    | SQLite                                      |
//! |------------|-----------------|---------------|---------------------------------------------|
//! | [`DbUuid`] | `uuid::Uuid`    | `uuid`        | `TEXT`, hyphenated lower-case               |
//! | [`DbTime`] | `DateTime<Utc>` | `timestamptz` | `INTEGER`, microseconds since the Unix epoch |
//! | [`DbJson`] | `serde_json::Value` | `jsonb`   | `TEXT` holding the JSON                      |
//!
//! The SQLite encodings keep the orders the queries rely on: hyphenated lower-case hex sorts as
//! the 16 bytes of the UUID do (PostgreSQL's `uuid` order), and integer microseconds sort as
//! time does, with PostgreSQL's precision.

use diesel::query_builder::QueryId;
use diesel::sql_types::SqlType;

/// A UUID column.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
pub struct DbUuid;

/// A point in time (UTC), kept to the microsecond.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
pub struct DbTime;

/// A JSON document.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
pub struct DbJson;

#[cfg(feature = "pg")]
mod pg {
    use chrono::{DateTime, Utc};
    use diesel::deserialize::{self, FromSql};
    use diesel::pg::{Pg, PgTypeMetadata, PgValue};
    use diesel::serialize::{self, Output, ToSql};
    use diesel::sql_types::{HasSqlType, Jsonb, Timestamptz, Uuid as PgUuid};
    use uuid::Uuid;

    use super::{DbJson, DbTime, DbUuid};

    // The OIDs of PostgreSQL's built-in `uuid`, `timestamptz` and `jsonb` (and their arrays).
    impl HasSqlType<DbUuid> for Pg {
        fn metadata(_: &mut Self::MetadataLookup) -> PgTypeMetadata {
            PgTypeMetadata::new(2950, 2951)
        }
    }

    impl HasSqlType<DbTime> for Pg {
        fn metadata(_: &mut Self::MetadataLookup) -> PgTypeMetadata {
            PgTypeMetadata::new(1184, 1185)
        }
    }

    impl HasSqlType<DbJson> for Pg {
        fn metadata(_: &mut Self::MetadataLookup) -> PgTypeMetadata {
            PgTypeMetadata::new(3802, 3807)
        }
    }

    impl FromSql<DbUuid, Pg> for Uuid {
        fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
            <Uuid as FromSql<PgUuid, Pg>>::from_sql(bytes)
        }
    }

    impl ToSql<DbUuid, Pg> for Uuid {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
            <Uuid as ToSql<PgUuid, Pg>>::to_sql(self, out)
        }
    }

    impl FromSql<DbTime, Pg> for DateTime<Utc> {
        fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
            <DateTime<Utc> as FromSql<Timestamptz, Pg>>::from_sql(bytes)
        }
    }

    impl ToSql<DbTime, Pg> for DateTime<Utc> {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
            <DateTime<Utc> as ToSql<Timestamptz, Pg>>::to_sql(self, out)
        }
    }

    impl FromSql<DbJson, Pg> for serde_json::Value {
        fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
            <serde_json::Value as FromSql<Jsonb, Pg>>::from_sql(bytes)
        }
    }

    impl ToSql<DbJson, Pg> for serde_json::Value {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
            <serde_json::Value as ToSql<Jsonb, Pg>>::to_sql(self, out)
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use chrono::{DateTime, Utc};
    use diesel::deserialize::{self, FromSql};
    use diesel::serialize::{self, IsNull, Output, ToSql};
    use diesel::sql_types::{BigInt, HasSqlType, Text};
    use diesel::sqlite::{Sqlite, SqliteType, SqliteValue};
    use uuid::Uuid;

    use super::{DbJson, DbTime, DbUuid};

    impl HasSqlType<DbUuid> for Sqlite {
        fn metadata(_: &mut ()) -> SqliteType {
            SqliteType::Text
        }
    }

    impl HasSqlType<DbTime> for Sqlite {
        fn metadata(_: &mut ()) -> SqliteType {
            SqliteType::Long
        }
    }

    impl HasSqlType<DbJson> for Sqlite {
        fn metadata(_: &mut ()) -> SqliteType {
            SqliteType::Text
        }
    }

    impl FromSql<DbUuid, Sqlite> for Uuid {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
            Ok(Uuid::parse_str(&text)?)
        }
    }

    impl ToSql<DbUuid, Sqlite> for Uuid {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            out.set_value(self.hyphenated().to_string());
            Ok(IsNull::No)
        }
    }

    impl FromSql<DbTime, Sqlite> for DateTime<Utc> {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            let micros = <i64 as FromSql<BigInt, Sqlite>>::from_sql(value)?;
            DateTime::from_timestamp_micros(micros).ok_or_else(|| "time out of range".into())
        }
    }

    impl ToSql<DbTime, Sqlite> for DateTime<Utc> {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            out.set_value(self.timestamp_micros());
            Ok(IsNull::No)
        }
    }

    impl FromSql<DbJson, Sqlite> for serde_json::Value {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
            Ok(serde_json::from_str(&text)?)
        }
    }

    impl ToSql<DbJson, Sqlite> for serde_json::Value {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            out.set_value(serde_json::to_string(self)?);
            Ok(IsNull::No)
        }
    }
}

/// Values of the portable types in the query DSL (`files::id.eq(DbId(id))`) and in rows read
/// with it: newtypes, because diesel's blanket `AsExpression` impl leaves no room for one on
/// `Uuid`, `DateTime<Utc>` or `serde_json::Value` outside their crates.
mod values {
    use chrono::{DateTime, Utc};
    use diesel::backend::Backend;
    use diesel::deserialize::{self, FromSql, FromSqlRow};
    use diesel::expression::AsExpression;
    use diesel::serialize::{self, Output, ToSql};
    use uuid::Uuid;

    use super::{DbJson, DbTime, DbUuid};

    macro_rules! value {
        ($(#[$doc:meta])* $name:ident($rust:ty) as $sql:ty) => {
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
            #[diesel(sql_type = $sql)]
            pub struct $name(pub $rust);

            impl<DB: Backend> ToSql<$sql, DB> for $name
            where
                $rust: ToSql<$sql, DB>,
            {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                    self.0.to_sql(out)
                }
            }

            impl<DB: Backend> FromSql<$sql, DB> for $name
            where
                $rust: FromSql<$sql, DB>,
            {
                fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                    <$rust>::from_sql(bytes).map($name)
                }
            }
        };
    }

    value!(
        /// A UUID in a [`DbUuid`] column.
        DbId(Uuid) as DbUuid
    );
    value!(
        /// A point in time in a [`DbTime`] column.
        DbAt(DateTime<Utc>) as DbTime
    );
    value!(
        /// A JSON document in a [`DbJson`] column.
        DbDoc(serde_json::Value) as DbJson
    );
}

pub use values::{DbAt, DbDoc, DbId};
