//! Where dates of birth live. [`Store`] is the contract every backend keeps;
//! `tests/store_contract.rs` runs one suite against each of them.

pub mod metered;
pub mod postgres;
pub mod sled_store;
pub mod space_guard;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::domain::{DateOfBirth, Username};

/// One person the service remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub username: Username,
    pub date_of_birth: DateOfBirth,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot serve requests right now (disk, database down).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Stored bytes that no longer decode into a record.
    #[error("a stored record is corrupt: {0}")]
    Corrupt(String),
}

/// A durable map from username to date of birth.
///
/// `put`, `put_many` and `delete` return only once the change is durable: a
/// crash right after they return loses nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Saves or replaces a date of birth (last write wins).
    async fn put(&self, username: &Username, date_of_birth: DateOfBirth) -> Result<(), StoreError>;

    /// Saves many records with one durability barrier (used by `import`).
    async fn put_many(&self, records: &[Record]) -> Result<(), StoreError>;

    async fn get(&self, username: &Username) -> Result<Option<DateOfBirth>, StoreError>;

    /// Forgets a person; `true` when there was a record to remove.
    async fn delete(&self, username: &Username) -> Result<bool, StoreError>;

    /// Every record, in no particular order (used by `export`).
    fn export(&self) -> BoxStream<'_, Result<Record, StoreError>>;

    /// Answers when the backend can serve requests (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Makes everything written so far durable; called at shutdown.
    async fn flush(&self) -> Result<(), StoreError>;
}

/// Which backend to open, and with what settings.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    Sled {
        data_dir: PathBuf,
        cache_mb: u64,
    },
    Postgres {
        url: postgres::DatabaseUrl,
        pool_size: u32,
        /// Bound on every database call; past it the call is `Unavailable`.
        timeout: Duration,
    },
}

/// Opens the backend the settings name.
pub async fn open(settings: &StoreSettings) -> anyhow::Result<Arc<dyn Store>> {
    match settings {
        StoreSettings::Sled { data_dir, cache_mb } => {
            let sled = sled_store::SledStore::open(data_dir, *cache_mb)?;
            let guarded = space_guard::SpaceGuard::new(Arc::new(sled), data_dir)
                .with_context(|| format!("cannot open data directory {}", data_dir.display()))?;
            Ok(Arc::new(guarded))
        }
        StoreSettings::Postgres {
            url,
            pool_size,
            timeout,
        } => Ok(Arc::new(
            postgres::PostgresStore::open(url, *pool_size, *timeout).await?,
        )),
    }
}
