//! PostgreSQL goes away while the service runs: `/readyz` answers 503, API
//! calls answer a 503 problem document within the configured timeout, and
//! once the database is back the same process recovers.
//!
//! Stopping the machine's shared PostgreSQL would break every other test
//! running at that moment, so this test starts a private throwaway cluster
//! (`initdb` + `pg_ctl`, as the `postgres` user when run as root) and stops,
//! freezes (SIGSTOP: connections hang instead of failing fast) and restarts
//! that one. Needs `TEST_DATABASE_URL` set (the switch for all PostgreSQL
//! tests) and the PostgreSQL server binaries (`PG_BIN_DIR`, else the newest
//! `/usr/lib/postgresql/*/bin`); skipped, saying why, without them.

#[path = "common/pg.rs"]
mod pg;
#[path = "common/service.rs"]
mod service;

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::{Value, json};
use service::Service;
use sqlx::{Connection as _, Executor as _, PgConnection};

const TIMEOUT_MS: u64 = 1000;
/// The timeout plus scheduling slack on a loaded two-core CI machine.
const BOUND: Duration = Duration::from_millis(TIMEOUT_MS + 1500);

/// The private cluster listens on a Unix socket in its own directory only,
/// so this number names the socket file and no TCP port is taken.
const PORT: u16 = 5432;

/// A PostgreSQL cluster that belongs to this test alone.
struct PrivateCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_postgres_user: bool,
}

impl PrivateCluster {
    /// `Err` says why the test cannot run here.
    fn create() -> Result<Self, String> {
        let bin = server_binaries().ok_or("no PostgreSQL server binaries (set PG_BIN_DIR)")?;
        let as_postgres_user = std::fs::metadata("/proc/self")
            .map(|meta| meta.uid() == 0)
            .unwrap_or(false);
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        if as_postgres_user {
            // initdb refuses to run as root.
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path()))?;
        }
        let cluster = Self {
            bin,
            dir,
            as_postgres_user,
        };
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        cluster.start()?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Connects through the socket in the cluster's directory.
    fn url(&self) -> String {
        let socket_dir = self.dir.path().display().to_string();
        let socket_dir =
            percent_encoding::utf8_percent_encode(&socket_dir, percent_encoding::NON_ALPHANUMERIC);
        format!("postgres://postgres@localhost:{PORT}/postgres?host={socket_dir}")
    }

    fn pg(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        run(command.args(args).current_dir(self.dir.path()))
    }

    fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {PORT} -k {} -c listen_addresses='' -c shared_buffers=16MB -c max_connections=40",
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .map(drop)
    }

    fn stop(&self) -> Result<(), String> {
        self.pg("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
            .map(drop)
    }

    /// Sends `signal` to the postmaster and every process it forked.
    fn signal_all(&self, signal: &str) {
        let Some(postmaster) = self.postmaster_pid() else {
            return;
        };
        let mut pids = vec![postmaster.to_string()];
        pids.extend(children_of(postmaster).iter().map(u32::to_string));
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .args(&pids)
            .status();
    }

    fn postmaster_pid(&self) -> Option<u32> {
        let pid_file = Path::new(&self.data()).join("postmaster.pid");
        std::fs::read_to_string(pid_file)
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // A frozen postmaster cannot stop.
        self.signal_all("CONT");
        let _ = self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

fn server_binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn run(command: &mut Command) -> Result<Output, String> {
    let output = command
        .output()
        .map_err(|err| format!("{command:?}: {err}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Direct children of `parent`, from `/proc/<pid>/stat`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name is in parentheses and may contain spaces.
            let after_name = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = after_name.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

struct Api {
    client: reqwest::Client,
    service: Service,
}

impl Api {
    async fn put(&self, user: &str, date: &str) -> reqwest::Response {
        self.client
            .put(self.service.url(&format!("/hello/{user}")))
            .json(&json!({ "dateOfBirth": date }))
            .send()
            .await
            .expect("PUT answered")
    }

    async fn get(&self, user: &str) -> reqwest::Response {
        self.client
            .get(self.service.url(&format!("/hello/{user}")))
            .send()
            .await
            .expect("GET answered")
    }

    async fn readiness(&self) -> reqwest::Response {
        self.client
            .get(self.service.admin_url("/readyz"))
            .send()
            .await
            .expect("readyz answered")
    }

    async fn ready(&self) -> StatusCode {
        self.readiness().await.status()
    }

    /// While the database is unreachable: readiness and every API call
    /// answer 503 within the timeout, all with a problem document.
    async fn assert_unavailable(&self, what: &str) {
        let started = Instant::now();
        let readiness = self.readiness().await;
        assert!(
            started.elapsed() < BOUND,
            "{what}: /readyz took {:?}",
            started.elapsed()
        );
        assert_eq!(
            readiness.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}"
        );
        assert_eq!(
            readiness.headers()["content-type"],
            "application/problem+json",
            "{what}"
        );
        let problem: Value = readiness.json().await.expect("problem document");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| detail.starts_with("the store does not answer")),
            "{what}: {problem}"
        );
        self.assert_api_unavailable(what, "1985-06-15").await;
    }

    /// Every API call answers a 503 problem document within the timeout;
    /// the PUTs among them write `put_date`.
    async fn assert_api_unavailable(&self, what: &str, put_date: &str) {
        // More callers at once than the pool has connections.
        let calls = (0..12).map(|i| async move {
            let started = Instant::now();
            let response = if i % 2 == 0 {
                self.get("alice").await
            } else {
                self.put("bob", put_date).await
            };
            (response, started.elapsed())
        });
        let answers = futures::future::join_all(calls).await;
        let slowest = answers.iter().map(|(_, took)| *took).max();
        eprintln!("{what}: 12 concurrent API calls, slowest 503 after {slowest:?}");
        for (response, took) in answers {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
            assert!(took < BOUND, "{what}: an API call took {took:?}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{what}"
            );
            let problem: Value = response.json().await.expect("problem document");
            assert_eq!(problem["status"], 503, "{what}: {problem}");
        }
        // The process itself stays alive throughout.
        let health = self
            .client
            .get(self.service.admin_url("/healthz"))
            .send()
            .await
            .expect("healthz answered");
        assert_eq!(health.status(), StatusCode::OK, "{what}");
    }

    /// Waits for readiness, then checks old data and new writes.
    async fn assert_recovers(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ready().await != StatusCode::OK {
            assert!(
                Instant::now() < deadline,
                "{what}: not ready again after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(self.get("alice").await.status(), StatusCode::OK, "{what}");
        assert_eq!(
            self.put("bob", "1985-06-15").await.status(),
            StatusCode::NO_CONTENT,
            "{what}"
        );
        assert_eq!(self.get("bob").await.status(), StatusCode::OK, "{what}");
    }
}

/// The date of birth stored for `user`, read by SQL.
async fn stored_date(connection: &mut PgConnection, user: &str) -> Option<NaiveDate> {
    sqlx::query_scalar("SELECT date_of_birth FROM people WHERE username = $1")
        .bind(user)
        .fetch_optional(connection)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_503_while_postgresql_is_gone_and_recovers_without_restart() {
    if pg::admin_url().is_none() {
        return;
    }
    let cluster = match PrivateCluster::create() {
        Ok(cluster) => cluster,
        Err(reason) => {
            pg::skipped(&format!(
                "cannot run a private PostgreSQL cluster: {reason}"
            ));
            return;
        }
    };
    let timeout = TIMEOUT_MS.to_string();
    let mut api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        service: Service::start(&[
            "--database-url",
            &cluster.url(),
            "--database-timeout-ms",
            &timeout,
            "--database-pool-size",
            "4",
        ]),
    };
    assert_eq!(
        api.put("alice", "1990-05-17").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.get("alice").await.status(), StatusCode::OK);
    assert_eq!(api.ready().await, StatusCode::OK);

    // Stopped: connections are refused at once.
    cluster.stop().expect("stop PostgreSQL");
    api.assert_unavailable("PostgreSQL stopped").await;
    cluster.start().expect("start PostgreSQL again");
    api.assert_recovers("after restart").await;

    // Frozen: connections and queries hang; only the timeout ends them.
    cluster.signal_all("STOP");
    api.assert_unavailable("PostgreSQL frozen").await;
    cluster.signal_all("CONT");
    api.assert_recovers("after thaw").await;

    // Locked: the database answers, but another session holds the table (a
    // long migration, a stuck transaction). Readiness stays up; the API
    // answers 503 in time, and the server abandons those statements too, so
    // none of the refused PUTs lands once the lock is gone.
    let mut admin = PgConnection::connect(&cluster.url()).await.unwrap();
    let before = stored_date(&mut admin, "bob").await;
    assert_eq!(before, NaiveDate::from_ymd_opt(1985, 6, 15));
    let mut locker = PgConnection::connect(&cluster.url()).await.unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("LOCK TABLE people IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    api.assert_api_unavailable("table locked", "1970-01-01")
        .await;
    assert_eq!(
        api.ready().await,
        StatusCode::OK,
        "the database still answers"
    );
    locker.execute("ROLLBACK").await.unwrap();
    let _ = locker.close().await;
    // Once none of the service's statements is still running, none of the
    // refused PUTs can land any more.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let busy: Vec<(i32, String, String)> = sqlx::query_as(
            "SELECT pid, coalesce(state, ''), coalesce(query, '') FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'birthday-api' \
             AND state IS DISTINCT FROM 'idle'",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        if busy.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service's statements still run 30 s after the lock: {busy:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stored_date(&mut admin, "bob").await,
        before,
        "a PUT that answered 503 was applied later"
    );
    let _ = admin.close().await;

    assert!(
        api.service.is_running(),
        "the first process served throughout"
    );
    let log = api.service.log();
    assert!(
        log.contains("store operation failed"),
        "the outage was logged"
    );
    assert!(
        !log.contains("1990-05-17") && !log.contains("1985-06-15"),
        "a date of birth reached a log"
    );
}
