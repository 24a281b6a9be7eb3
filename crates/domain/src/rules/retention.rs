//! Pinned versions and version retention (issue 16): the label rule, the pin rule a store applies
//! under the file's row lock, and the keep/prune decision the janitor's unit of work applies to
//! one file's versions, as pure functions.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration as Days, Utc};

use crate::error::StorageError;
use crate::model::{BucketKind, FileRecord, VersionNumber, VersionStatus};
use crate::ports::RepoError;

use super::store::check_set_tags;

/// The longest pin label, in characters (Unicode scalar values).
pub const MAX_PIN_LABEL_CHARS: usize = 128;

/// Checks a pin label: trimmed, 1 to [`MAX_PIN_LABEL_CHARS`] characters, no control character
/// at all (not even a line feed: a label is one line).
///
/// # Errors
/// [`StorageError::InvalidRequest`].
pub fn check_pin_label(raw: Option<&str>) -> Result<String, StorageError> {
    let label = raw.map(str::trim).unwrap_or_default();
    if label.is_empty()
        || label.chars().count() > MAX_PIN_LABEL_CHARS
        || label.chars().any(char::is_control)
    {
        return Err(StorageError::invalid(format!(
            "label must be 1 to {MAX_PIN_LABEL_CHARS} characters without control characters"
        )));
    }
    Ok(label.to_owned())
}

/// Pinning or unpinning a version of `file` by `actor`: as a change of the file's tags, refused
/// while another user holds a live lock and while the file is archived (a pin is metadata of
/// the file's history, and an archived file's metadata is frozen).
///
/// # Errors
/// [`RepoError::FileLocked`], [`RepoError::InvalidTransition`].
pub fn check_set_pin(file: &FileRecord, actor: &crate::model::UserId) -> Result<(), RepoError> {
    check_set_tags(file, actor)
}

/// One retention rule: keep the last `keep_last` versions, and those younger than `keep_days`.
/// An unset part keeps nothing by itself; with both unset the rule keeps every version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionRule {
    /// `VERSION_KEEP_LAST`: the newest versions kept, by number.
    pub keep_last: Option<u32>,
    /// `VERSION_KEEP_DAYS`: versions created less than this many days ago are kept.
    pub keep_days: Option<u32>,
}

impl RetentionRule {
    /// The rule prunes nothing (both parts unset).
    pub const fn keeps_all(self) -> bool {
        self.keep_last.is_none() && self.keep_days.is_none()
    }

    /// The fewest versions a file must have before this rule may prune any: with a count, more
    /// than that count; otherwise more than the latest alone. A coarse filter for choosing
    /// files to look at, not the decision ([`versions_to_prune`] is).
    pub fn prunable_above(self) -> u32 {
        self.keep_last.unwrap_or(1).max(1)
    }
}

impl std::fmt::Display for RetentionRule {
    /// As the `prune` audit events' detail: `keep_last=3 keep_days=unset`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |v: Option<u32>| v.map_or_else(|| "unset".to_owned(), |v| v.to_string());
        write!(
            f,
            "keep_last={} keep_days={}",
            part(self.keep_last),
            part(self.keep_days)
        )
    }
}

/// The retention settings: a rule for every bucket, and a rule per bucket overriding each part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `VERSION_KEEP_LAST`, `VERSION_KEEP_DAYS`.
    pub default: RetentionRule,
    /// `VERSION_KEEP_LAST_USERS`, `VERSION_KEEP_DAYS_USERS`, …, in [`BucketKind::ALL`]'s order;
    /// each part set here replaces the default's part for that bucket.
    pub buckets: [RetentionRule; 3],
}

impl RetentionPolicy {
    /// The rule of `bucket`: each part from the bucket's setting, else from the default.
    pub fn rule_for(&self, bucket: BucketKind) -> RetentionRule {
        let i = BucketKind::ALL
            .iter()
            .position(|b| *b == bucket)
            .unwrap_or_default();
        let own = self.buckets.get(i).copied().unwrap_or_default();
        RetentionRule {
            keep_last: own.keep_last.or(self.default.keep_last),
            keep_days: own.keep_days.or(self.default.keep_days),
        }
    }
}

/// What the retention decision needs of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionFacts {
    pub number: VersionNumber,
    pub created_at: DateTime<Utc>,
    pub status: VersionStatus,
    pub pinned: bool,
}

/// The versions of `file` that `rule` prunes at `now`, ascending. A version is kept when either
/// part of the rule keeps it (among the `keep_last` highest numbers of `versions`, or created
/// less than `keep_days` days before `now`), and always when it is the latest, the validated
/// one, `pending_validation`, pinned, or named as its base by a checkout ticket
/// (`ticket_bases`). A rule that keeps all prunes nothing.
pub fn versions_to_prune(
    rule: RetentionRule,
    file: &FileRecord,
    versions: &[VersionFacts],
    ticket_bases: &[VersionNumber],
    now: DateTime<Utc>,
) -> Vec<VersionNumber> {
    if rule.keeps_all() {
        return Vec::new();
    }
    let mut numbers: Vec<VersionNumber> = versions.iter().map(|v| v.number).collect();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    let newest: BTreeSet<VersionNumber> = rule
        .keep_last
        .map(|n| numbers.iter().copied().take(n as usize).collect())
        .unwrap_or_default();
    let cutoff = rule
        .keep_days
        .and_then(|d| now.checked_sub_signed(Days::days(i64::from(d))));
    let mut pruned: Vec<VersionNumber> = versions
        .iter()
        .filter(|v| {
            let kept_by_count = newest.contains(&v.number);
            let kept_by_age = cutoff.is_some_and(|c| v.created_at > c)
                // A cutoff before the first representable instant keeps everything.
                || (rule.keep_days.is_some() && cutoff.is_none());
            let exempt = v.number == file.version
                || Some(v.number) == file.validated_version
                || v.status == VersionStatus::PendingValidation
                || v.pinned
                || ticket_bases.contains(&v.number);
            !(kept_by_count || kept_by_age || exempt)
        })
        .map(|v| v.number)
        .collect();
    pruned.sort_unstable();
    pruned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BucketKind::*, FilePath};
    use crate::service::test_support::file;

    fn n(v: u32) -> VersionNumber {
        VersionNumber::new(v).unwrap()
    }

    fn facts(now: DateTime<Utc>, count: u32) -> Vec<VersionFacts> {
        (1..=count)
            .map(|i| VersionFacts {
                number: n(i),
                // Version i was created (count - i) days ago.
                created_at: now - Days::days(i64::from(count - i)),
                status: VersionStatus::Draft,
                pinned: false,
            })
            .collect()
    }

    fn fixture(latest: u32) -> FileRecord {
        file(
            &FilePath::parse(Users, "/users/bob/plan.txt").unwrap(),
            latest,
        )
    }

    fn nums(v: &[u32]) -> Vec<VersionNumber> {
        v.iter().copied().map(n).collect()
    }

    #[test]
    fn keep_last_prunes_the_older_ones_but_every_exception() {
        let now = Utc::now();
        let mut f = fixture(8);
        f.validated_version = Some(n(2));
        let mut v = facts(now, 8);
        v[0].pinned = true; // 1
        v[2].status = VersionStatus::PendingValidation; // 3
        let rule = RetentionRule {
            keep_last: Some(3),
            keep_days: None,
        };
        // 4 is a ticket's base; 6, 7, 8 are the last three.
        assert_eq!(versions_to_prune(rule, &f, &v, &[n(4)], now), nums(&[5]));
        assert_eq!(versions_to_prune(rule, &f, &v, &[], now), nums(&[4, 5]));
    }

    #[test]
    fn a_version_is_kept_when_either_rule_keeps_it() {
        let now = Utc::now();
        let f = fixture(6);
        let v = facts(now, 6); // ages 5, 4, 3, 2, 1, 0 days
        let both = RetentionRule {
            keep_last: Some(2),
            keep_days: Some(4),
        };
        // 5 and 6 by count; 3, 4, 5, 6 by age (younger than 4 days): 1 and 2 go.
        assert_eq!(versions_to_prune(both, &f, &v, &[], now), nums(&[1, 2]));
        let days_only = RetentionRule {
            keep_last: None,
            keep_days: Some(2),
        };
        assert_eq!(
            versions_to_prune(days_only, &f, &v, &[], now),
            nums(&[1, 2, 3, 4])
        );
    }

    #[test]
    fn gaps_count_the_versions_that_exist() {
        let now = Utc::now();
        let f = fixture(9);
        let v: Vec<_> = facts(now, 9)
            .into_iter()
            .filter(|v| ![3, 4, 7].contains(&v.number.get()))
            .collect();
        let rule = RetentionRule {
            keep_last: Some(3),
            keep_days: None,
        };
        // Existing: 1 2 5 6 8 9; the last three are 6, 8, 9.
        assert_eq!(versions_to_prune(rule, &f, &v, &[], now), nums(&[1, 2, 5]));
    }

    #[test]
    fn an_unset_rule_keeps_everything() {
        let now = Utc::now();
        let f = fixture(5);
        let v = facts(now, 5);
        assert!(versions_to_prune(RetentionRule::default(), &f, &v, &[], now).is_empty());
        let many = RetentionRule {
            keep_last: Some(50),
            keep_days: None,
        };
        assert!(versions_to_prune(many, &f, &v, &[], now).is_empty());
    }

    #[test]
    fn a_bucket_setting_replaces_each_part_of_the_default() {
        let policy = RetentionPolicy {
            default: RetentionRule {
                keep_last: Some(10),
                keep_days: Some(30),
            },
            buckets: [
                RetentionRule::default(),
                RetentionRule {
                    keep_last: Some(2),
                    keep_days: None,
                },
                RetentionRule {
                    keep_last: None,
                    keep_days: Some(7),
                },
            ],
        };
        assert_eq!(policy.rule_for(Users), policy.default);
        assert_eq!(
            policy.rule_for(Companies),
            RetentionRule {
                keep_last: Some(2),
                keep_days: Some(30)
            }
        );
        assert_eq!(
            policy.rule_for(Projects),
            RetentionRule {
                keep_last: Some(10),
                keep_days: Some(7)
            }
        );
    }

    #[test]
    fn labels() {
        assert_eq!(
            check_pin_label(Some("  release 1.0 ")).unwrap(),
            "release 1.0"
        );
        for bad in [None, Some(""), Some("   "), Some("a\nb"), Some("a\u{7}")] {
            assert!(check_pin_label(bad).is_err(), "{bad:?}");
        }
        assert!(check_pin_label(Some(&"é".repeat(MAX_PIN_LABEL_CHARS + 1))).is_err());
        assert!(check_pin_label(Some(&"é".repeat(MAX_PIN_LABEL_CHARS))).is_ok());
    }
}
