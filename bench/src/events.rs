//! `events`: the cost of issue 17's outbox and audit chain on the busiest audited change, the
//! lock+unlock pair, in one run.
//!
//! Two more servers start beside the run's own, each on a database of its own and the same
//! PostgreSQL and Garage: **on** (every setting at its default: events queued in the audit
//! row, the per-file hash chain, the dispatcher delivering each event to a webhook receiver in
//! this process that checks every signature with the reference `standardwebhooks` crate) and
//! **off** (`EVENTS_ENABLED=false`, `AUDIT_CHAIN=off`). At each concurrency the two are measured
//! `--reps` times, alternately (off first, then on first), each for `--seconds`; the medians are
//! compared. After each window of **on**, the bench waits until no event is left to deliver and
//! reports how far behind the dispatcher was (the backlog when the window closed and the time
//! it took to drain): a dispatcher that cannot keep up would make the rate look good while the
//! outbox grows.

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

/// One of the two servers.
struct Variant {
    name: &'static str,
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
        diesel::sql_query("SELECT count(*) AS n FROM audit_events WHERE delivery = 'pending'")
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
    if v.name == OFF {
        return Ok(Window {
            stats,
            delivered_per_s: None,
            backlog: None,
        });
    }
    let delivered = receiver.count() - delivered_before;
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
        delivered_per_s: Some(delivered as f64 / window_s),
        backlog: Some((left, drained)),
    })
}

const ON: &str = "lock+unlock, events and chain on";
const OFF: &str = "lock+unlock, events and chain off";

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
    eprintln!("[bench] events: starting the servers with events on and off");
    let on = start_variant(
        b,
        &standin,
        ON,
        &[("WEBHOOKS_FILE", hooks.display().to_string())],
    )
    .await?;
    let off = start_variant(
        b,
        &standin,
        OFF,
        &[
            ("EVENTS_ENABLED", "false".into()),
            ("AUDIT_CHAIN", "off".into()),
        ],
    )
    .await?;
    // The seeding's events delivered before anything is measured.
    let mut conn = AsyncPgConnection::establish(&on.database.url).await?;
    let seeded = Instant::now();
    while backlog(&mut conn).await? > 0 {
        if seeded.elapsed() > DRAIN_LIMIT {
            bail!("the seeding's events were not delivered in {DRAIN_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut rates = Table::new(
        "Lock+unlock with events and the audit chain on and off",
        &[
            "variant",
            "clients",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "events delivered/s",
            "backlog at the end",
            "drained in s",
        ],
    );
    rates.intro.push(format!(
        "Two servers beside the run's own, each with a database of its own on the same \
         PostgreSQL and Garage: `on` has every setting at its default plus `WEBHOOKS_FILE` \
         naming one webhook receiver in the bench process, which checks each delivery's \
         signature with the reference `standardwebhooks` crate and answers 200; `off` sets {}. \
         Each client runs lock+unlock pairs on a file of its own for {} s after a 0.5 s \
         warm-up; at each concurrency each variant is measured {} time(s), alternately (off \
         first, then on first), and the median window (by ops/s) is shown. `events delivered/s` \
         counts the receiver's deliveries during the window (two events per pair); `backlog at \
         the end` is the events still to deliver when the window closed, `drained in s` the time \
         until none was (the bench waits at most 120 s).",
        off.settings.join(", "),
        o.seconds,
        o.reps
    ));
    let mut compare = Table::new(
        "Events and chain on beside off",
        &[
            "clients",
            "off ops/s",
            "on ops/s",
            "ratio on/off",
            "on p99/p50",
        ],
    );
    compare
        .intro
        .push("The medians above; ratio = on ÷ off (the issue's target: at least 0.9).".to_owned());
    let mut json_rows = Vec::new();
    for clients in CONCURRENCY {
        eprintln!("[bench] events: {clients} client(s)");
        let (mut offs, mut ons) = (Vec::new(), Vec::new());
        for rep in 0..o.reps {
            let order: [&Variant; 2] = if rep % 2 == 0 {
                [&off, &on]
            } else {
                [&on, &off]
            };
            for v in order {
                let w = window(v, &receiver, clients, o).await?;
                if v.name == OFF {
                    offs.push(Arc::new(w));
                } else {
                    ons.push(Arc::new(w));
                }
            }
        }
        let off_w = median_by(offs, |w| w.stats.per_second());
        let on_w = median_by(ons, |w| w.stats.per_second());
        for (name, w) in [(OFF, &off_w), (ON, &on_w)] {
            let s = &w.stats;
            rates.row(vec![
                name.to_owned(),
                clients.to_string(),
                f1(s.per_second()),
                f2(ms(s.p50)),
                f2(ms(s.p99)),
                s.errors.to_string(),
                w.delivered_per_s.map_or_else(|| "–".into(), f1),
                w.backlog.map_or_else(|| "–".into(), |(n, _)| n.to_string()),
                w.backlog.map_or_else(|| "–".into(), |(_, d)| d.cell()),
            ]);
            let mut v = s.json();
            v["operation"] = json!(name);
            v["events_delivered_per_s"] = json!(w.delivered_per_s.map(|x| round(x, 1)));
            v["backlog_at_end"] = json!(w.backlog.map(|(n, _)| n));
            v["drain"] = w.backlog.map_or(Value::Null, |(_, d)| d.json());
            json_rows.push(v);
        }
        let ratio = on_w.stats.per_second() / off_w.stats.per_second();
        let tail = ms(on_w.stats.p99) / ms(on_w.stats.p50);
        compare.row(vec![
            clients.to_string(),
            f1(off_w.stats.per_second()),
            f1(on_w.stats.per_second()),
            f2(ratio),
            f1(tail),
        ]);
        json_rows.push(json!({
            "clients": clients,
            "ratio_on_over_off": round(ratio, 3),
            "on_p99_over_p50": round(tail, 2),
        }));
        if let Some((name, s)) = [(OFF, &off_w.stats), (ON, &on_w.stats)]
            .into_iter()
            .find(|(_, s)| s.errors > 0)
        {
            rates.notes.push(format!(
                "First error ({name}, {clients} clients): {}",
                s.first_error.clone().unwrap_or_default()
            ));
        }
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
    for v in [on, off] {
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
