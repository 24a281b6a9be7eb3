//! The adapter-level blob benchmark (no service in the way).
//!
//! `storage-bench blob [--size-mib N]` (default 1024): against the Garage named by the
//! `TEST_S3_*` variables, streams an N MiB put and get through the S3 adapter
//! (`storage-s3-minio`), then the same transfer done directly (one presigned `PUT` and one
//! `GET` with reqwest, bodies streamed), and prints MB/s (10^6 bytes/s) for both, their ratio,
//! and each path's peak RSS.
//!
//! Each path runs in a child process of its own (`blob-adapter`, `blob-direct`), one after the
//! other, so that `VmHWM` (the peak resident set, read from `/proc/self/status` at the end of
//! the child) counts that path's buffers only. Bodies are generated on the fly: 1 MiB chunks of
//! a random block drawn per process, each stamped with its index, so that no two chunks are
//! equal (Garage deduplicates identical blocks) and no large buffer is held.

use std::{
    io,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use rand::RngCore;
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{BlobStore, ByteStream, PresignGetOptions},
};
use storage_test_support::s3::s3_store_from_env;

pub const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub enum Path {
    Adapter,
    Direct,
}

/// Figures one child reports, on one line: `RESULT put_s=… get_s=… hwm_kib=… base_kib=…`.
#[derive(Debug)]
struct Figures {
    put: Duration,
    get: Duration,
    hwm_kib: u64,
    base_kib: u64,
}

impl Figures {
    fn line(&self) -> String {
        format!(
            "RESULT put_s={} get_s={} hwm_kib={} base_kib={}",
            self.put.as_secs_f64(),
            self.get.as_secs_f64(),
            self.hwm_kib,
            self.base_kib
        )
    }

    fn parse(output: &str) -> anyhow::Result<Self> {
        let line = output
            .lines()
            .find(|l| l.starts_with("RESULT "))
            .ok_or_else(|| anyhow!("no RESULT line in: {output}"))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| anyhow!("no {name} in {line}"))?
                .parse::<f64>()
                .with_context(|| format!("bad {name} in {line}"))
        };
        Ok(Self {
            put: Duration::from_secs_f64(field("put_s")?),
            get: Duration::from_secs_f64(field("get_s")?),
            hwm_kib: field("hwm_kib")? as u64,
            base_kib: field("base_kib")? as u64,
        })
    }
}

/// Runs both paths in child processes and prints the comparison.
pub fn blob(size_mib: u64) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the bench binary")?;
    let run = |mode: &str| -> anyhow::Result<Figures> {
        let out = Command::new(&exe)
            .args([mode, "--size-mib", &size_mib.to_string()])
            .output()
            .with_context(|| format!("cannot run {mode}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "{mode} failed: {}\n{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Figures::parse(&text)
    };
    println!(
        "blob benchmark: {size_mib} MiB, one put then one get per path, each path in its own process"
    );
    let adapter = run("blob-adapter")?;
    let direct = run("blob-direct")?;

    let bytes = (size_mib * MIB) as f64;
    let mbps = |d: Duration| bytes / d.as_secs_f64() / 1e6;
    println!();
    println!("path     put MB/s  get MB/s  peak RSS (VmHWM)  RSS before transfer");
    for (name, f) in [("adapter", &adapter), ("direct", &direct)] {
        println!(
            "{name:<8} {:>8.1}  {:>8.1}  {:>11.1} MiB  {:>14.1} MiB",
            mbps(f.put),
            mbps(f.get),
            f.hwm_kib as f64 / 1024.0,
            f.base_kib as f64 / 1024.0,
        );
    }
    println!();
    println!(
        "adapter/direct throughput: put {:.2}, get {:.2}",
        mbps(adapter.put) / mbps(direct.put),
        mbps(adapter.get) / mbps(direct.get)
    );
    println!(
        "adapter peak RSS: {:.1} MiB ({:.1} MiB above its start-up)",
        adapter.hwm_kib as f64 / 1024.0,
        adapter.hwm_kib.saturating_sub(adapter.base_kib) as f64 / 1024.0
    );
    Ok(())
}

/// One path, in this (child) process: put, get, delete, then the figures on stdout.
pub fn child(size_mib: u64, path: Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let figures = runtime.block_on(async move {
        let store: Arc<dyn BlobStore> = s3_store_from_env().await;
        let key = ObjectKey::from_stored(format!("bench/{}", uuid::Uuid::new_v4().as_simple()));
        let size = size_mib * MIB;
        let base_kib = vm_hwm_kib()?;
        let result = match path {
            Path::Adapter => adapter_run(&*store, &key, size).await,
            Path::Direct => direct_run(&*store, &key, size).await,
        };
        store.delete(BucketKind::Users, &key).await?;
        let (put, get) = result?;
        Ok::<_, anyhow::Error>(Figures {
            put,
            get,
            hwm_kib: vm_hwm_kib()?,
            base_kib,
        })
    })?;
    println!("{}", figures.line());
    Ok(())
}

/// `size` bytes in 1 MiB chunks, all different.
pub fn generated(size: u64) -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
    let mut block = vec![0u8; MIB as usize];
    rand::rng().fill_bytes(&mut block);
    let block = Arc::new(block);
    stream::unfold(0u64, move |sent| {
        let block = block.clone();
        async move {
            if sent >= size {
                return None;
            }
            let len = MIB.min(size - sent) as usize;
            let mut chunk = block[..len].to_vec();
            let stamp = (sent / MIB).to_le_bytes();
            let n = stamp.len().min(len);
            chunk[..n].copy_from_slice(&stamp[..n]);
            Some((Bytes::from(chunk), sent + len as u64))
        }
    })
}

async fn adapter_run(
    store: &dyn BlobStore,
    key: &ObjectKey,
    size: u64,
) -> anyhow::Result<(Duration, Duration)> {
    let body: ByteStream = Box::pin(generated(size).map(Ok::<_, io::Error>));
    let started = Instant::now();
    let outcome = store
        .put(BucketKind::Users, key, "application/octet-stream", body)
        .await?;
    let put = started.elapsed();
    if outcome.size != size {
        bail!("adapter put stored {} bytes of {size}", outcome.size);
    }

    let started = Instant::now();
    let mut read = store.get(BucketKind::Users, key, None).await?;
    let mut got = 0u64;
    while let Some(chunk) = read.body.next().await {
        got += chunk?.len() as u64;
    }
    let get = started.elapsed();
    if got != size {
        bail!("adapter get read {got} bytes of {size}");
    }
    Ok((put, get))
}

pub async fn direct_run(
    store: &dyn BlobStore,
    key: &ObjectKey,
    size: u64,
) -> anyhow::Result<(Duration, Duration)> {
    let put = direct_put(store, key, size).await?;
    let get = direct_get(store, key, size).await?;
    Ok((put, get))
}

/// One presigned PUT of `size` generated bytes straight to the store; returns its duration.
pub async fn direct_put(
    store: &dyn BlobStore,
    key: &ObjectKey,
    size: u64,
) -> anyhow::Result<Duration> {
    let client = reqwest::Client::new();
    let ttl = Duration::from_secs(3600);
    let put_url = store
        .presign_put(
            BucketKind::Users,
            key,
            "application/octet-stream",
            Some(size),
            ttl,
        )
        .await?;
    let mut request = client.put(&put_url.url);
    for (name, value) in &put_url.headers {
        request = request.header(name, value);
    }
    let body = reqwest::Body::wrap_stream(generated(size).map(Ok::<_, io::Error>));
    let started = Instant::now();
    let answer = request.body(body).send().await?;
    let put = started.elapsed();
    if !answer.status().is_success() {
        bail!("direct PUT answered {}", answer.status());
    }
    Ok(put)
}

/// One presigned GET of the `size` bytes at `key` straight from the store, streamed and
/// counted; returns its duration.
pub async fn direct_get(
    store: &dyn BlobStore,
    key: &ObjectKey,
    size: u64,
) -> anyhow::Result<Duration> {
    let client = reqwest::Client::new();
    let ttl = Duration::from_secs(3600);
    let get_url = store
        .presign_get(BucketKind::Users, key, &PresignGetOptions::default(), ttl)
        .await?;
    let started = Instant::now();
    let answer = client.get(&get_url.url).send().await?;
    if !answer.status().is_success() {
        bail!("direct GET answered {}", answer.status());
    }
    let mut body = answer.bytes_stream();
    let mut got = 0u64;
    while let Some(chunk) = body.next().await {
        got += chunk?.len() as u64;
    }
    let get = started.elapsed();
    if got != size {
        bail!("direct get read {got} bytes of {size}");
    }
    Ok(get)
}

/// Peak resident set size of this process (`VmHWM`), in KiB.
fn vm_hwm_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmHWM in /proc/self/status"))
}
