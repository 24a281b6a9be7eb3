//! Caps on the proxy transfers streaming through one instance at once, globally and per user.
//!
//! The counts are this process's own (per instance, not shared between instances): they bound
//! what one instance spends on transfers (memory, sockets, database connections at their
//! commits), not what a user may do across a fleet. A transfer holds a [`TransferPermit`] from
//! before its first byte until its last; dropping the permit (transfer done, failed, or its
//! client gone) frees the slot.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use crate::error::StorageError;
use crate::model::UserId;

/// The caps (`MAX_CONCURRENT_UPLOADS`, `MAX_CONCURRENT_UPLOADS_PER_USER`,
/// `MAX_CONCURRENT_DOWNLOADS`, `MAX_CONCURRENT_DOWNLOADS_PER_USER`) and the `Retry-After` of a
/// refusal (`TRANSFER_RETRY_AFTER_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLimits {
    /// Proxy uploads at once on this instance.
    pub uploads: u32,
    /// Proxy uploads at once by one user on this instance.
    pub uploads_per_user: u32,
    /// Proxy downloads at once on this instance.
    pub downloads: u32,
    /// Proxy downloads at once by one user on this instance.
    pub downloads_per_user: u32,
    /// What a refusal tells the client to wait before trying again.
    pub retry_after: Duration,
}

impl Default for TransferLimits {
    fn default() -> Self {
        Self {
            uploads: 12,
            uploads_per_user: 4,
            downloads: 64,
            downloads_per_user: 8,
            retry_after: Duration::from_secs(5),
        }
    }
}

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferKind {
    Upload,
    Download,
}

impl TransferKind {
    fn noun(self) -> &'static str {
        match self {
            TransferKind::Upload => "uploads",
            TransferKind::Download => "downloads",
        }
    }

    fn index(self) -> usize {
        match self {
            TransferKind::Upload => 0,
            TransferKind::Download => 1,
        }
    }
}

/// Why a transfer is refused, if it is: the decision on the counts as they stand, before the
/// new transfer is counted. `None`: admitted.
pub fn transfer_refusal(
    limits: &TransferLimits,
    kind: TransferKind,
    running: u32,
    running_for_user: u32,
) -> Option<String> {
    let (global, per_user) = match kind {
        TransferKind::Upload => (limits.uploads, limits.uploads_per_user),
        TransferKind::Download => (limits.downloads, limits.downloads_per_user),
    };
    let noun = kind.noun();
    let wait = limits.retry_after.as_secs().max(1);
    if running_for_user >= per_user {
        Some(format!(
            "you have {running_for_user} proxy {noun} running on this instance, the most one \
             user may run at once; try again in {wait} s"
        ))
    } else if running >= global {
        Some(format!(
            "this instance is running {running} proxy {noun}, the most it runs at once; try \
             again in {wait} s"
        ))
    } else {
        None
    }
}

#[derive(Debug, Default)]
struct Counts {
    running: [u32; 2],
    by_user: HashMap<UserId, [u32; 2]>,
}

/// The counters of one instance.
#[derive(Debug)]
pub(crate) struct TransferGate {
    limits: TransferLimits,
    counts: Mutex<Counts>,
}

impl TransferGate {
    pub(crate) fn new(limits: TransferLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Counts one more transfer of `user`, or refuses it with `too_many_requests`.
    pub(crate) fn admit(
        self: &Arc<Self>,
        user: &UserId,
        kind: TransferKind,
    ) -> Result<TransferPermit, StorageError> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let i = kind.index();
        let mine = counts.by_user.get(user).map_or(0, |c| c[i]);
        if let Some(detail) = transfer_refusal(&self.limits, kind, counts.running[i], mine) {
            return Err(StorageError::TooManyRequests {
                detail,
                retry_after: self.limits.retry_after,
            });
        }
        counts.running[i] += 1;
        counts.by_user.entry(user.clone()).or_default()[i] += 1;
        Ok(TransferPermit {
            gate: Arc::clone(self),
            user: user.clone(),
            kind,
        })
    }

    fn release(&self, user: &UserId, kind: TransferKind) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let i = kind.index();
        counts.running[i] = counts.running[i].saturating_sub(1);
        if let Some(mine) = counts.by_user.get_mut(user) {
            mine[i] = mine[i].saturating_sub(1);
            if mine.iter().all(|n| *n == 0) {
                counts.by_user.remove(user);
            }
        }
    }

    /// Transfers of `kind` running now (all users).
    #[cfg(test)]
    pub(crate) fn running(&self, kind: TransferKind) -> u32 {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .running[kind.index()]
    }
}

/// One admitted transfer; its slot is freed when the permit is dropped.
#[derive(Debug)]
pub struct TransferPermit {
    gate: Arc<TransferGate>,
    user: UserId,
    kind: TransferKind,
}

impl Drop for TransferPermit {
    fn drop(&mut self) {
        self.gate.release(&self.user, self.kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> TransferLimits {
        TransferLimits {
            uploads: 3,
            uploads_per_user: 2,
            downloads: 1,
            downloads_per_user: 1,
            retry_after: Duration::from_secs(7),
        }
    }

    fn user(id: &str) -> UserId {
        UserId::new(id).unwrap()
    }

    #[test]
    fn the_rule_checks_the_user_then_the_instance() {
        let l = limits();
        assert_eq!(transfer_refusal(&l, TransferKind::Upload, 0, 0), None);
        assert_eq!(transfer_refusal(&l, TransferKind::Upload, 2, 1), None);
        let user_full = transfer_refusal(&l, TransferKind::Upload, 2, 2).unwrap();
        assert!(
            user_full.contains("one user") && user_full.contains("7 s"),
            "{user_full}"
        );
        let instance_full = transfer_refusal(&l, TransferKind::Upload, 3, 0).unwrap();
        assert!(instance_full.contains("this instance"), "{instance_full}");
        assert!(transfer_refusal(&l, TransferKind::Download, 1, 0).is_some());
    }

    #[test]
    fn permits_count_per_user_and_globally_and_free_their_slot_when_dropped() {
        let gate = TransferGate::new(limits());
        let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
        let a1 = gate.admit(&alice, TransferKind::Upload).unwrap();
        let a2 = gate.admit(&alice, TransferKind::Upload).unwrap();
        let refused = gate.admit(&alice, TransferKind::Upload).unwrap_err();
        assert!(matches!(
            refused,
            StorageError::TooManyRequests { retry_after, .. } if retry_after == Duration::from_secs(7)
        ));
        let b1 = gate.admit(&bob, TransferKind::Upload).unwrap();
        // Three running: the instance is full for everyone.
        assert!(gate.admit(&carol, TransferKind::Upload).is_err());
        // Downloads are counted apart.
        let d = gate.admit(&carol, TransferKind::Download).unwrap();
        assert_eq!(gate.running(TransferKind::Upload), 3);
        drop(a1);
        assert_eq!(gate.running(TransferKind::Upload), 2);
        let c1 = gate.admit(&carol, TransferKind::Upload).unwrap();
        drop((a2, b1, c1, d));
        assert_eq!(gate.running(TransferKind::Upload), 0);
        assert_eq!(gate.running(TransferKind::Download), 0);
        assert!(
            gate.counts.lock().unwrap().by_user.is_empty(),
            "no user left counted"
        );
    }
}
