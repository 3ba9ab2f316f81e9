//! `store-floor`: what the sled store alone costs per operation, with no HTTP.
//!
//! Issue 6 sets load-benchmark targets for the service on sled (GET and
//! durable PUT throughput against the bare-poem baseline, 1M users against
//! 1k, RSS) and asks, for any target sled cannot meet, for the breakdown of
//! where the time or the memory goes instead of a looser target. This program
//! measures the part no HTTP service on sled can avoid: `SledStore` itself
//! (sled plus the service's group commit) with the service's default cache,
//! on one tokio thread as in the pinned server. `benches/load/bench.py` runs it
//! in the same rounds as the load benchmark, on the same preloaded data
//! directories, and turns its CPU time per operation into the best ratio to
//! the baseline that any service on sled could reach (the "sled floor").
//!
//! ```text
//! store-floor --data-dir DIR --users N --op get|put --concurrency C --seconds S [--cache-mb M]
//! ```
//!
//! DIR must hold users `0..N` named like `bench_username` in bench.py (it
//! fills it with `birthday-api import`); every GET must hit, or the run fails.
//! After a 1 s warm-up it counts operations, wall time and the process's CPU
//! time (every thread: sled's and the group-commit thread too) for S seconds
//! and prints one line of JSON: `ops`, `wall_s`, `cpu_s`, `ops_per_s`,
//! `cpu_us_per_op`, `key_us_per_op` (the share of an operation spent building
//! its `Username`, measured alone), `open_ms` (`SledStore::open`), and
//! `rss_kib` / `hwm_kib` (VmRSS and VmHWM at the end).

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use birthday_api::{
    domain::{DateOfBirth, Username},
    store::{Store, sled_store::SledStore},
};
use chrono::NaiveDate;
use clap::{Parser, ValueEnum};
use tokio::task::JoinSet;

#[path = "../baseline/src/bench_users.rs"]
mod bench_users;
mod sled_cache_arg;
use sled_cache_arg::SledCacheArg;

/// The service's allocator (src/main.rs): sled's cost depends on it, and a
/// floor measured with another would not bound the service.
#[global_allocator]
static ALLOCATOR: birthday_api::allocator::MiMalloc = birthday_api::allocator::MiMalloc;

/// Users `bench_username` can name: five base-26 letters.
const MAX_USERS: u64 = 26 * 26 * 26 * 26 * 26;
const WARM_UP: Duration = Duration::from_secs(1);
/// A GET never waits, so a task gives the others a turn this often.
const YIELD_EVERY: u64 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "store-floor",
    about = "Measures the sled store alone (no HTTP) for benches/load/bench.py."
)]
struct Args {
    /// sled directory filled with the benchmark's users 0..N.
    #[arg(long)]
    data_dir: PathBuf,
    /// N: how many users the directory holds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_USERS))]
    users: u64,
    #[arg(long, value_enum)]
    op: Op,
    /// Tasks running operations at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    concurrency: u64,
    /// Seconds measured after the 1 s warm-up.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    #[command(flatten)]
    cache: SledCacheArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Op {
    /// Look up a random stored user (must be present).
    Get,
    /// Overwrite a random stored user's date and wait until it is durable.
    Put,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
        }
    }
}

fn main() -> std::process::ExitCode {
    match Args::try_parse() {
        Ok(args) => match run(&args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("store-floor: error: {err:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            let _ = err.print();
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    if !args.data_dir.join("db").is_file() {
        bail!(
            "{} holds no sled database; fill it first with `birthday-api import --data-dir {0}`",
            args.data_dir.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;

    let opened = Instant::now();
    let store = Arc::new(SledStore::open(&args.data_dir, args.cache.cache_mb)?);
    let open_ms = opened.elapsed().as_secs_f64() * 1e3;

    let key_us_per_op = key_cost_us(args.users);
    let report = runtime.block_on(measure(args, Arc::clone(&store)))?;
    let memory = memory_kib()?;
    drop(store);

    let json = serde_json::json!({
        "op": args.op.name(),
        "users": args.users,
        "concurrency": args.concurrency,
        "ops": report.ops,
        "wall_s": report.wall_s,
        "cpu_s": report.cpu_s,
        "ops_per_s": report.ops as f64 / report.wall_s,
        "cpu_us_per_op": report.cpu_s * 1e6 / report.ops.max(1) as f64,
        "key_us_per_op": key_us_per_op,
        "open_ms": open_ms,
        "rss_kib": memory.rss,
        "hwm_kib": memory.hwm,
    });
    println!("{json}");
    Ok(())
}

struct Report {
    ops: u64,
    wall_s: f64,
    cpu_s: f64,
}

/// Counters the tasks share with the timekeeper thread.
#[derive(Default)]
struct Shared {
    ops: AtomicU64,
    misses: AtomicU64,
    stop: AtomicBool,
}

async fn measure(args: &Args, store: Arc<SledStore>) -> anyhow::Result<Report> {
    // A clear message for a directory filled with fewer users than claimed.
    for i in [0, args.users - 1] {
        let name = bench_username(i);
        if store.get(&name).await?.is_none() {
            bail!(
                "user {i} ({name}) is not in {}; was it filled with {} users?",
                args.data_dir.display(),
                args.users
            );
        }
    }

    let shared = Arc::new(Shared::default());
    // The tasks never sleep, so time is kept on a thread of its own: it takes
    // both samples, and its stop flag ends the tasks.
    let timekeeper = {
        let shared = Arc::clone(&shared);
        let seconds = args.seconds;
        thread::Builder::new()
            .name("store-floor-timer".into())
            .spawn(move || -> anyhow::Result<(Sample, Sample)> {
                let result = (|| {
                    thread::sleep(WARM_UP);
                    let start = Sample::take(&shared)?;
                    thread::sleep(Duration::from_secs(seconds));
                    let end = Sample::take(&shared)?;
                    Ok((start, end))
                })();
                shared.stop.store(true, Ordering::Relaxed);
                result
            })
            .context("cannot start the timer thread")?
    };

    let seed = seed();
    let mut tasks = JoinSet::new();
    for task in 0..args.concurrency {
        let rng = Rng::new(seed ^ (task + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        tasks.spawn(worker(
            Arc::clone(&store),
            Arc::clone(&shared),
            args.op,
            args.users,
            rng,
        ));
    }
    let mut failure = None;
    while let Some(outcome) = tasks.join_next().await {
        let outcome = outcome.context("a task panicked").and_then(|result| result);
        if let Err(err) = outcome {
            shared.stop.store(true, Ordering::Relaxed);
            failure.get_or_insert(err);
        }
    }
    let samples = timekeeper
        .join()
        .map_err(|_| anyhow::anyhow!("the timer thread panicked"))?;
    if let Some(err) = failure {
        return Err(err);
    }
    let (start, end) = samples?;
    let misses = shared.misses.load(Ordering::Relaxed);
    if misses > 0 {
        bail!(
            "{misses} GETs found no record: {} does not hold users 0..{}",
            args.data_dir.display(),
            args.users
        );
    }
    Ok(Report {
        ops: end.ops - start.ops,
        wall_s: (end.at - start.at).as_secs_f64(),
        cpu_s: end.cpu_s - start.cpu_s,
    })
}

async fn worker(
    store: Arc<SledStore>,
    shared: Arc<Shared>,
    op: Op,
    users: u64,
    mut rng: Rng,
) -> anyhow::Result<()> {
    let mut done = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let i = rng.below(users);
        let username = bench_username(i);
        match op {
            Op::Get => {
                if store.get(&username).await?.is_none() {
                    shared.misses.fetch_add(1, Ordering::Relaxed);
                }
            }
            Op::Put => store.put(&username, random_date(&mut rng)).await?,
        }
        shared.ops.fetch_add(1, Ordering::Relaxed);
        done += 1;
        if done % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

/// Microseconds per operation spent only on picking a user and building its
/// [`Username`] (NFC normalisation and validation included): part of
/// `cpu_us_per_op`, but work of the service's domain rather than of sled.
/// Measured alone, single-threaded, over 0.2 s; the fastest of 5 slices.
fn key_cost_us(users: u64) -> f64 {
    let mut rng = Rng::new(seed());
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        let mut made = 0u64;
        while started.elapsed() < Duration::from_millis(40) {
            for _ in 0..256 {
                std::hint::black_box(bench_username(rng.below(users)));
            }
            made += 256;
        }
        best = best.min(started.elapsed().as_secs_f64() * 1e6 / made as f64);
    }
    best
}

/// One reading of the clock, the operation counter and the process's CPU time.
struct Sample {
    at: Instant,
    ops: u64,
    cpu_s: f64,
}

impl Sample {
    fn take(shared: &Shared) -> anyhow::Result<Self> {
        let cpu_s = process_cpu_seconds()?;
        Ok(Self {
            at: Instant::now(),
            ops: shared.ops.load(Ordering::Relaxed),
            cpu_s,
        })
    }
}

/// The benchmark's user `i`, as bench.py and the baseline name it.
fn bench_username(i: u64) -> Username {
    Username::parse(&bench_users::bench_username(i)).expect("a benchmark username is valid")
}

/// A date like the load benchmark's PUT bodies: 1950–2005, day 1–28.
fn random_date(rng: &mut Rng) -> DateOfBirth {
    let year = 1950 + rng.below(56) as i32;
    let month = 1 + rng.below(12) as u32;
    let day = 1 + rng.below(28) as u32;
    let date = NaiveDate::from_ymd_opt(year, month, day).expect("day 1-28 exists in every month");
    DateOfBirth::from_stored(date).expect("a date after year 1")
}

/// xorshift64*: fast, and uniform enough to spread lookups over the store.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-40).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

/// User plus system CPU seconds of the whole process (all threads, also
/// those that have ended), from `/proc/self/stat`.
fn process_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("cannot read /proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .context("unexpected /proc/self/stat format")
    };
    // utime and stime are fields 14 and 15 of proc(5), 11 and 12 after the name.
    Ok((ticks(11)? + ticks(12)?) as f64 / rustix::param::clock_ticks_per_second() as f64)
}

struct Memory {
    rss: u64,
    hwm: u64,
}

/// VmRSS and VmHWM in KiB, from `/proc/self/status`.
fn memory_kib() -> anyhow::Result<Memory> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {name} in /proc/self/status"))
    };
    Ok(Memory {
        rss: field("VmRSS")?,
        hwm: field("VmHWM")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_bench_py() {
        assert_eq!(bench_username(0).as_str(), "useraaaaa");
        assert_eq!(bench_username(1).as_str(), "useraaaab");
        assert_eq!(bench_username(26).as_str(), "useraaaba");
        assert_eq!(bench_username(MAX_USERS - 1).as_str(), "userzzzzz");
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Rng::new(42);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
    }
}
