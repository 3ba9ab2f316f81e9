//! A [`Store`] decorator that times every operation for `/metrics`.

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

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

/// The store operations that are timed, each with its own histograms.
#[derive(Clone, Copy)]
enum Operation {
    Put,
    PutMany,
    Get,
    Delete,
    Ping,
    Flush,
}

impl Operation {
    const ALL: [Operation; 6] = [
        Operation::Put,
        Operation::PutMany,
        Operation::Get,
        Operation::Delete,
        Operation::Ping,
        Operation::Flush,
    ];

    fn label(self) -> &'static str {
        match self {
            Operation::Put => "put",
            Operation::PutMany => "put_many",
            Operation::Get => "get",
            Operation::Delete => "delete",
            Operation::Ping => "ping",
            Operation::Flush => "flush",
        }
    }
}

/// One operation's histograms: `[ok, error]`.
type OutcomeHistograms = [metrics::Histogram; 2];

/// The histogram of one (operation, outcome). All of them are registered on
/// first use, with the recorder installed by then, so that recording is an
/// index rather than the recorder's lookup by name and labels.
fn histogram(operation: Operation, ok: bool) -> &'static metrics::Histogram {
    static HISTOGRAMS: OnceLock<[OutcomeHistograms; Operation::ALL.len()]> = OnceLock::new();
    let histograms = HISTOGRAMS.get_or_init(|| {
        Operation::ALL.map(|operation| {
            ["ok", "error"].map(|outcome| {
                metrics::histogram!(
                    "birthday_store_operation_duration_seconds",
                    "operation" => operation.label(),
                    "outcome" => outcome
                )
            })
        })
    });
    &histograms[operation as usize][usize::from(!ok)]
}

async fn timed<T>(
    operation: Operation,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = call.await;
    histogram(operation, result.is_ok()).record(started.elapsed().as_secs_f64());
    result
}

#[async_trait]
impl Store for MeteredStore {
    async fn put(&self, username: &Username, date_of_birth: DateOfBirth) -> Result<(), StoreError> {
        timed(Operation::Put, self.inner.put(username, date_of_birth)).await
    }

    async fn put_many(&self, records: &[Record]) -> Result<(), StoreError> {
        timed(Operation::PutMany, self.inner.put_many(records)).await
    }

    async fn get(&self, username: &Username) -> Result<Option<DateOfBirth>, StoreError> {
        timed(Operation::Get, self.inner.get(username)).await
    }

    async fn delete(&self, username: &Username) -> Result<bool, StoreError> {
        timed(Operation::Delete, self.inner.delete(username)).await
    }

    fn export(&self) -> BoxStream<'_, Result<Record, StoreError>> {
        self.inner.export()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        timed(Operation::Ping, self.inner.ping()).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        timed(Operation::Flush, self.inner.flush()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `histogram` indexes by `operation as usize`, so `ALL` must list the
    /// operations in their declaration order.
    #[test]
    fn all_operations_are_listed_in_declaration_order() {
        for (index, operation) in Operation::ALL.into_iter().enumerate() {
            assert_eq!(operation as usize, index, "{}", operation.label());
        }
    }
}
