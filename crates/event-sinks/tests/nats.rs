//! The NATS JetStream sink against a real server: a `nats-server -js` started for the test
//! when the binary is installed (Debian package `nats-server`), else the one on
//! 127.0.0.1:4222. With neither, the test fails under CI and says so and passes elsewhere.
//!
//! The stream is created when missing; each event goes to `<prefix>.<bucket>.<type>` with
//! `Nats-Msg-Id` = its id, and a retry of the same event is dropped by JetStream's duplicate
//! window (one message stored).

#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::time::Duration;

use storage_domain::model::{
    AuditAction, AuditDraft, AuditId, BucketKind, FileId, FilePath, UserId,
};
use storage_domain::ports::EventSink;
use storage_domain::rules::chain::{AuditChain, ChainHead};
use storage_domain::rules::events::{EventFacts, EventMessage, change_event};
use storage_event_sinks::{NatsConfig, NatsSink};

fn message(id: AuditId) -> EventMessage {
    let event = change_event(
        AuditDraft {
            id,
            actor: UserId::new("alice").unwrap(),
            action: AuditAction::Approve,
            path: FilePath::parse(BucketKind::Projects, "/projects/5678/spec.pdf").unwrap(),
            request_id: "req-1".into(),
            detail: None,
        },
        FileId::from_uuid(uuid::Uuid::now_v7()),
        None,
        chrono::Utc::now(),
        EventFacts::default(),
        serde_json::Map::new(),
        (&AuditChain::default(), &ChainHead::default()),
    );
    EventMessage::of(&event).unwrap()
}

#[tokio::test]
async fn events_reach_jetstream_once_per_id() {
    let Some(server) = storage_test_support::nats::nats_server() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no NATS server: install the Debian package nats-server, or run one with JetStream on 127.0.0.1:4222"
        );
        eprintln!("SKIPPED: no nats-server binary and nothing on 127.0.0.1:4222 (CI is not set)");
        return;
    };
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let config = NatsConfig {
        url: server.url.clone(),
        subject_prefix: format!("test{tag}"),
        stream: format!("TEST_{tag}"),
        timeout: Duration::from_secs(5),
    };
    let sink = NatsSink::connect(&config).await.unwrap();
    // Connecting again finds the stream.
    NatsSink::connect(&config).await.unwrap();

    let first = message(AuditId::from_uuid(uuid::Uuid::now_v7()));
    for _ in 0..3 {
        sink.deliver(&first, &first.body()).await.unwrap();
    }
    let second = message(AuditId::from_uuid(uuid::Uuid::now_v7()));
    sink.deliver(&second, &second.body()).await.unwrap();

    let client = async_nats::connect(&server.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(&config.stream).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(
        info.state.messages, 2,
        "a retry with the same id is stored once"
    );
    let stored = stream.get_raw_message(1).await.unwrap();
    assert_eq!(
        stored.subject.as_str(),
        format!("test{tag}.projects.version.approved")
    );
    assert_eq!(stored.payload.as_ref(), first.body().as_slice());
    let id = stored
        .headers
        .get(async_nats::header::NATS_MESSAGE_ID)
        .map(|v| v.as_str().to_owned());
    assert_eq!(
        id.as_deref(),
        Some(first.id.as_str()),
        "{:?}",
        stored.headers
    );
    js.delete_stream(&config.stream).await.unwrap();
}
