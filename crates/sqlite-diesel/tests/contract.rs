//! The metadata contract suite (`storage_test_support::metadata_contract`) against SQLite: one
//! test per case, each on a fresh database file in a temporary directory of its own (created by
//! `open`, directory included).

use std::sync::Arc;

use storage_domain::rules::chain::AuditChain;
use storage_sqlite_diesel::{SqliteConfig, SqliteMetadataStore};
use storage_test_support::metadata_contract::{self as contract, Store};
use tempfile::TempDir;

/// A fresh migrated database and a store on it. The directory must outlive the store.
async fn store() -> (TempDir, Store) {
    store_with(true, AuditChain::default()).await
}

/// [`store`] that queues changes' events for delivery or not (`EVENTS_ENABLED`), with this
/// audit chain setting (`AUDIT_CHAIN`).
async fn store_with(publish_events: bool, chain: AuditChain) -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let file = dir.path().join("data").join("metadata.db");
    let location = format!("sqlite://{}", file.display());
    let config = SqliteConfig {
        publish_events,
        audit_chain: chain,
        ..SqliteConfig::default()
    };
    let store = SqliteMetadataStore::open(&location, config)
        .await
        .unwrap_or_else(|e| panic!("open {location}: {e}"));
    (dir, Arc::new(store))
}

macro_rules! contract_tests {
    ($($case:ident $(($($arg:expr),*))?;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let (_dir, store) = store().await;
            contract::$case(store $($(, $arg)*)?).await;
        }
    )*};
}

contract_tests! {
    first_upload_creates_file_and_version;
    next_versions_are_numbered_in_order;
    list_children_pages_through_files_and_directories;
    lock_race_has_exactly_one_winner(50, 20);
    concurrent_commits_number_without_gap(20);
    concurrent_reviews_have_exactly_one_winner;
    retaken_lock_keeps_the_holders_base;
    approving_an_older_version_keeps_the_latest_status;
    a_file_is_read_with_the_version_a_selector_picks;
    expired_lock_is_free;
    refresh_keeps_acquired_at_and_base_version;
    refused_change_leaves_no_trace;
    upsert_rules;
    restore_records_restored_from;
    trash_moves_a_file_out_of_the_namespace;
    trash_is_listed_newest_first_in_pages;
    restore_from_trash_by_on_conflict;
    purge_removes_the_entry_and_queues_objects;
    a_pin_survives_the_trash;
    pins_are_set_replaced_and_cleared;
    pruning_keeps_the_exceptions;
    concurrent_pruners_never_double_delete(8);
    commit_rules;
    checkout_locks_the_source;
    release_and_list_locks;
    delete_queues_objects_and_keeps_audit;
    reservations_and_janitor;
    concurrent_claimers_never_share;
    archived_file_refuses_writes;
    audit_pages_newest_first;
    pending_reviews_are_listed_oldest_first;
    writes_and_lock_acquisitions_are_ordered(30);
    unlock_of_an_expired_lock_changes_nothing;
    a_stale_checkout_ticket_refuses_the_commit;
    a_current_checkout_ticket_commits;
    a_sealed_completion_completes_the_upload_and_queues_its_staging_object;
    deferred_deletions_wait_for_their_time;
    versions_pages_cover_every_version_once;
    open_uploads_are_capped_per_user;
    repeated_refusals_are_counted_on_one_event;
    changes_are_chained_outbox_events;
    events_are_claimed_in_order_and_settled;
    a_busy_file_is_claimed_in_runs;
    a_failure_releases_the_rest_of_its_run;
    concurrent_claimers_never_share_a_file;
    acknowledged_sinks_are_kept;
    trash_pins_and_prunes_are_chained;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_publish_nothing_when_events_are_off() {
    let (_dir, store) = store_with(false, AuditChain::default()).await;
    contract::changes_publish_nothing_when_events_are_off(store).await;
}

/// The contract's case for a store built with its audit chain off.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_chain_switched_off_writes_unchained_events() {
    let (_dir, store) = store_with(true, AuditChain::Off).await;
    contract::the_chain_switched_off_writes_unchained_events(store).await;
}
