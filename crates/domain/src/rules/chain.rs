//! The tamper-evident audit trail (issue 17): each event's hash covers its content and the hash
//! of the event before it in its **file's chain**.
//!
//! One chain per file (keyed by the file id, numbered `seq` 1, 2, …): every unit of work that
//! records a change already holds that file's row lock, so it reads the chain's head (the last
//! `seq` and hash, in the statement that reads the file) and appends the next link without
//! waiting for anything the change did not already wait for. Writes to different files never
//! wait on each other, as before. Refusals (`denied`) are counted in place by one statement that
//! waits for no one (issue 14), so they are not linked: each is **sealed** alone (`seq` none,
//! previous hash `""`), which shows an edit but not a removal. See docs/decisions.md.
//!
//! [`ChainVerifier`] walks the chains (by file, then `seq`) and names the first event that was
//! altered (its hash no longer matches its content), removed (a `seq` is missing) or reordered
//! (its content is intact but it no longer follows the event it was linked to).

use sha2::{Digest, Sha256};

use crate::model::{AuditEvent, AuditId, FileId};

/// The last link of a file's chain, as read under the file's row lock (`seq` 0 and an empty
/// hash for a chain with no event yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl ChainHead {
    /// The head after a linked event (`None` for an event outside every chain: a refusal, or
    /// one written before the chain).
    pub fn after(event: &AuditEvent) -> Option<Self> {
        Some(Self {
            seq: event.seq?,
            hash: event.hash.clone()?,
        })
    }
}

/// The canonical text hashed for an event: every field the audit trail shows, except the
/// refusal counters (which a refusal's repeats change) and the chain position (whose order the
/// previous hash already fixes).
fn canonical(e: &AuditEvent, prev: &str) -> String {
    let content = (
        "storage-audit/1",
        prev,
        e.id.to_string(),
        e.actor.as_str(),
        e.action.as_str(),
        e.event_type.map(|t| t.as_str()),
        e.bucket.as_str(),
        e.path.as_str(),
        e.file_id.map(|f| f.to_string()),
        e.version.map(crate::model::VersionNumber::get),
        e.outcome.as_str(),
        e.request_id.as_str(),
        e.detail.as_deref(),
        e.at.timestamp_micros(),
        e.data.as_deref(),
    );
    serde_json::to_string(&content).unwrap_or_default()
}

/// The hash of an event whose previous link is `prev` (hex SHA-256).
pub fn event_hash(e: &AuditEvent, prev: &str) -> String {
    hex::encode(Sha256::digest(canonical(e, prev).as_bytes()))
}

/// Links a change's event after `head`: the next `seq`, the head's hash as its previous hash,
/// and its own hash.
pub fn link(mut event: AuditEvent, head: &ChainHead) -> AuditEvent {
    event.seq = Some(head.seq + 1);
    event.hash = Some(event_hash(&event, &head.hash));
    event.prev_hash = Some(head.hash.clone());
    event
}

/// Seals a refusal alone: no chain position, an empty previous hash.
pub fn seal(mut event: AuditEvent) -> AuditEvent {
    event.seq = None;
    event.hash = Some(event_hash(&event, ""));
    event.prev_hash = Some(String::new());
    event
}

/// Whether a store chains the events it writes (`AUDIT_CHAIN`, a store-level setting).
///
/// `Off` exists to measure what the chain costs (lock+unlock with the chain on and off, in one
/// run): a store with the chain off writes its changes' events unchained (no `seq`, no hashes,
/// like the events written before the chain existed), seals no refusal, and reads no chain
/// head. Production refuses it (the server's configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuditChain {
    /// Every change's event is linked in its file's chain; every refusal is sealed.
    #[default]
    On,
    /// Nothing is chained (a measurement setting).
    Off,
}

impl AuditChain {
    /// True when events are chained (and the chain's head must be read).
    pub fn is_on(&self) -> bool {
        matches!(self, AuditChain::On)
    }

    /// A change's event linked after `head` ([`link`]), or left unchained when off.
    pub fn link(&self, event: AuditEvent, head: &ChainHead) -> AuditEvent {
        match self {
            AuditChain::On => link(event, head),
            AuditChain::Off => unchained(event),
        }
    }

    /// A refusal sealed alone ([`seal`]), or left unsealed when off.
    pub fn seal(&self, event: AuditEvent) -> AuditEvent {
        match self {
            AuditChain::On => seal(event),
            AuditChain::Off => unchained(event),
        }
    }

    /// The head after `event` was written on `head`: the event's own link when on, `head`
    /// unchanged when off (nothing was linked).
    pub fn head_after(&self, event: &AuditEvent, head: &ChainHead) -> Option<ChainHead> {
        match self {
            AuditChain::On => ChainHead::after(event),
            AuditChain::Off => Some(head.clone()),
        }
    }
}

/// An event outside every chain, as written before the chain existed.
fn unchained(mut event: AuditEvent) -> AuditEvent {
    event.seq = None;
    event.hash = None;
    event.prev_hash = None;
    event
}

/// What `audit verify` found wrong with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainFault {
    /// The event's content no longer matches its hash.
    Altered { id: AuditId, seq: Option<u64> },
    /// Events `from..=to` of the file's chain are missing before `next` (`None`: the chain's
    /// end... never reported, a removed tail cannot be told from a chain that ends there).
    Removed {
        file_id: FileId,
        from: u64,
        to: u64,
        next: AuditId,
    },
    /// The event is intact but does not follow the event before it in the chain.
    Reordered { id: AuditId, seq: u64 },
    /// A chained event without a hash or a previous hash (its chain columns were cleared).
    Unsealed { id: AuditId },
}

impl std::fmt::Display for ChainFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainFault::Altered { id, seq: Some(seq) } => {
                write!(
                    f,
                    "event {id} (seq {seq}) was altered: its hash does not match"
                )
            }
            ChainFault::Altered { id, seq: None } => {
                write!(
                    f,
                    "event {id} (a refusal) was altered: its hash does not match"
                )
            }
            ChainFault::Removed {
                file_id,
                from,
                to,
                next,
            } => write!(
                f,
                "events {from}..={to} of file {file_id}'s chain were removed (before event {next})"
            ),
            ChainFault::Reordered { id, seq } => write!(
                f,
                "event {id} (seq {seq}) was reordered: it does not follow the event before it"
            ),
            ChainFault::Unsealed { id } => {
                write!(
                    f,
                    "event {id} lost its hash (its chain columns were cleared)"
                )
            }
        }
    }
}

/// Walks chained events in `(file_id, seq)` order, one file after the other.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    last: Option<(FileId, u64, String)>,
    /// Chains seen and events checked.
    pub chains: u64,
    pub events: u64,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next chained event.
    ///
    /// # Errors
    /// The fault found at this event. The walk may go on after a fault: the next event is
    /// checked against this one as stored.
    pub fn push(&mut self, e: &AuditEvent) -> Result<(), ChainFault> {
        self.events += 1;
        let (Some(file_id), Some(seq), Some(hash), Some(prev)) =
            (e.file_id, e.seq, e.hash.as_deref(), e.prev_hash.as_deref())
        else {
            return Err(ChainFault::Unsealed { id: e.id });
        };
        let (expected_seq, expected_prev) = match &self.last {
            Some((f, s, h)) if *f == file_id => (s + 1, h.clone()),
            _ => {
                self.chains += 1;
                (1, String::new())
            }
        };
        self.last = Some((file_id, seq, hash.to_owned()));
        if event_hash(e, prev) != hash {
            return Err(ChainFault::Altered {
                id: e.id,
                seq: Some(seq),
            });
        }
        if seq > expected_seq {
            return Err(ChainFault::Removed {
                file_id,
                from: expected_seq,
                to: seq - 1,
                next: e.id,
            });
        }
        if prev != expected_prev {
            return Err(ChainFault::Reordered { id: e.id, seq });
        }
        Ok(())
    }
}

/// Checks a refusal's seal; an event with no hash at all (written before the chain) is `Ok`
/// and counted apart by the caller.
///
/// # Errors
/// [`ChainFault::Altered`] when its hash no longer matches.
pub fn check_sealed(e: &AuditEvent) -> Result<(), ChainFault> {
    match e.hash.as_deref() {
        None => Ok(()),
        Some(hash) if event_hash(e, e.prev_hash.as_deref().unwrap_or("")) == hash => Ok(()),
        Some(_) => Err(ChainFault::Altered {
            id: e.id,
            seq: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::model::{AuditAction, AuditDraft, AuditOutcome, FilePath, UserId, VersionNumber};

    fn event(n: u32, file: FileId) -> AuditEvent {
        AuditDraft {
            id: AuditId::from_uuid(uuid::Uuid::now_v7()),
            actor: UserId::new("alice").unwrap(),
            action: AuditAction::Upload,
            path: FilePath::parse(crate::model::BucketKind::Users, "/users/alice/a.txt").unwrap(),
            request_id: format!("r{n}"),
            detail: None,
        }
        .complete(
            Some(file),
            VersionNumber::new(n).ok(),
            AuditOutcome::Success,
            Utc.timestamp_opt(1_700_000_000 + i64::from(n), 1_234_567)
                .unwrap(),
        )
    }

    fn chain(len: u32) -> Vec<AuditEvent> {
        let file = FileId::from_uuid(uuid::Uuid::now_v7());
        let mut head = ChainHead::default();
        (1..=len)
            .map(|n| {
                let e = link(event(n, file), &head);
                head = ChainHead::after(&e).unwrap();
                assert_eq!(head.seq, u64::from(n));
                e
            })
            .collect()
    }

    fn walk(events: &[AuditEvent]) -> Vec<ChainFault> {
        let mut v = ChainVerifier::new();
        events.iter().filter_map(|e| v.push(e).err()).collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let mut events = chain(4);
        events.extend(chain(2));
        assert_eq!(walk(&events), []);
        let mut v = ChainVerifier::new();
        events.iter().for_each(|e| v.push(e).unwrap());
        assert_eq!((v.chains, v.events), (2, 6));
    }

    #[test]
    fn an_edit_is_altered() {
        let mut events = chain(3);
        events[1].detail = Some("edited".into());
        assert_eq!(
            walk(&events),
            [ChainFault::Altered {
                id: events[1].id,
                seq: Some(2)
            }]
        );
        // Also the time, at microsecond precision (what the stores keep).
        let mut events = chain(3);
        events[2].at += chrono::Duration::microseconds(1);
        assert!(matches!(walk(&events)[..], [ChainFault::Altered { .. }]));
    }

    #[test]
    fn a_removal_is_named() {
        let mut events = chain(4);
        events.remove(1);
        let next = events[1].id;
        assert!(matches!(
            walk(&events)[..],
            [ChainFault::Removed { from: 2, to: 2, next: n, .. }] if n == next
        ));
        // The first event removed too.
        let mut events = chain(2);
        events.remove(0);
        assert!(matches!(
            walk(&events)[..],
            [ChainFault::Removed { from: 1, to: 1, .. }]
        ));
    }

    #[test]
    fn a_swap_is_reordered() {
        let mut events = chain(3);
        // Two rows' positions exchanged (their seq swapped): the walk reads them swapped.
        events.swap(0, 1);
        let (s0, s1) = (events[0].seq, events[1].seq);
        events[0].seq = s1;
        events[1].seq = s0;
        let faults = walk(&events);
        assert_eq!(
            faults[0],
            ChainFault::Reordered {
                id: events[0].id,
                seq: 1
            }
        );
    }

    #[test]
    fn a_chain_switched_off_writes_unchained_events() {
        let file = FileId::from_uuid(uuid::Uuid::now_v7());
        let head = ChainHead {
            seq: 4,
            hash: "abc".into(),
        };
        let on = AuditChain::On.link(event(1, file), &head);
        assert_eq!(on.seq, Some(5));
        assert_eq!(AuditChain::On.head_after(&on, &head), ChainHead::after(&on));
        let off = AuditChain::Off.link(event(1, file), &head);
        assert_eq!((off.seq, &off.hash, &off.prev_hash), (None, &None, &None));
        assert_eq!(AuditChain::Off.head_after(&off, &head), Some(head));
        let sealed = AuditChain::Off.seal(event(2, file));
        assert_eq!((sealed.hash, sealed.prev_hash), (None, None));
        assert!(AuditChain::default().is_on() && !AuditChain::Off.is_on());
    }

    #[test]
    fn a_cleared_hash_is_unsealed_and_refusals_are_sealed() {
        let mut events = chain(2);
        events[1].hash = None;
        assert_eq!(walk(&events), [ChainFault::Unsealed { id: events[1].id }]);

        let refusal = seal(
            AuditDraft {
                id: AuditId::from_uuid(uuid::Uuid::now_v7()),
                actor: UserId::new("mallory").unwrap(),
                action: AuditAction::Delete,
                path: FilePath::parse(crate::model::BucketKind::Users, "/users/alice/a.txt")
                    .unwrap(),
                request_id: "r".into(),
                detail: Some("no".into()),
            }
            .complete(None, None, AuditOutcome::Denied, Utc::now()),
        );
        assert_eq!(check_sealed(&refusal), Ok(()));
        let mut counted = refusal.clone();
        counted.repeat_count = 7;
        assert_eq!(
            check_sealed(&counted),
            Ok(()),
            "repeats are not part of the seal"
        );
        let mut edited = refusal;
        edited.actor = UserId::new("bob").unwrap();
        assert!(check_sealed(&edited).is_err());
    }
}
