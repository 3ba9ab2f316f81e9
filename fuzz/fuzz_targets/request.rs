//! Whole requests through the real public routes and request limits, on an
//! in-memory store: whatever the method, path, query, headers and body, the
//! answer is never a 5xx, and every error is a problem document.
#![no_main]

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, LazyLock, Mutex},
};

use async_trait::async_trait;
use birthday_api::{
    api::{self, AppState},
    config::Clock,
    domain::{DateOfBirth, Username},
    net::Limits,
    store::{Record, Store, StoreError},
};
use chrono::NaiveDate;
use futures::stream::{self, BoxStream, StreamExt};
use libfuzzer_sys::fuzz_target;
use poem::{
    Endpoint, Request,
    http::{Method, header},
};

#[derive(Default)]
struct MemoryStore(Mutex<HashMap<String, DateOfBirth>>);

#[async_trait]
impl Store for MemoryStore {
    async fn put(&self, username: &Username, date_of_birth: DateOfBirth) -> Result<(), StoreError> {
        let mut records = self.0.lock().expect("not poisoned");
        // Bounded, so a long run does not grow without end.
        if records.len() > 1000 {
            records.clear();
        }
        records.insert(username.as_str().to_owned(), date_of_birth);
        Ok(())
    }
    async fn put_many(&self, records: &[Record]) -> Result<(), StoreError> {
        for record in records {
            self.put(&record.username, record.date_of_birth).await?;
        }
        Ok(())
    }
    async fn get(&self, username: &Username) -> Result<Option<DateOfBirth>, StoreError> {
        Ok(self
            .0
            .lock()
            .expect("not poisoned")
            .get(username.as_str())
            .copied())
    }
    async fn delete(&self, username: &Username) -> Result<bool, StoreError> {
        Ok(self
            .0
            .lock()
            .expect("not poisoned")
            .remove(username.as_str())
            .is_some())
    }
    fn export(&self) -> BoxStream<'_, Result<Record, StoreError>> {
        stream::empty().boxed()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

type Answer = Pin<Box<dyn Future<Output = poem::Response> + Send>>;

struct Harness {
    runtime: tokio::runtime::Runtime,
    endpoint: Box<dyn Fn(Request) -> Answer + Send + Sync>,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let state = Arc::new(AppState {
        store: Arc::new(MemoryStore::default()),
        clock: Clock::Fixed(NaiveDate::from_ymd_opt(2024, 2, 29).expect("a date")),
        write_token: None,
    });
    let routes = Arc::new(api::public_endpoint(state, Limits::default()));
    Harness {
        runtime,
        endpoint: Box::new(move |request| {
            let routes = routes.clone();
            Box::pin(async move { routes.get_response(request).await })
        }),
    }
});

const METHODS: [Method; 6] = [
    Method::GET,
    Method::PUT,
    Method::DELETE,
    Method::POST,
    Method::HEAD,
    Method::OPTIONS,
];
const CONTENT_TYPES: [Option<&str>; 5] = [
    None,
    Some("application/json"),
    Some("application/problem+json; charset=utf-8"),
    Some("text/plain"),
    Some("application/json; boundary=\u{7f}"),
];

fuzz_target!(|input: (u8, u8, &str, &str, &[u8])| {
    let (method, content_type, path, query, body) = input;
    let uri = format!("/hello/{path}?{query}");
    let Ok(uri) = uri.parse::<poem::http::Uri>() else {
        return;
    };
    let mut request = Request::builder()
        .method(METHODS[usize::from(method) % METHODS.len()].clone())
        .uri(uri);
    if let Some(content_type) = CONTENT_TYPES[usize::from(content_type) % CONTENT_TYPES.len()] {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let request = request
        .header(header::CONTENT_LENGTH, body.len())
        .body(body.to_vec());
    // The runtime's own block_on, so tasks the limits layer spawns (a PUT
    // runs to its end even past the request timeout) and timers are driven.
    let response = HARNESS.runtime.block_on((HARNESS.endpoint)(request));
    let status = response.status();
    assert!(!status.is_server_error(), "{status}");
    if status.is_client_error() {
        assert_eq!(
            response.content_type(),
            Some("application/problem+json"),
            "{status}"
        );
    }
});
