//! Timing assertions: the bound a contract states, plus one stated margin, never a narrow
//! window.
//!
//! A timeout is checked from both sides: the answer comes **not before** the timeout (else it was
//! not the timeout that answered) and **within** the timeout plus [`MARGIN`] (else something
//! waited longer than it may). A promise such as "answered in under 2 s" is checked as
//! "within 2 s plus [`MARGIN`]".
//!
//! [`MARGIN`] covers what the code under test does not control: the scheduler of a loaded
//! 2-core machine (other builds may run beside the suite), a connection set-up, a log line. The
//! tests that use these functions run in the nextest test group `timing`, on their own after
//! the parallel run (`tests/run.sh`, `.config/nextest.toml`, `docs/testing.md`).

use std::time::Duration;

/// What a timing assertion allows above the bound it checks.
pub const MARGIN: Duration = Duration::from_secs(1);

/// Fails a test that asserts timing while running beside the rest under nextest: it must be in
/// the `timing` test group of `.config/nextest.toml` (nextest names a test's group in
/// `NEXTEST_TEST_GROUP`; under `cargo test` there is no group to check).
#[track_caller]
fn assert_in_timing_group() {
    if let Ok(group) = std::env::var("NEXTEST_TEST_GROUP") {
        assert_eq!(
            group, "timing",
            "this test asserts timing but runs in nextest's test group {group:?}: add it to the \
             `timing` group in .config/nextest.toml (docs/testing.md, \"Timing\")"
        );
    }
}

/// Asserts that `took` is within `bound` plus [`MARGIN`].
#[track_caller]
pub fn assert_within(what: &str, took: Duration, bound: Duration) {
    assert_in_timing_group();
    assert!(
        took < bound + MARGIN,
        "{what} took {took:?}: more than its bound of {bound:?} plus the margin of {MARGIN:?}"
    );
}

/// Asserts that `took` is not shorter than `timeout`: the answer came from that timeout (a
/// timer never fires early), not from something quicker.
#[track_caller]
pub fn assert_not_before(what: &str, took: Duration, timeout: Duration) {
    assert_in_timing_group();
    assert!(
        took >= timeout,
        "{what} took {took:?}: answered before its timeout of {timeout:?}, so not by it"
    );
}

/// Both: `took` is in `[timeout, timeout + MARGIN)`.
#[track_caller]
pub fn assert_timed_out(what: &str, took: Duration, timeout: Duration) {
    assert_not_before(what, took, timeout);
    assert_within(what, took, timeout);
}
