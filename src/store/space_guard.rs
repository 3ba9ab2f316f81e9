//! Keeps the embedded store away from a full or read-only disk.
//!
//! sled 0.34 treats a failed write (ENOSPC) as fatal: it records a global
//! error, and from then on every operation, reads included, fails until the
//! process restarts, even after space is freed. So the service must never
//! let sled run into a full disk. This decorator refuses writes while the
//! data directory's file system has less than [`MIN_FREE_BYTES`] available
//! or is mounted read-only (as ext4 does to itself on errors): the PUT or
//! DELETE is answered 503, reads go on working, and writes resume by
//! themselves once space returns.

use std::{fs::File, path::Path, sync::Arc};

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::{Record, Store, StoreError};
use crate::domain::{DateOfBirth, Username};

/// Free space below which writes are refused. sled appends to its log in
/// buffers of up to 8 MiB and writes snapshots besides, so the reserve is a
/// few of those; a write is a few hundred bytes, so concurrent writes that
/// all pass the check cannot eat through it.
pub const MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;

pub struct SpaceGuard {
    inner: Arc<dyn Store>,
    /// The data directory, held open: its file system is asked through the
    /// handle, which spares every write the path lookup of `statvfs` (about
    /// three fifths of the check: 1.79 -> 0.74 µs, docs/benchmarks.md).
    data_dir: File,
}

impl SpaceGuard {
    /// Fails when the data directory cannot be opened.
    pub fn new(inner: Arc<dyn Store>, data_dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            inner,
            data_dir: File::open(data_dir)?,
        })
    }

    fn ensure_room(&self) -> Result<(), StoreError> {
        match room(&self.data_dir) {
            Some(Room::ReadOnly) => {
                metrics::counter!("birthday_store_writes_refused_total", "reason" => "read_only")
                    .increment(1);
                Err(StoreError::Unavailable(
                    "the data directory's file system is read-only".into(),
                ))
            }
            Some(Room::Available(available)) if available < MIN_FREE_BYTES => {
                metrics::counter!("birthday_store_writes_refused_total", "reason" => "disk_full")
                    .increment(1);
                Err(StoreError::Unavailable(format!(
                    "the data directory's disk has {} KiB free, less than the {} MiB reserve",
                    available / 1024,
                    MIN_FREE_BYTES / 1024 / 1024
                )))
            }
            // Unknown free space (fstatvfs failed) must not stop writes: sled
            // reports real write errors itself.
            _ => Ok(()),
        }
    }
}

enum Room {
    ReadOnly,
    /// Bytes an unprivileged process may still write.
    Available(u64),
}

#[cfg(unix)]
fn room(dir: &File) -> Option<Room> {
    let stats = rustix::fs::fstatvfs(dir).ok()?;
    Some(
        if stats.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
            Room::ReadOnly
        } else {
            Room::Available(stats.f_bavail.saturating_mul(stats.f_frsize))
        },
    )
}

#[cfg(not(unix))]
fn room(_dir: &File) -> Option<Room> {
    None
}

#[async_trait]
impl Store for SpaceGuard {
    async fn put(&self, username: &Username, date_of_birth: DateOfBirth) -> Result<(), StoreError> {
        self.ensure_room()?;
        self.inner.put(username, date_of_birth).await
    }

    async fn put_many(&self, records: &[Record]) -> Result<(), StoreError> {
        self.ensure_room()?;
        self.inner.put_many(records).await
    }

    async fn get(&self, username: &Username) -> Result<Option<DateOfBirth>, StoreError> {
        self.inner.get(username).await
    }

    async fn delete(&self, username: &Username) -> Result<bool, StoreError> {
        // A delete appends a tombstone to sled's log, so it needs room too.
        self.ensure_room()?;
        self.inner.delete(username).await
    }

    fn export(&self) -> BoxStream<'_, Result<Record, StoreError>> {
        self.inner.export()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}
