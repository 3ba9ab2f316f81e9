//! Several stateless replicas on one PostgreSQL database: three real
//! `birthday-api` processes, started at the same moment on an empty
//! database, serve one consistent, last-write-wins view; `kill -9` of one
//! of them loses nothing it acknowledged.
//!
//! Needs `TEST_DATABASE_URL`; skipped (and says so) without it.

#[path = "common/pg.rs"]
mod pg;
#[path = "common/service.rs"]
mod service;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use birthday_api::domain::{DateOfBirth, Greeting, Username, days_until_next_birthday};
use chrono::{Days, NaiveDate, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use service::Service;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// The n-th test date: a week apart, so every one greets differently.
fn nth_date(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + Days::new(7 * (n % 52))
}

/// The greetings `date` may produce for `user` (today or, across a
/// midnight during the test, tomorrow).
fn greetings(user: &str, date: NaiveDate) -> [String; 2] {
    let username = Username::parse(user).unwrap();
    let dob = DateOfBirth::from_stored(date).unwrap();
    let today = Utc::now().date_naive();
    [today, today + Days::new(1)].map(|day| {
        Greeting::new(&username, days_until_next_birthday(dob, day).unwrap()).into_message()
    })
}

async fn put(client: &reqwest::Client, replica: &str, user: &str, date: NaiveDate) -> StatusCode {
    client
        .put(format!("{replica}/hello/{user}"))
        .json(&json!({ "dateOfBirth": date.format("%Y-%m-%d").to_string() }))
        .send()
        .await
        .map(|response| response.status())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

async fn greeting(client: &reqwest::Client, replica: &str, user: &str) -> Option<String> {
    let response = client
        .get(format!("{replica}/hello/{user}"))
        .send()
        .await
        .expect("GET");
    match response.status() {
        StatusCode::OK => {
            let body: Value = response.json().await.expect("JSON body");
            Some(body["message"].as_str().expect("message").to_owned())
        }
        StatusCode::NOT_FOUND => None,
        other => panic!("GET {user} through {replica}: {other}"),
    }
}

/// Starts `count` replicas at the same moment (all racing to migrate).
async fn start_replicas(database_url: &str, count: usize) -> Vec<Service> {
    let starting: Vec<_> = (0..count)
        .map(|_| {
            let url = database_url.to_owned();
            tokio::task::spawn_blocking(move || {
                // A generous timeout: this test is about consistency, and a
                // loaded CI machine must not turn a slow call into a 503.
                Service::start(&[
                    "--database-url",
                    &url,
                    "--database-pool-size",
                    "8",
                    "--database-timeout-ms",
                    "15000",
                ])
            })
        })
        .collect();
    let mut replicas = Vec::new();
    for replica in starting {
        replicas.push(replica.await.expect("replica start"));
    }
    replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_serve_one_last_write_wins_view_and_survive_kill_9() {
    let Some(database) = pg::TestDatabase::create().await else {
        return;
    };
    let mut replicas = start_replicas(database.url(), 3).await;
    let client = client();
    for replica in &replicas {
        let ready = client
            .get(replica.admin_url("/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
    }
    let urls: Arc<Vec<String>> = Arc::new(replicas.iter().map(|r| r.url("")).collect());

    // 1. Concurrent writers, each rotating its writes over the replicas and
    //    reading every write back through a *different* replica.
    let writers: Vec<_> = (0..24u64)
        .map(|writer| {
            let (client, urls) = (client.clone(), urls.clone());
            tokio::spawn(async move {
                let user = format!("writer{}", char::from(b'a' + writer as u8));
                let mut last = None;
                for round in 0..12u64 {
                    let date = nth_date(writer + round);
                    let via = &urls[((writer + round) % 3) as usize];
                    assert_eq!(put(&client, via, &user, date).await, StatusCode::NO_CONTENT);
                    let other = &urls[((writer + round + 1) % 3) as usize];
                    let seen = greeting(&client, other, &user).await;
                    assert!(
                        seen.as_ref()
                            .is_some_and(|seen| greetings(&user, date).contains(seen)),
                        "{user}: write {round} via {via} not seen via {other}: {seen:?}"
                    );
                    last = Some(date);
                }
                (user, last.unwrap())
            })
        })
        .collect();
    let mut final_dates = HashMap::new();
    for writer in writers {
        let (user, date) = writer.await.expect("writer task");
        final_dates.insert(user, date);
    }
    for (user, date) in &final_dates {
        for url in urls.iter() {
            let seen = greeting(&client, url, user).await;
            assert!(
                seen.as_ref()
                    .is_some_and(|seen| greetings(user, *date).contains(seen)),
                "{user} via {url}: {seen:?}"
            );
        }
    }

    // 2. Writers racing on one key through all three: afterwards every
    //    replica shows the same single winner.
    let racers: Vec<_> = (0..30u64)
        .map(|racer| {
            let (client, urls) = (client.clone(), urls.clone());
            tokio::spawn(async move {
                for round in 0..5 {
                    let via = &urls[((racer + round) % 3) as usize];
                    let status = put(&client, via, "contended", nth_date(racer)).await;
                    assert_eq!(status, StatusCode::NO_CONTENT);
                }
            })
        })
        .collect();
    for racer in racers {
        racer.await.expect("racer task");
    }
    let mut views = Vec::new();
    for url in urls.iter() {
        views.push(greeting(&client, url, "contended").await.expect("stored"));
    }
    assert!(views.iter().all(|view| *view == views[0]), "{views:?}");
    assert!(
        (0..30).any(|racer| greetings("contended", nth_date(racer)).contains(&views[0])),
        "{views:?}"
    );

    // 3. kill -9 the third replica while writers stream PUTs through it.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged_so_far = Arc::new(AtomicUsize::new(0));
    let doomed = urls[2].clone();
    let streamers: Vec<_> = (0..8u64)
        .map(|streamer| {
            let (client, doomed, stop, counter) = (
                client.clone(),
                doomed.clone(),
                stop.clone(),
                acknowledged_so_far.clone(),
            );
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut sequence = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let user = format!("s{}n{}", letter(streamer), letters(sequence));
                    match put(&client, &doomed, &user, nth_date(sequence)).await {
                        StatusCode::NO_CONTENT => {
                            acknowledged.push((user, nth_date(sequence)));
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        // The connection died with the process: not acknowledged.
                        _ => break,
                    }
                    sequence += 1;
                }
                acknowledged
            })
        })
        .collect();
    // Kill mid-stream, once there is plenty to lose.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acknowledged_so_far.load(Ordering::Relaxed) < 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica acknowledged too few PUTs"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    replicas[2].kill();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for streamer in streamers {
        acknowledged.extend(streamer.await.expect("streamer task"));
    }
    for (index, (user, date)) in acknowledged.iter().enumerate() {
        let via = &urls[index % 2];
        let seen = greeting(&client, via, user).await;
        assert!(
            seen.as_ref()
                .is_some_and(|seen| greetings(user, *date).contains(seen)),
            "acknowledged {user} lost after kill -9 (via {via}): {seen:?}"
        );
    }
    eprintln!(
        "{} PUTs acknowledged by the killed replica, all readable through the survivors",
        acknowledged.len()
    );

    // No replica logged a date of birth.
    for replica in &replicas {
        let log = replica.log();
        assert!(!log.contains("1990-"), "a date of birth reached a log");
    }
}

fn letter(n: u64) -> char {
    char::from(b'a' + (n % 26) as u8)
}

/// `0` → `a`, `26` → `ba`: usernames are letters only.
fn letters(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(letter(n));
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.iter().rev().collect()
}
