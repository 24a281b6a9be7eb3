//! `events`: the cost of issue 17's outbox and audit chain on the busiest audited change, the
//! lock+unlock pair, in one run.
//!
//! Five more servers start beside the run's own, each on a database of its own and the same
//! PostgreSQL and Garage: **off** (`EVENTS_ENABLED=false`, `AUDIT_CHAIN=off`), **chain only**
//! (`EVENTS_ENABLED=false`), **events only** (`AUDIT_CHAIN=off`, no sink), **on, no sink**
//! (every setting at its default: events queued in the audit row, the per-file hash chain, the
//! dispatcher claiming and settling them with nowhere to send them) and **on, webhook** (the
//! same, delivering each event to a webhook receiver in this process that checks every
//! signature with the reference `standardwebhooks` crate; the receiver's work shares the
//! machine). At each concurrency each is measured `--reps` times, in rotated order, each for
//! `--seconds`; the median windows are compared. After each window of a server that queues
//! events, the bench waits until none is left to deliver and reports how far behind the
//! dispatcher was (the backlog when the window closed and the time it took to drain): a
//! dispatcher that cannot keep up would make the rate look good while the outbox grows.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use storage_test_support::{
    project_standin::ProjectStandin,
    webhook_receiver::{WebhookReceiver, new_secret},
};

use crate::{
    harness::{Api, Bench, BenchDatabase, Server, settings_of},
    report::{Report, Table, f1, f2},
    scenarios::{CONCURRENCY, OPS_FILES, Options, ops_path, service_lock_unlock, small_upload},
    stats::{Stats, drive, ms, round},
};

/// One of the servers.
struct Variant {
    name: &'static str,
    /// Its events are queued (and must drain).
    publishes: bool,
    api: Api,
    database: BenchDatabase,
    _server: Server,
    settings: Vec<String>,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Events of the variant's database still to deliver.
async fn backlog(conn: &mut AsyncPgConnection) -> anyhow::Result<i64> {
    Ok(
        diesel::sql_query("SELECT count(*) AS n FROM event_outbox WHERE delivery = 'pending'")
            .get_result::<Count>(conn)
            .await?
            .n,
    )
}

async fn start_variant(
    b: &Bench,
    standin: &ProjectStandin,
    name: &'static str,
    extra: &[(&str, String)],
) -> anyhow::Result<Variant> {
    let database = BenchDatabase::create(&b.services).await?;
    let mut vars = Server::env(&b.services, &database.url, &standin.url());
    for (k, v) in extra {
        vars.retain(|(known, _)| known != k);
        vars.push(((*k).to_owned(), v.clone()));
    }
    Server::migrate(&b.server_bin, &vars)?;
    let server = Server::start(&b.server_bin, &vars)?;
    let api = Api::new(&server.base)?;
    for i in 0..OPS_FILES {
        small_upload(&api, &ops_path(i), format!("file {i}").into_bytes()).await?;
    }
    Ok(Variant {
        name,
        publishes: !extra
            .iter()
            .any(|(k, v)| *k == "EVENTS_ENABLED" && v == "false"),
        api,
        settings: settings_of(&vars)
            .into_iter()
            .filter(|s| extra.iter().any(|(k, _)| s.starts_with(&format!("{k}="))))
            .collect(),
        database,
        _server: server,
    })
}

/// What one window of a variant gave.
struct Window {
    stats: Stats,
    /// Events delivered to the receiver during the window, per second (on only).
    delivered_per_s: Option<f64>,
    /// Events left to deliver when the window closed, and how they drained (on only).
    backlog: Option<(i64, Drain)>,
}

/// How long the bench waits for the outbox to drain after a window.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// How the backlog of a window drained.
#[derive(Debug, Clone, Copy)]
enum Drain {
    /// Nothing left after these seconds.
    In(f64),
    /// Still this many events left after [`DRAIN_LIMIT`].
    Not(i64),
}

impl Drain {
    fn cell(self) -> String {
        match self {
            Drain::In(s) => f2(s),
            Drain::Not(n) => format!("not in {} s ({n} left)", DRAIN_LIMIT.as_secs()),
        }
    }

    fn json(self) -> Value {
        match self {
            Drain::In(s) => json!({"drained_in_s": round(s, 3)}),
            Drain::Not(n) => json!({"left_after_s": DRAIN_LIMIT.as_secs(), "left": n}),
        }
    }
}

async fn window(
    v: &Variant,
    receiver: &WebhookReceiver,
    clients: usize,
    o: &Options,
) -> anyhow::Result<Window> {
    let warmup = Duration::from_millis(500);
    let measure = Duration::from_secs_f64(o.seconds);
    let token = Arc::new(v.api.token(crate::scenarios::USER)?);
    let delivered_before = receiver.count();
    let started = Instant::now();
    let stats = {
        let (api, token) = (v.api.clone(), Arc::clone(&token));
        drive(clients, warmup, measure, move |c, _| {
            let (api, token) = (api.clone(), Arc::clone(&token));
            async move { service_lock_unlock(&api, &token, c).await }
        })
        .await
    };
    if !v.publishes {
        return Ok(Window {
            stats,
            delivered_per_s: None,
            backlog: None,
        });
    }
    let delivered = (v.name == ON).then(|| receiver.count() - delivered_before);
    let window_s = started.elapsed().as_secs_f64();
    let mut conn = AsyncPgConnection::establish(&v.database.url).await?;
    let left = backlog(&mut conn).await?;
    let closed = Instant::now();
    let deadline = closed + DRAIN_LIMIT;
    let drained = loop {
        let now_left = backlog(&mut conn).await?;
        if now_left == 0 {
            break Drain::In(closed.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            break Drain::Not(now_left);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(Window {
        stats,
        delivered_per_s: delivered.map(|n| n as f64 / window_s),
        backlog: Some((left, drained)),
    })
}

const OFF: &str = "lock+unlock, events and chain off";
const CHAIN_ONLY: &str = "lock+unlock, chain on, events off";
const EVENTS_ONLY: &str = "lock+unlock, events on (no sink), chain off";
const ON_BARE: &str = "lock+unlock, events and chain on, no sink";
const ON: &str = "lock+unlock, events and chain on, webhook";

fn median_by<T: Clone>(mut xs: Vec<T>, key: impl Fn(&T) -> f64) -> T {
    xs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    xs[xs.len() / 2].clone()
}

/// The scenario (see the module's documentation).
pub async fn events(b: &Bench, o: &Options, report: &mut Report) -> anyhow::Result<()> {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(&secret).await;
    let hooks: PathBuf =
        std::env::temp_dir().join(format!("storage-bench-hooks-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &hooks,
        serde_json::to_vec(&json!([{"url": receiver.url(), "secret": secret}]))?,
    )
    .context("cannot write the webhooks file")?;
    let standin = ProjectStandin::start().await;
    eprintln!("[bench] events: starting the servers with events off, on and on with a webhook");
    let hooks_file = hooks.display().to_string();
    let mut variants = Vec::new();
    for (name, extra) in [
        (
            OFF,
            vec![
                ("EVENTS_ENABLED", "false".to_owned()),
                ("AUDIT_CHAIN", "off".to_owned()),
            ],
        ),
        (CHAIN_ONLY, vec![("EVENTS_ENABLED", "false".to_owned())]),
        (EVENTS_ONLY, vec![("AUDIT_CHAIN", "off".to_owned())]),
        (ON_BARE, vec![]),
        (ON, vec![("WEBHOOKS_FILE", hooks_file.clone())]),
    ] {
        variants.push(start_variant(b, &standin, name, &extra).await?);
    }
    // The seeding's events delivered before anything is measured.
    for v in variants.iter().filter(|v| v.publishes) {
        let mut conn = AsyncPgConnection::establish(&v.database.url).await?;
        let seeded = Instant::now();
        while backlog(&mut conn).await? > 0 {
            if seeded.elapsed() > DRAIN_LIMIT {
                bail!("the seeding's events were not delivered in {DRAIN_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut rates = Table::new(
        "Lock+unlock with events and the audit chain on and off",
        &[
            "variant",
            "clients",
            "ops/s (median)",
            "ops/s (min–max)",
            "p50 ms",
            "p99 ms",
            "errors",
            "events delivered/s",
            "backlog at the end",
            "drained in s",
        ],
    );
    rates.intro.push(format!(
        "Five servers beside the run's own, each with a database of its own on the same \
         PostgreSQL and Garage: `off` sets {}; `chain on, events off` sets \
         `EVENTS_ENABLED=false`; `events on (no sink), chain off` sets `AUDIT_CHAIN=off`; \
         `on, no sink` has every setting at its default (the dispatcher claims and settles \
         each event, with nowhere to send it); `on, webhook` \
         adds `WEBHOOKS_FILE` naming one webhook receiver in the bench process, which checks \
         each delivery's signature with the reference `standardwebhooks` crate and answers 200 \
         (its work shares the machine's two cores with the service). Each client runs \
         lock+unlock pairs on a file of its own for {} s after a 0.5 s warm-up; at each \
         concurrency each variant is measured {} time(s), in rotated order, and the median \
         window (by ops/s) is shown with the range of all. `events delivered/s` counts the \
         receiver's deliveries during the window (two events per pair); `backlog at the end` \
         is the events still to deliver when the window closed, `drained in s` the time until \
         none was (the bench waits at most 120 s).",
        variants[0].settings.join(", "),
        o.seconds,
        o.reps
    ));
    let mut compare = Table::new(
        "Events and chain on beside off",
        &[
            "clients",
            "off ops/s",
            "chain only",
            "events only (no sink)",
            "both, no sink",
            "both, webhook",
            "both, webhook: p99/p50",
        ],
    );
    compare.intro.push(
        "The medians above: off's rate, then each other variant's rate ÷ off's (the issue's \
         target, both on: at least 0.9)."
            .to_owned(),
    );
    let mut json_rows = Vec::new();
    for clients in CONCURRENCY {
        eprintln!("[bench] events: {clients} client(s)");
        let mut windows: Vec<Vec<Arc<Window>>> = vec![Vec::new(); variants.len()];
        for rep in 0..o.reps {
            for k in 0..variants.len() {
                let i = (rep + k) % variants.len();
                let w = window(&variants[i], &receiver, clients, o).await?;
                windows[i].push(Arc::new(w));
            }
        }
        let mut medians = Vec::new();
        for (v, ws) in variants.iter().zip(windows) {
            let rates_of: Vec<f64> = ws.iter().map(|w| w.stats.per_second()).collect();
            let lo = rates_of.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = rates_of.iter().copied().fold(0.0, f64::max);
            let w = median_by(ws, |w| w.stats.per_second());
            let s = &w.stats;
            rates.row(vec![
                v.name.to_owned(),
                clients.to_string(),
                f1(s.per_second()),
                format!("{}–{}", f1(lo), f1(hi)),
                f2(ms(s.p50)),
                f2(ms(s.p99)),
                s.errors.to_string(),
                w.delivered_per_s.map_or_else(|| "–".into(), f1),
                w.backlog.map_or_else(|| "–".into(), |(n, _)| n.to_string()),
                w.backlog.map_or_else(|| "–".into(), |(_, d)| d.cell()),
            ]);
            let mut j = s.json();
            j["operation"] = json!(v.name);
            j["all_windows_ops_per_s"] =
                json!(rates_of.iter().map(|x| round(*x, 1)).collect::<Vec<_>>());
            j["events_delivered_per_s"] = json!(w.delivered_per_s.map(|x| round(x, 1)));
            j["backlog_at_end"] = json!(w.backlog.map(|(n, _)| n));
            j["drain"] = w.backlog.map_or(Value::Null, |(_, d)| d.json());
            json_rows.push(j);
            if s.errors > 0 {
                rates.notes.push(format!(
                    "First error ({}, {clients} clients): {}",
                    v.name,
                    s.first_error.clone().unwrap_or_default()
                ));
            }
            medians.push(w);
        }
        let off = medians[0].stats.per_second();
        let ratios: Vec<f64> = medians[1..]
            .iter()
            .map(|w| w.stats.per_second() / off)
            .collect();
        let last = &medians[medians.len() - 1].stats;
        let tail = ms(last.p99) / ms(last.p50);
        let mut row = vec![clients.to_string(), f1(off)];
        row.extend(ratios.iter().map(|r| f2(*r)));
        row.push(f1(tail));
        compare.row(row);
        json_rows.push(json!({
            "clients": clients,
            "off_ops_per_s": round(off, 1),
            "ratios_over_off": variants[1..]
                .iter()
                .zip(&ratios)
                .map(|(v, r)| json!({"variant": v.name, "ratio": round(*r, 3)}))
                .collect::<Vec<_>>(),
            "on_webhook_p99_over_p50": round(tail, 2),
        }));
    }
    let unverified = receiver.unverified();
    if unverified > 0 {
        bail!("{unverified} deliveries failed the signature check");
    }
    rates.notes.push(format!(
        "The receiver got {} deliveries in all, every one with a valid signature.",
        receiver.count()
    ));
    report.add("events", rates, Value::Array(json_rows));
    report.add("events_ratio", compare, Value::Null);
    let _ = std::fs::remove_file(&hooks);
    for v in variants {
        let Variant {
            database,
            _server: server,
            ..
        } = v;
        drop(server);
        database.drop_now().await?;
    }
    Ok(())
}
