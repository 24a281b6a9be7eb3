//! The access table (spec §2): for every operation and bucket, what the caller must satisfy.

use crate::model::{AuditAction, BucketKind, OwnerId, Principal};
use crate::ports::ProjectAction;

/// Every operation of the contract that touches a path, as the access table sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `GET /list`.
    List,
    /// `GET /metadata`.
    ReadMetadata,
    /// `PATCH /metadata`.
    UpdateTags,
    /// `GET /versions`.
    ListVersions,
    /// `GET /download/proxy`.
    Download,
    /// `POST /download/presign`.
    PresignDownload,
    /// `POST /upload/presign`, `/upload/proxy`, `/upload/complete`.
    Upload,
    /// `POST /copy`, on the source.
    CopyFrom,
    /// `POST /copy`, on the target.
    CopyInto,
    /// `POST /copy` of a project file into a workspace: the source gets locked.
    Checkout,
    /// `POST /lock`.
    Lock,
    /// `POST /unlock` by the holder.
    Unlock,
    /// `POST /unlock` with `force: true`.
    ForceUnlock,
    /// `GET /locks`.
    ListLocks,
    /// `GET /reviews`.
    ListReviews,
    /// `POST /versions/commit`, on the source (the workspace file).
    CommitFrom,
    /// `POST /versions/commit`, on the target.
    CommitInto,
    /// `POST /versions/{id}/submit`.
    Submit,
    /// `POST /versions/{id}/approve`.
    Approve,
    /// `POST /versions/{id}/reject`.
    Reject,
    /// `DELETE /delete`.
    Delete,
    /// `GET /audit`.
    Audit,
    /// `POST /archive`, `POST /unarchive`.
    Archive,
    /// `POST /versions/{id}/restore`.
    Restore,
    /// `POST /trash`, and the occupant of a restore with `on_conflict: replace`.
    Trash,
    /// `GET /trash`.
    ListTrash,
    /// `POST /trash/restore`, on the entry's path and on the target path.
    TrashRestore,
    /// `DELETE /trash`.
    Purge,
    /// `POST /versions/{id}/pin`.
    Pin,
    /// `POST /versions/{id}/unpin`.
    Unpin,
}

impl Operation {
    pub const ALL: [Operation; 30] = [
        Operation::List,
        Operation::ReadMetadata,
        Operation::UpdateTags,
        Operation::ListVersions,
        Operation::Download,
        Operation::PresignDownload,
        Operation::Upload,
        Operation::CopyFrom,
        Operation::CopyInto,
        Operation::Checkout,
        Operation::Lock,
        Operation::Unlock,
        Operation::ForceUnlock,
        Operation::ListLocks,
        Operation::ListReviews,
        Operation::CommitFrom,
        Operation::CommitInto,
        Operation::Submit,
        Operation::Approve,
        Operation::Reject,
        Operation::Delete,
        Operation::Audit,
        Operation::Archive,
        Operation::Restore,
        Operation::Trash,
        Operation::ListTrash,
        Operation::TrashRestore,
        Operation::Purge,
        Operation::Pin,
        Operation::Unpin,
    ];

    /// What the audit trail records for this operation: `Some` for the changes (refusals of
    /// them are audited too), `None` for reads.
    pub const fn audit_action(self) -> Option<AuditAction> {
        Some(match self {
            Operation::UpdateTags => AuditAction::UpdateTags,
            Operation::Upload => AuditAction::Upload,
            Operation::CopyInto => AuditAction::Copy,
            Operation::Checkout => AuditAction::Checkout,
            Operation::Lock => AuditAction::Lock,
            Operation::Unlock => AuditAction::Unlock,
            Operation::ForceUnlock => AuditAction::ForceUnlock,
            Operation::CommitInto => AuditAction::Commit,
            Operation::Submit => AuditAction::Submit,
            Operation::Approve => AuditAction::Approve,
            Operation::Reject => AuditAction::Reject,
            Operation::Delete => AuditAction::Delete,
            Operation::Archive => AuditAction::Archive,
            Operation::Restore => AuditAction::Restore,
            Operation::Trash => AuditAction::Trash,
            Operation::TrashRestore => AuditAction::TrashRestore,
            Operation::Purge => AuditAction::Purge,
            Operation::Pin => AuditAction::Pin,
            Operation::Unpin => AuditAction::Unpin,
            Operation::List
            | Operation::ReadMetadata
            | Operation::ListVersions
            | Operation::Download
            | Operation::PresignDownload
            | Operation::CopyFrom
            | Operation::ListLocks
            | Operation::ListReviews
            | Operation::CommitFrom
            | Operation::Audit
            | Operation::ListTrash => return None,
        })
    }

    /// The project-service action this operation needs in the `projects` bucket.
    pub const fn project_action(self) -> ProjectAction {
        match self {
            Operation::List
            | Operation::ReadMetadata
            | Operation::ListVersions
            | Operation::Download
            | Operation::PresignDownload
            | Operation::CopyFrom
            | Operation::ListLocks
            | Operation::ListReviews
            | Operation::CommitFrom
            | Operation::Audit
            | Operation::ListTrash => ProjectAction::Read,
            Operation::UpdateTags
            | Operation::Upload
            | Operation::CopyInto
            | Operation::CommitInto
            | Operation::Submit
            | Operation::Restore
            | Operation::TrashRestore
            | Operation::Pin
            | Operation::Unpin => ProjectAction::Write,
            Operation::Delete | Operation::Trash | Operation::Purge => ProjectAction::Delete,
            Operation::Checkout | Operation::Lock | Operation::Unlock => ProjectAction::Lock,
            Operation::ForceUnlock
            | Operation::Approve
            | Operation::Reject
            | Operation::Archive => ProjectAction::Validate,
        }
    }
}

/// What the caller must satisfy for one operation on one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// `users`: the token's `sub` is the owner id. `companies`: the token's `company_id` is.
    /// Decided locally, from the token alone.
    BucketOwner,
    /// `projects`: the project service must allow this action on the project (the owner id).
    Project(ProjectAction),
}

/// The access table (spec §2). In `users` and `companies` every operation, force-unlock and
/// review included, belongs to the bucket owner; in `projects` each operation maps to one
/// project-service action.
pub const fn requirement(operation: Operation, bucket: BucketKind) -> Requirement {
    match bucket {
        BucketKind::Users | BucketKind::Companies => Requirement::BucketOwner,
        BucketKind::Projects => Requirement::Project(operation.project_action()),
    }
}

/// The local half of the table: whether `caller` owns `owner`'s subtree of `bucket`.
/// Always false for `projects`, which only the project service decides.
pub fn owns(caller: &Principal, bucket: BucketKind, owner: &OwnerId) -> bool {
    match bucket {
        BucketKind::Users => caller.user_id.as_str() == owner.as_str(),
        BucketKind::Companies => caller
            .company_id
            .as_ref()
            .is_some_and(|c| c.as_str() == owner.as_str()),
        BucketKind::Projects => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CompanyId, UserId};

    fn alice() -> Principal {
        Principal::new(
            UserId::new("alice").unwrap(),
            Some(CompanyId::new("acme").unwrap()),
        )
    }

    #[test]
    fn the_full_table() {
        use Operation as O;
        use ProjectAction as A;
        let expected: [(Operation, ProjectAction); 30] = [
            (O::List, A::Read),
            (O::ReadMetadata, A::Read),
            (O::UpdateTags, A::Write),
            (O::ListVersions, A::Read),
            (O::Download, A::Read),
            (O::PresignDownload, A::Read),
            (O::Upload, A::Write),
            (O::CopyFrom, A::Read),
            (O::CopyInto, A::Write),
            (O::Checkout, A::Lock),
            (O::Lock, A::Lock),
            (O::Unlock, A::Lock),
            (O::ForceUnlock, A::Validate),
            (O::ListLocks, A::Read),
            (O::ListReviews, A::Read),
            (O::CommitFrom, A::Read),
            (O::CommitInto, A::Write),
            (O::Submit, A::Write),
            (O::Approve, A::Validate),
            (O::Reject, A::Validate),
            (O::Delete, A::Delete),
            (O::Audit, A::Read),
            (O::Archive, A::Validate),
            (O::Restore, A::Write),
            (O::Trash, A::Delete),
            (O::ListTrash, A::Read),
            (O::TrashRestore, A::Write),
            (O::Purge, A::Delete),
            (O::Pin, A::Write),
            (O::Unpin, A::Write),
        ];
        assert_eq!(expected.len(), Operation::ALL.len());
        for (op, action) in expected {
            assert_eq!(
                requirement(op, BucketKind::Projects),
                Requirement::Project(action),
                "{op:?}"
            );
            assert_eq!(
                requirement(op, BucketKind::Users),
                Requirement::BucketOwner,
                "{op:?}"
            );
            assert_eq!(
                requirement(op, BucketKind::Companies),
                Requirement::BucketOwner,
                "{op:?}"
            );
        }
    }

    #[test]
    fn changes_have_an_audit_action_and_reads_none() {
        let reads = [
            Operation::List,
            Operation::ReadMetadata,
            Operation::ListVersions,
            Operation::Download,
            Operation::PresignDownload,
            Operation::CopyFrom,
            Operation::ListLocks,
            Operation::ListReviews,
            Operation::CommitFrom,
            Operation::Audit,
            Operation::ListTrash,
        ];
        for op in Operation::ALL {
            assert_eq!(op.audit_action().is_none(), reads.contains(&op), "{op:?}");
            // A read never needs more than `read`; a change always does.
            assert_eq!(
                op.project_action() == ProjectAction::Read,
                reads.contains(&op),
                "{op:?}"
            );
        }
        assert_eq!(
            Operation::ForceUnlock.audit_action(),
            Some(AuditAction::ForceUnlock)
        );
    }

    #[test]
    fn users_bucket_belongs_to_the_subject() {
        let me = alice();
        assert!(owns(
            &me,
            BucketKind::Users,
            &OwnerId::new("alice").unwrap()
        ));
        assert!(!owns(&me, BucketKind::Users, &OwnerId::new("bob").unwrap()));
        // Not a prefix or case-insensitive match.
        assert!(!owns(
            &me,
            BucketKind::Users,
            &OwnerId::new("alice2").unwrap()
        ));
        assert!(!owns(
            &me,
            BucketKind::Users,
            &OwnerId::new("Alice").unwrap()
        ));
    }

    #[test]
    fn companies_bucket_belongs_to_the_company_claim() {
        let me = alice();
        assert!(owns(
            &me,
            BucketKind::Companies,
            &OwnerId::new("acme").unwrap()
        ));
        assert!(!owns(
            &me,
            BucketKind::Companies,
            &OwnerId::new("globex").unwrap()
        ));
        // The user id is no company id.
        assert!(!owns(
            &me,
            BucketKind::Companies,
            &OwnerId::new("alice").unwrap()
        ));
        let no_company = Principal::new(UserId::new("acme").unwrap(), None);
        assert!(!owns(
            &no_company,
            BucketKind::Companies,
            &OwnerId::new("acme").unwrap()
        ));
    }

    #[test]
    fn projects_are_never_decided_locally() {
        let me = alice();
        assert!(!owns(
            &me,
            BucketKind::Projects,
            &OwnerId::new("alice").unwrap()
        ));
    }
}
