//! The tables of the metadata store, as diesel's `table!` schema: `diesel print-schema`'s
//! output for `migrations/` (PostgreSQL) and `crates/sqlite-diesel/migrations/` (SQLite), which
//! share their tables and columns, with the three columns types whose encoding differs written
//! as the portable types of [`crate::sql_types`]: `uuid`/`TEXT` is [`DbUuid`],
//! `timestamptz`/`INTEGER` (microseconds) is [`DbTime`], `jsonb`/`TEXT` is [`DbJson`]. Every
//! other type is the same on both (`Text`, `Integer`, `BigInt`).
//!
//! The tests `schema_matches_the_migrations` of both adapters compare every table here with the
//! migrated database: the same columns, each of the type and nullability written here.

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    audit_events (id) {
        id -> DbUuid,
        actor -> Text,
        action -> Text,
        bucket -> Text,
        path -> Text,
        file_id -> Nullable<DbUuid>,
        version -> Nullable<Integer>,
        outcome -> Text,
        request_id -> Text,
        detail -> Nullable<Text>,
        at -> DbTime,
        repeat_count -> Integer,
        last_repeat_at -> Nullable<DbTime>,
        refusal_window -> Nullable<BigInt>,
        event_type -> Nullable<Text>,
        data -> Nullable<Text>,
        seq -> Nullable<BigInt>,
        prev_hash -> Nullable<Text>,
        hash -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    event_outbox (event_id) {
        event_id -> DbUuid,
        file_id -> Nullable<DbUuid>,
        seq -> Nullable<BigInt>,
        delivery -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<DbTime>,
        leased_until -> Nullable<DbTime>,
        last_error -> Nullable<Text>,
        acked_sinks -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    files (id) {
        id -> DbUuid,
        bucket -> Text,
        path -> Text,
        created_by -> Text,
        version -> Integer,
        validated_version -> Nullable<Integer>,
        status -> Text,
        tags -> DbJson,
        size -> BigInt,
        content_type -> Text,
        sha256 -> Text,
        created_at -> DbTime,
        updated_at -> DbTime,
        checkout_file_id -> Nullable<DbUuid>,
        checkout_path -> Nullable<Text>,
        checkout_version -> Nullable<Integer>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    locks (file_id) {
        file_id -> DbUuid,
        bucket -> Text,
        path -> Text,
        holder -> Text,
        acquired_at -> DbTime,
        expires_at -> DbTime,
        base_version -> Integer,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    pending_deletions (id) {
        id -> DbUuid,
        bucket -> Text,
        object_key -> Text,
        attempts -> Integer,
        leased_until -> Nullable<DbTime>,
        created_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    trash (id) {
        id -> DbUuid,
        file_id -> DbUuid,
        bucket -> Text,
        path -> Text,
        version_count -> Integer,
        trashed_by -> Text,
        trashed_at -> DbTime,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    trash_files (id) {
        id -> DbUuid,
        bucket -> Text,
        path -> Text,
        created_by -> Text,
        version -> Integer,
        validated_version -> Nullable<Integer>,
        status -> Text,
        tags -> DbJson,
        size -> BigInt,
        content_type -> Text,
        sha256 -> Text,
        created_at -> DbTime,
        updated_at -> DbTime,
        checkout_file_id -> Nullable<DbUuid>,
        checkout_path -> Nullable<Text>,
        checkout_version -> Nullable<Integer>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    trash_versions (id) {
        id -> DbUuid,
        file_id -> DbUuid,
        number -> Integer,
        size -> BigInt,
        sha256 -> Text,
        content_type -> Text,
        author -> Text,
        message -> Nullable<Text>,
        status -> Text,
        reviewed_by -> Nullable<Text>,
        reviewed_at -> Nullable<DbTime>,
        review_comment -> Nullable<Text>,
        created_at -> DbTime,
        object_key -> Text,
        restored_from -> Nullable<Integer>,
        pinned -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    upload_reservations (id) {
        id -> DbUuid,
        kind -> Text,
        bucket -> Text,
        path -> Text,
        created_by -> Text,
        version_id -> DbUuid,
        object_key -> Text,
        content_type -> Text,
        expected_size -> Nullable<BigInt>,
        expected_sha256 -> Nullable<Text>,
        max_bytes -> BigInt,
        expires_at -> DbTime,
        created_at -> DbTime,
        completed_version -> Nullable<DbUuid>,
        completed_at -> Nullable<DbTime>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    versions (id) {
        id -> DbUuid,
        file_id -> DbUuid,
        number -> Integer,
        size -> BigInt,
        sha256 -> Text,
        content_type -> Text,
        author -> Text,
        message -> Nullable<Text>,
        status -> Text,
        reviewed_by -> Nullable<Text>,
        reviewed_at -> Nullable<DbTime>,
        review_comment -> Nullable<Text>,
        created_at -> DbTime,
        object_key -> Text,
        restored_from -> Nullable<Integer>,
        pinned -> Nullable<Text>,
    }
}

diesel::joinable!(locks -> files (file_id));
diesel::joinable!(versions -> files (file_id));
diesel::joinable!(trash -> trash_files (file_id));
diesel::joinable!(trash_versions -> trash_files (file_id));

diesel::joinable!(event_outbox -> audit_events (event_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_events,
    event_outbox,
    files,
    locks,
    pending_deletions,
    trash,
    trash_files,
    trash_versions,
    upload_reservations,
    versions,
);

/// The schema described column by column, to compare it with a migrated database (the
/// adapters' `schema_matches_the_migrations` tests).
pub mod describe {
    use diesel::sql_types::{BigInt, Integer, Nullable, Text};
    use diesel::{Column, Expression, Table};

    use crate::sql_types::{DbJson, DbTime, DbUuid};

    /// A column type of this schema, by the name of its portable type.
    pub trait TypeName {
        const NAME: &'static str;
        const NULLABLE: bool = false;
    }

    macro_rules! names {
        ($($t:ty => $n:literal),+ $(,)?) => {$(
            impl TypeName for $t {
                const NAME: &'static str = $n;
            }
        )+};
    }
    names!(Text => "Text", Integer => "Integer", BigInt => "BigInt", DbUuid => "DbUuid",
        DbTime => "DbTime", DbJson => "DbJson");

    impl<T: TypeName + diesel::sql_types::SqlType> TypeName for Nullable<T> {
        const NAME: &'static str = T::NAME;
        const NULLABLE: bool = true;
    }

    /// One column: name, portable type, nullable.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    pub struct ColumnInfo {
        pub name: &'static str,
        pub type_name: &'static str,
        pub nullable: bool,
    }

    /// The columns of a table's `all_columns` tuple.
    pub trait Columns {
        fn describe(out: &mut Vec<ColumnInfo>);
    }

    macro_rules! tuples {
        ($($c:ident),+) => {
            impl<$($c),+> Columns for ($($c,)+)
            where $($c: Column, <$c as Expression>::SqlType: TypeName),+
            {
                fn describe(out: &mut Vec<ColumnInfo>) {
                    $(out.push(ColumnInfo {
                        name: <$c as Column>::NAME,
                        type_name: <<$c as Expression>::SqlType as TypeName>::NAME,
                        nullable: <<$c as Expression>::SqlType as TypeName>::NULLABLE,
                    });)+
                }
            }
        };
    }
    tuples!(A, B, C, D, E, F);
    tuples!(A, B, C, D, E, F, G);
    tuples!(A, B, C, D, E, F, G, H, I);
    tuples!(A, B, C, D, E, F, G, H, I, J, K);
    tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M);
    tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);
    tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O);
    tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);
    tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q);
    tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R);
    tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S);
    tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T);
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z, AA
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z, AA, AB
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z, AA, AB, AC
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z, AA, AB, AC,
        AD
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z, AA, AB, AC,
        AD, AE
    );
    tuples!(
        A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z, AA, AB, AC,
        AD, AE, AF
    );

    fn table<T: Table>(_: T) -> (&'static str, Vec<ColumnInfo>)
    where
        T::AllColumns: Columns,
    {
        let mut columns = Vec::new();
        T::AllColumns::describe(&mut columns);
        columns.sort();
        (table_name::<T>(), columns)
    }

    fn table_name<T: Table>() -> &'static str {
        // `diesel::Table` has no name of its own: the module path of its type holds it.
        let full = std::any::type_name::<T>();
        full.rsplit("::").nth(1).unwrap_or(full)
    }

    /// Every table of the schema with its columns (sorted by name).
    pub fn tables() -> Vec<(&'static str, Vec<ColumnInfo>)> {
        vec![
            table(super::audit_events::table),
            table(super::event_outbox::table),
            table(super::files::table),
            table(super::locks::table),
            table(super::pending_deletions::table),
            table(super::trash::table),
            table(super::trash_files::table),
            table(super::trash_versions::table),
            table(super::upload_reservations::table),
            table(super::versions::table),
        ]
    }
}
