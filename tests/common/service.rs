//! The real `birthday-api` binary as a child process, on ports it picked
//! itself (it is started on port 0 and reports the bound addresses in its
//! start-up log line, so no port can be taken between choosing and binding).

// Each test crate includes this file and uses a different part of it.
#![allow(dead_code)]

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
    time::Duration,
};

pub const BINARY: &str = env!("CARGO_BIN_EXE_birthday-api");

/// A `birthday-api` command with no configuration inherited from the
/// environment the tests run in.
pub fn command() -> Command {
    let mut command = Command::new(BINARY);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name == "DATABASE_URL" || name.starts_with("BIRTHDAY_") {
            command.env_remove(&name);
        }
    }
    command
}

/// A running `birthday-api serve`, killed (SIGKILL) when dropped.
pub struct Service {
    child: Child,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// Reads the child's stderr into `log` until the child is gone.
    log_reader: Option<JoinHandle<()>>,
}

impl Service {
    /// Starts `serve` with `args` on free ports (JSON logs unless `args`
    /// pick a format); waits until it listens.
    pub fn start(args: &[&str]) -> Self {
        Self::try_start(args).unwrap_or_else(|err| panic!("birthday-api did not start: {err}"))
    }

    /// Starts `serve` as [`Service::start`] does, logging what `RUST_LOG`
    /// `filter` lets through (`start` uses `info`).
    pub fn start_with_log_filter(args: &[&str], filter: &str) -> Self {
        Self::try_start_with_log_filter(args, filter)
            .unwrap_or_else(|err| panic!("birthday-api did not start: {err}"))
    }

    pub fn try_start(args: &[&str]) -> Result<Self, String> {
        Self::try_start_with_log_filter(args, "info")
    }

    /// Starts the binary with no subcommand, which must mean `serve`.
    pub fn start_without_subcommand(args: &[&str]) -> Self {
        Self::spawn(&[], args, "info")
            .unwrap_or_else(|err| panic!("birthday-api did not start: {err}"))
    }

    fn try_start_with_log_filter(args: &[&str], filter: &str) -> Result<Self, String> {
        Self::spawn(&["serve"], args, filter)
    }

    fn spawn(subcommand: &[&str], args: &[&str], filter: &str) -> Result<Self, String> {
        let log_format: &[&str] = if args.contains(&"--log-format") {
            &[]
        } else {
            &["--log-format", "json"]
        };
        let mut child = command()
            .args(subcommand)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(log_format)
            .args(args)
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot run {BINARY}: {err}"))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addresses, found) = mpsc::channel();
        let lines = log.clone();
        // Keeps reading after start-up too: a full pipe would block the child.
        let log_reader = std::thread::spawn(move || {
            let mut addresses = Some(addresses);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(found) = start_up_addresses(&line)
                    && let Some(sender) = addresses.take()
                {
                    let _ = sender.send(found);
                }
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        });
        match found.recv_timeout(Duration::from_secs(60)) {
            Ok((public, admin)) => Ok(Self {
                child,
                public,
                admin,
                log,
                log_reader: Some(log_reader),
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let _ = log_reader.join();
                let log = log.lock().map(|lines| lines.join("\n")).unwrap_or_default();
                Err(format!(
                    "no start-up line (exit: {status:?}); stderr:\n{log}"
                ))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .map(|lines| lines.join("\n"))
            .unwrap_or_default()
    }

    /// `kill -9`: no shutdown, no final flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.read_log_to_the_end();
    }

    /// Sends SIGTERM and returns at once.
    pub fn send_sigterm(&self) {
        self.send_signal("TERM");
    }

    /// Sends the signal `name` (`TERM`, `INT`, ...) and returns at once.
    pub fn send_signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status();
    }

    /// SIGTERM, then the exit code once the process is gone (and all it
    /// logged is in [`Service::log`]).
    pub fn terminate(&mut self) -> Option<i32> {
        self.stop_with("TERM")
    }

    /// Sends the signal `name`, then returns the exit code once the process
    /// is gone (and all it logged is in [`Service::log`]).
    pub fn stop_with(&mut self, name: &str) -> Option<i32> {
        self.send_signal(name);
        let code = self.child.wait().ok().and_then(|status| status.code());
        self.read_log_to_the_end();
        code
    }

    /// Once the child has exited, waits until its last lines are read: the
    /// pipe may still hold some when `wait` returns.
    fn read_log_to_the_end(&mut self) {
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
    }

    /// `false` once the process has exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `serving on http://PUBLIC, Swagger UI …, operations on http://ADMIN`.
fn start_up_addresses(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let address_after = |marker: &str| -> Option<SocketAddr> {
        let rest = &line[line.find(marker)? + marker.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']')))
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    };
    Some((
        address_after("serving on http://")?,
        address_after("operations on http://")?,
    ))
}
