//! Events (issue 17): which event an audited change publishes, and the event as it is sent.
//!
//! An audited change's audit event is its outbox record: the store writes it in the change's
//! transaction with its [`EventType`] and `data`, and the dispatcher publishes it from there
//! ([`crate::service::events`]). The message is built from the stored event alone, so a retry
//! sends the same bytes with the same `id`.

use serde::Serialize;

use chrono::{DateTime, Utc};

use crate::model::{
    AuditAction, AuditDraft, AuditEvent, AuditOutcome, EventType, FileId, VersionNumber,
};
use crate::rules::chain::{AuditChain, ChainHead};

/// What the store knows of a change besides its action, that decides its event type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventFacts {
    /// The change created the file (its first version).
    pub file_created: bool,
    /// The version completes a presigned upload (`/upload/complete`).
    pub upload_completed: bool,
}

/// The event type of an audited change; `None` for a refusal (refusals are audited, not
/// published).
///
/// - an upload completing a presigned upload is `upload.completed` (its `data.file_created`
///   says whether it created the file); any other upload or copy that creates the file is
///   `file.created`, one that adds a version `version.created`;
/// - a workspace commit adds a version already submitted for review: `version.submitted`, like
///   an explicit submit (reviewers listen to one type);
/// - a checkout takes the lock of the checked-out file: `lock.acquired`, like a lock;
/// - the trash: `file.trashed`, `file.restored` (back from the trash), `file.purged`; pins and
///   retention: `version.pinned`, `version.unpinned`, `version.pruned` (by the janitor).
pub const fn event_type(
    action: AuditAction,
    outcome: AuditOutcome,
    facts: EventFacts,
) -> Option<EventType> {
    if matches!(outcome, AuditOutcome::Denied) {
        return None;
    }
    Some(match action {
        AuditAction::Upload if facts.upload_completed => EventType::UploadCompleted,
        AuditAction::Upload | AuditAction::Copy if facts.file_created => EventType::FileCreated,
        AuditAction::Upload | AuditAction::Copy => EventType::VersionCreated,
        AuditAction::Commit | AuditAction::Submit => EventType::VersionSubmitted,
        AuditAction::Approve => EventType::VersionApproved,
        AuditAction::Reject => EventType::VersionRejected,
        AuditAction::Restore => EventType::VersionRestored,
        AuditAction::Lock | AuditAction::Checkout => EventType::LockAcquired,
        AuditAction::Unlock => EventType::LockReleased,
        AuditAction::ForceUnlock => EventType::LockForced,
        AuditAction::UpdateTags => EventType::FileTagsChanged,
        AuditAction::Archive => EventType::FileArchived,
        AuditAction::Unarchive => EventType::FileUnarchived,
        AuditAction::Delete => EventType::FileDeleted,
        AuditAction::Trash => EventType::FileTrashed,
        AuditAction::TrashRestore => EventType::FileRestored,
        AuditAction::Purge => EventType::FilePurged,
        AuditAction::Pin => EventType::VersionPinned,
        AuditAction::Unpin => EventType::VersionUnpinned,
        AuditAction::Prune => EventType::VersionPruned,
    })
}

/// The audit event of a change, as a store records it in the change's unit of work: the draft
/// completed with what the store decided, its event type ([`event_type`]), its `data` (the
/// unit's details, with the draft's `detail` when it has one) and its link after the file's
/// chain head ([`AuditChain::link`]; unchained when the store's chain is off). Every unit of
/// work records its event through this one function.
#[allow(clippy::too_many_arguments)]
pub fn change_event(
    draft: AuditDraft,
    file_id: FileId,
    version: Option<VersionNumber>,
    at: DateTime<Utc>,
    facts: EventFacts,
    mut data: serde_json::Map<String, serde_json::Value>,
    (chain, head): (&AuditChain, &ChainHead),
) -> AuditEvent {
    let mut event = draft.complete(Some(file_id), version, AuditOutcome::Success, at);
    event.event_type = event_type(event.action, event.outcome, facts);
    if facts.upload_completed {
        data.insert("file_created".into(), facts.file_created.into());
    }
    if let Some(detail) = &event.detail {
        data.insert("detail".into(), detail.clone().into());
    }
    event.data = Some(serde_json::Value::Object(data).to_string());
    chain.link(event, head)
}

/// An event as published (docs/events.md): the JSON body of a webhook and of a NATS message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventMessage {
    /// The audit event's id: unique, the same on every retry.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// RFC 3339, UTC, microseconds.
    pub time: String,
    pub actor: String,
    pub bucket: String,
    pub path: String,
    pub file_id: Option<String>,
    pub version: Option<u32>,
    pub request_id: String,
    pub data: serde_json::Value,
}

impl EventMessage {
    /// The message of a stored event; `None` for an event that publishes nothing.
    pub fn of(event: &AuditEvent) -> Option<Self> {
        let event_type = event.event_type?;
        let data = event
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
        Some(Self {
            id: event.id.to_string(),
            event_type,
            time: event
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            actor: event.actor.as_str().to_owned(),
            bucket: event.bucket.as_str().to_owned(),
            path: event.path.as_str().to_owned(),
            file_id: event.file_id.map(|f| f.to_string()),
            version: event.version.map(VersionNumber::get),
            request_id: event.request_id.clone(),
            data,
        })
    }

    /// The body sent (compact JSON).
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Which events a subscription wants (`WEBHOOKS_FILE`: `events`, `bucket`, `path_prefix`;
/// each absent means all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub types: Option<Vec<EventType>>,
    pub bucket: Option<String>,
    pub path_prefix: Option<String>,
}

impl EventFilter {
    /// Whether the subscription wants this event.
    pub fn matches(&self, event: &EventMessage) -> bool {
        self.types
            .as_ref()
            .is_none_or(|t| t.contains(&event.event_type))
            && self.bucket.as_ref().is_none_or(|b| *b == event.bucket)
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|p| event.path.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: AuditOutcome = AuditOutcome::Success;

    fn facts(file_created: bool, upload_completed: bool) -> EventFacts {
        EventFacts {
            file_created,
            upload_completed,
        }
    }

    #[test]
    fn every_type_is_some_change() {
        let none = EventFacts::default();
        let cases = [
            (
                AuditAction::Upload,
                facts(true, false),
                EventType::FileCreated,
            ),
            (
                AuditAction::Copy,
                facts(true, false),
                EventType::FileCreated,
            ),
            (AuditAction::Upload, none, EventType::VersionCreated),
            (AuditAction::Copy, none, EventType::VersionCreated),
            (
                AuditAction::Upload,
                facts(true, true),
                EventType::UploadCompleted,
            ),
            (
                AuditAction::Upload,
                facts(false, true),
                EventType::UploadCompleted,
            ),
            (AuditAction::Commit, none, EventType::VersionSubmitted),
            (AuditAction::Submit, none, EventType::VersionSubmitted),
            (AuditAction::Approve, none, EventType::VersionApproved),
            (AuditAction::Reject, none, EventType::VersionRejected),
            (AuditAction::Restore, none, EventType::VersionRestored),
            (AuditAction::Lock, none, EventType::LockAcquired),
            (AuditAction::Checkout, none, EventType::LockAcquired),
            (AuditAction::Unlock, none, EventType::LockReleased),
            (AuditAction::ForceUnlock, none, EventType::LockForced),
            (AuditAction::UpdateTags, none, EventType::FileTagsChanged),
            (AuditAction::Archive, none, EventType::FileArchived),
            (AuditAction::Unarchive, none, EventType::FileUnarchived),
            (AuditAction::Delete, none, EventType::FileDeleted),
            (AuditAction::Trash, none, EventType::FileTrashed),
            (AuditAction::TrashRestore, none, EventType::FileRestored),
            (AuditAction::Purge, none, EventType::FilePurged),
            (AuditAction::Pin, none, EventType::VersionPinned),
            (AuditAction::Unpin, none, EventType::VersionUnpinned),
            (AuditAction::Prune, none, EventType::VersionPruned),
        ];
        for (action, f, want) in cases {
            assert_eq!(event_type(action, OK, f), Some(want), "{action:?} {f:?}");
        }
        for t in EventType::ALL {
            assert!(
                cases.iter().any(|c| c.2 == t),
                "{t:?} is produced by no change"
            );
            assert_eq!(EventType::from_stored(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::String(t.as_str().into())
            );
        }
    }

    #[test]
    fn refusals_publish_nothing() {
        assert_eq!(
            event_type(
                AuditAction::Delete,
                AuditOutcome::Denied,
                EventFacts::default()
            ),
            None
        );
    }
}
