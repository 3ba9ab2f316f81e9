//! A [`Store`] decorator that times every operation for `/metrics`.

use std::{sync::Arc, time::Instant};

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::{Record, Store, StoreError};
use crate::domain::{DateOfBirth, Username};

pub struct MeteredStore {
    inner: Arc<dyn Store>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner }
    }
}

/// The histogram of one (operation, outcome), registered once.
fn histogram(operation: &'static str, outcome: &'static str) -> metrics::Histogram {
    use std::{
        collections::HashMap,
        sync::{Mutex, OnceLock},
    };
    static HANDLES: OnceLock<Mutex<HashMap<(&'static str, &'static str), metrics::Histogram>>> =
        OnceLock::new();
    HANDLES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry((operation, outcome))
        .or_insert_with(|| {
            metrics::histogram!(
                "birthday_store_operation_duration_seconds",
                "operation" => operation,
                "outcome" => outcome
            )
        })
        .clone()
}

async fn timed<T>(
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = call.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    histogram(operation, outcome).record(started.elapsed().as_secs_f64());
    result
}

#[async_trait]
impl Store for MeteredStore {
    async fn put(&self, username: &Username, date_of_birth: DateOfBirth) -> Result<(), StoreError> {
        timed("put", self.inner.put(username, date_of_birth)).await
    }

    async fn put_many(&self, records: &[Record]) -> Result<(), StoreError> {
        timed("put_many", self.inner.put_many(records)).await
    }

    async fn get(&self, username: &Username) -> Result<Option<DateOfBirth>, StoreError> {
        timed("get", self.inner.get(username)).await
    }

    async fn delete(&self, username: &Username) -> Result<bool, StoreError> {
        timed("delete", self.inner.delete(username)).await
    }

    fn export(&self) -> BoxStream<'_, Result<Record, StoreError>> {
        self.inner.export()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", self.inner.ping()).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        timed("flush", self.inner.flush()).await
    }
}
