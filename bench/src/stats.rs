//! Closed-loop load: N clients, each running one operation after the other for a fixed time,
//! with the latency of every operation started in the measured window.
//!
//! Failed operations are counted apart: the rate (`ops/s`) and the latencies (p50, p99) are
//! those of the operations that succeeded, so a fast failure (a 503, a refused connection) can
//! never pass for throughput.

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
    /// Operations that succeeded (started in the measured window).
    pub ops: u64,
    /// Operations that failed (started in the measured window); not in `ops`, the rate or the
    /// latencies.
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Latencies of the operations that succeeded.
    pub p50: Duration,
    pub p99: Duration,
}

/// One operation of the measured window: how long it took, and its error if it failed.
#[derive(Debug)]
pub struct Sample {
    pub took: Duration,
    pub error: Option<String>,
}

impl Stats {
    /// Successful operations per second.
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    /// The figures of `samples`, taken by `clients` clients over `seconds`: failures counted
    /// apart, the rate and latencies from the successes only.
    pub fn summarize(clients: usize, samples: Vec<Sample>, seconds: f64) -> Self {
        let mut latencies = Vec::with_capacity(samples.len());
        let mut errors = 0;
        let mut first_error = None;
        for sample in samples {
            match sample.error {
                None => latencies.push(sample.took),
                Some(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        latencies.sort_unstable();
        Self {
            clients,
            ops: latencies.len() as u64,
            errors,
            first_error,
            seconds,
            p50: quantile(&latencies, 0.50),
            p99: quantile(&latencies, 0.99),
        }
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

/// Runs `op(client, iteration)` in a loop on `clients` tasks for `warmup + measure`; keeps the
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
                let mut samples = Vec::new();
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
                    samples.push(Sample {
                        took,
                        error: result.err().map(|e| format!("{e:#}")),
                    });
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        match task.await {
            Ok(mine) => samples.extend(mine),
            Err(e) => samples.push(Sample {
                took: Duration::ZERO,
                error: Some(format!("client task failed: {e}")),
            }),
        }
    }
    let seconds = start.elapsed().saturating_sub(warmup).as_secs_f64();
    Stats::summarize(clients, samples, seconds)
}

/// One side of a comparison: `work` timed from its start to its end, then `after` (given
/// work's output) run once the clock has stopped. Both sides of a comparison go through this, so
/// both are timed over their work alone and neither times its clean-up (`concurrency`: the
/// DELETEs of what the uploads stored).
pub async fn timed_side<T, R, W, A, AF>(work: W, after: A) -> anyhow::Result<(R, Duration)>
where
    W: Future<Output = T>,
    A: FnOnce(T) -> AF,
    AF: Future<Output = anyhow::Result<R>>,
{
    let started = Instant::now();
    let done = work.await;
    let wall = started.elapsed();
    let kept = after(done).await?;
    Ok((kept, wall))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ms: u64) -> Sample {
        Sample {
            took: Duration::from_millis(ms),
            error: None,
        }
    }

    fn failed(ms: u64, why: &str) -> Sample {
        Sample {
            took: Duration::from_millis(ms),
            error: Some(why.to_owned()),
        }
    }

    #[test]
    fn failures_are_counted_apart_and_left_out_of_rate_and_latencies() {
        // 4 successes of 10..40 ms, 6 fast failures of 1 ms, over 2 s.
        let samples = vec![
            failed(1, "HTTP 503 first"),
            ok(10),
            failed(1, "HTTP 503"),
            ok(20),
            failed(1, "HTTP 503"),
            failed(1, "HTTP 503"),
            ok(30),
            failed(1, "HTTP 503"),
            ok(40),
            failed(1, "HTTP 503"),
        ];
        let stats = Stats::summarize(3, samples, 2.0);
        assert_eq!((stats.ops, stats.errors), (4, 6));
        assert_eq!(stats.per_second(), 2.0);
        assert_eq!(stats.p50, Duration::from_millis(20));
        assert_eq!(stats.p99, Duration::from_millis(40));
        assert_eq!(stats.first_error.as_deref(), Some("HTTP 503 first"));
        assert_eq!(stats.clients, 3);
    }

    #[test]
    fn only_failures_give_no_rate_and_no_latency() {
        let stats = Stats::summarize(1, vec![failed(5, "refused"), failed(5, "refused")], 1.0);
        assert_eq!((stats.ops, stats.errors), (0, 2));
        assert_eq!(stats.per_second(), 0.0);
        assert_eq!((stats.p50, stats.p99), (Duration::ZERO, Duration::ZERO));
    }

    /// The clock covers the work and stops before the clean-up: a side whose clean-up takes 1 s
    /// more than its work is timed at its work's 200 ms (less than the 1 s the clean-up adds).
    #[tokio::test]
    async fn a_side_is_timed_over_its_work_not_its_clean_up() {
        const WORK: Duration = Duration::from_millis(200);
        const CLEAN_UP: Duration = Duration::from_secs(1);
        let (kept, wall) = timed_side(
            async {
                tokio::time::sleep(WORK).await;
                21
            },
            async |done: u32| {
                tokio::time::sleep(CLEAN_UP).await;
                Ok(done * 2)
            },
        )
        .await
        .unwrap();
        assert_eq!(
            kept, 42,
            "the clean-up gets the work's output and gives its own"
        );
        assert!(wall >= WORK, "the work is timed: {wall:?}");
        assert!(
            wall < WORK + CLEAN_UP,
            "the clean-up is not timed: {wall:?} for {WORK:?} of work"
        );
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&sorted, 0.50), Duration::from_millis(50));
        assert_eq!(quantile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&sorted[..1], 0.99), Duration::from_millis(1));
    }
}
