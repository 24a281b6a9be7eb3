//! Pinned versions and version retention (issue 16) on both stores: the statements, in the
//! query DSL, and the units of work ([`pin_retention_units!`](crate::pin_retention_units!)),
//! written once and expanded in each adapter's `writes.rs` beside [`crate::units!`], whose
//! helpers and dialect hooks they use. The decisions are the domain's
//! (`storage_domain::rules::retention`).

use diesel::dsl::{self, auto_type};
use diesel::prelude::*;
use storage_domain::model::{VersionNumber, VersionStatus};
use storage_domain::ports::RepoError;
use storage_domain::rules::retention::VersionFacts;

use crate::error::corrupt;
use crate::queries::VersionColumns;
use crate::rows::number;
use crate::schema::{files, versions};
use crate::sql_types::{DbAt, DbId};

/// Sets or clears a version's pin label; returns the version.
#[auto_type]
pub fn set_pin<'a>(id: DbId, label: Option<&'a str>) -> _ {
    let version: VersionColumns = versions::all_columns;
    dsl::update(versions::table.filter(versions::id.eq(id)))
        .set(versions::pinned.eq(label))
        .returning(version)
}

/// What the retention decision reads of each version of a file ([`FactRow`]).
#[auto_type]
pub fn version_facts(file_id: DbId) -> _ {
    versions::table
        .filter(versions::file_id.eq(file_id))
        .select((
            versions::number,
            versions::created_at,
            versions::status,
            versions::pinned.is_not_null(),
        ))
}

/// A row of [`version_facts`].
pub type FactRow = (i32, DbAt, String, bool);

/// The rows of [`version_facts`] as the domain reads them.
///
/// # Errors
/// `Internal` for a row the domain cannot read.
pub fn facts(rows: Vec<FactRow>) -> Result<Vec<VersionFacts>, RepoError> {
    rows.into_iter()
        .map(|(n, at, status, pinned)| {
            Ok(VersionFacts {
                number: number(n)?,
                created_at: at.0,
                status: VersionStatus::from_stored(&status)
                    .ok_or_else(|| corrupt("version status"))?,
                pinned,
            })
        })
        .collect()
}

/// The versions of a file that checkout tickets name as their base (on the workspace copies
/// made from it).
#[auto_type]
pub fn ticket_bases(file_id: DbId) -> _ {
    files::table
        .filter(files::checkout_file_id.eq(file_id))
        .select(files::checkout_version)
}

/// The ticket bases as version numbers.
///
/// # Errors
/// `Internal` for a number the domain cannot read.
pub fn bases(rows: Vec<Option<i32>>) -> Result<Vec<VersionNumber>, RepoError> {
    rows.into_iter().flatten().map(number).collect()
}

/// Deletes these versions of a file, returning the number, object key and id of each deleted.
#[auto_type]
pub fn delete_numbers<'a>(file_id: DbId, numbers: &'a [i32]) -> _ {
    dsl::delete(
        versions::table
            .filter(versions::file_id.eq(file_id))
            .filter(versions::number.eq_any(numbers)),
    )
    .returning((versions::number, versions::object_key, versions::id))
}

/// Ids of files of `bucket` after `after` with more than `above` versions, by id: the
/// retention step's candidates (a coarse filter; the unit of work decides).
#[auto_type]
pub fn candidates<'a>(bucket: &'a str, above: i64, after: DbId, limit: i64) -> _ {
    let count = versions::table
        .filter(versions::file_id.eq(files::id))
        .count()
        .single_value();
    files::table
        .select(files::id)
        .filter(files::bucket.eq(bucket))
        .filter(files::id.gt(after))
        .filter(count.gt(above))
        .order(files::id)
        .limit(limit)
}

/// The units of work of pins and retention, for one connection type: expanded right after
/// [`crate::units!`] in the same module (they use its helpers `audit`, `reread`, `queue` and the
/// dialect hooks `lock_file`, and its imports).
#[macro_export]
macro_rules! pin_retention_units {
    () => {
        use ::storage_domain::ports::{PruneVersions, SetPin};
        use ::storage_domain::rules::retention::{check_set_pin, versions_to_prune};
        use $crate::retention as pins;

        pub(crate) fn set_pin(
            c: &mut Conn,
            clock: Clock,
            cmd: SetPin,
        ) -> Work<'_, (FileRecord, Version)> {
            Box::pin(async move {
                let version_not_found = || TxError::Repo(RepoError::VersionNotFound);
                let id = DbId(cmd.version_id.as_uuid());
                let owner: DbId = versions::table
                    .select(versions::file_id)
                    .filter(versions::id.eq(id.clone()))
                    .get_result(c)
                    .await
                    .optional()?
                    .ok_or_else(version_not_found)?;
                let file_id = FileId::from_uuid(owner.0);
                // The file row first (the order every unit of work follows), then the decision.
                let state = lock_file(c, &clock, FileKey::Id(file_id))
                    .await?
                    .ok_or_else(version_not_found)?;
                check_set_pin(&state.file, &cmd.actor)?;
                // A version pruned while this unit waited for the row is gone.
                let row: VersionRow = pins::set_pin(id, cmd.label.as_deref())
                    .get_result(c)
                    .await
                    .optional()?
                    .ok_or_else(version_not_found)?;
                let version = row.into_version()?;
                audit(c, &clock,
                    state.now,
                    cmd.audit,
                    (file_id, &state.head),
                    Some(version.number),
                    EventFacts::default(),
                    ::serde_json::json!({
                        "version_id": cmd.version_id.to_string(),
                        "label": cmd.label,
                    }),
                )
                .await?;
                Ok((reread(c, file_id).await?, version))
            })
        }

        /// Prunes one file's versions under the file's row lock: the versions and the tickets
        /// naming it are read after the lock, so two janitors on one file decide one after the
        /// other and the second finds the first's versions gone.
        pub(crate) fn prune_versions(
            c: &mut Conn,
            clock: Clock,
            cmd: PruneVersions,
        ) -> Work<'_, Vec<VersionNumber>> {
            Box::pin(async move {
                let Some(state) = lock_file(c, &clock, FileKey::Id(cmd.file_id)).await? else {
                    return Ok(Vec::new());
                };
                let id = DbId(cmd.file_id.as_uuid());
                let facts = pins::facts(pins::version_facts(id.clone()).load(c).await?)?;
                let bases = pins::bases(pins::ticket_bases(id.clone()).load(c).await?)?;
                let mut plan = versions_to_prune(cmd.rule, &state.file, &facts, &bases, state.now);
                plan.truncate(cmd.audit_ids.len());
                if plan.is_empty() {
                    return Ok(Vec::new());
                }
                let numbers = plan
                    .iter()
                    .map(|n| sql_number(*n))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut gone: Vec<(i32, String, DbId)> =
                    pins::delete_numbers(id, &numbers).get_results(c).await?;
                gone.sort_unstable_by_key(|(n, _, _)| *n);
                let keys: Vec<String> = gone.iter().map(|(_, k, _)| k.clone()).collect();
                queue(c, state.file.bucket().as_str(), &keys, None, state.now).await?;
                let rule = ::serde_json::json!({
                    "keep_last": cmd.rule.keep_last,
                    "keep_days": cmd.rule.keep_days,
                });
                let mut pruned = Vec::with_capacity(gone.len());
                // One event per version, each linked after the one before.
                let mut head = state.head.clone();
                for ((n, _, version_id), audit_id) in gone.into_iter().zip(cmd.audit_ids) {
                    let n = $crate::rows::number(n)?;
                    let draft = AuditDraft {
                        id: audit_id,
                        actor: cmd.actor.clone(),
                        action: ::storage_domain::model::AuditAction::Prune,
                        path: state.file.path.clone(),
                        request_id: cmd.request_id.clone(),
                        detail: Some(cmd.rule.to_string()),
                    };
                    head = audit(c, &clock,
                        state.now,
                        draft,
                        (cmd.file_id, &head),
                        Some(n),
                        EventFacts::default(),
                        ::serde_json::json!({
                            "version_id": version_id.0.to_string(),
                            "rule": rule,
                        }),
                    )
                    .await?;
                    pruned.push(n);
                }
                Ok(pruned)
            })
        }

        /// The retention step's candidates (a read, one statement).
        pub(crate) async fn retention_candidates(
            c: &mut Conn,
            bucket: BucketKind,
            rule: ::storage_domain::rules::retention::RetentionRule,
            after: Option<FileId>,
            limit: u32,
        ) -> Result<Vec<FileId>, TxError> {
            let after = DbId(after.map_or_else(::uuid::Uuid::nil, |f| f.as_uuid()));
            let ids: Vec<DbId> = pins::candidates(
                bucket.as_str(),
                i64::from(rule.prunable_above()),
                after,
                $crate::rows::sql_limit(limit),
            )
            .load(c)
            .await?;
            Ok(ids.into_iter().map(|i| FileId::from_uuid(i.0)).collect())
        }
    };
}
