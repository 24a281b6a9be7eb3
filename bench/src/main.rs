//! Benchmarks of storage-service against real services.
//!
//! ```text
//! storage-bench [all|proxy|concurrency|ops|events|presign|complete|list] [--size-mib N]
//!               [--reps N] [--seconds S] [--list-max N]
//! storage-bench blob [--size-mib N]
//! ```
//!
//! The service scenarios start what they need: PostgreSQL and Garage through
//! `tests/support/services.sh` (unless the `TEST_*` variables name running ones), a database of
//! their own, the release `storage-server` binary as a child process (built first, so its peak
//! RSS can be read from `/proc/<pid>/status`), and the project-service stand-in. They print a
//! Markdown table per scenario and write `bench/results/<scenario>-<date>.{json,md}`; `all`
//! also writes `bench/results/latest.md` (a single scenario never does). Each report opens
//! with what the run was: date, commit, command, machine (CPUs, memory, load), versions of the
//! service, PostgreSQL, Garage and the compiler, and the server's settings.
//!
//! - `proxy`: one upload and one download of `--size-mib` (1024) through the service
//!   (`/upload/proxy`, `/download/proxy`) and straight to Garage (presigned URLs): MB/s, ratio,
//!   the service's peak RSS; median of `--reps` (3); beside each download, what it cost per
//!   GiB: CPU seconds of the service, Garage and the client, the machine's idle share, and the
//!   service's system calls (`perf stat`, when it can count them; see `probe.rs`); with
//!   `STORAGE_BENCH_PERF_RECORD=<dir>`, a `perf record -g` of the service per GET into `<dir>`;
//! - `concurrency`: 10, then 50, concurrent 100 MiB uploads (one user each), through the
//!   service and straight, with the service's peak RSS growth and the uploads stored, refused
//!   (429 past a cap) or failed;
//! - `ops`: lock+unlock, metadata and list per second with p50/p99 at 1, 16 and 64 clients,
//!   each beside the same SQL issued raw to the same PostgreSQL at the same concurrency (a
//!   point SELECT of the file; the lock+unlock transactions), with the ratios (`--seconds`
//!   each, 5; see `raw.rs`);
//! - `events`: lock+unlock per second with issue 17's events and audit chain on (every event
//!   delivered to a webhook receiver that checks its signature) beside both off, at 1, 16 and
//!   64 clients, alternated `--reps` times, with the dispatcher's backlog (see `events.rs`);
//! - `presign`: upload and download presigns per second at 1, 16 and 64 clients, beside the
//!   upload's reservation INSERT+COMMIT issued raw;
//! - `complete`: the latency of `/upload/complete` after a presigned PUT of 1 and 100 MiB
//!   (median of `--reps`);
//! - `list`: the time of one list page with 1k, 100k and 1M (`--list-max`) files in the bucket;
//! - `all` (the default): every scenario above, in one run, one report;
//! - `blob`: the adapter-level comparison (no service), see [`blob`].
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod blob;
mod events;
mod harness;
mod probe;
mod raw;
mod report;
mod scenarios;
mod stats;

use anyhow::{Context, bail};

use crate::{
    harness::{Bench, Services},
    report::Report,
    scenarios::Options,
};

const SCENARIOS: [&str; 7] = [
    "proxy",
    "concurrency",
    "ops",
    "events",
    "presign",
    "complete",
    "list",
];

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> anyhow::Result<T> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse::<T>()
            .map_err(|_| anyhow::anyhow!("bad value for {name}")),
        None => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scenario = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .map_or("all", String::as_str)
        .to_owned();
    let size_mib = flag(&args, "--size-mib", 1024u64)?;
    match scenario.as_str() {
        "blob" => return blob::blob(size_mib),
        "blob-adapter" => return blob::child(size_mib, blob::Path::Adapter),
        "blob-direct" => return blob::child(size_mib, blob::Path::Direct),
        "all" => {}
        s if SCENARIOS.contains(&s) => {}
        other => bail!(
            "unknown scenario '{other}': storage-bench [all|{}|blob] [--size-mib N] [--reps N] \
             [--seconds S] [--list-max N]",
            SCENARIOS.join("|")
        ),
    }
    let options = Options {
        size_mib,
        reps: flag(&args, "--reps", 3usize)?.max(1),
        seconds: flag(&args, "--seconds", 5.0f64)?,
        list_max: flag(&args, "--list-max", 1_000_000u64)?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Started outside the runtime: dropping them waits for the shell to stop the services.
    let services = Services::start()?;
    let result = runtime.block_on(run(services, &scenario, &options));
    drop(runtime);
    result
}

async fn run(services: Services, scenario: &str, options: &Options) -> anyhow::Result<()> {
    let bench = Bench::start(services).await?;
    let mut report = Report {
        context: context(&bench, scenario, options).await,
        ..Report::default()
    };
    let selected: Vec<&str> = if scenario == "all" {
        SCENARIOS.to_vec()
    } else {
        vec![scenario]
    };
    let mut outcome = Ok(());
    for s in selected {
        let started = std::time::Instant::now();
        let r = match s {
            "proxy" => scenarios::proxy(&bench, options, &mut report).await,
            "concurrency" => scenarios::concurrency(&bench, &mut report).await,
            "ops" => scenarios::ops(&bench, options, &mut report).await,
            "events" => events::events(&bench, options, &mut report).await,
            "presign" => scenarios::presign(&bench, options, &mut report).await,
            "complete" => scenarios::complete(&bench, options, &mut report).await,
            "list" => scenarios::list(&bench, options, &mut report).await,
            _ => Ok(()),
        };
        eprintln!("[bench] {s}: {:.1} s", started.elapsed().as_secs_f64());
        if let Err(e) = r {
            outcome = Err(e.context(format!("scenario {s}")));
            break;
        }
    }
    report
        .context
        .push(("load average at the end".into(), load_average()));
    println!("{}", report.markdown(scenario));
    if !report.tables.is_empty() {
        for path in report.write(scenario, outcome.is_ok())? {
            eprintln!("[bench] wrote {}", path.display());
        }
    }
    let finished = bench.finish().await;
    outcome.and(finished)
}

/// The output of `program args`, trimmed (empty when it cannot run).
fn output_of(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The first line of `/proc/<file>` whose key is `key` (`key: value` or `key value`), its value.
fn proc_field(file: &str, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{file}"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim_start_matches([':', ' ', '\t']).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The commit the bench was built from, `-dirty` when the work tree has changes.
fn commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let head = output_of("git", &["-C", dir, "rev-parse", "--short", "HEAD"]);
    let dirty = !output_of(
        "git",
        &["-C", dir, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_empty();
    match (head.is_empty(), dirty) {
        (true, _) => "unknown (no git)".into(),
        (false, true) => format!("{head}-dirty (uncommitted changes)"),
        (false, false) => head,
    }
}

#[derive(diesel::QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// `SELECT version()` of the run's PostgreSQL.
async fn postgres_version(url: &str) -> String {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let Ok(mut conn) = AsyncPgConnection::establish(url).await else {
        return "unknown (cannot connect)".into();
    };
    diesel::sql_query("SELECT version() AS version")
        .get_result::<VersionRow>(&mut conn)
        .await
        .map_or_else(|_| "unknown".into(), |r| r.version)
}

/// What the run was: when, which code, how it was asked for, on what, against what, with which
/// settings. Recorded in every report (Markdown and JSON).
async fn context(bench: &Bench, scenario: &str, options: &Options) -> Vec<(String, String)> {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let garage = bench
        .services
        .vars
        .get("GARAGE_BIN")
        .map(|bin| output_of(bin, &["--version"]))
        .map_or_else(
            || {
                "Garage named by TEST_S3_ENDPOINT (not started by the bench: version unknown)"
                    .into()
            },
            |v| v.lines().next().unwrap_or_default().to_owned(),
        );
    let server_bin = bench.server_bin.display().to_string();
    let mut settings = bench.server_settings.join(", ");
    settings.push_str("; every other setting at the server's default (env.example)");
    vec![
        (
            "date".into(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        ("commit".into(), commit()),
        (
            "command".into(),
            format!(
                "storage-bench {scenario} --size-mib {} --reps {} --seconds {} --list-max {}",
                options.size_mib, options.reps, options.seconds, options.list_max
            ),
        ),
        (
            "machine".into(),
            format!(
                "{cpus} CPUs ({}), {} memory, {}",
                proc_field("cpuinfo", "model name"),
                proc_field("meminfo", "MemTotal"),
                output_of("uname", &["-sr"])
            ),
        ),
        ("load average at the start".into(), load_average()),
        (
            "versions".into(),
            format!(
                "{} (release build), {}, {garage}, built with {}",
                output_of(&server_bin, &["--version"]),
                postgres_version(bench.database_url()).await,
                output_of("rustc", &["--version"]),
            ),
        ),
        (
            "services".into(),
            format!(
                "PostgreSQL at {}, Garage at {}, service and stand-in on 127.0.0.1, all on this \
                 machine",
                bench.services.var("TEST_DATABASE_URL"),
                bench.services.var("TEST_S3_ENDPOINT"),
            ),
        ),
        ("service settings".into(), settings),
    ]
}
