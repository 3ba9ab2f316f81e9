//! The `Store` contract: one suite, run unchanged against every backend.
//!
//! Each contract test is a generic function over [`Backend`]; the
//! `contract_suite!` macro instantiates all of them once for sled (a fresh
//! temporary directory) and once for PostgreSQL (a fresh database per test,
//! so tests run in parallel). The PostgreSQL half needs
//! `TEST_DATABASE_URL`; without it those tests return early and say so.

#[path = "common/names.rs"]
mod names;
#[path = "common/pg.rs"]
mod pg;

use names::letters;
use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use birthday_api::{
    domain::{DateOfBirth, Username},
    store::{self, Record, Store, StoreSettings},
};
use chrono::NaiveDate;
use futures::TryStreamExt as _;

/// Something that opens the same store again and again.
#[async_trait]
trait Backend: Send + Sync {
    /// A store on this backend's data; the same data every time.
    async fn open(&self) -> Arc<dyn Store>;
}

struct Sled(tempfile::TempDir);

impl Sled {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("temporary directory"))
    }
}

#[async_trait]
impl Backend for Sled {
    async fn open(&self) -> Arc<dyn Store> {
        store::open(&StoreSettings::Sled {
            data_dir: self.0.path().to_path_buf(),
            cache_mb: 8,
        })
        .await
        .expect("open sled")
    }
}

struct Postgres(pg::TestDatabase);

impl Postgres {
    async fn new() -> Option<Self> {
        pg::TestDatabase::create().await.map(Self)
    }

    fn settings(&self, pool_size: u32) -> StoreSettings {
        StoreSettings::Postgres {
            url: self.0.url().parse().expect("test database URL"),
            pool_size,
            timeout: Duration::from_secs(10),
        }
    }
}

#[async_trait]
impl Backend for Postgres {
    async fn open(&self) -> Arc<dyn Store> {
        store::open(&self.settings(8))
            .await
            .expect("open PostgreSQL")
    }
}

macro_rules! contract_suite {
    ($($test:ident),* $(,)?) => {
        mod sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&super::Sled::new()).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(backend) = super::Postgres::new().await else { return };
                    super::$test(&backend).await;
                }
            )*
        }
    };
}

contract_suite!(
    get_of_unknown_is_none,
    put_then_get_round_trips,
    last_write_wins,
    delete_says_whether_there_was_a_record,
    put_many_stores_every_record_and_the_later_duplicate_wins,
    export_yields_exactly_what_is_stored,
    usernames_are_keys_after_nfc,
    case_is_significant,
    leap_days_and_the_first_and_last_representable_years_round_trip,
    ping_and_flush_answer,
    concurrent_puts_are_all_durable_and_visible,
    records_survive_reopening,
);

fn name(raw: &str) -> Username {
    Username::parse(raw).expect("valid username")
}

fn date(y: i32, m: u32, d: u32) -> DateOfBirth {
    DateOfBirth::from_stored(NaiveDate::from_ymd_opt(y, m, d).expect("calendar date"))
        .expect("date of birth")
}

async fn exported(store: &dyn Store) -> BTreeMap<String, DateOfBirth> {
    store
        .export()
        .map_ok(|record| (record.username.to_string(), record.date_of_birth))
        .try_collect()
        .await
        .expect("export")
}

async fn get_of_unknown_is_none(backend: &dyn Backend) {
    let store = backend.open().await;
    assert_eq!(store.get(&name("nobody")).await.unwrap(), None);
}

async fn put_then_get_round_trips(backend: &dyn Backend) {
    let store = backend.open().await;
    store.put(&name("alice"), date(1990, 5, 17)).await.unwrap();
    assert_eq!(
        store.get(&name("alice")).await.unwrap(),
        Some(date(1990, 5, 17))
    );
    assert_eq!(store.get(&name("bob")).await.unwrap(), None);
}

async fn last_write_wins(backend: &dyn Backend) {
    let store = backend.open().await;
    for (year, month, day) in [(1990, 5, 17), (1985, 1, 2), (2001, 12, 31)] {
        store
            .put(&name("alice"), date(year, month, day))
            .await
            .unwrap();
    }
    assert_eq!(
        store.get(&name("alice")).await.unwrap(),
        Some(date(2001, 12, 31))
    );
    assert_eq!(exported(store.as_ref()).await.len(), 1);
}

async fn delete_says_whether_there_was_a_record(backend: &dyn Backend) {
    let store = backend.open().await;
    assert!(!store.delete(&name("alice")).await.unwrap());
    store.put(&name("alice"), date(1990, 5, 17)).await.unwrap();
    store.put(&name("bob"), date(1991, 6, 18)).await.unwrap();
    assert!(store.delete(&name("alice")).await.unwrap());
    assert_eq!(store.get(&name("alice")).await.unwrap(), None);
    assert!(!store.delete(&name("alice")).await.unwrap());
    assert_eq!(
        store.get(&name("bob")).await.unwrap(),
        Some(date(1991, 6, 18))
    );
}

async fn put_many_stores_every_record_and_the_later_duplicate_wins(backend: &dyn Backend) {
    let store = backend.open().await;
    store.put(&name("carol"), date(1970, 1, 1)).await.unwrap();
    let mut records: Vec<Record> = (0..500)
        .map(|i| Record {
            username: name(&format!("user{}", letters(u64::from(i)))),
            date_of_birth: date(1950 + i as i32 % 70, 1 + i % 12, 1 + i % 28),
        })
        .collect();
    records.push(Record {
        username: name("carol"),
        date_of_birth: date(1980, 2, 2),
    });
    records.push(Record {
        username: name("dave"),
        date_of_birth: date(1981, 3, 3),
    });
    records.push(Record {
        username: name("dave"),
        date_of_birth: date(1982, 4, 4),
    });
    store.put_many(&records).await.unwrap();
    store.put_many(&[]).await.unwrap();

    let all = exported(store.as_ref()).await;
    assert_eq!(all.len(), 502);
    for record in &records[..500] {
        assert_eq!(
            all.get(record.username.as_str()),
            Some(&record.date_of_birth)
        );
    }
    assert_eq!(all.get("carol"), Some(&date(1980, 2, 2)));
    assert_eq!(all.get("dave"), Some(&date(1982, 4, 4)));
}

async fn export_yields_exactly_what_is_stored(backend: &dyn Backend) {
    let store = backend.open().await;
    assert!(exported(store.as_ref()).await.is_empty());
    store.put(&name("alice"), date(1990, 5, 17)).await.unwrap();
    store.put(&name("bob"), date(1991, 6, 18)).await.unwrap();
    store.put(&name("Jürgen"), date(1960, 2, 29)).await.unwrap();
    store.put(&name("bob"), date(1992, 7, 19)).await.unwrap();
    store.put(&name("gone"), date(1999, 9, 9)).await.unwrap();
    store.delete(&name("gone")).await.unwrap();

    let expected = BTreeMap::from([
        ("alice".to_owned(), date(1990, 5, 17)),
        ("bob".to_owned(), date(1992, 7, 19)),
        ("Jürgen".to_owned(), date(1960, 2, 29)),
    ]);
    assert_eq!(exported(store.as_ref()).await, expected);
}

async fn usernames_are_keys_after_nfc(backend: &dyn Backend) {
    let store = backend.open().await;
    // Written decomposed (e + combining diaeresis), read precomposed.
    store
        .put(&name("Zoe\u{0308}"), date(1993, 3, 3))
        .await
        .unwrap();
    assert_eq!(
        store.get(&name("Zo\u{00EB}")).await.unwrap(),
        Some(date(1993, 3, 3))
    );
    let longest = "ü".repeat(64);
    for (raw, day) in [
        ("Мария", 4),
        ("李雷", 5),
        ("ǅemal", 6),
        (longest.as_str(), 7),
    ] {
        store.put(&name(raw), date(1994, 4, day)).await.unwrap();
        assert_eq!(
            store.get(&name(raw)).await.unwrap(),
            Some(date(1994, 4, day)),
            "{raw}"
        );
    }
    let names: Vec<String> = exported(store.as_ref()).await.into_keys().collect();
    assert!(names.contains(&"Zo\u{00EB}".to_owned()), "{names:?}");
    assert!(names.contains(&longest), "{names:?}");
    assert_eq!(names.len(), 5);
}

async fn case_is_significant(backend: &dyn Backend) {
    let store = backend.open().await;
    store.put(&name("Alice"), date(1990, 1, 1)).await.unwrap();
    store.put(&name("alice"), date(1991, 2, 2)).await.unwrap();
    assert_eq!(
        store.get(&name("Alice")).await.unwrap(),
        Some(date(1990, 1, 1))
    );
    assert_eq!(
        store.get(&name("alice")).await.unwrap(),
        Some(date(1991, 2, 2))
    );
    assert_eq!(store.get(&name("ALICE")).await.unwrap(), None);
    assert!(store.delete(&name("alice")).await.unwrap());
    assert_eq!(
        store.get(&name("Alice")).await.unwrap(),
        Some(date(1990, 1, 1))
    );
}

async fn leap_days_and_the_first_and_last_representable_years_round_trip(backend: &dyn Backend) {
    let store = backend.open().await;
    let cases = [
        ("leap", date(2000, 2, 29)),
        ("leapcentury", date(1600, 2, 29)),
        ("first", date(1, 1, 1)),
        ("firstleap", date(4, 2, 29)),
        ("last", date(9999, 12, 31)),
    ];
    for (raw, day) in cases {
        store.put(&name(raw), day).await.unwrap();
    }
    for (raw, day) in cases {
        assert_eq!(store.get(&name(raw)).await.unwrap(), Some(day), "{raw}");
    }
    let all = exported(store.as_ref()).await;
    for (raw, day) in cases {
        assert_eq!(all.get(raw), Some(&day), "{raw}");
    }
}

async fn ping_and_flush_answer(backend: &dyn Backend) {
    let store = backend.open().await;
    store.ping().await.unwrap();
    store.put(&name("alice"), date(1990, 5, 17)).await.unwrap();
    store.flush().await.unwrap();
    store.ping().await.unwrap();
}

async fn concurrent_puts_are_all_durable_and_visible(backend: &dyn Backend) {
    const TASKS: u32 = 64;
    const PUTS: u32 = 10;
    let store = backend.open().await;
    let writers: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..PUTS {
                    let who = name(&format!(
                        "t{}x{}",
                        letters(u64::from(task)),
                        letters(u64::from(i))
                    ));
                    store
                        .put(&who, date(1900 + (task * PUTS + i) as i32, 1, 1))
                        .await
                        .unwrap();
                    // Every writer also hammers one shared key.
                    store
                        .put(&name("shared"), date(2000, 1, 1 + task % 28))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    // Reopened, so "visible" also means "durable", not merely cached.
    drop(store);
    let store = backend.open().await;
    for task in 0..TASKS {
        for i in 0..PUTS {
            let who = name(&format!(
                "t{}x{}",
                letters(u64::from(task)),
                letters(u64::from(i))
            ));
            assert_eq!(
                store.get(&who).await.unwrap(),
                Some(date(1900 + (task * PUTS + i) as i32, 1, 1)),
                "{who}"
            );
        }
    }
    let shared = store.get(&name("shared")).await.unwrap().unwrap();
    assert!((1..=28).any(|day| shared == date(2000, 1, day)));
    assert_eq!(
        exported(store.as_ref()).await.len(),
        (TASKS * PUTS + 1) as usize
    );
}

async fn records_survive_reopening(backend: &dyn Backend) {
    let store = backend.open().await;
    store.put(&name("alice"), date(1990, 5, 17)).await.unwrap();
    store.put(&name("bob"), date(1991, 6, 18)).await.unwrap();
    store.delete(&name("bob")).await.unwrap();
    store
        .put_many(&[Record {
            username: name("carol"),
            date_of_birth: date(1992, 7, 19),
        }])
        .await
        .unwrap();
    drop(store);

    let store = backend.open().await;
    assert_eq!(
        store.get(&name("alice")).await.unwrap(),
        Some(date(1990, 5, 17))
    );
    assert_eq!(store.get(&name("bob")).await.unwrap(), None);
    assert_eq!(
        store.get(&name("carol")).await.unwrap(),
        Some(date(1992, 7, 19))
    );
}

/// What only the PostgreSQL backend has: migrations, TLS, connection errors.
mod postgres_only {
    use sqlx::{Connection as _, PgConnection, Row as _};

    use super::*;

    /// `export` reads in pages, all from one snapshot: what is written
    /// while it runs, after its first page, is not in it, and what it
    /// began with is, however many pages it takes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_is_one_snapshot_across_its_pages() {
        let Some(backend) = Postgres::new().await else {
            return;
        };
        let store = backend.open().await;
        let records: Vec<Record> = (0..25_000u64)
            .map(|i| Record {
                username: name(&format!("user{}", letters(i))),
                date_of_birth: date(1990, 1, 1),
            })
            .collect();
        store.put_many(&records).await.unwrap();
        // In key order: the last two are on the export's last page.
        let mut keys: Vec<String> = records.iter().map(|r| r.username.to_string()).collect();
        keys.sort_unstable();
        let (changed, last) = (keys[keys.len() - 2].clone(), keys[keys.len() - 1].clone());

        let mut export = store.export();
        let first = export.try_next().await.unwrap().expect("a first record");
        // Written after the export began: past every page read so far.
        store.delete(&name(&last)).await.unwrap();
        store.put(&name("zzzzzz"), date(1980, 1, 1)).await.unwrap();
        store.put(&name(&changed), date(1970, 1, 1)).await.unwrap();
        let mut seen: BTreeMap<String, DateOfBirth> = export
            .map_ok(|record| (record.username.to_string(), record.date_of_birth))
            .try_collect()
            .await
            .unwrap();
        seen.insert(first.username.to_string(), first.date_of_birth);

        assert_eq!(seen.len(), records.len());
        assert!(
            seen.contains_key(&last),
            "a record deleted meanwhile is missing"
        );
        assert!(
            !seen.contains_key("zzzzzz"),
            "a record added meanwhile is in"
        );
        assert_eq!(seen[&changed], date(1990, 1, 1), "a date changed meanwhile");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_opening_together_migrate_exactly_once() {
        let Some(backend) = Postgres::new().await else {
            return;
        };
        let opened = futures::future::join_all(
            (0..8).map(|_| async { store::open(&backend.settings(1)).await }),
        )
        .await;
        for store in &opened {
            let store = store.as_ref().expect("every replica starts");
            store.ping().await.unwrap();
        }
        let mut connection = PgConnection::connect(backend.0.url()).await.unwrap();
        let applied: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut connection)
                .await
                .unwrap();
        assert_eq!(applied, [(1, true)]);
        // Opening an already migrated database changes nothing.
        drop(opened);
        backend.open().await.ping().await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(count, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_older_release_starts_on_a_database_a_newer_one_migrated() {
        let Some(backend) = Postgres::new().await else {
            return;
        };
        backend
            .open()
            .await
            .put(&name("alice"), date(1990, 5, 17))
            .await
            .unwrap();
        // What a later release's migration 2 leaves behind.
        let mut connection = PgConnection::connect(backend.0.url()).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations \
             (version, description, success, checksum, execution_time) \
             VALUES (2, 'from the future', true, '\\x00', 0)",
        )
        .execute(&mut connection)
        .await
        .unwrap();
        let store = backend.open().await;
        assert_eq!(
            store.get(&name("alice")).await.unwrap(),
            Some(date(1990, 5, 17))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sslmode_require_encrypts_with_rustls() {
        let Some(backend) = Postgres::new().await else {
            return;
        };
        let mut plain = PgConnection::connect(backend.0.url()).await.unwrap();
        let ssl: String = sqlx::query("SHOW ssl")
            .fetch_one(&mut plain)
            .await
            .unwrap()
            .get(0);
        if ssl != "on" {
            pg::skipped("the server at TEST_DATABASE_URL has ssl = off");
            return;
        }
        let url = match backend.0.url() {
            url if url.contains('?') => format!("{url}&sslmode=require"),
            url => format!("{url}?sslmode=require"),
        };
        let mut tls = PgConnection::connect(&url).await.unwrap();
        let encrypted: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&mut tls)
                .await
                .unwrap();
        assert!(encrypted);

        let store = store::open(&StoreSettings::Postgres {
            url: url.parse().unwrap(),
            pool_size: 2,
            timeout: Duration::from_secs(10),
        })
        .await
        .expect("open over TLS");
        store.put(&name("alice"), date(1990, 5, 17)).await.unwrap();
        assert_eq!(
            store.get(&name("alice")).await.unwrap(),
            Some(date(1990, 5, 17))
        );
        let encrypted_sessions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity JOIN pg_stat_ssl USING (pid) \
             WHERE application_name = 'birthday-api' AND datname = $1 AND ssl",
        )
        .bind(backend.0.name())
        .fetch_one(&mut plain)
        .await
        .unwrap();
        assert!(encrypted_sessions >= 1, "{encrypted_sessions}");
    }

    /// Needs no server: nothing listens on port 1.
    #[tokio::test]
    async fn an_unreachable_server_fails_start_up_naming_it_but_not_the_password() {
        let err = store::open(&StoreSettings::Postgres {
            url: "postgres://app:s3cret@127.0.0.1:1/birthdays"
                .parse()
                .unwrap(),
            pool_size: 1,
            timeout: Duration::from_secs(2),
        })
        .await
        .err()
        .expect("nothing listens on port 1");
        let message = format!("{err:#}");
        assert!(message.contains("127.0.0.1:1/birthdays"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
