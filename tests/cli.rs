//! The binary as an operator meets it: flags, exit codes, signals, logs.

#[path = "common/service.rs"]
mod service;

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use service::Service;

fn run(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut command = service::command();
    command.args(args).stdin(Stdio::null());
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("binary runs")
}

#[test]
fn bad_flags_and_values_exit_2_with_one_line() {
    for (args, envs) in [
        (&["--no-such-flag"][..], &[][..]),
        (&["--listen", "nowhere"], &[]),
        (&["--timezone", "Mars/Olympus"], &[]),
        (&["--cache-mb", "0"], &[]),
        (&["spec", "--format", "xml"], &[]),
        (&[], &[("BIRTHDAY_LISTEN", "not-an-address")]),
        (&[], &[("BIRTHDAY_TIMEZONE", "Nowhere/Town")]),
    ] {
        let output = run(args, envs);
        assert_eq!(output.status.code(), Some(2), "{args:?} {envs:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_rejected_secret_is_named_but_never_printed() {
    for (args, envs, flag, secret) in [
        (
            &["--write-token", "hunter2 with a space"][..],
            &[][..],
            "--write-token",
            "hunter2",
        ),
        (
            &[],
            &[("BIRTHDAY_WRITE_TOKEN", "hunter2\n")],
            "--write-token",
            "hunter2",
        ),
        (
            &["export"],
            &[("DATABASE_URL", "postgres://app:hunter2@db:notaport/people")],
            "--database-url",
            "hunter2",
        ),
    ] {
        let output = run(args, envs);
        assert_eq!(output.status.code(), Some(2), "{args:?} {envs:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains(secret), "the secret was printed: {stderr}");
        assert!(stderr.contains(flag), "the flag is not named: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}
#[test]
fn help_and_version_exit_0() {
    assert_eq!(run(&["--help"], &[]).status.code(), Some(0));
    assert_eq!(run(&["--version"], &[]).status.code(), Some(0));
}

#[test]
fn spec_prints_the_document_without_opening_a_store() {
    let cwd = tempfile::tempdir().unwrap();
    for (format, committed) in [
        ("json", "openapi/openapi.json"),
        ("yaml", "openapi/openapi.yaml"),
    ] {
        let output = service::command()
            .args(["spec", "--format", format])
            .current_dir(cwd.path())
            .output()
            .unwrap();
        assert!(output.status.success());
        let expected = std::fs::read_to_string(committed).unwrap();
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            expected,
            "run `just spec`"
        );
    }
    assert!(!cwd.path().join("data").exists(), "spec opened a store");
}

#[test]
fn a_second_process_on_the_same_data_dir_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Service::start(&data_dir(dir.path()));
    let started = Instant::now();
    let output = service::command()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "did not exit at once"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "data directory {} is in use by another birthday-api process",
            dir.path().display()
        )),
        "{stderr}"
    );
}

#[test]
fn sigterm_and_sigint_stop_cleanly_and_keep_the_data() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let mut service = Service::start(&data_dir(dir.path()));
        let client = reqwest::blocking::Client::new();
        let put = client
            .put(service.url("/hello/alice"))
            .json(&serde_json::json!({"dateOfBirth": "2000-01-01"}))
            .send()
            .unwrap();
        assert_eq!(put.status(), 204);
        assert_eq!(service.stop_with(signal), Some(0), "{}", service.log());
        assert!(
            service.log().contains("stopped cleanly"),
            "SIG{signal}: {}",
            service.log()
        );

        let restarted = Service::start(&data_dir(dir.path()));
        let get = client.get(restarted.url("/hello/alice")).send().unwrap();
        assert_eq!(get.status(), 200, "SIG{signal}");
    }
}

#[test]
fn no_subcommand_means_serve() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = Service::start_without_subcommand(&data_dir(dir.path()));
    let get = reqwest::blocking::get(service.url("/hello/alice")).unwrap();
    assert_eq!(get.status(), 404);
    let ready = reqwest::blocking::get(service.admin_url("/readyz")).unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(service.terminate(), Some(0), "{}", service.log());
}

/// "Today" is the date in `--timezone`. Kiritimati (UTC+14) is always one
/// or two days ahead of Etc/GMT+12 (UTC-12), so its yesterday is before
/// today there but today or later at UTC-12, whatever the clock says, and
/// even if a midnight passes during the test.
#[test]
fn the_time_zone_decides_what_today_is() {
    let kiritimati_yesterday = (chrono::Utc::now()
        .with_timezone(&chrono_tz::Pacific::Kiritimati)
        .date_naive()
        - chrono::Days::new(1))
    .to_string();
    for (zone, expected) in [("Pacific/Kiritimati", 204), ("Etc/GMT+12", 400)] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = data_dir(dir.path());
        args.extend(["--timezone", zone]);
        let service = Service::start(&args);
        let put = reqwest::blocking::Client::new()
            .put(service.url("/hello/alice"))
            .json(&serde_json::json!({"dateOfBirth": kiritimati_yesterday}))
            .send()
            .unwrap();
        assert_eq!(put.status(), expected, "{zone}: {kiritimati_yesterday}");
    }
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let mut service = Service::start(&data_dir(dir.path()));
    let body = br#"{"dateOfBirth": "2000-01-01"}"#;
    let mut connection = std::net::TcpStream::connect(service.public).unwrap();
    connection
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "PUT /hello/alice HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    connection.write_all(head.as_bytes()).unwrap();
    connection.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // The request is being read when the signal arrives ...
    service.send_sigterm();
    std::thread::sleep(Duration::from_millis(300));
    connection.write_all(&body[10..]).unwrap();

    // ... and is still answered, and stored, before the process exits.
    let mut answer = String::new();
    connection.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert_eq!(service.terminate(), Some(0), "{}", service.log());

    let restarted = Service::start(&data_dir(dir.path()));
    let get = reqwest::blocking::get(restarted.url("/hello/alice")).unwrap();
    assert_eq!(get.status(), 200);
}

#[test]
fn dates_of_birth_and_tokens_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let token = "tok-very-secret-123";
    for format in ["json", "pretty"] {
        let mut args = data_dir(dir.path());
        args.extend(["--write-token", token, "--log-format", format]);
        let mut service = Service::start(&args);
        let client = reqwest::blocking::Client::new();
        let dates = ["1987-06-05", "1976-05-04", "1965-04-03"];
        client
            .put(service.url("/hello/alice"))
            .bearer_auth(token)
            .json(&serde_json::json!({"dateOfBirth": dates[0]}))
            .send()
            .unwrap();
        client
            .put(service.url(&format!("/hello/bob?dateOfBirth={}", dates[1])))
            .bearer_auth(token)
            .send()
            .unwrap();
        client
            .put(service.url(&format!("/hello/carol1?dateOfBirth={}", dates[2])))
            .bearer_auth("wrong-token")
            .send()
            .unwrap();
        client.get(service.url("/hello/alice")).send().unwrap();
        assert_eq!(service.terminate(), Some(0), "{}", service.log());

        let logs = service.log();
        assert!(
            logs.contains("/hello/{username}"),
            "no request events: {logs}"
        );
        for secret in dates.iter().chain([&token, &"wrong-token"]) {
            assert!(
                !logs.contains(secret),
                "{secret} leaked into the {format} logs:\n{logs}"
            );
        }
        if format == "json" {
            for line in logs.lines() {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
            }
            // Not a terminal: no ANSI colour codes.
            assert!(!logs.contains('\u{1b}'));
        }
    }
}

/// The request line, which the service writes past tracing's dispatch
/// (src/telemetry/request_line.rs), carries the request in both formats and
/// follows the log filter like any event.
#[test]
fn request_lines_name_the_request_and_follow_the_log_filter() {
    let dir = tempfile::tempdir().unwrap();
    // Sends one GET of an unknown user to `service`, stops it, returns its logs.
    let logs_of_one_get = |mut service: Service| {
        let answer = reqwest::blocking::Client::new()
            .get(service.url("/hello/nobody"))
            .header("x-request-id", "trace-42")
            .send()
            .unwrap();
        assert_eq!(answer.status(), 404);
        assert_eq!(service.terminate(), Some(0), "{}", service.log());
        service.log()
    };
    let request_line = |logs: &str| -> String {
        logs.lines()
            .find(|line| line.contains("trace-42"))
            .unwrap_or_else(|| panic!("no request line: {logs}"))
            .to_owned()
    };

    let logs = logs_of_one_get(Service::start(&data_dir(dir.path())));
    let line = request_line(&logs);
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    let timestamp = event["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
        "{line}"
    );
    assert!(event["latency_ms"].as_f64().unwrap() > 0.0, "{line}");
    let mut rest = event.as_object().unwrap().clone();
    rest.remove("timestamp");
    rest.remove("latency_ms");
    assert_eq!(
        serde_json::Value::Object(rest),
        serde_json::json!({
            "level": "INFO",
            "message": "request",
            "method": "GET",
            "route": "/hello/{username}",
            "status": 404,
            "request_id": "trace-42",
            "target": "birthday_api::telemetry",
        })
    );

    let mut args = data_dir(dir.path());
    args.extend(["--log-format", "pretty"]);
    let line = request_line(&logs_of_one_get(Service::start(&args)));
    let (timestamp, rest) = line.split_once(' ').unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
        "{line}"
    );
    let rest = rest
        .strip_prefix(
            " INFO birthday_api::telemetry: request method=GET route=\"/hello/{username}\" \
             status=404 latency_ms=",
        )
        .unwrap_or_else(|| panic!("{line}"));
    let (latency, request_id) = rest.split_once(' ').unwrap();
    assert!(latency.parse::<f64>().unwrap() > 0.0, "{line}");
    assert_eq!(request_id, "request_id=trace-42");

    let logs = logs_of_one_get(Service::start_with_log_filter(
        &data_dir(dir.path()),
        "info,birthday_api::telemetry=warn",
    ));
    assert!(logs.contains("stopped cleanly"), "{logs}");
    assert!(!logs.contains("trace-42"), "{logs}");
}

/// `--data-dir <dir>` as arguments.
fn data_dir(dir: &Path) -> Vec<&str> {
    vec!["--data-dir", dir.to_str().expect("temp dirs are UTF-8")]
}
