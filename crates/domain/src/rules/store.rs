//! The decisions of the metadata store's units of work, over plain values.
//!
//! A store reads the rows a decision rests on while it holds the file's row lock (PostgreSQL:
//! the file row locked first, then read again in a statement of its own, so that a lock change
//! committed while it waited is seen; SQLite: under its database write lock), asks these
//! functions, and writes what they decided. Every metadata adapter calls these same functions,
//! so each rule, and the order of its refusals, is written once; the use cases call them too
//! for their early checks.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{
    AuditAction, AuditDraft, AuditEvent, AuditOutcome, CheckoutTicket, FileId, FileRecord,
    FileStatus, Lock, UserId, VersionId, VersionNumber, VersionStatus,
};
use crate::ports::{Expectation, NewVersion, ReleaseLock, RepoError, SetArchived, WriteMode};

/// The refusal of a write to a file that does not exist.
pub fn file_not_found() -> RepoError {
    RepoError::FileNotFound
}

/// Why a change of an archived file is refused (the one wording, for the use cases' early
/// checks and the stores' decisions alike).
pub const ARCHIVED: &str = "the file is archived (read-only); unarchive it first";

/// The refusal of a change to an archived file.
pub fn archived() -> RepoError {
    RepoError::InvalidTransition(ARCHIVED.into())
}

/// A write's expectation against the file's latest version (`None`: no file at the path).
///
/// # Errors
/// [`RepoError::VersionConflict`], flagged when the expectation came from `If-Match`.
pub fn check_expected(
    current: Option<VersionNumber>,
    expected: Expectation,
) -> Result<(), RepoError> {
    let detail = match (expected.latest, current) {
        (None, Some(_)) => "the path already holds a file".to_owned(),
        (Some(_), None) => "the path holds no file".to_owned(),
        (Some(e), Some(c)) if e != c => format!("expected version {e}, the latest is {c}"),
        _ => return Ok(()),
    };
    Err(conflict(current, expected.precondition, &detail))
}

/// A version conflict; `precondition` marks one that came from `If-Match` (it travels as the
/// error's flag up to the HTTP status, 412).
pub fn conflict(current: Option<VersionNumber>, precondition: bool, detail: &str) -> RepoError {
    RepoError::VersionConflict {
        current,
        detail: detail.to_owned(),
        precondition,
    }
}

/// A reservation as `commit_version` finds it: `None` when there is no row, else whether it was
/// completed (as which version) and whether it is still open (unexpired by the store's clock).
///
/// # Errors
/// [`RepoError::UploadNotFound`] (no row, or expired), [`RepoError::UploadAlreadyCompleted`].
pub fn check_reservation(found: Option<(Option<VersionId>, bool)>) -> Result<(), RepoError> {
    match found {
        None | Some((None, false)) => Err(RepoError::UploadNotFound),
        Some((Some(version_id), _)) => Err(RepoError::UploadAlreadyCompleted { version_id }),
        Some((None, true)) => Ok(()),
    }
}

/// The [`WriteMode`] rules when the path holds no file: a commit or a restore needs one, and
/// so does an expectation of a version.
///
/// # Errors
/// [`RepoError::FileNotFound`] (commit, restore), [`RepoError::VersionConflict`] (expectation).
pub fn check_new_file(mode: &WriteMode) -> Result<(), RepoError> {
    match mode {
        WriteMode::Commit { .. } | WriteMode::Restore { .. } => Err(file_not_found()),
        WriteMode::Upsert {
            expected: Some(e), ..
        } => check_expected(None, *e),
        WriteMode::Upsert { .. } => Ok(()),
    }
}

/// The [`WriteMode`] rules for an existing `file` (with its live lock). `Upsert`: archived,
/// another user's live lock, `expected`, `overwrite`. `Restore`: archived, the path still holds
/// the restored file, another user's live lock, `expected`. `Commit`: archived, then [`check_commit`]
/// with `ticket`, the checkout ticket of the commit's source.
///
/// # Errors
/// The first refusal that applies, as [`WriteMode`] documents them.
pub fn check_write(
    file: &FileRecord,
    cmd: &NewVersion,
    ticket: Option<&CheckoutTicket>,
) -> Result<(), RepoError> {
    if file.status == FileStatus::Archived {
        return Err(archived());
    }
    match cmd.mode {
        WriteMode::Upsert {
            expected,
            overwrite,
        } => {
            check_overwrite(file, &cmd.author, expected)?;
            if !overwrite {
                return Err(conflict(
                    Some(file.version),
                    false,
                    "the path already holds a file and overwrite is false",
                ));
            }
            Ok(())
        }
        WriteMode::Commit { .. } => check_commit(file, &cmd.author, ticket),
        WriteMode::Restore {
            file: restored,
            expected,
            ..
        } => {
            if file.id != restored {
                return Err(file_not_found());
            }
            check_overwrite(file, &cmd.author, expected)
        }
    }
}

/// Adding a version to an existing `file` by `author` (an upload, a copy, a restore): another
/// user's live lock, then `expected`.
fn check_overwrite(
    file: &FileRecord,
    author: &UserId,
    expected: Option<Expectation>,
) -> Result<(), RepoError> {
    check_not_locked_by_other(file, author)?;
    if let Some(expected) = expected {
        check_expected(Some(file.version), expected)?;
    }
    Ok(())
}

/// The commit rule (`/versions/commit`) on `target` (with its live lock), for `committer`,
/// whose source carries `ticket` (the checkout ticket of a workspace copy, if any).
///
/// A ticket taken on this target is compared first, whatever happened to the lock since the
/// checkout: a version newer than the one copied, by anyone (the committer included), makes
/// the commit stale. Then the committer must hold the live lock. A source without a ticket for
/// this target falls back on the lock's `base_version`.
///
/// # Errors
/// [`RepoError::VersionConflict`] (stale ticket or stale lock base),
/// [`RepoError::InvalidTransition`] (nobody holds the lock), [`RepoError::FileLocked`]
/// (someone else does).
pub fn check_commit(
    target: &FileRecord,
    committer: &UserId,
    ticket: Option<&CheckoutTicket>,
) -> Result<(), RepoError> {
    let ticket = ticket.filter(|t| t.file_id == target.id);
    if let Some(t) = ticket
        && t.version != target.version
    {
        return Err(conflict(
            Some(target.version),
            false,
            &format!(
                "your copy was checked out at version {}, the latest is {}",
                t.version, target.version
            ),
        ));
    }
    match &target.lock {
        None => Err(RepoError::InvalidTransition(
            "a commit needs the lock on the target: lock it or check it out first".into(),
        )),
        Some(lock) if &lock.holder != committer => Err(RepoError::FileLocked(lock.clone())),
        Some(lock) if ticket.is_none() && lock.base_version != target.version => Err(conflict(
            Some(target.version),
            false,
            &format!(
                "the lock was taken on version {}, the latest is {}",
                lock.base_version, target.version
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// The number after the file's latest version.
///
/// # Errors
/// [`RepoError::Internal`] on overflow.
pub fn next_number(latest: VersionNumber) -> Result<VersionNumber, RepoError> {
    latest
        .next()
        .map_err(|_| RepoError::Internal("version number overflow".into()))
}

/// What becomes of a file's lock row when a version is added to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAfterVersion {
    /// Nothing changes.
    Unchanged,
    /// The row is deleted (a commit without `keep_lock` releases the committer's lock).
    Released,
    /// The author's lock (live, or expired and taken by nobody since) now stands on the new
    /// version: an author's own versions never make her stale.
    Rebased(VersionNumber),
}

/// The lock after `author` added version `number` with `mode`, given the lock row as stored.
pub fn lock_after_version(
    stored: Option<&Lock>,
    author: &UserId,
    mode: WriteMode,
    number: VersionNumber,
) -> LockAfterVersion {
    match (mode, stored) {
        (
            WriteMode::Commit {
                keep_lock: false, ..
            },
            _,
        ) => LockAfterVersion::Released,
        (_, Some(lock)) if &lock.holder == author => LockAfterVersion::Rebased(number),
        _ => LockAfterVersion::Unchanged,
    }
}

/// The checkout ticket of a commit's source after the commit created version `number` of
/// `target`: a ticket taken on that target now stands on the new version (the workspace copy
/// holds exactly what that version holds). `None`: the ticket (if any) stays as it is.
pub fn ticket_after_commit(
    ticket: Option<&CheckoutTicket>,
    target: FileId,
    number: VersionNumber,
) -> Option<CheckoutTicket> {
    ticket
        .filter(|t| t.file_id == target)
        .map(|t| CheckoutTicket {
            version: number,
            ..t.clone()
        })
}

/// Takes or refreshes a lock for `holder` on `file` at the store's time `now`, given the lock
/// row as stored (`stored`, live or expired): refused for an archived file, then for another
/// holder's live lock. The same holder keeps `acquired_at` while her lock is live and, unless
/// `base` is given, `base_version` even after it expired (nobody took it since: the row is
/// still hers). A new holder's `base_version` is `base`, or the file's latest version.
///
/// # Errors
/// [`RepoError::InvalidTransition`] (archived), [`RepoError::FileLocked`],
/// [`RepoError::Internal`] for a ttl out of range.
pub fn decide_lock(
    file: &FileRecord,
    stored: Option<&Lock>,
    holder: &UserId,
    ttl: Duration,
    base: Option<VersionNumber>,
    now: DateTime<Utc>,
) -> Result<Lock, RepoError> {
    if file.status == FileStatus::Archived {
        return Err(archived());
    }
    if let Some(other) = stored.filter(|l| l.is_live_at(now) && &l.holder != holder) {
        return Err(RepoError::FileLocked(other.clone()));
    }
    let expires_at = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .ok_or_else(|| RepoError::Internal("lock ttl out of range".into()))?;
    let (acquired_at, kept_base) = match stored.filter(|l| &l.holder == holder) {
        Some(mine) if mine.is_live_at(now) => (mine.acquired_at, mine.base_version),
        Some(mine) => (now, mine.base_version),
        None => (now, file.version),
    };
    Ok(Lock {
        holder: holder.clone(),
        acquired_at,
        expires_at,
        base_version: base.unwrap_or(kept_base),
    })
}

/// What an unlock does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlockDecision {
    /// No live lock: nothing is released and nothing is deleted (an expired lock stays with its
    /// holder until someone takes the file's lock).
    NotLocked,
    /// This live lock is released (by its holder, or forced by the actor).
    Release(Lock),
}

/// Unlock rules, given the lock row as stored at the store's time `now`: the holder releases
/// her live lock; anyone else needs `force` (whose right the use case checked); an absent or
/// expired lock is nothing to release, whoever asks.
///
/// # Errors
/// [`RepoError::FileLocked`] when another user holds the live lock and `force` is false.
pub fn decide_unlock(
    stored: Option<&Lock>,
    cmd: &ReleaseLock,
    now: DateTime<Utc>,
) -> Result<UnlockDecision, RepoError> {
    match stored.filter(|l| l.is_live_at(now)) {
        None => Ok(UnlockDecision::NotLocked),
        Some(lock) if lock.holder == cmd.actor || cmd.force => {
            Ok(UnlockDecision::Release(lock.clone()))
        }
        Some(lock) => Err(RepoError::FileLocked(lock.clone())),
    }
}

/// The audit event of a release: `force_unlock` when the actor released another user's lock,
/// `unlock` when her own, whatever the draft said.
pub fn release_audit(lock: &Lock, cmd: &ReleaseLock) -> AuditDraft {
    let mut draft = cmd.audit.clone();
    draft.action = if lock.holder == cmd.actor {
        AuditAction::Unlock
    } else {
        AuditAction::ForceUnlock
    };
    draft
}

/// A change by `actor` of a file another user holds a live lock on is refused.
///
/// # Errors
/// [`RepoError::FileLocked`] with that lock.
pub fn check_not_locked_by_other(file: &FileRecord, actor: &UserId) -> Result<(), RepoError> {
    match file.lock_held_by_other(actor) {
        Some(lock) => Err(RepoError::FileLocked(lock.clone())),
        None => Ok(()),
    }
}

/// `set_tags`: another user's live lock, then archived.
///
/// # Errors
/// [`RepoError::FileLocked`], [`RepoError::InvalidTransition`].
pub fn check_set_tags(file: &FileRecord, actor: &UserId) -> Result<(), RepoError> {
    check_not_locked_by_other(file, actor)?;
    if file.status == FileStatus::Archived {
        return Err(archived());
    }
    Ok(())
}

/// `set_archived`: already in the asked state, then another user's live lock.
///
/// # Errors
/// [`RepoError::InvalidTransition`], [`RepoError::FileLocked`].
pub fn check_set_archived(file: &FileRecord, cmd: &SetArchived) -> Result<(), RepoError> {
    let is_archived = file.status == FileStatus::Archived;
    if is_archived == cmd.archived {
        return Err(RepoError::InvalidTransition(
            if is_archived {
                "the file is already archived"
            } else {
                "the file is not archived"
            }
            .into(),
        ));
    }
    check_not_locked_by_other(file, &cmd.actor)
}

/// A file's validated version and status after its version `number` went to `to` in a review:
/// `validated` raises the validated version; the status follows the version when it is the
/// latest and the file is not archived.
pub fn file_after_review(
    file: &FileRecord,
    number: VersionNumber,
    to: VersionStatus,
) -> (Option<VersionNumber>, FileStatus) {
    let validated = if to == VersionStatus::Validated {
        Some(file.validated_version.map_or(number, |v| v.max(number)))
    } else {
        file.validated_version
    };
    let status = if number == file.version && file.status != FileStatus::Archived {
        crate::rules::file_status_following(to)
    } else {
        file.status
    };
    (validated, status)
}

/// The review rule: a version moves from `from` to `to` only while it is in `from`. The one
/// home of the refusal's wording: the use case's early check
/// ([`review_transition`](crate::rules::review_transition)) and the store's decision on the
/// status as committed under the file's row lock both ask it.
///
/// # Errors
/// [`RepoError::InvalidTransition`] when `current` is not `from`.
pub fn decide_review(
    current: VersionStatus,
    from: VersionStatus,
    to: VersionStatus,
) -> Result<(), RepoError> {
    if current == from {
        return Ok(());
    }
    let verb = match to {
        VersionStatus::PendingValidation => "submitted",
        VersionStatus::Validated => "approved",
        VersionStatus::Rejected => "rejected",
        VersionStatus::Draft => "made a draft again",
    };
    Err(RepoError::InvalidTransition(format!(
        "a {} version cannot be {verb}",
        current.as_str()
    )))
}

/// The per-user cap on open presigned uploads (`MAX_OPEN_UPLOADS_PER_USER`): `open` is how many
/// the user holds (not completed, unexpired) when a new one is asked for, under the store's
/// per-user serialisation.
///
/// # Errors
/// [`RepoError::TooManyOpenUploads`] when the new one would pass `limit`.
pub fn check_open_uploads(open: u64, limit: u32) -> Result<(), RepoError> {
    if open >= u64::from(limit) {
        return Err(RepoError::TooManyOpenUploads { open, limit });
    }
    Ok(())
}

/// The fixed window a refusal is counted in: the store keeps one event per actor, action, path
/// and window (a unique index), and an identical refusal of the same window is counted on that
/// event (`repeat_count`, `last_repeat_at`) by the statement that would have inserted it, so
/// identical refusals never wait on one another beyond that one statement. Windows are the
/// multiples of `window` since the Unix epoch, by the refusal's own time (the service's clock
/// when it refused), not opened by a first occurrence: a burst that straddles a boundary makes
/// two events, and a refusal repeated without end one event per window, each with its count.
///
/// `Some(window number)`, or `None` when the refusal is an event of its own: `window` is zero,
/// or the event is not a refusal (outcome `denied`).
pub fn refusal_window(refusal: &AuditEvent, window: Duration) -> Option<i64> {
    let width = i64::try_from(window.as_millis()).ok().filter(|w| *w > 0)?;
    (refusal.outcome == AuditOutcome::Denied)
        .then(|| refusal.at.timestamp_millis().div_euclid(width))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::model::{AuditId, BucketKind, FilePath, Tags};

    fn user(id: &str) -> UserId {
        UserId::new(id).unwrap()
    }

    fn n(v: u32) -> VersionNumber {
        VersionNumber::new(v).unwrap()
    }

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn lock(holder: &str, expires: i64, base: u32) -> Lock {
        Lock {
            holder: user(holder),
            acquired_at: t(-10),
            expires_at: t(expires),
            base_version: n(base),
        }
    }

    fn path() -> FilePath {
        FilePath::parse(BucketKind::Projects, "/projects/p1/a.txt").unwrap()
    }

    /// A file at version `version` whose live lock at `t(0)` is `lock` (when live).
    fn file(version: u32, lock: Option<Lock>, status: FileStatus) -> FileRecord {
        FileRecord {
            id: FileId::from_uuid(Uuid::from_u128(7)),
            path: path(),
            created_by: user("alice"),
            version: n(version),
            validated_version: None,
            status,
            lock: lock.filter(|l| l.is_live_at(t(0))),
            tags: Tags::new(),
            checkout: None,
            size: 1,
            content_type: "text/plain".into(),
            sha256: String::new(),
            created_at: t(-100),
            updated_at: t(-100),
        }
    }

    fn draft(action: AuditAction) -> AuditDraft {
        AuditDraft {
            id: AuditId::from_uuid(Uuid::from_u128(1)),
            actor: user("x"),
            action,
            path: path(),
            request_id: "r".into(),
            detail: None,
        }
    }

    fn ticket(file_id: FileId, version: u32) -> CheckoutTicket {
        CheckoutTicket {
            file_id,
            path: path(),
            version: n(version),
        }
    }

    #[test]
    fn lock_refusals_in_order() {
        let ttl = Duration::from_secs(60);
        let held = lock("alice", 100, 1);
        let archived_and_locked = file(3, Some(held.clone()), FileStatus::Archived);
        assert!(matches!(
            decide_lock(
                &archived_and_locked,
                Some(&held),
                &user("bob"),
                ttl,
                None,
                t(0)
            ),
            Err(RepoError::InvalidTransition(_))
        ));
        let locked = file(3, Some(held.clone()), FileStatus::Draft);
        assert!(matches!(
            decide_lock(&locked, Some(&held), &user("bob"), ttl, None, t(0)),
            Err(RepoError::FileLocked(l)) if l.holder == user("alice")
        ));
    }

    #[test]
    fn a_lock_is_taken_refreshed_or_kept_with_its_ticket() {
        let ttl = Duration::from_secs(60);
        // Free: a new lock on the latest version.
        let fresh = decide_lock(
            &file(3, None, FileStatus::Draft),
            None,
            &user("bob"),
            ttl,
            None,
            t(0),
        )
        .unwrap();
        assert_eq!((fresh.acquired_at, fresh.base_version), (t(0), n(3)));
        assert_eq!(fresh.expires_at, t(60));
        // Refreshed by its holder: acquired_at and base stay, unless a base is given.
        let held = lock("alice", 100, 1);
        let f = file(3, Some(held.clone()), FileStatus::Draft);
        let refreshed = decide_lock(&f, Some(&held), &user("alice"), ttl, None, t(0)).unwrap();
        assert_eq!(
            (refreshed.acquired_at, refreshed.base_version),
            (held.acquired_at, n(1))
        );
        let moved = decide_lock(&f, Some(&held), &user("alice"), ttl, Some(n(2)), t(0)).unwrap();
        assert_eq!(moved.base_version, n(2));
        // Her own expired lock, taken by nobody since: a new acquisition, the same base.
        let expired = lock("alice", -1, 1);
        let f = file(3, Some(expired.clone()), FileStatus::Draft);
        let again = decide_lock(&f, Some(&expired), &user("alice"), ttl, None, t(0)).unwrap();
        assert_eq!((again.acquired_at, again.base_version), (t(0), n(1)));
        // Someone else's expired lock is free; the expiry instant itself counts as expired.
        let others = lock("bob", 0, 1);
        let f = file(3, Some(others.clone()), FileStatus::Draft);
        let taken = decide_lock(&f, Some(&others), &user("alice"), ttl, None, t(0)).unwrap();
        assert_eq!((taken.holder, taken.base_version), (user("alice"), n(3)));
    }

    #[test]
    fn unlock_releases_only_a_live_lock_and_only_for_its_holder_or_by_force() {
        let cmd = |actor: &str, force: bool| ReleaseLock {
            file_id: FileId::from_uuid(Uuid::from_u128(7)),
            actor: user(actor),
            force,
            audit: draft(AuditAction::Unlock),
        };
        assert_eq!(
            decide_unlock(None, &cmd("me", false), t(0)),
            Ok(UnlockDecision::NotLocked)
        );
        let mine = lock("me", 100, 1);
        assert_eq!(
            decide_unlock(Some(&mine), &cmd("me", false), t(0)),
            Ok(UnlockDecision::Release(mine.clone()))
        );
        let other = lock("other", 100, 1);
        assert!(matches!(
            decide_unlock(Some(&other), &cmd("me", false), t(0)),
            Err(RepoError::FileLocked(l)) if l.holder == user("other")
        ));
        assert_eq!(
            decide_unlock(Some(&other), &cmd("me", true), t(0)),
            Ok(UnlockDecision::Release(other.clone()))
        );
        // An expired lock is nothing to release, whoever asks, forced or not.
        for (actor, force) in [("me", false), ("me", true), ("other", false)] {
            assert_eq!(
                decide_unlock(Some(&other), &cmd(actor, force), t(200)),
                Ok(UnlockDecision::NotLocked),
                "{actor} force={force}"
            );
        }
    }

    #[test]
    fn release_audit_names_what_happened() {
        let held = lock("alice", 100, 1);
        let by = |actor: &str, action| ReleaseLock {
            file_id: FileId::from_uuid(Uuid::from_u128(7)),
            actor: user(actor),
            force: true,
            audit: draft(action),
        };
        assert_eq!(
            release_audit(&held, &by("bob", AuditAction::Unlock)).action,
            AuditAction::ForceUnlock
        );
        assert_eq!(
            release_audit(&held, &by("alice", AuditAction::ForceUnlock)).action,
            AuditAction::Unlock
        );
    }

    #[test]
    fn commit_rules_without_a_ticket_follow_the_lock_base() {
        let me = user("me");
        assert!(matches!(
            check_commit(&file(1, None, FileStatus::Draft), &me, None),
            Err(RepoError::InvalidTransition(_))
        ));
        assert!(matches!(
            check_commit(
                &file(1, Some(lock("me", -1, 1)), FileStatus::Draft),
                &me,
                None
            ),
            Err(RepoError::InvalidTransition(_))
        ));
        assert!(matches!(
            check_commit(
                &file(1, Some(lock("other", 100, 1)), FileStatus::Draft),
                &me,
                None
            ),
            Err(RepoError::FileLocked(_))
        ));
        assert!(matches!(
            check_commit(&file(2, Some(lock("me", 100, 1)), FileStatus::Draft), &me, None),
            Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(2)
        ));
        assert_eq!(
            check_commit(
                &file(2, Some(lock("me", 100, 2)), FileStatus::Draft),
                &me,
                None
            ),
            Ok(())
        );
    }

    #[test]
    fn a_ticket_is_compared_whatever_happened_to_the_lock() {
        let me = user("me");
        let target = file(2, Some(lock("me", 100, 2)), FileStatus::Draft);
        // The lock's base moved to 2 (her own version), the ticket did not: stale.
        assert!(matches!(
            check_commit(&target, &me, Some(&ticket(target.id, 1))),
            Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(2)
        ));
        // A stale ticket is refused before the lock is even looked at.
        let held_by_other = file(2, Some(lock("other", 100, 1)), FileStatus::Draft);
        assert!(matches!(
            check_commit(&held_by_other, &me, Some(&ticket(target.id, 1))),
            Err(RepoError::VersionConflict { .. })
        ));
        // A current ticket still needs the lock; the lock's base is then not asked.
        let current = ticket(target.id, 2);
        assert!(matches!(
            check_commit(&file(2, None, FileStatus::Draft), &me, Some(&current)),
            Err(RepoError::InvalidTransition(_))
        ));
        assert!(matches!(
            check_commit(&held_by_other, &me, Some(&current)),
            Err(RepoError::FileLocked(_))
        ));
        let lock_on_1 = file(2, Some(lock("me", 100, 1)), FileStatus::Draft);
        assert_eq!(check_commit(&lock_on_1, &me, Some(&current)), Ok(()));
        // A ticket of another file does not apply: the lock's base decides.
        let elsewhere = ticket(FileId::from_uuid(Uuid::from_u128(99)), 2);
        assert!(matches!(
            check_commit(&lock_on_1, &me, Some(&elsewhere)),
            Err(RepoError::VersionConflict { .. })
        ));
    }

    #[test]
    fn the_lock_and_the_ticket_after_a_version() {
        let me = user("me");
        let mine = lock("me", -5, 1);
        let keep = WriteMode::Commit {
            keep_lock: true,
            source: FileId::from_uuid(Uuid::from_u128(8)),
        };
        let release = WriteMode::Commit {
            keep_lock: false,
            source: FileId::from_uuid(Uuid::from_u128(8)),
        };
        let upsert = WriteMode::Upsert {
            expected: Some(Expectation {
                latest: None,
                precondition: false,
            }),
            overwrite: true,
        };
        assert_eq!(
            lock_after_version(Some(&mine), &me, release, n(2)),
            LockAfterVersion::Released
        );
        assert_eq!(
            lock_after_version(Some(&mine), &me, keep, n(2)),
            LockAfterVersion::Rebased(n(2))
        );
        assert_eq!(
            lock_after_version(Some(&mine), &user("other"), upsert, n(2)),
            LockAfterVersion::Unchanged
        );
        assert_eq!(
            lock_after_version(None, &me, upsert, n(2)),
            LockAfterVersion::Unchanged
        );

        let target = FileId::from_uuid(Uuid::from_u128(7));
        assert_eq!(
            ticket_after_commit(Some(&ticket(target, 1)), target, n(3)),
            Some(ticket(target, 3))
        );
        let other = FileId::from_uuid(Uuid::from_u128(9));
        assert_eq!(
            ticket_after_commit(Some(&ticket(other, 1)), target, n(3)),
            None
        );
        assert_eq!(ticket_after_commit(None, target, n(3)), None);
    }

    #[test]
    fn a_failed_if_match_is_flagged_not_worded() {
        let expecting = |precondition| WriteMode::Upsert {
            expected: Some(Expectation {
                latest: Some(n(1)),
                precondition,
            }),
            overwrite: true,
        };
        for precondition in [true, false] {
            assert_eq!(
                check_new_file(&expecting(precondition)),
                Err(RepoError::VersionConflict {
                    current: None,
                    detail: "the path holds no file".into(),
                    precondition,
                })
            );
        }
    }

    #[test]
    fn reservation_states() {
        assert_eq!(check_reservation(None), Err(RepoError::UploadNotFound));
        assert_eq!(
            check_reservation(Some((None, false))),
            Err(RepoError::UploadNotFound)
        );
        assert_eq!(check_reservation(Some((None, true))), Ok(()));
        let v = VersionId::from_uuid(Uuid::from_u128(5));
        assert_eq!(
            check_reservation(Some((Some(v), true))),
            Err(RepoError::UploadAlreadyCompleted { version_id: v })
        );
    }

    #[test]
    fn a_review_refusal_names_the_status_and_the_decision() {
        use VersionStatus::*;
        assert_eq!(decide_review(Draft, Draft, PendingValidation), Ok(()));
        assert_eq!(
            decide_review(Validated, PendingValidation, Validated),
            Err(RepoError::InvalidTransition(
                "a validated version cannot be approved".into()
            ))
        );
        assert_eq!(
            decide_review(Rejected, Draft, PendingValidation),
            Err(RepoError::InvalidTransition(
                "a rejected version cannot be submitted".into()
            ))
        );
    }

    #[test]
    fn open_uploads_are_capped() {
        assert!(check_open_uploads(0, 1).is_ok());
        assert!(check_open_uploads(4, 5).is_ok());
        assert_eq!(
            check_open_uploads(5, 5),
            Err(RepoError::TooManyOpenUploads { open: 5, limit: 5 })
        );
        assert!(check_open_uploads(9, 5).is_err());
    }

    fn refusal(actor: &str, action: AuditAction, at: DateTime<Utc>) -> AuditEvent {
        AuditDraft {
            id: AuditId::from_uuid(Uuid::new_v4()),
            actor: user(actor),
            action,
            path: path(),
            request_id: "r".into(),
            detail: None,
        }
        .complete(None, None, AuditOutcome::Denied, at)
    }

    #[test]
    fn refusals_are_counted_in_fixed_windows() {
        let minute = Duration::from_secs(60);
        // t(0) is 20 s into a minute since the epoch: its window runs from t(-20) to t(40).
        let window = |e: &AuditEvent, w| refusal_window(e, w);
        let first = refusal("mallory", AuditAction::Delete, t(0));
        let at = |s| refusal("mallory", AuditAction::Delete, t(s));
        assert_eq!(window(&first, minute), window(&at(-20), minute));
        assert_eq!(window(&first, minute), window(&at(39), minute));
        // Fixed, not opened by the first refusal: the next window starts at the boundary.
        assert_eq!(
            window(&at(40), minute),
            window(&first, minute).map(|w| w + 1)
        );
        assert_eq!(
            window(&at(-21), minute),
            window(&first, minute).map(|w| w - 1)
        );
        assert_eq!(window(&first, minute), Some(1_700_000_000_i64 / 60));
        // A success is never counted; a zero window records every refusal.
        let mut success = first.clone();
        success.outcome = AuditOutcome::Success;
        assert_eq!(window(&success, minute), None);
        assert_eq!(window(&first, Duration::ZERO), None);
        // Milliseconds count: a window of 1.5 s.
        let w = Duration::from_millis(1500);
        assert_eq!(window(&at(0), w), Some(1_700_000_000_000 / 1500));
    }
}
