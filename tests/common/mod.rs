//! Shared by the integration tests: start the application in-process on
//! port 0 with a fresh data dir. (`service.rs` starts the real binary.)
#![allow(dead_code)] // each test crate uses a different part of this module

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use birthday_api::{
    api::auth::WriteToken,
    config::{Clock, Settings},
    startup::Application,
    store::StoreSettings,
};
use chrono::NaiveDate;
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};

/// The "today" in-process tests run on unless they pick another one.
pub fn default_today() -> NaiveDate {
    date("2026-11-28")
}

pub fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test dates are valid")
}

/// Settings for an in-process app on loopback port 0.
pub fn test_settings(data_dir: &Path) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        admin_listen: "127.0.0.1:0".parse().expect("valid address"),
        store: StoreSettings::Sled {
            data_dir: data_dir.to_path_buf(),
            cache_mb: 8,
        },
        clock: Clock::Fixed(default_today()),
        write_token: None,
        shutdown_timeout: Duration::from_secs(5),
        limits: Default::default(),
    }
}

/// A running in-process application.
pub struct TestApp {
    pub address: String,
    pub admin_address: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<anyhow::Result<()>>>,
    _owned_dir: Option<Arc<TempDir>>,
}

impl TestApp {
    /// A fresh application on a fresh data dir.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A fresh data dir, with `adjust` applied to the default test settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = Arc::new(TempDir::new().expect("temp dir"));
        let mut settings = test_settings(dir.path());
        adjust(&mut settings);
        Self::start(settings, Some(dir)).await
    }

    pub async fn start(settings: Settings, owned_dir: Option<Arc<TempDir>>) -> Self {
        let data_dir = match &settings.store {
            StoreSettings::Sled { data_dir, .. } => data_dir.clone(),
            #[allow(unreachable_patterns)]
            _ => PathBuf::new(),
        };
        let app = Application::build(settings)
            .await
            .expect("application builds");
        let address = format!("http://{}", app.public_addr());
        let admin_address = format!("http://{}", app.admin_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            address,
            admin_address,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            data_dir,
            stop: Some(stop),
            running: Some(running),
            _owned_dir: owned_dir,
        }
    }

    /// Stops gracefully and hands back the data dir for a restart.
    pub async fn stop(mut self) -> Option<Arc<TempDir>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            running.await.expect("server task").expect("clean shutdown");
        }
        self._owned_dir.take()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_address)
    }

    pub async fn put_json(&self, username: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/hello/{username}")))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn put_date(&self, username: &str, date_of_birth: &str) -> reqwest::Response {
        self.put_json(
            username,
            serde_json::json!({ "dateOfBirth": date_of_birth }),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// The Prometheus text of the operations port's `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("metrics text")
    }

    /// The greeting message for `username`, asserting a 200 JSON answer.
    pub async fn greeting(&self, username: &str) -> String {
        let response = self.get(&format!("/hello/{username}")).await;
        assert_eq!(response.status(), 200, "GET /hello/{username}");
        let body: serde_json::Value = response.json().await.expect("json body");
        let object = body.as_object().expect("an object");
        assert_eq!(object.len(), 1, "exactly one member: {body}");
        object["message"]
            .as_str()
            .expect("message is a string")
            .to_owned()
    }
}

pub fn token(text: &str) -> WriteToken {
    text.parse().expect("valid token")
}

/// Asserts `response` is a problem document with `status`; returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem json");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], "about:blank", "{body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}
