//! A NATS server with JetStream for the events tests: `nats-server -js` on a free port of
//! 127.0.0.1 when the binary is installed (Debian package `nats-server`), else the one on
//! 127.0.0.1:4222, if any.

#![expect(clippy::unwrap_used, reason = "test tool: a failure is a failed test")]

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A NATS server for the test: its URL, and the process when this test started it.
#[derive(Debug)]
pub struct NatsServer {
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    child: Option<Child>,
    _dir: Option<std::path::PathBuf>,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self._dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn reachable(addr: &str) -> bool {
    addr.parse()
        .ok()
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

/// A JetStream server: one started for the caller, else the one on 127.0.0.1:4222, else
/// `None` (the caller fails under `CI`, and says it skipped elsewhere).
///
/// # Panics
/// When a started server does not listen.
pub fn nats_server() -> Option<NatsServer> {
    let binary = [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists());
    if let Some(binary) = binary {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("nats-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..100 {
            if reachable(&addr) {
                return Some(NatsServer {
                    url: format!("nats://{addr}"),
                    child: Some(child),
                    _dir: Some(dir),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("nats-server {binary} did not listen on {addr}");
    }
    reachable("127.0.0.1:4222").then(|| NatsServer {
        url: "nats://127.0.0.1:4222".into(),
        child: None,
        _dir: None,
    })
}
