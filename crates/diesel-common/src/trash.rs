//! The trash of both metadata stores (issue 16): its statements, rows, and its units of work
//! and reads, written once ([`trash_units!`](crate::trash_units!),
//! [`trash_reads!`](crate::trash_reads!)) and expanded beside `units!` and `reads!` in each
//! adapter.
//!
//! A trashed file's `files` and `versions` rows move, column for column, to `trash_files` and
//! `trash_versions` (`INSERT … SELECT`, then `DELETE`), with a `trash` row for the entry; a
//! restore moves them back under the path the domain's rules chose
//! ([`storage_domain::rules::trash`]). Nothing of the live namespace reads these tables.
//! Each unit of work locks the entry's `trash` row first (`lock_trash`: `FOR UPDATE` on
//! PostgreSQL, nothing more under SQLite's write lock), then any file row, in the order every
//! unit follows; of two purges or restores of one entry, the second finds no entry.

use chrono::{DateTime, Utc};
use diesel::Queryable;
use diesel::dsl::{self, auto_type};
use diesel::prelude::*;
use storage_domain::model::{FileRecord, TrashEntry, TrashId, UserId};
use storage_domain::ports::RepoError;

use crate::error::corrupt;
use crate::rows::FileRow;
use crate::schema::{trash, trash_files, trash_versions};
use crate::sql_types::{DbAt, DbId};

/// The columns of a [`TrashRow`].
pub const TRASH_COLUMNS: (
    trash::id,
    trash::file_id,
    trash::bucket,
    trash::path,
    trash::version_count,
    trash::trashed_by,
    trash::trashed_at,
) = (
    trash::id,
    trash::file_id,
    trash::bucket,
    trash::path,
    trash::version_count,
    trash::trashed_by,
    trash::trashed_at,
);

/// A `trash` row.
#[derive(Debug, Queryable)]
pub struct TrashRow {
    pub id: DbId,
    pub file_id: DbId,
    pub bucket: String,
    pub path: String,
    pub version_count: i32,
    pub trashed_by: String,
    pub trashed_at: DbAt,
}

/// An entry with its file's row ([`trash_entry`]).
pub type TrashEntryRow = (TrashRow, FileRow);

/// The domain's entry of a [`TrashEntryRow`] (the file without a lock).
///
/// # Errors
/// `Internal` for a row the domain cannot read.
pub fn into_entry((entry, file): TrashEntryRow) -> Result<TrashEntry, RepoError> {
    let file: FileRecord = file.into_record(None)?;
    Ok(TrashEntry {
        trash_id: TrashId::from_uuid(entry.id.0),
        file,
        versions: u32::try_from(entry.version_count).map_err(|_| corrupt("version count"))?,
        trashed_by: UserId::new(entry.trashed_by).map_err(|_| corrupt("user id"))?,
        trashed_at: entry.trashed_at.0,
    })
}

/// A new `trash` row.
#[derive(Debug, Insertable)]
#[diesel(table_name = trash)]
pub struct NewTrash<'a> {
    pub id: DbId,
    pub file_id: DbId,
    pub bucket: &'a str,
    pub path: &'a str,
    pub version_count: i32,
    pub trashed_by: &'a str,
    pub trashed_at: DbAt,
}

/// Entries with their files ([`TrashEntryRow`]).
#[auto_type]
pub fn trash_entry() -> _ {
    let entry: TrashColumns = TRASH_COLUMNS;
    let file: TrashFileColumns = trash_files::all_columns;
    trash::table
        .inner_join(trash_files::table)
        .select((entry, file))
}

type TrashColumns = (
    trash::id,
    trash::file_id,
    trash::bucket,
    trash::path,
    trash::version_count,
    trash::trashed_by,
    trash::trashed_at,
);
type TrashFileColumns = <trash_files::table as Table>::AllColumns;

/// The entry with this id.
#[auto_type]
pub fn trash_by_id(id: DbId) -> _ {
    trash_entry().filter(trash::id.eq(id))
}

/// The entries trashed at or before `cutoff`, oldest first (the janitor's purge).
#[auto_type]
pub fn trash_due(cutoff: DbAt, limit: i64) -> _ {
    trash_entry()
        .filter(trash::trashed_at.le(cutoff))
        .order((trash::trashed_at.asc(), trash::id.asc()))
        .limit(limit)
}

/// A page of the trash under a directory, newest first: `(scope dir, cursor, limit)`; one
/// range of `trash_bucket_at_idx` filtered by path prefix.
#[macro_export]
macro_rules! trash_page {
    ($dir:expr, $after:expr, $limit:expr) => {{
        use diesel::prelude::*;
        use $crate::schema::trash;
        let dir = $dir;
        let mut query = $crate::trash::trash_entry()
            .filter(trash::bucket.eq(dir.bucket().as_str()))
            .filter(trash::path.ge(dir.as_str()))
            .filter(trash::path.lt($crate::listing::prefix_upper_bound(dir.as_str())))
            .into_boxed();
        if let Some(cursor) = $after {
            let (at, id) = (
                $crate::sql_types::DbAt(cursor.trashed_at),
                $crate::sql_types::DbId(cursor.trash_id.as_uuid()),
            );
            query = query.filter(
                trash::trashed_at
                    .lt(at.clone())
                    .or(trash::trashed_at.eq(at).and(trash::id.lt(id))),
            );
        }
        query
            .order((trash::trashed_at.desc(), trash::id.desc()))
            .limit($limit)
    }};
}

/// Copies the file's row into `trash_files` (`INSERT … SELECT`; diesel's `auto_type` cannot
/// name an insert from a select, hence a macro).
#[macro_export]
macro_rules! copy_file_to_trash {
    ($file_id:expr) => {{
        use diesel::prelude::*;
        use $crate::schema::{files, trash_files};
        diesel::insert_into(trash_files::table)
            .values(
                files::table
                    .filter(files::id.eq($file_id))
                    .select(files::all_columns),
            )
            .into_columns(trash_files::all_columns)
    }};
}

/// Copies the file's versions into `trash_versions`.
#[macro_export]
macro_rules! copy_versions_to_trash {
    ($file_id:expr) => {{
        use diesel::prelude::*;
        use $crate::schema::{trash_versions, versions};
        diesel::insert_into(trash_versions::table)
            .values(
                versions::table
                    .filter(versions::file_id.eq($file_id))
                    .select(versions::all_columns),
            )
            .into_columns(trash_versions::all_columns)
    }};
}

/// Copies a trashed file's row back into `files`, at `path`, unless the path holds a file
/// (then no row: a first upload took it meanwhile).
#[macro_export]
macro_rules! restore_file_from_trash {
    ($file_id:expr, $path:expr) => {{
        use diesel::IntoSql as _;
        use diesel::prelude::*;
        use $crate::schema::{files, trash_files};
        let path = $path.into_sql::<diesel::sql_types::Text>();
        diesel::insert_into(files::table)
            .values(
                trash_files::table
                    .filter(trash_files::id.eq($file_id))
                    .select((
                        trash_files::id,
                        trash_files::bucket,
                        path,
                        trash_files::created_by,
                        trash_files::version,
                        trash_files::validated_version,
                        trash_files::status,
                        trash_files::tags,
                        trash_files::size,
                        trash_files::content_type,
                        trash_files::sha256,
                        trash_files::created_at,
                        trash_files::updated_at,
                        trash_files::checkout_file_id,
                        trash_files::checkout_path,
                        trash_files::checkout_version,
                    )),
            )
            .into_columns(files::all_columns)
            .on_conflict((files::bucket, files::path))
            .do_nothing()
    }};
}

/// Copies a trashed file's versions back into `versions`.
#[macro_export]
macro_rules! restore_versions_from_trash {
    ($file_id:expr) => {{
        use diesel::prelude::*;
        use $crate::schema::{trash_versions, versions};
        diesel::insert_into(versions::table)
            .values(
                trash_versions::table
                    .filter(trash_versions::file_id.eq($file_id))
                    .select(trash_versions::all_columns),
            )
            .into_columns(versions::all_columns)
    }};
}

/// Deletes a trashed file's versions, returning their object keys.
#[auto_type]
pub fn delete_trash_versions(file_id: DbId) -> _ {
    dsl::delete(trash_versions::table.filter(trash_versions::file_id.eq(file_id)))
        .returning(trash_versions::object_key)
}

/// Deletes a trashed file's row; its entry and versions go with it (ON DELETE CASCADE).
#[auto_type]
pub fn delete_trash_file(file_id: DbId) -> _ {
    dsl::delete(trash_files::table.filter(trash_files::id.eq(file_id)))
}

/// A new entry's row.
pub fn new_trash<'a>(
    trash_id: TrashId,
    file: &'a FileRecord,
    version_count: usize,
    actor: &'a UserId,
    now: DateTime<Utc>,
) -> Result<NewTrash<'a>, RepoError> {
    Ok(NewTrash {
        id: DbId(trash_id.as_uuid()),
        file_id: DbId(file.id.as_uuid()),
        bucket: file.bucket().as_str(),
        path: file.path.as_str(),
        version_count: i32::try_from(version_count)
            .map_err(|_| RepoError::Internal("version count out of range".into()))?,
        trashed_by: actor.as_str(),
        trashed_at: DbAt(now),
    })
}

/// The trash's units of work, expanded in a child module of the adapter's `units!` module
/// (`use super::*` brings its helpers and hooks), which also provides the hook
/// `lock_trash(c, DbId) -> Result<Option<TrashEntryRow>, TxError>`.
#[macro_export]
macro_rules! trash_units {
    () => {
        use ::storage_domain::model::{FilePath, TrashEntry, UserId};
        use ::storage_domain::ports::{PurgeTrash, RestoreTrash, TrashFile};
        use ::storage_domain::rules::trash::{
            RestoreTarget, check_can_trash, decide_restore_target, purge_due, restored_name,
            trash_cutoff,
        };
        use $crate::rows::FileState;
        use $crate::trash::{self as tq, into_entry};

        /// The head of the audit chain of a file in the trash, in one statement. A trashed
        /// file has no `files` row to lock: the unit holds its entry's `trash` row lock
        /// (`lock_trash`), which every unit that links an event into that chain (a restore, a
        /// purge) takes first, so the head cannot move before the unit's event is linked.
        /// Nothing is read when the store's chain is off.
        async fn trashed_head(
            c: &mut Conn,
            clock: &Clock,
            file_id: FileId,
        ) -> Result<ChainHead, TxError> {
            if !clock.chain.is_on() {
                return Ok(ChainHead::default());
            }
            let row: Option<(Option<i64>, Option<String>)> =
                queries::chain_head(DbId(file_id.as_uuid()))
                    .get_result(c)
                    .await
                    .optional()?;
            Ok($crate::rows::chain_head(row)?)
        }

        /// A trashing as events show it: the entry, how many versions it took, the file's
        /// size (that of its current version).
        fn trash_data(entry: &TrashEntry) -> ::serde_json::Value {
            ::serde_json::json!({
                "trash_id": entry.trash_id.to_string(),
                "versions": entry.versions,
                "size": entry.file.size,
            })
        }

        /// Moves the locked file and its versions into the trash as entry `trash_id`.
        async fn move_to_trash(
            c: &mut Conn,
            state: &FileState,
            trash_id: ::storage_domain::model::TrashId,
            actor: &UserId,
        ) -> Result<TrashEntry, TxError> {
            let id = DbId(state.file.id.as_uuid());
            $crate::copy_file_to_trash!(id.clone()).execute(c).await?;
            let count = $crate::copy_versions_to_trash!(id.clone())
                .execute(c)
                .await?;
            let row = tq::new_trash(trash_id, &state.file, count, actor, state.now)?;
            ::diesel::insert_into($crate::schema::trash::table)
                .values(&row)
                .execute(c)
                .await?;
            let _: Vec<String> = queries::delete_versions(id.clone()).get_results(c).await?;
            // `locks` goes with the file (ON DELETE CASCADE).
            queries::delete_file(id).execute(c).await?;
            let mut file = state.file.clone();
            file.lock = None;
            Ok(TrashEntry {
                trash_id,
                file,
                versions: u32::try_from(count).unwrap_or(u32::MAX),
                trashed_by: actor.clone(),
                trashed_at: state.now,
            })
        }

        pub(crate) fn trash_file(
            c: &mut Conn,
            clock: Clock,
            cmd: TrashFile,
        ) -> Work<'_, TrashEntry> {
            Box::pin(async move {
                let state = lock_file(c, &clock, FileKey::Id(cmd.file_id))
                    .await?
                    .ok_or_else(file_not_found)?;
                check_can_trash(&state.file, &cmd.actor)?;
                let entry = move_to_trash(c, &state, cmd.trash_id, &cmd.actor).await?;
                audit(c, &clock,
                    state.now,
                    cmd.audit,
                    (cmd.file_id, &state.head),
                    Some(state.file.version),
                    EventFacts::default(),
                    trash_data(&entry),
                )
                .await?;
                Ok(entry)
            })
        }

        pub(crate) fn restore_trash(
            c: &mut Conn,
            clock: Clock,
            cmd: RestoreTrash,
        ) -> Work<'_, FileRecord> {
            Box::pin(async move {
                let entry = lock_trash(c, DbId(cmd.trash_id.as_uuid()))
                    .await?
                    .ok_or_else(file_not_found)?;
                let entry = into_entry(entry)?;
                // Its chain's head, under the entry's lock.
                let head = trashed_head(c, &clock, entry.file.id).await?;
                let target: FilePath = cmd
                    .target
                    .clone()
                    .unwrap_or_else(|| entry.file.path.clone());
                let mut path = target.clone();
                let mut attempt = 0;
                let mut replaced = None;
                loop {
                    let occupant = lock_file(c, &clock, FileKey::Path(&path)).await?;
                    match decide_restore_target(occupant.is_some(), cmd.on_conflict, attempt)? {
                        RestoreTarget::Free => break,
                        RestoreTarget::Rename(n) => {
                            attempt = n;
                            path = restored_name(&target, n)?;
                        }
                        RestoreTarget::Replace => {
                            let Some(state) = occupant else { break };
                            check_can_trash(&state.file, &cmd.actor)?;
                            let gone =
                                move_to_trash(c, &state, cmd.replaced_trash_id, &cmd.actor).await?;
                            // The occupant's own chain, after its head read under its row lock.
                            let mut data = trash_data(&gone);
                            data["replaced_by_trash_id"] = cmd.trash_id.to_string().into();
                            audit(c, &clock,
                                state.now,
                                cmd.replace_audit.clone(),
                                (state.file.id, &state.head),
                                Some(state.file.version),
                                EventFacts::default(),
                                data,
                            )
                            .await?;
                            replaced = Some(gone);
                            break;
                        }
                    }
                }
                let now = unit_now(c, &clock).await?;
                let id = DbId(entry.file.id.as_uuid());
                let restored = $crate::restore_file_from_trash!(id.clone(), path.as_str())
                    .execute(c)
                    .await?;
                if restored != 1 {
                    // A first upload took the free path after it was looked at (PostgreSQL; a
                    // SQLite unit of work runs alone): nothing was changed, the caller retries.
                    return Err(TxError::Repo(RepoError::Unavailable(
                        "concurrent change of the path, retry".into(),
                    )));
                }
                $crate::restore_versions_from_trash!(id.clone())
                    .execute(c)
                    .await?;
                tq::delete_trash_file(id).execute(c).await?;
                let data = ::serde_json::json!({
                    "trash_id": cmd.trash_id.to_string(),
                    "versions": entry.versions,
                    "from": entry.file.path.as_str(),
                    "path": path.as_str(),
                    "on_conflict": cmd.on_conflict.as_str(),
                    "replaced_trash_id": replaced.as_ref().map(|r| r.trash_id.to_string()),
                    "replaced_file_id": replaced.as_ref().map(|r| r.file.id.to_string()),
                });
                let mut draft = cmd.audit;
                draft.path = path;
                audit(c, &clock,
                    now,
                    draft,
                    (entry.file.id, &head),
                    Some(entry.file.version),
                    EventFacts::default(),
                    data,
                )
                .await?;
                reread(c, entry.file.id).await
            })
        }

        pub(crate) fn purge_trash(
            c: &mut Conn,
            clock: Clock,
            cmd: PurgeTrash,
        ) -> Work<'_, Vec<PendingDeletion>> {
            Box::pin(async move {
                let entry = lock_trash(c, DbId(cmd.trash_id.as_uuid()))
                    .await?
                    .ok_or_else(file_not_found)?;
                let entry = into_entry(entry)?;
                let now = unit_now(c, &clock).await?;
                if let Some(retention) = cmd.due_after
                    && !purge_due(entry.trashed_at, retention, now)
                {
                    return Err(TxError::Repo(RepoError::FileNotFound));
                }
                let id = DbId(entry.file.id.as_uuid());
                let keys: Vec<String> =
                    tq::delete_trash_versions(id.clone()).get_results(c).await?;
                tq::delete_trash_file(id).execute(c).await?;
                let queued = queue(c, entry.file.bucket().as_str(), &keys, None, now).await?;
                // Its chain's head, under the entry's lock (the file's last event).
                let head = trashed_head(c, &clock, entry.file.id).await?;
                audit(c, &clock,
                    now,
                    cmd.audit,
                    (entry.file.id, &head),
                    Some(entry.file.version),
                    EventFacts::default(),
                    ::serde_json::json!({
                        "trash_id": cmd.trash_id.to_string(),
                        "versions": keys.len(),
                        "trashed_at": entry
                            .trashed_at
                            .to_rfc3339_opts(::chrono::SecondsFormat::Micros, true),
                    }),
                )
                .await?;
                Ok(queued)
            })
        }

        /// The entries due at the store's time (`trash_cutoff` of the retention).
        pub(crate) fn due_trash(
            c: &mut Conn,
            clock: Clock,
            (retention, limit): (::std::time::Duration, u32),
        ) -> Work<'_, Vec<TrashEntry>> {
            Box::pin(async move {
                let now = unit_now(c, &clock).await?;
                let rows: Vec<tq::TrashEntryRow> =
                    tq::trash_due(DbAt(trash_cutoff(now, retention)), i64::from(limit))
                        .load(c)
                        .await?;
                Ok(rows.into_iter().map(into_entry).collect::<Result<_, _>>()?)
            })
        }
    };
}

/// The trash's reads, expanded in a child module of the adapter's `reads` module.
#[macro_export]
macro_rules! trash_reads {
    () => {
        use ::diesel::OptionalExtension as _;
        use ::storage_domain::model::{DirPath, TrashEntry, TrashId};
        use ::storage_domain::ports::TrashCursor;
        use $crate::error::TxError;
        use $crate::sql_types::DbId;
        use $crate::trash::{TrashEntryRow, into_entry, trash_by_id};

        /// A trash entry.
        pub(crate) async fn find_trash(
            c: &mut Conn,
            id: TrashId,
        ) -> Result<Option<TrashEntry>, TxError> {
            let row: Option<TrashEntryRow> = trash_by_id(DbId(id.as_uuid()))
                .get_result(c)
                .await
                .optional()?;
            Ok(row.map(into_entry).transpose()?)
        }

        /// A page of the trash under `dir`, newest first.
        pub(crate) async fn list_trash(
            c: &mut Conn,
            dir: &DirPath,
            after: Option<TrashCursor>,
            limit: u32,
        ) -> Result<Vec<TrashEntry>, TxError> {
            let rows: Vec<TrashEntryRow> = $crate::trash_page!(dir, after, i64::from(limit))
                .load(c)
                .await?;
            Ok(rows.into_iter().map(into_entry).collect::<Result<_, _>>()?)
        }
    };
}
