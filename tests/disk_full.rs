//! A full or read-only disk: PUT and DELETE answer a 503 problem (never a
//! 204), GET keeps working, and once space returns writes resume and every
//! record is intact.
//!
//! Three variants:
//! - a fault-injecting store (always runs): the API's side of the contract;
//! - the real binary on a small tmpfs filled to the last byte, and the
//!   store's guard over a tmpfs remounted read-only (both need root and
//!   permission to mount; otherwise skipped with the reason printed).

use std::{
    collections::HashMap,
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

#[path = "common/service.rs"]
mod service;

use async_trait::async_trait;
use birthday_api::{
    api::{self, AppState},
    config::Clock,
    domain::{DateOfBirth, Username},
    net::{GuardedAcceptor, Limits},
    store::{
        Record, Store, StoreError,
        sled_store::SledStore,
        space_guard::{MIN_FREE_BYTES, SpaceGuard},
    },
};
use chrono::NaiveDate;
use futures::stream::BoxStream;
use poem::{Server, listener::TcpAcceptor};
use reqwest::StatusCode;

/// Fails every write with the error a full disk gives, while `full` is set.
struct FullDisk {
    inner: SledStore,
    full: Arc<AtomicBool>,
}

impl FullDisk {
    fn check(&self) -> Result<(), StoreError> {
        if self.full.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable(
                "IO error: No space left on device (os error 28)".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for FullDisk {
    async fn put(&self, username: &Username, date_of_birth: DateOfBirth) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put(username, date_of_birth).await
    }
    async fn put_many(&self, records: &[Record]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_many(records).await
    }
    async fn get(&self, username: &Username) -> Result<Option<DateOfBirth>, StoreError> {
        self.inner.get(username).await
    }
    async fn delete(&self, username: &Username) -> Result<bool, StoreError> {
        self.check()?;
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

async fn assert_problem(response: reqwest::Response, status: StatusCode) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(json["status"], status.as_u16(), "{json}");
}

async fn put(client: &reqwest::Client, base: &str, name: &str, date: &str) -> reqwest::Response {
    client
        .put(format!("{base}/hello/{name}"))
        .json(&serde_json::json!({ "dateOfBirth": date }))
        .send()
        .await
        .unwrap()
}

async fn greeting(client: &reqwest::Client, base: &str, name: &str) -> String {
    let response = client
        .get(format!("{base}/hello/{name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {name}");
    let json: serde_json::Value = response.json().await.unwrap();
    json["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn with_injected_disk_full_writes_get_503_reads_work_and_writes_resume() {
    let dir = tempfile::tempdir().unwrap();
    let full = Arc::new(AtomicBool::new(false));
    let store = FullDisk {
        inner: SledStore::open(dir.path(), 8).unwrap(),
        full: full.clone(),
    };
    let state = Arc::new(AppState {
        store: Arc::new(store),
        clock: Clock::Fixed(NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()),
        write_token: None,
    });
    let limits = Limits::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::new_with_acceptor(GuardedAcceptor::new(
            TcpAcceptor::from_tokio(listener).unwrap(),
            limits,
        ))
        .run(api::public_endpoint(state, limits)),
    );
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();

    assert_eq!(
        put(&client, &base, "alice", "1990-07-14").await.status(),
        204
    );
    let before = greeting(&client, &base, "alice").await;
    assert!(before.ends_with("43 day(s)"), "{before}");

    full.store(true, Ordering::SeqCst);
    assert_problem(
        put(&client, &base, "bob", "1985-01-02").await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_problem(
        put(&client, &base, "alice", "2000-06-02").await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    let delete = client
        .delete(format!("{base}/hello/alice"))
        .send()
        .await
        .unwrap();
    assert_problem(delete, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(greeting(&client, &base, "alice").await, before);
    let missing = client
        .get(format!("{base}/hello/bob"))
        .send()
        .await
        .unwrap();
    assert_problem(missing, StatusCode::NOT_FOUND).await;

    full.store(false, Ordering::SeqCst);
    assert_eq!(put(&client, &base, "bob", "1985-01-02").await.status(), 204);
    assert_eq!(greeting(&client, &base, "alice").await, before);
    assert!(
        greeting(&client, &base, "bob")
            .await
            .starts_with("Hello, bob!")
    );
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// The guard's reserve and 32 MiB more, or `None` (with the reason
    /// printed) where this test run may not mount.
    fn mount_or_skip(variant: &str) -> Option<Self> {
        match Self::mount(MIN_FREE_BYTES / 1024 / 1024 + 32) {
            Ok(tmpfs) => Some(tmpfs),
            // `.ci/run` runs as root, which may mount: there a skip is a failure.
            Err(reason) if std::env::var_os("CI").is_some() => {
                panic!("CI is set, so the {variant} variant must run, but: {reason}")
            }
            Err(reason) => {
                eprintln!("SKIPPED: the {variant} variant needs a tmpfs mount: {reason}");
                None
            }
        }
    }

    fn mount(size_mb: u64) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|err| format!("cannot run mount: {err}"))?;
        if output.status.success() {
            Ok(Self { dir })
        } else {
            Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts it with `option` (`ro`, `rw`).
    fn remount(&self, option: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{option}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount -o remount,{option}");
    }

    fn available(&self) -> u64 {
        let stats = rustix::fs::statvfs(self.path()).unwrap();
        stats.f_bavail * stats.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system to the last byte.
fn fill(path: &Path) -> PathBuf {
    let filler = path.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        if let Err(err) = file.write_all(&block) {
            assert_eq!(err.raw_os_error(), Some(28), "{err}");
            break;
        }
    }
    let small = [0u8; 512];
    while file.write_all(&small).is_ok() {}
    filler
}

fn export(data_dir: &Path) -> HashMap<String, String> {
    let output = service::command()
        .arg("export")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                record["username"].as_str().unwrap().to_owned(),
                record["dateOfBirth"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn on_a_really_full_tmpfs_the_real_service_degrades_and_recovers() {
    let Some(tmpfs) = Tmpfs::mount_or_skip("real-disk") else {
        return;
    };
    let data_dir = tmpfs.path().join("data");
    let data_dir_args = ["--data-dir", data_dir.to_str().expect("UTF-8 temp dir")];
    let service = service::Service::start(&data_dir_args);
    let client = reqwest::Client::new();

    let mut written = HashMap::new();
    for index in 0..50u32 {
        let name = format!("person{}", char::from(b'a' + (index % 26) as u8))
            .repeat(1 + index as usize / 26);
        let date = format!(
            "19{:02}-{:02}-{:02}",
            50 + index % 40,
            1 + index % 12,
            1 + index % 28
        );
        assert_eq!(
            put(&client, &service.url(""), &name, &date).await.status(),
            204
        );
        written.insert(name, date);
    }

    let filler = fill(tmpfs.path());
    assert_eq!(tmpfs.available(), 0);
    for (name, date) in [("newcomer", "1999-09-09"), ("personb", "1970-01-01")] {
        assert_problem(
            put(&client, &service.url(""), name, date).await,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    }
    let delete = client
        .delete(service.url("/hello/persona"))
        .send()
        .await
        .unwrap();
    assert_problem(delete, StatusCode::SERVICE_UNAVAILABLE).await;
    for name in written.keys() {
        greeting(&client, &service.url(""), name).await;
    }
    let ready = client
        .get(service.admin_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        200,
        "reads work, so the service stays ready"
    );

    // Space returns: writes resume without a restart.
    std::fs::remove_file(filler).unwrap();
    assert!(tmpfs.available() > MIN_FREE_BYTES);
    assert_eq!(
        put(&client, &service.url(""), "newcomer", "1999-09-09")
            .await
            .status(),
        204
    );
    written.insert("newcomer".into(), "1999-09-09".into());
    for name in written.keys() {
        greeting(&client, &service.url(""), name).await;
    }

    // And everything is on disk, exactly, after a kill -9.
    drop(service);
    assert_eq!(export(&data_dir), written);
    let _restarted = service::Service::start(&data_dir_args);
}

/// The kernel refuses to remount a file system read-only while files on it
/// are open for writing, as sled's are; ext4 does it anyway on errors. So
/// the guard is held over an empty tmpfs while the store lives elsewhere.
#[tokio::test]
async fn a_data_directory_remounted_read_only_refuses_writes_until_it_is_writable_again() {
    let Some(tmpfs) = Tmpfs::mount_or_skip("read-only") else {
        return;
    };
    let sled_dir = tempfile::tempdir().unwrap();
    let sled = SledStore::open(sled_dir.path(), 8).unwrap();
    let guard = SpaceGuard::new(Arc::new(sled), tmpfs.path()).unwrap();
    let alice = Username::parse("alice").unwrap();
    let born =
        DateOfBirth::parse("1990-07-14", NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()).unwrap();
    guard.put(&alice, born).await.unwrap();

    tmpfs.remount("ro");
    match guard.put(&alice, born).await {
        Err(StoreError::Unavailable(reason)) => assert!(reason.contains("read-only"), "{reason}"),
        other => panic!("a write to a read-only data directory gave {other:?}"),
    }
    assert!(matches!(
        guard.delete(&alice).await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(guard.get(&alice).await.unwrap(), Some(born));

    tmpfs.remount("rw");
    guard.put(&alice, born).await.unwrap();
    assert!(guard.delete(&alice).await.unwrap());
}
