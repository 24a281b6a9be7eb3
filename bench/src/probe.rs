//! What a transfer cost the machine, measured around it: the CPU time of the service, of
//! Garage and of the bench itself (`/proc/<pid>/stat`), the machine's idle share (`/proc/stat`),
//! and, when `perf` can count tracepoints, the service's system calls, page faults and context
//! switches (`perf stat -p`). On a machine shared with other work, throughput follows whoever
//! got the CPUs; the work per GiB does not.

use std::{
    process::{Child, Command, Stdio},
    time::Instant,
};

use serde_json::{Value, json};

/// `getconf CLK_TCK`: the unit of `/proc/<pid>/stat` times (100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// User and system CPU seconds of `pid` (`self` for this process), all threads, or `None`
/// when it cannot be read.
fn cpu_of(pid: &str, tick: f64) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), 1-based from `state` = 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime / tick, stime / tick))
}

/// Total and idle (idle + iowait) jiffies of the machine.
fn machine() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total = v.iter().take(8).sum();
    Some((total, v.get(3)? + v.get(4).copied().unwrap_or(0)))
}

/// The processes a probe watches.
#[derive(Debug, Clone)]
pub struct Watched {
    pub service: Option<u32>,
    pub garage: Option<u32>,
}

struct Snapshot {
    at: Instant,
    service: Option<(f64, f64)>,
    garage: Option<(f64, f64)>,
    client: Option<(f64, f64)>,
    machine: Option<(u64, u64)>,
}

impl Snapshot {
    fn take(w: &Watched, tick: f64) -> Self {
        let pid = |p: Option<u32>| p.and_then(|p| cpu_of(&p.to_string(), tick));
        Self {
            at: Instant::now(),
            service: pid(w.service),
            garage: pid(w.garage),
            client: cpu_of("self", tick),
            machine: machine(),
        }
    }
}

/// A measurement in progress: [`Probe::start`] before the transfer, [`Probe::finish`] after.
pub struct Probe {
    tick: f64,
    watched: Watched,
    before: Snapshot,
    perf: Option<Child>,
    /// `perf record` of the service, when `STORAGE_BENCH_PERF_RECORD` names a directory.
    record: Option<Child>,
}

/// `perf record -g` of `pid` into a new file of `STORAGE_BENCH_PERF_RECORD` (a directory), if
/// set: a profile of the service during each measured transfer, for `perf report -i`.
fn start_record(pid: u32) -> Option<Child> {
    let dir = std::env::var("STORAGE_BENCH_PERF_RECORD").ok()?;
    let file = format!(
        "{dir}/service-{}.perf.data",
        chrono::Utc::now().format("%H%M%S%3f")
    );
    eprintln!("[bench] perf record of the service into {file}");
    Command::new("perf")
        .args([
            "record",
            "-F",
            "2000",
            "-g",
            "-o",
            &file,
            "-p",
            &pid.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// The `perf stat` events counted on the service.
const PERF_EVENTS: &str = "raw_syscalls:sys_enter,syscalls:sys_enter_read,\
syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_sendto,\
syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,\
page-faults,context-switches";

/// Whether `perf stat` can count the tracepoints (checked once per run).
pub fn perf_works() -> bool {
    Command::new("perf")
        .args(["stat", "-x", ",", "-e", PERF_EVENTS, "--", "true"])
        .stdout(Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("<not supported>")
        })
}

impl Probe {
    /// Snapshots the counters; with `perf`, starts counting the service's events.
    pub fn start(watched: &Watched, perf: bool) -> Self {
        let tick = clock_ticks();
        let perf = match (perf, watched.service) {
            (true, Some(pid)) => Command::new("perf")
                .args(["stat", "-x", ",", "-e", PERF_EVENTS, "-p", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .ok(),
            _ => None,
        };
        let record = watched.service.and_then(start_record);
        if perf.is_some() || record.is_some() {
            // perf attaches before the transfer starts.
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Self {
            tick,
            watched: watched.clone(),
            before: Snapshot::take(watched, tick),
            perf,
            record,
        }
    }

    /// The costs of what ran since [`Probe::start`], per GiB of `bytes`: CPU seconds of each
    /// process (and the service's kernel share), the machine's idle share, and the service's
    /// counted events.
    pub fn finish(self, bytes: u64) -> Value {
        let after = Snapshot::take(&self.watched, self.tick);
        let gib = bytes as f64 / (1u64 << 30) as f64;
        let per_gib = |b: Option<(f64, f64)>, a: Option<(f64, f64)>| -> Value {
            match (b, a) {
                (Some(b), Some(a)) => json!({
                    "cpu_s_per_gib": round3((a.0 + a.1 - b.0 - b.1) / gib),
                    "sys_s_per_gib": round3((a.1 - b.1) / gib),
                }),
                _ => Value::Null,
            }
        };
        let idle = match (self.before.machine, after.machine) {
            (Some((t0, i0)), Some((t1, i1))) if t1 > t0 => {
                json!(round3((i1 - i0) as f64 / (t1 - t0) as f64))
            }
            _ => Value::Null,
        };
        let mut out = json!({
            "seconds": round3(after.at.duration_since(self.before.at).as_secs_f64()),
            "machine_idle": idle,
            "service": per_gib(self.before.service, after.service),
            "garage": per_gib(self.before.garage, after.garage),
            "client": per_gib(self.before.client, after.client),
        });
        if let Some(perf) = self.perf {
            out["service_events_per_gib"] = stop_perf(perf, gib);
        }
        if let Some(record) = self.record {
            interrupt(&record);
            let _ = record.wait_with_output();
        }
        out
    }
}

/// Stops `perf stat` (SIGINT, as a terminal would) and reads its counts, per GiB.
fn stop_perf(perf: Child, gib: f64) -> Value {
    interrupt(&perf);
    let Ok(out) = perf.wait_with_output() else {
        return Value::Null;
    };
    let mut counts = serde_json::Map::new();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let cells: Vec<&str> = line.split(',').collect();
        if let (Some(value), Some(event)) = (cells.first(), cells.get(2))
            && let Ok(value) = value.parse::<f64>()
        {
            let name = event
                .trim_start_matches("syscalls:sys_enter_")
                .trim_start_matches("raw_syscalls:sys_enter")
                .to_owned();
            let name = if name.is_empty() {
                "syscalls".to_owned()
            } else {
                name
            };
            counts.insert(name, json!((value / gib).round()));
        }
    }
    Value::Object(counts)
}

/// SIGINT to a child this probe started (perf writes its results on it).
fn interrupt(child: &Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
