//! PostgreSQL for tests: a fresh database per test on the server that
//! `TEST_DATABASE_URL` names, dropped again when the test ends.
//!
//! Without `TEST_DATABASE_URL` every PostgreSQL test returns early and the
//! run says so once on stderr (written past the test harness's capture, so
//! a passing `cargo test` still shows it); with `CI` set it fails instead.

// Each test crate includes this file and uses a different part of it.
#![allow(dead_code)]

use std::{io::Write as _, sync::Once};

use sqlx::{Connection as _, Executor as _, PgConnection};

pub const URL_VARIABLE: &str = "TEST_DATABASE_URL";

/// The admin URL, or `None` (after saying the tests are skipped).
pub fn admin_url() -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skipped(&format!("{URL_VARIABLE} is not set"));
            None
        }
    }
}

/// Says once per test binary that its PostgreSQL tests did not run. Under
/// `CI` a skip is a failure: `.ci/run` provides everything these tests need.
pub fn skipped(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set, so this test must run, but: {reason}");
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let note = format!(
            "\nNOTE: the PostgreSQL tests in tests/{}.rs were SKIPPED: {reason}\n",
            env!("CARGO_CRATE_NAME")
        );
        let _ = std::io::stderr().write_all(note.as_bytes());
    });
}

/// `url` with its database name replaced by `database`, query kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// A database that exists for one test.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `birthday_test_<random>`; `None` when PostgreSQL tests are
    /// skipped. Panics when the variable is set but the server refuses:
    /// a configured server that is down is a failure, not a skip.
    pub async fn create() -> Option<Self> {
        let admin_url = admin_url()?;
        let name = format!("birthday_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|err| panic!("cannot connect to {URL_VARIABLE}: {err}"));
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .unwrap_or_else(|err| panic!("cannot create database {name}: {err}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on a
        // future; a thread with its own small runtime can.
        let admin_url = self.admin_url.clone();
        let statement = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|err| err.to_string())?;
                admin
                    .execute(statement.as_str())
                    .await
                    .map_err(|err| err.to_string())?;
                let _ = admin.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not drop test database {}: {err}",
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database_name() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/test?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(with_database("postgresql://h/", "x"), "postgresql://h/x");
    }
}
