//! The test environment contract: variables `tests/run.sh` exports.

/// The value of `name`; panics with a message pointing to `tests/run.sh` when unset or empty.
pub fn require(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{name} is not set: run the tests through tests/run.sh, which starts the test \
             services (PostgreSQL, Garage) and exports the TEST_* variables"
        ),
    }
}
