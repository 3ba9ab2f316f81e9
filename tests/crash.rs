//! A 204 means the record is on disk: kill -9 the real binary in the middle
//! of concurrent PUTs, restart it, and find every acknowledged write.

#[path = "common/names.rs"]
mod names;
#[path = "common/service.rs"]
mod service;

use names::letters;
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use service::Service;

const WRITERS: usize = 32;
/// Acknowledged writes to wait for before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 500;

#[derive(Default)]
struct Outcome {
    /// Answered 204: must be there after the restart.
    acknowledged: Vec<(String, String)>,
    /// Answered otherwise, or failed, before the kill (must never happen).
    refused: Vec<String>,
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = ["--data-dir", dir.path().to_str().unwrap()];
    let mut service = Service::start(&data_dir);
    let base = service.url("");

    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let stop = Arc::new(AtomicBool::new(false));
    // Set just before the kill: a transport error seen while it is false
    // came from a live service.
    let killing = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (base, outcome, stop, killing) =
                (base.clone(), outcome.clone(), stop.clone(), killing.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                for sequence in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // Unique names, so "present" cannot be satisfied by an
                    // older write; the date varies so it is checked too.
                    let name = format!("writer{}seq{}", letters(writer as u64), letters(sequence));
                    let dob = format!(
                        "19{:02}-{:02}-{:02}",
                        sequence % 100,
                        sequence % 12 + 1,
                        sequence % 28 + 1
                    );
                    let response = client
                        .put(format!("{base}/hello/{name}"))
                        .json(&serde_json::json!({"dateOfBirth": dob}))
                        .send();
                    let mut outcome = outcome.lock().unwrap();
                    match response {
                        Ok(response) if response.status() == 204 => {
                            outcome.acknowledged.push((name, dob));
                        }
                        // A live service answered something else: a failure,
                        // whatever the kill does later.
                        Ok(response) => outcome
                            .refused
                            .push(format!("{name}: {}", response.status())),
                        // The process died under us: this write was never
                        // acknowledged. Before the kill it is a failure.
                        Err(err) => {
                            if !killing.load(Ordering::SeqCst) {
                                outcome.refused.push(format!("{name}: {err}"));
                            }
                            break;
                        }
                    }
                }
            })
        })
        .collect();

    // Kill mid-stream, once there is plenty to lose.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (acknowledged, refused) = {
            let outcome = outcome.lock().unwrap();
            (outcome.acknowledged.len(), outcome.refused.clone())
        };
        assert!(refused.is_empty(), "before the kill: {refused:?}");
        if acknowledged >= ACKNOWLEDGED_BEFORE_KILL {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {acknowledged} writes acknowledged after 120 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    killing.store(true, Ordering::SeqCst);
    service.kill();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let Outcome {
        acknowledged,
        refused,
    } = std::mem::take(&mut *outcome.lock().unwrap());
    assert!(refused.is_empty(), "before the kill: {refused:?}");

    let restarted = Service::start(&data_dir);
    let client = reqwest::blocking::Client::new();
    let mut missing = Vec::new();
    for (name, _) in &acknowledged {
        let response = client
            .get(restarted.url(&format!("/hello/{name}")))
            .send()
            .unwrap();
        if response.status() != 200 {
            missing.push(name.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(10)]
    );

    // The greeting does not echo the date; the export does.
    drop(restarted);
    let export = service::command()
        .arg("export")
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let exported = String::from_utf8(export.stdout).unwrap();
    for (name, dob) in &acknowledged {
        let line = format!(r#"{{"username":"{name}","dateOfBirth":"{dob}"}}"#);
        assert!(exported.contains(&line), "{name} lost its date {dob}");
    }
    eprintln!(
        "kill -9 after {} acknowledged writes: all present",
        acknowledged.len()
    );
}
