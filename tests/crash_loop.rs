//! Twenty crashes in a row on one data directory: start the real binary,
//! put concurrent PUTs on it, `kill -9` it at a random moment, and check
//! that every write it acknowledged is on disk with its date, and that the
//! store opens again with no repair. The counts are printed at the end.
//!
//! `CRASH_LOOP_SEED` replays the kill moments of an earlier run (the seed is
//! printed); `CRASH_LOOP_CYCLES` changes the number of cycles.

#[path = "common/names.rs"]
mod names;

use names::letters;
use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

const WRITERS: u32 = 8;
const DEFAULT_CYCLES: u32 = 20;

/// The binary, started with only the flags given: no setting may come from
/// the environment of whoever runs the tests.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_birthday-api"));
    for (name, _) in std::env::vars() {
        if name.starts_with("BIRTHDAY_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

struct Running {
    child: Child,
    base: String,
}

/// Starts the service on `data_dir` and waits for its "serving on" line.
fn start(data_dir: &str) -> Running {
    let mut child = command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir,
        "--log-format",
        "json",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (address, found) = mpsc::channel();
    thread::spawn(move || {
        let mut address = Some(address);
        // Keeps reading to the end so the service never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("serving on http://") {
                let rest = &line[at + "serving on http://".len()..];
                let end = rest.find(',').unwrap_or(rest.len());
                if let Some(address) = address.take() {
                    let _ = address.send(rest[..end].to_owned());
                }
            } else if address.is_some() {
                eprintln!("service: {line}");
            }
        }
    });
    match found.recv_timeout(Duration::from_secs(20)) {
        Ok(address) => Running {
            child,
            base: format!("http://{address}"),
        },
        Err(_) => {
            let status = child.try_wait();
            let _ = child.kill();
            panic!("the service did not start on {data_dir} within 20 s (exit: {status:?})");
        }
    }
}

/// Every record on disk, read by `birthday-api export` from the directory
/// the killed process left behind.
fn export(data_dir: &str) -> HashMap<String, String> {
    let output = command(&["export", "--data-dir", data_dir])
        .output()
        .expect("export runs");
    assert!(
        output.status.success(),
        "export could not open the store: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("export writes UTF-8")
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            (
                record["username"].as_str().expect("username").to_owned(),
                record["dateOfBirth"]
                    .as_str()
                    .expect("dateOfBirth")
                    .to_owned(),
            )
        })
        .collect()
}

fn date_for(number: u64) -> String {
    let date = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).expect("a valid date")
        + chrono::Days::new(number % 20_000);
    date.format("%Y-%m-%d").to_string()
}

/// A small deterministic generator for the kill moments (xorshift64*).
struct Moments(u64);

impl Moments {
    fn next_millis(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        low + self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % (high - low)
    }
}

#[derive(Default)]
struct Cycle {
    acknowledged: Vec<(String, String)>,
    /// Sent, but the process died before answering: may or may not be there.
    unanswered: Vec<(String, String)>,
    /// Answered with something other than 204 (must never happen here).
    refused: Vec<String>,
}

/// PUTs from `WRITERS` threads until `stop`, each name used once.
fn load(base: &str, cycle: u32, stop: &Arc<AtomicBool>) -> Cycle {
    let outcome = Arc::new(Mutex::new(Cycle::default()));
    let sequence = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (base, stop, outcome, sequence) = (
                base.to_owned(),
                stop.clone(),
                outcome.clone(),
                sequence.clone(),
            );
            thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("http client");
                while !stop.load(Ordering::Relaxed) {
                    let number = sequence.fetch_add(1, Ordering::Relaxed);
                    let name = format!("cycle{}n{}", letters(u64::from(cycle)), letters(number));
                    let date = date_for(number + u64::from(cycle));
                    let answer = client
                        .put(format!("{base}/hello/{name}"))
                        .json(&serde_json::json!({ "dateOfBirth": date }))
                        .send();
                    let mut outcome = outcome.lock().expect("not poisoned");
                    match answer {
                        Ok(answer) if answer.status() == 204 => {
                            outcome.acknowledged.push((name, date))
                        }
                        Ok(answer) => outcome.refused.push(format!("{name}: {}", answer.status())),
                        Err(_) => {
                            outcome.unanswered.push((name, date));
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread");
    }
    Arc::try_unwrap(outcome)
        .ok()
        .expect("writers are done")
        .into_inner()
        .expect("not poisoned")
}

#[test]
fn twenty_kill_9_cycles_lose_no_acknowledged_write() {
    let cycles = std::env::var("CRASH_LOOP_CYCLES")
        .ok()
        .and_then(|cycles| cycles.parse().ok())
        .unwrap_or(DEFAULT_CYCLES);
    let seed = std::env::var("CRASH_LOOP_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |now| now.as_nanos() as u64 | 1)
        });
    eprintln!("crash loop: {cycles} cycles, CRASH_LOOP_SEED={seed}");
    let mut moments = Moments(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_str().expect("UTF-8 temp path").to_owned();

    let started = Instant::now();
    let mut expected: HashMap<String, String> = HashMap::new();
    let (mut acknowledged, mut unanswered, mut unanswered_landed) = (0usize, 0usize, 0usize);
    let mut start_times = Vec::new();
    for cycle in 0..cycles {
        let starting = Instant::now();
        let mut running = start(&data_dir);
        start_times.push(starting.elapsed());

        // What every earlier cycle acknowledged is served after the restart.
        let client = reqwest::blocking::Client::new();
        for name in expected.keys().step_by(97) {
            let answer = client
                .get(format!("{}/hello/{name}", running.base))
                .send()
                .expect("GET after restart");
            assert_eq!(answer.status(), 200, "cycle {cycle}: {name} is not served");
        }

        let stop = Arc::new(AtomicBool::new(false));
        let kill_after = Duration::from_millis(moments.next_millis(200, 1500));
        let killer = {
            let stop = stop.clone();
            let pid = running.child.id();
            thread::spawn(move || {
                thread::sleep(kill_after);
                // SIGKILL: no shutdown hook, no flush.
                let killed = Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .expect("kill runs");
                stop.store(true, Ordering::Relaxed);
                killed
            })
        };
        let outcome = load(&running.base, cycle, &stop);
        assert!(
            killer.join().expect("killer thread").success(),
            "kill -9 failed"
        );
        let status = running.child.wait().expect("the killed process is reaped");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "cycle {cycle}: the service was not killed by the test: {status:?}"
        );
        assert!(
            outcome.refused.is_empty(),
            "cycle {cycle}: PUTs refused: {:?}",
            outcome.refused
        );

        let on_disk = export(&data_dir);
        let mut lost = Vec::new();
        for (name, date) in expected
            .iter()
            .chain(outcome.acknowledged.iter().map(|(n, d)| (n, d)))
        {
            if on_disk.get(name) != Some(date) {
                lost.push(format!("{name}={date} (found {:?})", on_disk.get(name)));
            }
        }
        assert!(
            lost.is_empty(),
            "cycle {cycle} (seed {seed}, killed after {kill_after:?}): {} acknowledged writes \
             lost or changed, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        let landed = outcome
            .unanswered
            .iter()
            .filter(|(name, date)| on_disk.get(name) == Some(date))
            .count();
        eprintln!(
            "cycle {cycle:2}: killed after {:4} ms, {:5} acknowledged, {} unanswered ({} of them on disk), {} records on disk",
            kill_after.as_millis(),
            outcome.acknowledged.len(),
            outcome.unanswered.len(),
            landed,
            on_disk.len()
        );
        acknowledged += outcome.acknowledged.len();
        unanswered += outcome.unanswered.len();
        unanswered_landed += landed;
        expected.extend(outcome.acknowledged);
        // An unanswered write that landed is a record now; later cycles
        // only demand what was acknowledged.
    }

    // One last start: the store left by the last kill opens too.
    let mut last = start(&data_dir);
    let _ = last.child.kill();
    let _ = last.child.wait();

    start_times.sort();
    eprintln!(
        "crash loop summary: {cycles} kill -9 cycles in {:.1} s, {acknowledged} acknowledged \
         writes, 0 lost; {unanswered} unanswered at the kill, {unanswered_landed} of them on disk; \
         restart time median {:?}, max {:?}",
        started.elapsed().as_secs_f64(),
        start_times[start_times.len() / 2],
        start_times[start_times.len() - 1],
    );
    assert!(
        acknowledged >= cycles as usize * 10,
        "too little load to mean anything: {acknowledged} writes"
    );
}
