//! Two instances of the real binary on one database and one Garage: locks and version numbers
//! are decided by the database, so every rule holds across them.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::json;
use storage_test_support::project_standin::{ANY_USER, ProjectStandin};

use super::{Api, Binary, binary_vars, shared_database};

const CONTENDERS: usize = 50;
const ROUNDS: usize = 20;
const UPLOADS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_lock_winner_and_versions_without_gap_or_duplicate() {
    let db = shared_database().await;
    let standin = ProjectStandin::start().await;
    for action in ["read", "write", "lock"] {
        standin.allow(ANY_USER, "race", action);
    }
    // The uploads below all run at once: caps above their number (this test is about numbering).
    let vars = binary_vars(
        db.url(),
        &standin.url(),
        &[
            ("DB_POOL_MAX_SIZE", "8"),
            ("MAX_CONCURRENT_UPLOADS", "64"),
            ("MAX_CONCURRENT_UPLOADS_PER_USER", "64"),
        ],
    );
    let first = Binary::start(&vars);
    let second = Binary::start(&vars);
    let apis = [first.api.clone(), second.api.clone()];
    let doc = "/projects/race/doc.txt";
    let up = apis[0].upload("u0", "projects", doc, b"doc".to_vec()).await;
    assert_eq!(up.status, StatusCode::OK, "{:?}", up.body);

    for round in 0..ROUNDS {
        let contenders: Vec<_> = (0..CONTENDERS)
            .map(|i| {
                let api: Api = apis[i % 2].clone();
                tokio::spawn(async move {
                    let user = format!("u{i}");
                    let answer = api
                        .post(&user, "/lock", &json!({"bucket": "projects", "path": doc}))
                        .await;
                    (user, answer)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for contender in contenders {
            let (user, answer) = contender.await.expect("task");
            match answer.status {
                StatusCode::OK => winners.push(user),
                StatusCode::CONFLICT => assert_eq!(answer.code(), "file_locked"),
                other => panic!("round {round}: lock answered {other}: {:?}", answer.body),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let winner = &winners[0];
        // Each instance sees the winner's lock.
        for api in &apis {
            let meta = api.metadata(winner, "projects", doc).await;
            assert_eq!(meta.body["file"]["lock"]["holder"], winner.as_str());
        }
        // Released through the other instance than the one that (maybe) granted it.
        let index: usize = winner[1..].parse().expect("user number");
        let unlock = apis[(index + 1) % 2]
            .post(
                winner,
                "/unlock",
                &json!({"bucket": "projects", "path": doc}),
            )
            .await;
        assert_eq!(unlock.status, StatusCode::OK, "{:?}", unlock.body);
    }

    // Concurrent uploads to one file across both instances: each gets its own number, and the
    // history is 1..=n with no gap and no duplicate.
    let spec = "/projects/race/spec.txt";
    let up = apis[1].upload("u1", "projects", spec, b"v1".to_vec()).await;
    assert_eq!(up.status, StatusCode::OK, "{:?}", up.body);
    let uploads: Vec<_> = (0..UPLOADS)
        .map(|i| {
            let api = apis[i % 2].clone();
            tokio::spawn(async move {
                api.upload(
                    &format!("u{i}"),
                    "projects",
                    spec,
                    format!("body {i}").into_bytes(),
                )
                .await
            })
        })
        .collect();
    let mut numbers = BTreeSet::new();
    for upload in uploads {
        let answer = upload.await.expect("task");
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        let number = answer.body["version"]["number"]
            .as_u64()
            .expect("a version number");
        assert!(numbers.insert(number), "version {number} given twice");
    }
    let expected: BTreeSet<u64> = (2..=UPLOADS as u64 + 1).collect();
    assert_eq!(numbers, expected);
    let history = apis[0]
        .get("u0", "/versions", &[("bucket", "projects"), ("path", spec)])
        .await;
    assert_eq!(history.status, StatusCode::OK, "{:?}", history.body);
    let listed: Vec<u64> = history.body["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["number"].as_u64().expect("number"))
        .collect();
    let all: Vec<u64> = (1..=UPLOADS as u64 + 1).rev().collect();
    assert_eq!(listed, all, "history newest first, no gap, no duplicate");
    assert_eq!(
        history.body["file"]["version"].as_u64(),
        Some(UPLOADS as u64 + 1)
    );
}
