//! The embedded default: a sled database in one directory, owned by one
//! process.
//!
//! Durability uses group commit. sled 0.34's `flush_async` deadlocks when
//! several callers flush at once (sled issue 1308), so one thread owns all
//! flushing: every writer queues a waiter after its insert, and the thread
//! answers everyone waiting at that moment with a single blocking `flush()`.
//! Concurrent PUTs therefore share fsyncs instead of queueing behind them.

use std::{
    fs::{File, OpenOptions},
    path::Path,
    thread::{self, JoinHandle},
};

use anyhow::Context;
use async_trait::async_trait;
use chrono::{Datelike as _, NaiveDate};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::{Record, Store, StoreError};
use crate::domain::{DateOfBirth, Username};

pub struct SledStore {
    db: sled::Db,
    group_commit: GroupCommit,
    /// Held for the store's life. Last, so that it is released only after
    /// the group commit has closed sled.
    _directory_lock: File,
}

impl SledStore {
    /// Opens (creating if needed) the database in `data_dir`. Fails at once
    /// when another process holds the directory.
    pub fn open(data_dir: &Path, cache_mb: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let directory_lock = lock_data_dir(data_dir)?;
        let db = sled::Config::new()
            .path(data_dir)
            .cache_capacity(cache_mb.saturating_mul(1024 * 1024))
            .open()
            .with_context(|| format!("cannot open the sled database in {}", data_dir.display()))?;
        let group_commit = GroupCommit::start(db.clone(), &data_dir.join("db"))?;
        Ok(Self {
            db,
            group_commit,
            _directory_lock: directory_lock,
        })
    }

    async fn make_durable(&self) -> Result<(), StoreError> {
        self.group_commit.wait_for_flush().await
    }
}

#[async_trait]
impl Store for SledStore {
    async fn put(&self, username: &Username, date_of_birth: DateOfBirth) -> Result<(), StoreError> {
        self.db
            .insert(username.as_str(), &encode(date_of_birth))
            .map_err(unavailable)?;
        self.make_durable().await
    }

    async fn put_many(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for record in records {
            batch.insert(record.username.as_str(), &encode(record.date_of_birth));
        }
        self.db.apply_batch(batch).map_err(unavailable)?;
        self.make_durable().await
    }

    async fn get(&self, username: &Username) -> Result<Option<DateOfBirth>, StoreError> {
        match self.db.get(username.as_str()).map_err(unavailable)? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn delete(&self, username: &Username) -> Result<bool, StoreError> {
        let removed = self
            .db
            .remove(username.as_str())
            .map_err(unavailable)?
            .is_some();
        if removed {
            self.make_durable().await?;
        }
        Ok(removed)
    }

    fn export(&self) -> BoxStream<'_, Result<Record, StoreError>> {
        stream::iter(self.db.iter())
            .map(|entry| {
                let (key, value) = entry.map_err(unavailable)?;
                let name = std::str::from_utf8(&key)
                    .map_err(|_| StoreError::Corrupt("a username is not UTF-8".into()))?;
                let username = Username::parse(name)
                    .map_err(|err| StoreError::Corrupt(format!("stored username: {err}")))?;
                Ok(Record {
                    username,
                    date_of_birth: decode(&value)?,
                })
            })
            .boxed()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if !self.group_commit.is_running() {
            return Err(StoreError::Unavailable("the flusher thread stopped".into()));
        }
        // After a failed write sled refuses reads too until restarted, so
        // readiness reads something rather than trusting the flusher alone.
        self.db.get(b"").map(drop).map_err(unavailable)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.make_durable().await
    }
}

/// Locks the data directory for this process, or says which directory
/// another process holds. sled locks its own files too, but reports a
/// second process only as an I/O error like any other.
fn lock_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join("birthday-api.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match try_lock_exclusive(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(anyhow::anyhow!(
            "data directory {} is in use by another birthday-api process",
            data_dir.display()
        )),
        Err(err) => Err(err).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// `Ok(false)` when another process holds the lock.
#[cfg(unix)]
fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    use rustix::{fs::FlockOperation, io::Errno};
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Elsewhere sled's own lock is the only one.
#[cfg(not(unix))]
fn try_lock_exclusive(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// Dates are stored as the number of days since 0001-01-01 (4 bytes,
/// big-endian): compact, and never mistaken for text in a log.
fn encode(date_of_birth: DateOfBirth) -> [u8; 4] {
    date_of_birth.date().num_days_from_ce().to_be_bytes()
}

fn decode(bytes: &[u8]) -> Result<DateOfBirth, StoreError> {
    let days: [u8; 4] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a stored date has the wrong length".into()))?;
    NaiveDate::from_num_days_from_ce_opt(i32::from_be_bytes(days))
        .and_then(|date| DateOfBirth::from_stored(date).ok())
        .ok_or_else(|| StoreError::Corrupt("a stored date is out of range".into()))
}

fn unavailable(err: sled::Error) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

type FlushWaiter = oneshot::Sender<Result<(), String>>;

/// One thread that turns many durability requests into few `flush()` calls.
struct GroupCommit {
    waiters: Option<mpsc::UnboundedSender<FlushWaiter>>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// `log_file` is sled's data file. sled's `flush()` ends with
    /// `sync_file_range`, which survives a process crash but neither flushes
    /// the device's write cache nor the file's metadata; one `fdatasync` of
    /// the file per batch makes a 204 survive a power loss too.
    fn start(db: sled::Db, log_file: &Path) -> anyhow::Result<Self> {
        let log_file = std::fs::File::open(log_file)
            .with_context(|| format!("cannot open {} for syncing", log_file.display()))?;
        let (waiters, mut queue) = mpsc::unbounded_channel::<FlushWaiter>();
        let thread = thread::Builder::new()
            .name("sled-group-commit".into())
            .spawn(move || {
                while let Some(first) = queue.blocking_recv() {
                    // Let the writers that are already running queue up
                    // first: sharing this CPU, the first waiter's wake-up
                    // would otherwise start a flush for one or two writes.
                    // With a CPU to spare this returns at once.
                    thread::yield_now();
                    let mut batch = vec![first];
                    while let Ok(next) = queue.try_recv() {
                        batch.push(next);
                    }
                    let outcome = db
                        .flush()
                        .map_err(|err| err.to_string())
                        .and_then(|_| log_file.sync_data().map_err(|err| err.to_string()));
                    metrics::histogram!("birthday_store_group_commit_batch_size")
                        .record(batch.len() as f64);
                    for waiter in batch {
                        // A waiter whose request was cancelled is gone; fine.
                        let _ = waiter.send(outcome.clone());
                    }
                }
            })
            .context("cannot start the group-commit thread")?;
        Ok(Self {
            waiters: Some(waiters),
            thread: Some(thread),
        })
    }

    async fn wait_for_flush(&self) -> Result<(), StoreError> {
        let (done, flushed) = oneshot::channel();
        self.waiters
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the store is closing".into()))?
            .send(done)
            .map_err(|_| StoreError::Unavailable("the flusher thread stopped".into()))?;
        flushed
            .await
            .map_err(|_| StoreError::Unavailable("the flusher thread stopped".into()))?
            .map_err(StoreError::Unavailable)
    }

    fn is_running(&self) -> bool {
        self.waiters
            .as_ref()
            .is_some_and(|waiters| !waiters.is_closed())
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the queue ends the thread; joining it releases its handle on
        // the database, so the directory lock is free once the store is gone.
        self.waiters.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
