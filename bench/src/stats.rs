//! Closed-loop load: N clients, each running one operation after the other for a fixed time,
//! with the latency of every operation started in the measured window.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

/// Throughput and latency of one operation at one concurrency.
#[derive(Debug, Clone)]
pub struct Stats {
    pub clients: usize,
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl Stats {
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    pub fn json(&self) -> Value {
        json!({
            "clients": self.clients,
            "ops": self.ops,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": self.seconds,
            "ops_per_second": round(self.per_second(), 1),
            "p50_ms": round(ms(self.p50), 3),
            "p99_ms": round(ms(self.p99), 3),
        })
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The `q` quantile (0..=1) of sorted values (nearest rank).
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `op(client, iteration)` in a loop on `clients` tasks for `warmup + measure`; counts the
/// operations started after the warm-up.
pub async fn drive<F, Fut>(clients: usize, warmup: Duration, measure: Duration, op: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let from = start + warmup;
    let until = from + measure;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut first_error = None;
                let mut i = 0u64;
                loop {
                    let began = Instant::now();
                    if began >= until {
                        break;
                    }
                    let result = op(client, i).await;
                    let took = began.elapsed();
                    i += 1;
                    if began < from {
                        continue;
                    }
                    latencies.push(took);
                    if let Err(e) = result {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok((latencies, e, first)) => {
                all.extend(latencies);
                errors += e;
                if first_error.is_none() {
                    first_error = first;
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("client task failed: {e}"));
            }
        }
    }
    let seconds = start.elapsed().saturating_sub(warmup).as_secs_f64();
    all.sort_unstable();
    Stats {
        clients,
        ops: all.len() as u64,
        errors,
        first_error,
        seconds,
        p50: quantile(&all, 0.50),
        p99: quantile(&all, 0.99),
    }
}
