//! `birthday-baseline`: the "speed of light" reference for `just bench`.
//!
//! A bare poem server with the service's two hot routes and nothing else:
//! no OpenAPI layer, no metrics, no tracing, minimal validation. Records live
//! in an in-memory map; `--mode` chooses what a PUT does before its `204`:
//!
//! * `memory`: nothing more (not durable);
//! * `fsync`:  append one line to `--file` and `fdatasync` it, one sync per request;
//! * `group`:  append to the same kind of file through one flusher thread that
//!   serves every writer waiting at that moment with a single `fdatasync`
//!   (group commit).
//!
//! `--preload N` puts the benchmark's users `0..N` into the map before listening,
//! so GET runs look up a map of the same size as the service's store.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{self, Write},
    path::PathBuf,
    sync::{Arc, Condvar, Mutex, RwLock},
    thread,
};

use chrono::{Datelike, NaiveDate, Utc};
use poem::{
    EndpointExt, Route, Server, get, handler,
    http::StatusCode,
    listener::TcpListener,
    web::{Data, Json, Path},
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

mod bench_users;
use bench_users::bench_username;

/// The benchmark's date of birth for user `i`: spread over ~55 years from 1950.
pub fn bench_date_of_birth(i: u64) -> NaiveDate {
    let base = NaiveDate::from_ymd_opt(1950, 1, 1).expect("valid date");
    base + chrono::Days::new((i.wrapping_mul(7919)) % 20_000)
}

fn birthday_in(year: i32, dob: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, dob.month(), dob.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
        .expect("valid date")
}

/// Days from `today` to the next birthday on or after it (29 Feb -> 28 Feb).
fn days_until_next_birthday(dob: NaiveDate, today: NaiveDate) -> i64 {
    let mut next = birthday_in(today.year(), dob);
    if next < today {
        next = birthday_in(today.year() + 1, dob);
    }
    (next - today).num_days()
}

fn valid_username(name: &str) -> bool {
    let mut count = 0usize;
    for c in name.chars() {
        if !c.is_alphabetic() {
            return false;
        }
        count += 1;
    }
    (1..=64).contains(&count)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Memory,
    Fsync,
    Group,
}

type Waiter = (Vec<u8>, oneshot::Sender<io::Result<()>>);

/// Group commit: writers queue their line and wait; one thread takes everything
/// queued at that moment, writes it with one `write` and syncs it with one
/// `fdatasync`, then wakes all of those writers.
struct GroupCommit {
    queue: Mutex<Vec<Waiter>>,
    wake: Condvar,
}

impl GroupCommit {
    fn start(mut file: File) -> Arc<Self> {
        let group = Arc::new(GroupCommit {
            queue: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&group);
        thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(64 * 1024);
                loop {
                    let batch = {
                        let mut queue = worker.queue.lock().expect("queue lock");
                        while queue.is_empty() {
                            queue = worker.wake.wait(queue).expect("queue lock");
                        }
                        std::mem::take(&mut *queue)
                    };
                    buf.clear();
                    for (line, _) in &batch {
                        buf.extend_from_slice(line);
                    }
                    let result = file.write_all(&buf).and_then(|()| file.sync_data());
                    for (_, done) in batch {
                        let _ = done.send(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                        });
                    }
                }
            })
            .expect("spawn group-commit thread");
        group
    }

    async fn append(&self, line: Vec<u8>) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.queue.lock().expect("queue lock").push((line, tx));
        self.wake.notify_one();
        rx.await
            .map_err(|_| io::Error::other("group-commit thread gone"))?
    }
}

struct State {
    users: RwLock<HashMap<String, NaiveDate>>,
    mode: Mode,
    file: Option<Arc<Mutex<File>>>,
    group: Option<Arc<GroupCommit>>,
}

#[derive(Deserialize)]
struct PutBody {
    #[serde(rename = "dateOfBirth")]
    date_of_birth: String,
}

#[derive(Serialize)]
struct Greeting {
    message: String,
}

#[handler]
async fn get_hello(
    Path(username): Path<String>,
    state: Data<&Arc<State>>,
) -> poem::Result<Json<Greeting>> {
    let dob = state
        .users
        .read()
        .expect("map lock")
        .get(&username)
        .copied();
    let Some(dob) = dob else {
        return Err(poem::Error::from_status(StatusCode::NOT_FOUND));
    };
    let today = Utc::now().date_naive();
    let message = match days_until_next_birthday(dob, today) {
        0 => format!("Hello, {username}! Happy birthday!"),
        n => format!("Hello, {username}! Your birthday is in {n} day(s)"),
    };
    Ok(Json(Greeting { message }))
}

#[handler]
async fn put_hello(
    Path(username): Path<String>,
    Json(body): Json<PutBody>,
    state: Data<&Arc<State>>,
) -> poem::Result<StatusCode> {
    let today = Utc::now().date_naive();
    let dob = NaiveDate::parse_from_str(&body.date_of_birth, "%Y-%m-%d")
        .ok()
        .filter(|d| *d < today && body.date_of_birth.len() == 10);
    let (true, Some(dob)) = (valid_username(&username), dob) else {
        return Err(poem::Error::from_status(StatusCode::BAD_REQUEST));
    };
    match state.mode {
        Mode::Memory => {}
        Mode::Fsync => {
            let file = Arc::clone(state.file.as_ref().expect("fsync mode has a file"));
            let line = format!("{username}\t{dob}\n").into_bytes();
            tokio::task::spawn_blocking(move || -> io::Result<()> {
                let mut file = file.lock().expect("file lock");
                file.write_all(&line)?;
                file.sync_data()
            })
            .await
            .map_err(|_| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?
            .map_err(|_| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
        }
        Mode::Group => {
            let group = state.group.as_ref().expect("group mode has a committer");
            group
                .append(format!("{username}\t{dob}\n").into_bytes())
                .await
                .map_err(|_| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
        }
    }
    state.users.write().expect("map lock").insert(username, dob);
    Ok(StatusCode::NO_CONTENT)
}

#[handler]
fn ready() -> &'static str {
    "ok"
}

struct Args {
    listen: String,
    mode: Mode,
    file: PathBuf,
    preload: u64,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "birthday-baseline: {msg}\nusage: birthday-baseline [--listen ADDR] [--mode memory|fsync|group] [--file PATH] [--preload N]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        listen: "127.0.0.1:8081".into(),
        mode: Mode::Memory,
        file: PathBuf::from("baseline.log"),
        preload: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--listen" => args.listen = value(),
            "--file" => args.file = PathBuf::from(value()),
            "--preload" => {
                args.preload = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--preload needs a number"))
            }
            "--mode" => {
                args.mode = match value().as_str() {
                    "memory" => Mode::Memory,
                    "fsync" => Mode::Fsync,
                    "group" => Mode::Group,
                    other => usage(&format!("unknown mode {other:?}")),
                }
            }
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown flag {other:?}")),
        }
    }
    args
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let args = parse_args();
    let mut users = HashMap::with_capacity(args.preload as usize);
    for i in 0..args.preload {
        users.insert(bench_username(i), bench_date_of_birth(i));
    }
    let open_log = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.file)
    };
    let (file, group) = match args.mode {
        Mode::Memory => (None, None),
        Mode::Fsync => (Some(Arc::new(Mutex::new(open_log()?))), None),
        Mode::Group => (None, Some(GroupCommit::start(open_log()?))),
    };
    let state = Arc::new(State {
        users: RwLock::new(users),
        mode: args.mode,
        file,
        group,
    });
    let app = Route::new()
        .at("/hello/:username", get(get_hello).put(put_hello))
        .at("/readyz", get(ready))
        .data(state);
    eprintln!(
        "birthday-baseline listening on {} (mode {:?}, {} users preloaded)",
        args.listen, args.mode, args.preload
    );
    Server::new(TcpListener::bind(args.listen)).run(app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_letters_and_distinct() {
        assert_eq!(bench_username(0), "useraaaaa");
        assert_eq!(bench_username(1), "useraaaab");
        assert_eq!(bench_username(26), "useraaaba");
        assert!(valid_username(&bench_username(999_999)));
    }

    #[test]
    fn next_birthday() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(days_until_next_birthday(d(2000, 5, 2), d(2026, 5, 1)), 1);
        assert_eq!(days_until_next_birthday(d(2000, 5, 1), d(2026, 5, 1)), 0);
        assert_eq!(days_until_next_birthday(d(2000, 2, 29), d(2026, 2, 27)), 1);
        assert_eq!(days_until_next_birthday(d(2000, 4, 30), d(2026, 5, 1)), 364);
    }
}
