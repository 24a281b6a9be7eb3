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
//!
//! The hashes are **keyed**: HMAC-SHA256 under the audit key ([`AuditKey`], `AUDIT_KEY`), so
//! that access to the database alone cannot recompute a valid chain after an edit. Each stored
//! hash names its key (`<key-id>:<hex>`), so keys can be rotated: new events use the current
//! key, and the verifier ([`AuditKeyring`]) also holds the retired ones. A hash without a key
//! id (the unkeyed format, which never shipped in a release) is a fault, never accepted: a
//! downgrade would let anyone recompute it.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

use crate::model::{AuditEvent, AuditId, FileId};

type HmacSha256 = Hmac<Sha256>;

/// The id of the built-in development key (development and testing only).
pub const DEVELOPMENT_KEY_ID: &str = "dev";

/// The built-in development key: public (it is in the source), so a chain under it proves
/// nothing; staging and production refuse to start without `AUDIT_KEY`.
const DEVELOPMENT_KEY: &[u8; 32] = b"storage-service development key!";

/// The shortest audit key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// An audit key: the id written in every hash made with it, and its secret bytes.
pub struct AuditKey {
    id: String,
    secret: SecretSlice<u8>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditKeyError {
    #[error("key id '{0}' must be 1 to 32 letters, digits, '.', '_' or '-'")]
    Id(String),
    #[error("the key has {0} bytes; at least 32 are needed")]
    Short(usize),
    #[error("key id '{0}' is given twice")]
    Duplicate(String),
}

impl AuditKey {
    /// A key with this id (1 to 32 of `[A-Za-z0-9._-]`) and at least [`MIN_KEY_BYTES`] bytes.
    ///
    /// # Errors
    /// [`AuditKeyError`] naming what is wrong.
    pub fn new(id: &str, secret: Vec<u8>) -> Result<Self, AuditKeyError> {
        let id_ok = (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !id_ok {
            return Err(AuditKeyError::Id(id.to_owned()));
        }
        if secret.len() < MIN_KEY_BYTES {
            return Err(AuditKeyError::Short(secret.len()));
        }
        Ok(Self {
            id: id.to_owned(),
            secret: SecretSlice::from(secret),
        })
    }

    /// The built-in development key ([`DEVELOPMENT_KEY_ID`]).
    pub fn development() -> Self {
        Self {
            id: DEVELOPMENT_KEY_ID.to_owned(),
            secret: SecretSlice::from(DEVELOPMENT_KEY.to_vec()),
        }
    }

    /// The key's id, written before every hash made with it.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length.
        HmacSha256::new_from_slice(self.secret.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"))
    }

    /// An HMAC under this key over text given piece by piece (a checkpoint's lines).
    pub fn streaming(&self) -> StreamMac {
        StreamMac {
            id: self.id.clone(),
            mac: self.mac(),
        }
    }

    /// `<key id>:<hex HMAC-SHA256 of text>`.
    pub fn sign(&self, text: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(text);
        format!("{}:{}", self.id, hex::encode(mac.finalize().into_bytes()))
    }

    /// True when `tag` (hex) is the HMAC of `text` under this key (compared in constant time).
    pub fn verifies(&self, text: &[u8], tag: &str) -> bool {
        let Ok(tag) = hex::decode(tag) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(text);
        mac.verify_slice(&tag).is_ok()
    }

    /// The hash of an event whose previous link is `prev`: `<key id>:<hex HMAC>`.
    pub fn event_hash(&self, e: &AuditEvent, prev: &str) -> String {
        self.sign(canonical(e, prev).as_bytes())
    }
}

/// An HMAC-SHA256 fed piece by piece ([`AuditKey::streaming`]).
pub struct StreamMac {
    id: String,
    mac: HmacSha256,
}

impl std::fmt::Debug for StreamMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamMac")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl StreamMac {
    pub fn update(&mut self, text: &[u8]) {
        self.mac.update(text);
    }

    /// `<key id>:<hex HMAC>`.
    pub fn finish(self) -> String {
        format!(
            "{}:{}",
            self.id,
            hex::encode(self.mac.finalize().into_bytes())
        )
    }

    /// True when `tag` (hex, without the key id) is this MAC (compared in constant time).
    pub fn verifies(self, tag: &str) -> bool {
        hex::decode(tag).is_ok_and(|tag| self.mac.verify_slice(&tag).is_ok())
    }
}

/// The keys `audit verify` accepts: the current one and the retired ones, by id.
#[derive(Debug, Clone)]
pub struct AuditKeyring {
    keys: Vec<Arc<AuditKey>>,
}

/// Why a stored hash (or MAC) does not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashProblem {
    /// No `<key id>:` before it (the unkeyed format).
    Unkeyed,
    /// Its key id is not in the keyring.
    UnknownKey(String),
    /// The key is known; the MAC does not match.
    Mismatch,
}

impl AuditKeyring {
    /// The current key and the retired ones.
    ///
    /// # Errors
    /// [`AuditKeyError::Duplicate`] when two keys share an id.
    pub fn new(
        current: Arc<AuditKey>,
        retired: impl IntoIterator<Item = AuditKey>,
    ) -> Result<Self, AuditKeyError> {
        let mut keys = vec![current];
        for key in retired {
            if keys.iter().any(|k| k.id == key.id) {
                return Err(AuditKeyError::Duplicate(key.id));
            }
            keys.push(Arc::new(key));
        }
        Ok(Self { keys })
    }

    /// The built-in development key alone (what a store built with the default chain uses).
    pub fn development() -> Self {
        Self {
            keys: vec![Arc::new(AuditKey::development())],
        }
    }

    /// The current key (the one new hashes and checkpoints use).
    pub fn current(&self) -> &Arc<AuditKey> {
        &self.keys[0]
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&AuditKey> {
        self.keys.iter().find(|k| k.id == id).map(|k| &**k)
    }

    /// Checks `stored` (`<key id>:<hex>`) against `text`.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn check(&self, text: &[u8], stored: &str) -> Result<(), HashProblem> {
        let Some((id, tag)) = stored.split_once(':') else {
            return Err(HashProblem::Unkeyed);
        };
        let key = self
            .get(id)
            .ok_or_else(|| HashProblem::UnknownKey(id.to_owned()))?;
        if key.verifies(text, tag) {
            Ok(())
        } else {
            Err(HashProblem::Mismatch)
        }
    }

    /// Checks an event's stored hash, given its previous link `prev`.
    fn check_event(&self, e: &AuditEvent, prev: &str, hash: &str) -> Result<(), ChainFault> {
        self.check(canonical(e, prev).as_bytes(), hash)
            .map_err(|problem| match problem {
                HashProblem::Mismatch => ChainFault::Altered {
                    id: e.id,
                    seq: e.seq,
                },
                HashProblem::Unkeyed => ChainFault::Unkeyed { id: e.id },
                HashProblem::UnknownKey(key_id) => ChainFault::UnknownKey { id: e.id, key_id },
            })
    }
}

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
/// previous hash already fixes). Public: the format is no secret (the key is), and the tests
/// play an attacker who knows it.
pub fn canonical(e: &AuditEvent, prev: &str) -> String {
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

/// Links a change's event after `head`: the next `seq`, the head's hash as its previous hash,
/// and its own hash under `key`.
pub fn link(mut event: AuditEvent, head: &ChainHead, key: &AuditKey) -> AuditEvent {
    event.seq = Some(head.seq + 1);
    event.hash = Some(key.event_hash(&event, &head.hash));
    event.prev_hash = Some(head.hash.clone());
    event
}

/// Seals a refusal alone under `key`: no chain position, an empty previous hash.
pub fn seal(mut event: AuditEvent, key: &AuditKey) -> AuditEvent {
    event.seq = None;
    event.hash = Some(key.event_hash(&event, ""));
    event.prev_hash = Some(String::new());
    event
}

/// Whether a store chains the events it writes, and under which key (`AUDIT_CHAIN`,
/// `AUDIT_KEY`: a store-level setting).
///
/// `Off` exists to measure what the chain costs (lock+unlock with the chain on and off, in one
/// run): a store with the chain off writes its changes' events unchained (no `seq`, no hashes,
/// like the events written before the chain existed), seals no refusal, and reads no chain
/// head. Production refuses it (the server's configuration). The default is on, under the
/// built-in development key (the server always passes its configured key).
#[derive(Debug, Clone)]
pub enum AuditChain {
    /// Every change's event is linked in its file's chain and every refusal sealed, under
    /// this key.
    On(Arc<AuditKey>),
    /// Nothing is chained (a measurement setting).
    Off,
}

impl Default for AuditChain {
    fn default() -> Self {
        AuditChain::On(Arc::new(AuditKey::development()))
    }
}

impl AuditChain {
    /// True when events are chained (and the chain's head must be read).
    pub fn is_on(&self) -> bool {
        matches!(self, AuditChain::On(_))
    }

    /// A change's event linked after `head` ([`link`]), or left unchained when off.
    pub fn link(&self, event: AuditEvent, head: &ChainHead) -> AuditEvent {
        match self {
            AuditChain::On(key) => link(event, head, key),
            AuditChain::Off => unchained(event),
        }
    }

    /// A refusal sealed alone ([`seal`]), or left unsealed when off.
    pub fn seal(&self, event: AuditEvent) -> AuditEvent {
        match self {
            AuditChain::On(key) => seal(event, key),
            AuditChain::Off => unchained(event),
        }
    }

    /// The head after `event` was written on `head`: the event's own link when on, `head`
    /// unchanged when off (nothing was linked).
    pub fn head_after(&self, event: &AuditEvent, head: &ChainHead) -> Option<ChainHead> {
        match self {
            AuditChain::On(_) => ChainHead::after(event),
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
    /// A hash without a key id (the unkeyed format: anyone could have recomputed it).
    Unkeyed { id: AuditId },
    /// A hash under a key id that is neither the current key nor a retired one.
    UnknownKey { id: AuditId, key_id: String },
    /// A chain the checkpoint holds is gone altogether (its last checkpointed `seq`).
    ChainGone { file_id: FileId, seq: u64 },
    /// A chain ends before the checkpoint's head: events `from..=to` were removed from its end.
    TailRemoved { file_id: FileId, from: u64, to: u64 },
    /// The event at a checkpointed head's position is not the one checkpointed (its hash
    /// differs).
    HeadChanged {
        id: AuditId,
        file_id: FileId,
        seq: u64,
    },
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
            ChainFault::Unkeyed { id } => write!(
                f,
                "event {id} carries an unkeyed hash (not accepted: anyone could recompute it)"
            ),
            ChainFault::ChainGone { file_id, seq } => write!(
                f,
                "file {file_id}'s chain was removed: the checkpoint holds it up to seq {seq}"
            ),
            ChainFault::TailRemoved { file_id, from, to } => write!(
                f,
                "events {from}..={to} of file {file_id}'s chain were removed from its end (the \
                 checkpoint holds it up to seq {to})"
            ),
            ChainFault::HeadChanged { id, file_id, seq } => write!(
                f,
                "event {id} (seq {seq}) of file {file_id} is not the event checkpointed there \
                 (its hash differs)"
            ),
            ChainFault::UnknownKey { id, key_id } => write!(
                f,
                "event {id} is hashed under key id '{key_id}', which is neither AUDIT_KEY_ID nor \
                 one of AUDIT_RETIRED_KEYS"
            ),
        }
    }
}

/// Walks chained events in `(file_id, seq)` order, one file after the other, checking each
/// hash under the keyring.
#[derive(Debug)]
pub struct ChainVerifier<'k> {
    keys: &'k AuditKeyring,
    last: Option<(FileId, u64, String)>,
    /// Chains seen and events checked.
    pub chains: u64,
    pub events: u64,
}

impl<'k> ChainVerifier<'k> {
    pub fn new(keys: &'k AuditKeyring) -> Self {
        Self {
            keys,
            last: None,
            chains: 0,
            events: 0,
        }
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
        self.keys.check_event(e, prev, hash)?;
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

/// Checks a refusal's seal under the keyring; an event with no hash at all (written before
/// the chain, or with the chain off) is `Ok` and counted apart by the caller.
///
/// # Errors
/// [`ChainFault::Altered`] when its hash no longer matches; [`ChainFault::Unkeyed`],
/// [`ChainFault::UnknownKey`].
pub fn check_sealed(e: &AuditEvent, keys: &AuditKeyring) -> Result<(), ChainFault> {
    match e.hash.as_deref() {
        None => Ok(()),
        Some(hash) => keys.check_event(e, e.prev_hash.as_deref().unwrap_or(""), hash),
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

    fn key(id: &str, byte: u8) -> AuditKey {
        AuditKey::new(id, vec![byte; 32]).unwrap()
    }

    fn keyring() -> AuditKeyring {
        AuditKeyring::new(Arc::new(key("k1", 1)), []).unwrap()
    }

    fn chain(len: u32) -> Vec<AuditEvent> {
        chain_under(len, &key("k1", 1))
    }

    fn chain_under(len: u32, key: &AuditKey) -> Vec<AuditEvent> {
        let file = FileId::from_uuid(uuid::Uuid::now_v7());
        let mut head = ChainHead::default();
        (1..=len)
            .map(|n| {
                let e = link(event(n, file), &head, key);
                head = ChainHead::after(&e).unwrap();
                assert_eq!(head.seq, u64::from(n));
                e
            })
            .collect()
    }

    fn walk(events: &[AuditEvent]) -> Vec<ChainFault> {
        walk_with(events, &keyring())
    }

    fn walk_with(events: &[AuditEvent], keys: &AuditKeyring) -> Vec<ChainFault> {
        let mut v = ChainVerifier::new(keys);
        events.iter().filter_map(|e| v.push(e).err()).collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let mut events = chain(4);
        events.extend(chain(2));
        assert_eq!(walk(&events), []);
        let keys = keyring();
        let mut v = ChainVerifier::new(&keys);
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
        let chain = AuditChain::On(Arc::new(key("k1", 1)));
        let on = chain.link(event(1, file), &head);
        assert_eq!(on.seq, Some(5));
        assert!(on.hash.as_deref().unwrap().starts_with("k1:"));
        assert_eq!(chain.head_after(&on, &head), ChainHead::after(&on));
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

        let keys = keyring();
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
            keys.current(),
        );
        assert_eq!(check_sealed(&refusal, &keys), Ok(()));
        let mut counted = refusal.clone();
        counted.repeat_count = 7;
        assert_eq!(
            check_sealed(&counted, &keys),
            Ok(()),
            "repeats are not part of the seal"
        );
        let mut edited = refusal;
        edited.actor = UserId::new("bob").unwrap();
        assert!(check_sealed(&edited, &keys).is_err());
    }

    #[test]
    fn the_same_content_hashes_differently_under_another_key() {
        let file = FileId::from_uuid(uuid::Uuid::now_v7());
        let e = event(1, file);
        let (a, b) = (key("k1", 1), key("k1", 2));
        assert_ne!(a.event_hash(&e, ""), b.event_hash(&e, ""));
        assert_eq!(a.event_hash(&e, ""), a.event_hash(&e, ""));
        assert!(a.event_hash(&e, "").starts_with("k1:"));
        // Same bytes, another id: another hash too (the id is part of what is stored).
        assert_ne!(a.event_hash(&e, ""), key("k2", 1).event_hash(&e, ""));
    }

    #[test]
    fn a_chain_recomputed_without_the_key_is_reported() {
        // Someone with database access edits an event and recomputes the chain from there on,
        // without the key: under a key of their own (with the right id), or in the unkeyed
        // format (plain SHA-256), or under a key id of their invention.
        let mut events = chain(3);
        events[1].detail = Some("edited".into());
        let forged = key("k1", 9);
        let mut prev = events[0].hash.clone().unwrap();
        for e in &mut events[1..] {
            e.prev_hash = Some(prev.clone());
            e.hash = Some(forged.event_hash(e, &prev));
            prev = e.hash.clone().unwrap();
        }
        assert_eq!(
            walk(&events)[0],
            ChainFault::Altered {
                id: events[1].id,
                seq: Some(2)
            }
        );

        let mut events = chain(2);
        let plain = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(
                canonical(&events[1], events[1].prev_hash.as_deref().unwrap()).as_bytes(),
            ))
        };
        events[1].hash = Some(plain);
        assert_eq!(walk(&events), [ChainFault::Unkeyed { id: events[1].id }]);

        let events = chain_under(2, &key("mine", 9));
        assert_eq!(
            walk(&events)[0],
            ChainFault::UnknownKey {
                id: events[0].id,
                key_id: "mine".into()
            }
        );
        assert!(walk(&events)[0].to_string().contains("'mine'"));
    }

    #[test]
    fn after_a_rotation_old_events_verify_with_the_retired_key() {
        let (old, new) = (key("2025", 1), key("2026", 2));
        // A chain begun under the old key, continued under the new one.
        let mut events = chain_under(2, &old);
        let mut head = ChainHead::after(&events[1]).unwrap();
        for n in 3..=4 {
            let e = link(event(n, events[0].file_id.unwrap()), &head, &new);
            head = ChainHead::after(&e).unwrap();
            events.push(e);
        }
        let both = AuditKeyring::new(Arc::new(key("2026", 2)), [key("2025", 1)]).unwrap();
        assert_eq!(walk_with(&events, &both), []);
        // Without the retired key the old events are named.
        let only_new = AuditKeyring::new(Arc::new(key("2026", 2)), []).unwrap();
        assert_eq!(
            walk_with(&events, &only_new)[0],
            ChainFault::UnknownKey {
                id: events[0].id,
                key_id: "2025".into()
            }
        );
        // A retired key with the current key's id is refused.
        assert_eq!(
            AuditKeyring::new(Arc::new(key("2026", 2)), [key("2026", 1)]).unwrap_err(),
            AuditKeyError::Duplicate("2026".into())
        );
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(
            AuditKey::new("k1", vec![0; 31]).unwrap_err(),
            AuditKeyError::Short(31)
        );
        let long = "x".repeat(33);
        for bad in ["", "a:b", "with space", long.as_str()] {
            assert!(matches!(
                AuditKey::new(bad, vec![0; 32]),
                Err(AuditKeyError::Id(_))
            ));
        }
        assert_eq!(AuditKey::development().id(), DEVELOPMENT_KEY_ID);
        assert!(!format!("{:?}", key("k1", 7)).contains("7, 7"));
    }
}
