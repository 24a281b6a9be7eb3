//! The real server (`build_server`) on a socket: a proxy upload is streamed, and one over the
//! limit is refused long before the client has sent it.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use storage_domain::model::VersionStatus;
use storage_http_actix::{ServerConfig, build_server};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    support::*,
    transfer::{DATA, DOWNLOAD, download_setup, multipart, multipart_type},
};

const CHUNK: usize = 64 * 1024;

struct Answer {
    status: u16,
    head_and_body: String,
    /// File bytes the client had written when the answer's head arrived.
    written_at_answer: u64,
}

/// Sends a proxy upload of `file_len` bytes (`i % 251` patterns) over a raw socket, streaming
/// the file while reading the answer.
async fn upload(addr: std::net::SocketAddr, file_len: u64) -> Answer {
    let full = multipart(
        &[("bucket", "users"), ("path", "/users/alice/stream.bin")],
        Some((b"@", "application/octet-stream")),
    );
    // Split the form around the one-byte placeholder of the file's content.
    let at = full.iter().position(|b| *b == b'@').unwrap();
    let (preamble, tail) = (full[..at].to_vec(), full[at + 1..].to_vec());
    let length = preamble.len() as u64 + file_len + tail.len() as u64;
    let head = format!(
        "POST /upload/proxy HTTP/1.1\r\nHost: test\r\nAuthorization: {ALICE}\r\n\
         Content-Type: {}\r\nContent-Length: {length}\r\n\r\n",
        multipart_type()
    );
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        wr.write_all(&preamble).await?;
        let mut sent = 0u64;
        let mut buf = vec![0u8; CHUNK];
        while sent < file_len {
            let n = (file_len - sent).min(CHUNK as u64) as usize;
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = ((sent + i as u64) % 251) as u8;
            }
            wr.write_all(&buf[..n]).await?;
            sent += n as u64;
            counter.store(sent, Ordering::SeqCst);
        }
        wr.write_all(&tail).await?;
        Ok::<_, std::io::Error>(())
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut written_at_answer = None;
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if written_at_answer.is_none() && got.windows(4).any(|w| w == b"\r\n\r\n") {
                    written_at_answer = Some(written.load(Ordering::SeqCst));
                }
                let text = String::from_utf8_lossy(&got);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    if length.is_some_and(|l| body.len() >= l) {
                        break;
                    }
                }
            }
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    Answer {
        status,
        head_and_body: text,
        written_at_answer: written_at_answer.unwrap_or(u64::MAX),
    }
}

fn server_config() -> ServerConfig {
    ServerConfig {
        workers: Some(1),
        ..ServerConfig::default()
    }
}

#[actix_web::test]
async fn an_upload_over_the_limit_is_refused_before_the_client_has_sent_it() {
    const LIMIT: u64 = 256 * 1024;
    const SENT: u64 = 256 * 1024 * 1024;
    let mut setup = Setup::new();
    setup.settings.max_upload_bytes = LIMIT;
    setup.meta.expect_find_file().returning(|_| Ok(None));
    setup
        .meta
        .expect_create_reservation()
        .returning(|_, _| Ok(()));
    setup
        .meta
        .expect_abandon_reservation()
        .times(1)
        .returning(|_| Ok(None));
    // ...and its key queued once more, deferred, in case the store finishes the put late.
    setup
        .meta
        .expect_queue_deletions()
        .withf(|objects, not_before| objects.len() == 1 && not_before.is_some())
        .times(1)
        .returning(|_, _| Ok(Vec::new()));
    let blobs = Arc::new(RecordingBlobs::default());
    setup.blobs = blobs.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    let server = build_server(listener, setup.state(), &server_config(), async move {
        let _ = stopped.await;
    })
    .unwrap();
    let running = tokio::spawn(server);

    let answer = upload(addr, SENT).await;
    assert_eq!(answer.status, 413, "{}", answer.head_and_body);
    assert!(answer.head_and_body.contains("payload_too_large"));
    assert!(
        answer
            .head_and_body
            .to_ascii_lowercase()
            .contains("x-request-id: "),
        "{}",
        answer.head_and_body
    );
    eprintln!(
        "413 came after {} of {SENT} bytes written; the store got {}",
        answer.written_at_answer,
        blobs.bytes.load(Ordering::SeqCst)
    );
    // Socket buffers hold a few MiB at most; the service itself holds a few chunks.
    assert!(
        answer.written_at_answer < 32 * 1024 * 1024,
        "the answer came after {} of {SENT} bytes",
        answer.written_at_answer
    );
    assert!(blobs.bytes.load(Ordering::SeqCst) <= LIMIT);

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[actix_web::test]
async fn a_large_upload_flows_through_in_chunks() {
    const SIZE: u64 = 3 * 1024 * 1024;
    let mut setup = Setup::new();
    setup.settings.max_upload_bytes = 4 * 1024 * 1024;
    setup.meta.expect_find_file().returning(|_| Ok(None));
    setup
        .meta
        .expect_create_reservation()
        .returning(|_, _| Ok(()));
    setup
        .meta
        .expect_commit_version()
        .times(1)
        .returning(|cmd| {
            let mut f = file(&cmd.path, 1);
            f.size = cmd.size;
            f.sha256 = cmd.sha256.clone();
            let v = version_of(&f, 1, VersionStatus::Draft);
            Ok((f, v))
        });
    let blobs = Arc::new(RecordingBlobs::default());
    setup.blobs = blobs.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    let server = build_server(listener, setup.state(), &server_config(), async move {
        let _ = stopped.await;
    })
    .unwrap();
    let running = tokio::spawn(server);

    let answer = upload(addr, SIZE).await;
    assert_eq!(answer.status, 200, "{}", answer.head_and_body);
    assert!(answer.head_and_body.contains(&format!("\"size\":{SIZE}")));
    let data = blobs.data.lock().unwrap().clone();
    assert_eq!(data.len() as u64, SIZE);
    assert!(data.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    let chunks = blobs.chunks.load(Ordering::SeqCst);
    assert!(chunks > 10, "the file came in {chunks} chunks");

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[actix_web::test]
async fn a_download_has_its_length_and_range_on_the_wire() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    let server = build_server(
        listener,
        download_setup(2).state(),
        &server_config(),
        async move {
            let _ = stopped.await;
        },
    )
    .unwrap();
    let running = tokio::spawn(server);

    for (range, status, length, body) in [
        ("", 200, "10", DATA),
        ("Range: bytes=3-4\r\n", 206, "2", &DATA[3..=4]),
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET {DOWNLOAD} HTTP/1.1\r\nHost: test\r\nAuthorization: {ALICE}\r\n{range}Connection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, got) = text.split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with(&format!("http/1.1 {status}")), "{head}");
        assert!(
            head.contains(&format!("content-length: {length}\r\n")),
            "{head}"
        );
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert_eq!(got.as_bytes(), body);
    }

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
