//! `export` and `import` move data between backends:
//! `birthday-api export --data-dir d | birthday-api import --database-url …`,
//! run as real processes joined by a real pipe, and back again.
//!
//! The sled-to-sled leg always runs; the PostgreSQL legs need
//! `TEST_DATABASE_URL` and are skipped (saying so) without it.

#[path = "common/names.rs"]
mod names;
#[path = "common/pg.rs"]
mod pg;
#[path = "common/service.rs"]
mod service;

use names::letters;
use std::{collections::BTreeMap, io::Write as _, path::Path, process::Stdio};

/// Lines as a user might feed `import`: unicode and decomposed names, a
/// leap day, the first representable year, and a name given twice.
const SEED: &str = r#"{"username": "alice", "dateOfBirth": "1990-05-17"}
{"username": "Alice", "dateOfBirth": "1991-06-18"}
{"username": "Jürgen", "dateOfBirth": "1960-02-29"}
{"username": "Zoe\u0308", "dateOfBirth": "0001-01-01"}
{"username": "Мария", "dateOfBirth": "1985-12-31"}

{"username": "alice", "dateOfBirth": "1992-07-19"}
"#;

/// What `SEED` means once stored: NFC names, the later line winning.
fn expected() -> BTreeMap<String, String> {
    [
        ("alice", "1992-07-19"),
        ("Alice", "1991-06-18"),
        ("Jürgen", "1960-02-29"),
        ("Zoë", "0001-01-01"),
        ("Мария", "1985-12-31"),
    ]
    .into_iter()
    .map(|(name, date)| (name.to_owned(), date.to_owned()))
    .collect()
}

fn sled(dir: &Path) -> Vec<String> {
    vec!["--data-dir".into(), dir.display().to_string()]
}

fn postgres(url: &str) -> Vec<String> {
    vec!["--database-url".into(), url.to_owned()]
}

fn import(store: &[String], input: &str) {
    let output = try_import(store, input);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn try_import(store: &[String], input: &str) -> std::process::Output {
    let mut child = service::command()
        .arg("import")
        .args(store)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("import finished")
}

/// Parses `export` output, checking every line has exactly the two fields.
fn parse_export(stdout: &[u8]) -> BTreeMap<String, String> {
    let text = std::str::from_utf8(stdout).expect("UTF-8 export");
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let object = value.as_object().expect("one object per line");
            assert_eq!(object.len(), 2, "{line}");
            (
                object["username"].as_str().expect("username").to_owned(),
                object["dateOfBirth"]
                    .as_str()
                    .expect("dateOfBirth")
                    .to_owned(),
            )
        })
        .collect()
}

fn export(store: &[String]) -> BTreeMap<String, String> {
    let output = service::command()
        .arg("export")
        .args(store)
        .output()
        .expect("run export");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_export(&output.stdout)
}

/// `birthday-api export FROM | birthday-api import TO`; returns what each
/// side reported on stderr.
fn pipe(from: &[String], to: &[String]) -> (String, String) {
    let mut exporter = service::command()
        .arg("export")
        .args(from)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run export");
    let exported = exporter.stdout.take().expect("export stdout");
    let importer = service::command()
        .arg("import")
        .args(to)
        .stdin(Stdio::from(exported))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run import");
    let exporter = exporter.wait_with_output().expect("export finished");
    let importer = importer.wait_with_output().expect("import finished");
    let (export_log, import_log) = (
        String::from_utf8_lossy(&exporter.stderr).into_owned(),
        String::from_utf8_lossy(&importer.stderr).into_owned(),
    );
    assert!(exporter.status.success(), "export: {export_log}");
    assert!(importer.status.success(), "import: {import_log}");
    (export_log, import_log)
}

#[test]
fn sled_to_sled_round_trip_keeps_every_record() {
    let (source, target) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    import(&sled(source.path()), SEED);
    assert_eq!(export(&sled(source.path())), expected());

    let (export_log, import_log) = pipe(&sled(source.path()), &sled(target.path()));
    assert!(export_log.contains("exported 5 records"), "{export_log}");
    assert!(import_log.contains("imported 5 records"), "{import_log}");
    assert_eq!(export(&sled(target.path())), expected());
}

#[test]
fn import_stops_at_an_invalid_line_and_names_it() {
    let target = tempfile::tempdir().unwrap();
    let output = try_import(
        &sled(target.path()),
        "{\"username\": \"alice\", \"dateOfBirth\": \"2000-01-01\"}\n\
         {\"username\": \"bad1\", \"dateOfBirth\": \"2000-01-01\"}\n",
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The lines before the bad one are stored.
    assert_eq!(
        export(&sled(target.path())),
        BTreeMap::from([("alice".to_owned(), "2000-01-01".to_owned())])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_to_postgresql_and_back_keeps_every_record() {
    let Some(database) = pg::TestDatabase::create().await else {
        return;
    };
    let url = database.url().to_owned();
    tokio::task::spawn_blocking(move || {
        let (source, back) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        import(&sled(source.path()), SEED);

        // Exactly the README's move: sled → PostgreSQL through a pipe.
        let (export_log, import_log) = pipe(&sled(source.path()), &postgres(&url));
        assert!(export_log.contains("exported 5 records"), "{export_log}");
        assert!(import_log.contains("imported 5 records"), "{import_log}");
        assert_eq!(export(&postgres(&url)), expected());

        // Importing the same data again is harmless (upserts).
        pipe(&sled(source.path()), &postgres(&url));
        assert_eq!(export(&postgres(&url)), expected());

        // And back: PostgreSQL → a new sled directory.
        pipe(&postgres(&url), &sled(back.path()));
        assert_eq!(export(&sled(back.path())), expected());
    })
    .await
    .expect("round trip");
}

/// A backup of a large table takes longer than any one call may: the
/// export must not be one statement under the statement timeout (it was,
/// and a 1 M-row export stopped after a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_export_outlasts_the_statement_timeout() {
    let Some(database) = pg::TestDatabase::create().await else {
        return;
    };
    let url = database.url().to_owned();
    tokio::task::spawn_blocking(move || {
        const ROWS: usize = 200_000;
        let names: Vec<String> = (0..ROWS as u64).map(letters).collect();
        let lines: String = names
            .iter()
            .map(|name| format!("{{\"username\":\"{name}\",\"dateOfBirth\":\"1990-05-17\"}}\n"))
            .collect();
        import(&postgres(&url), &lines);

        // 100 ms for a statement; the reader takes a second to start.
        let mut exporter = service::command()
            .arg("export")
            .args(postgres(&url))
            .args(["--database-timeout-ms", "200"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run export");
        std::thread::sleep(std::time::Duration::from_secs(1));
        let mut stdout = Vec::new();
        std::io::Read::read_to_end(&mut exporter.stdout.take().expect("stdout"), &mut stdout)
            .expect("read export");
        let exporter = exporter.wait_with_output().expect("export finished");
        assert!(
            exporter.status.success(),
            "{}",
            String::from_utf8_lossy(&exporter.stderr)
        );
        let exported = parse_export(&stdout);
        assert_eq!(exported.len(), ROWS);
        assert!(names.iter().all(|name| exported.contains_key(name)));
    })
    .await
    .expect("export");
}

#[test]
fn import_into_an_unreachable_database_fails_without_a_panic() {
    let output = service::command()
        .args([
            "import",
            "--database-url",
            "postgres://app@127.0.0.1:1/birthdays",
        ])
        .args(["--database-timeout-ms", "500"])
        .stdin(Stdio::null())
        .output()
        .expect("run import");
    let (status, stderr) = (output.status, String::from_utf8_lossy(&output.stderr));
    assert!(!status.success());
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
