//! Checkpoints of the audit chains (issue 17): an anchor kept outside the database, so that the
//! removal of a chain's last events, or of a whole chain, is seen (a keyed chain alone cannot
//! show it: nothing after the removed events points at them).
//!
//! A checkpoint is JSON Lines, written and read one line at a time (a million chains need no
//! more memory than one):
//!
//! ```text
//! {"checkpoint":"storage-audit-checkpoint/1","time":"…","bucket":null,"key_id":"k1"}
//! {"file_id":"…","seq":12,"hash":"k1:…"}          one line per chain, by file id
//! {"mac":"k1:…"}
//! ```
//!
//! `mac` is the HMAC-SHA256, under the audit key `key_id` names, of every line before it as
//! written (each followed by `\n`): the checkpoint cannot be edited (a head lowered to hide a
//! removal, a chain left out) without the key. [`CheckpointMatcher`] compares the chains, as
//! `audit verify` walks them, with a checkpoint's heads.

use std::iter::Peekable;

use serde::{Deserialize, Serialize};

use crate::model::{AuditEvent, FileId};
use crate::rules::chain::{AuditKey, AuditKeyring, ChainFault, StreamMac};

/// The first field of a checkpoint, naming its format.
pub const CHECKPOINT_FORMAT: &str = "storage-audit-checkpoint/1";

/// A checkpoint's first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointHeader {
    /// [`CHECKPOINT_FORMAT`].
    pub checkpoint: String,
    /// When it was taken (RFC 3339, UTC).
    pub time: String,
    /// The bucket whose chains it holds (`None`: every bucket).
    pub bucket: Option<String>,
    /// The key of its MAC.
    pub key_id: String,
}

/// One chain's head in a checkpoint: its last event's position and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointHead {
    pub file_id: FileId,
    pub seq: u64,
    pub hash: String,
}

/// A checkpoint's last line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSeal {
    pub mac: String,
}

/// Why a checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("line {0} of the checkpoint is not a checkpoint line")]
    Malformed(usize),
    #[error("the checkpoint is not in the format {CHECKPOINT_FORMAT}")]
    Format,
    #[error("the checkpoint ends without its MAC line (cut short?)")]
    Unsealed,
    #[error("the checkpoint's chains are not in file id order (line {0})")]
    Order(usize),
    #[error(
        "the checkpoint's MAC is under key id '{0}', which is neither AUDIT_KEY_ID nor one of AUDIT_RETIRED_KEYS"
    )]
    UnknownKey(String),
    #[error("the checkpoint's MAC does not match: it was altered, or made under another key")]
    Mac,
}

/// Writes a checkpoint line by line, computing its MAC.
#[derive(Debug)]
pub struct CheckpointWriter {
    mac: StreamMac,
    /// Chains written.
    pub chains: u64,
}

impl CheckpointWriter {
    /// Starts a checkpoint under `key`; returns the writer and the header line.
    pub fn start(key: &AuditKey, time: String, bucket: Option<String>) -> (Self, String) {
        let header = CheckpointHeader {
            checkpoint: CHECKPOINT_FORMAT.to_owned(),
            time,
            bucket,
            key_id: key.id().to_owned(),
        };
        let mut writer = Self {
            mac: key.streaming(),
            chains: 0,
        };
        let line = writer.line(&header);
        (writer, line)
    }

    fn line<T: Serialize>(&mut self, value: &T) -> String {
        let line = serde_json::to_string(value).unwrap_or_default();
        self.mac.update(line.as_bytes());
        self.mac.update(b"\n");
        line
    }

    /// The line of one chain's head (chains in file id order).
    pub fn head(&mut self, head: &CheckpointHead) -> String {
        self.chains += 1;
        self.line(head)
    }

    /// The last line: the MAC of every line before it.
    pub fn finish(self) -> String {
        let seal = CheckpointSeal {
            mac: self.mac.finish(),
        };
        serde_json::to_string(&seal).unwrap_or_default()
    }
}

/// What a checkpoint holds, once its MAC checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCheckpoint {
    pub header: CheckpointHeader,
    pub chains: u64,
}

/// Reads a whole checkpoint (line by line) and checks its format, order and MAC under `keys`.
///
/// # Errors
/// [`CheckpointError`]: the checkpoint must not be used.
pub fn check_checkpoint(
    lines: impl Iterator<Item = String>,
    keys: &AuditKeyring,
) -> Result<CheckedCheckpoint, CheckpointError> {
    let mut lines = lines.enumerate().map(|(i, l)| (i + 1, l));
    let (_, first) = lines.next().ok_or(CheckpointError::Unsealed)?;
    let header: CheckpointHeader =
        serde_json::from_str(&first).map_err(|_| CheckpointError::Malformed(1))?;
    if header.checkpoint != CHECKPOINT_FORMAT {
        return Err(CheckpointError::Format);
    }
    let key = keys
        .get(&header.key_id)
        .ok_or_else(|| CheckpointError::UnknownKey(header.key_id.clone()))?;
    let mut mac = key.streaming();
    let canonical = |mac: &mut StreamMac, line: String| {
        mac.update(line.as_bytes());
        mac.update(b"\n");
    };
    canonical(&mut mac, serde_json::to_string(&header).unwrap_or_default());
    let mut chains = 0;
    let mut last: Option<FileId> = None;
    for (n, line) in lines {
        if let Ok(head) = serde_json::from_str::<CheckpointHead>(&line) {
            if last.is_some_and(|l| l >= head.file_id) {
                return Err(CheckpointError::Order(n));
            }
            last = Some(head.file_id);
            chains += 1;
            canonical(&mut mac, serde_json::to_string(&head).unwrap_or_default());
            continue;
        }
        let seal: CheckpointSeal =
            serde_json::from_str(&line).map_err(|_| CheckpointError::Malformed(n))?;
        let Some((id, tag)) = seal.mac.split_once(':') else {
            return Err(CheckpointError::Mac);
        };
        if id != header.key_id || !mac.verifies(tag) {
            return Err(CheckpointError::Mac);
        }
        return Ok(CheckedCheckpoint { header, chains });
    }
    Err(CheckpointError::Unsealed)
}

/// The heads of a checkpoint already checked ([`check_checkpoint`]), read again line by line.
pub fn checkpoint_heads(
    lines: impl Iterator<Item = String>,
) -> impl Iterator<Item = CheckpointHead> {
    lines
        .skip(1)
        .map_while(|line| serde_json::from_str::<CheckpointHead>(&line).ok())
}

/// Compares the chains, as the verifier walks them (by file id, then `seq`), with a
/// checkpoint's heads (by file id): a checkpointed chain that is gone, one that now ends
/// before its checkpointed head, and a checkpointed head whose event changed. A chain that
/// lost its checkpointed event in the middle (a gap) is the chain walk's own fault.
#[derive(Debug)]
pub struct CheckpointMatcher<I: Iterator<Item = CheckpointHead>> {
    heads: Peekable<I>,
    /// The chain being walked: its file, last `seq` seen, its checkpointed head (if any) and
    /// whether that head was met.
    current: Option<(FileId, u64, Option<CheckpointHead>, bool)>,
    /// Checkpointed chains compared.
    pub compared: u64,
}

impl<I: Iterator<Item = CheckpointHead>> CheckpointMatcher<I> {
    pub fn new(heads: I) -> Self {
        Self {
            heads: heads.peekable(),
            current: None,
            compared: 0,
        }
    }

    /// The next chained event of the walk; the faults it reveals.
    pub fn observe(&mut self, e: &AuditEvent) -> Vec<ChainFault> {
        let mut faults = Vec::new();
        let (Some(file_id), Some(seq)) = (e.file_id, e.seq) else {
            return faults;
        };
        if self.current.as_ref().is_none_or(|c| c.0 != file_id) {
            self.close(&mut faults);
            // Checkpointed chains before this one were not walked: gone.
            while let Some(head) = self.heads.next_if(|h| h.file_id < file_id) {
                self.compared += 1;
                faults.push(ChainFault::ChainGone {
                    file_id: head.file_id,
                    seq: head.seq,
                });
            }
            let head = self.heads.next_if(|h| h.file_id == file_id);
            self.compared += u64::from(head.is_some());
            self.current = Some((file_id, 0, head, false));
        }
        if let Some((_, last, head, met)) = &mut self.current {
            *last = seq;
            if let Some(h) = head
                && h.seq == seq
            {
                *met = true;
                if e.hash.as_deref() != Some(h.hash.as_str()) {
                    faults.push(ChainFault::HeadChanged {
                        id: e.id,
                        file_id,
                        seq,
                    });
                }
            }
        }
        faults
    }

    /// The chain being walked ended.
    fn close(&mut self, faults: &mut Vec<ChainFault>) {
        if let Some((file_id, last, Some(head), false)) = self.current.take()
            && last < head.seq
        {
            faults.push(ChainFault::TailRemoved {
                file_id,
                from: last + 1,
                to: head.seq,
            });
        }
    }

    /// The walk ended: the last chain, and every checkpointed chain not walked.
    pub fn finish(&mut self) -> Vec<ChainFault> {
        let mut faults = Vec::new();
        self.close(&mut faults);
        for head in self.heads.by_ref() {
            self.compared += 1;
            faults.push(ChainFault::ChainGone {
                file_id: head.file_id,
                seq: head.seq,
            });
        }
        faults
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::model::{AuditAction, AuditDraft, AuditId, AuditOutcome, FilePath, UserId};
    use crate::rules::chain::{ChainHead, link};

    fn key(byte: u8) -> AuditKey {
        AuditKey::new("k1", vec![byte; 32]).unwrap()
    }

    fn keys() -> AuditKeyring {
        AuditKeyring::new(Arc::new(key(1)), []).unwrap()
    }

    /// Chains of these lengths, on files in id order.
    fn chains(lens: &[u64]) -> Vec<Vec<AuditEvent>> {
        let mut files: Vec<FileId> = lens
            .iter()
            .map(|_| FileId::from_uuid(uuid::Uuid::new_v4()))
            .collect();
        files.sort();
        files
            .iter()
            .zip(lens)
            .map(|(file, len)| {
                let mut head = ChainHead::default();
                (1..=*len)
                    .map(|n| {
                        let e = AuditDraft {
                            id: AuditId::from_uuid(uuid::Uuid::now_v7()),
                            actor: UserId::new("alice").unwrap(),
                            action: AuditAction::Upload,
                            path: FilePath::parse(
                                crate::model::BucketKind::Users,
                                "/users/alice/a.txt",
                            )
                            .unwrap(),
                            request_id: format!("r{n}"),
                            detail: None,
                        }
                        .complete(
                            Some(*file),
                            None,
                            AuditOutcome::Success,
                            Utc::now(),
                        );
                        let e = link(e, &head, &key(1));
                        head = ChainHead::after(&e).unwrap();
                        e
                    })
                    .collect()
            })
            .collect()
    }

    fn take(chains: &[Vec<AuditEvent>], k: &AuditKey) -> Vec<String> {
        let (mut w, header) = CheckpointWriter::start(k, "2026-12-07T00:00:00Z".into(), None);
        let mut lines = vec![header];
        for c in chains {
            let last = c.last().unwrap();
            lines.push(w.head(&CheckpointHead {
                file_id: last.file_id.unwrap(),
                seq: last.seq.unwrap(),
                hash: last.hash.clone().unwrap(),
            }));
        }
        lines.push(w.finish());
        lines
    }

    fn compare(lines: &[String], walked: &[Vec<AuditEvent>]) -> Vec<ChainFault> {
        check_checkpoint(lines.iter().cloned(), &keys()).unwrap();
        let mut m = CheckpointMatcher::new(checkpoint_heads(lines.iter().cloned()));
        let mut faults: Vec<ChainFault> =
            walked.iter().flatten().flat_map(|e| m.observe(e)).collect();
        faults.extend(m.finish());
        faults
    }

    #[test]
    fn an_intact_or_grown_trail_matches_its_checkpoint() {
        let mut c = chains(&[3, 2, 4]);
        let lines = take(&c, &key(1));
        assert_eq!(lines.len(), 5);
        assert_eq!(
            check_checkpoint(lines.iter().cloned(), &keys())
                .unwrap()
                .chains,
            3
        );
        assert_eq!(compare(&lines, &c), []);
        // Grown since (and a new chain): still fine.
        let more = chains(&[2]);
        c.extend(more);
        c.sort_by_key(|ch| ch[0].file_id);
        assert_eq!(compare(&lines, &c), []);
    }

    #[test]
    fn removed_tails_chains_and_changed_heads_are_named() {
        let c = chains(&[3, 2, 4]);
        let lines = take(&c, &key(1));
        // The first chain's last event removed; the second chain gone; the third's head
        // replaced by another event (its hash differs).
        let mut walked = c.clone();
        walked[0].pop();
        let gone = walked.remove(1);
        let mut changed = walked[1][3].clone();
        changed.hash = Some("k1:00".into());
        walked[1][3] = changed.clone();
        let faults = compare(&lines, &walked);
        assert_eq!(
            faults,
            [
                ChainFault::TailRemoved {
                    file_id: c[0][0].file_id.unwrap(),
                    from: 3,
                    to: 3
                },
                ChainFault::ChainGone {
                    file_id: gone[0].file_id.unwrap(),
                    seq: 2
                },
                ChainFault::HeadChanged {
                    id: changed.id,
                    file_id: changed.file_id.unwrap(),
                    seq: 4
                },
            ]
        );
        // The last chain gone, and everything gone.
        let faults = compare(&lines, &c[..2]);
        assert!(matches!(faults[..], [ChainFault::ChainGone { seq: 4, .. }]));
        assert_eq!(compare(&lines, &[]).len(), 3);
    }

    #[test]
    fn a_tampered_checkpoint_is_refused() {
        let c = chains(&[3, 2]);
        let lines = take(&c, &key(1));
        // A head lowered (to hide a removal).
        let mut lowered = lines.clone();
        lowered[1] = lowered[1].replace("\"seq\":3", "\"seq\":2");
        assert_eq!(
            check_checkpoint(lowered.into_iter(), &keys()),
            Err(CheckpointError::Mac)
        );
        // A chain left out.
        let mut dropped = lines.clone();
        dropped.remove(2);
        assert_eq!(
            check_checkpoint(dropped.into_iter(), &keys()),
            Err(CheckpointError::Mac)
        );
        // Cut short, or resealed under another key with the same id.
        assert_eq!(
            check_checkpoint(lines[..2].iter().cloned(), &keys()),
            Err(CheckpointError::Unsealed)
        );
        let forged = take(&c, &key(9));
        assert_eq!(
            check_checkpoint(forged.into_iter(), &keys()),
            Err(CheckpointError::Mac)
        );
        let mut junk = lines.clone();
        junk[1] = "{\"file_id\": 3}".into();
        assert_eq!(
            check_checkpoint(junk.into_iter(), &keys()),
            Err(CheckpointError::Malformed(2))
        );
    }
}
