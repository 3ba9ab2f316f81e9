//! Several stateless replicas on one PostgreSQL database: three real
//! `birthday-api` processes, started at the same moment on an empty
//! database, serve one consistent, last-write-wins view; `kill -9` of one
//! of them loses nothing it acknowledged.
//!
//! Needs `TEST_DATABASE_URL`; skipped (and says so) without it.

#[path = "common/names.rs"]
mod names;
#[path = "common/pg.rs"]
mod pg;
#[path = "common/service.rs"]
mod service;

use names::letters;
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::{Days, NaiveDate};
use reqwest::StatusCode;
use serde_json::{Value, json};
use service::Service;
use sqlx::PgPool;

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

/// The date of birth the database holds for `user`, read by SQL.
async fn stored(db: &PgPool, user: &str) -> Option<NaiveDate> {
    sqlx::query_scalar("SELECT date_of_birth FROM people WHERE username = $1")
        .bind(user)
        .fetch_optional(db)
        .await
        .expect("SELECT from people")
}

/// The status, or `Err` when no answer came (the connection failed).
async fn put(
    client: &reqwest::Client,
    replica: &str,
    user: &str,
    date: NaiveDate,
) -> Result<StatusCode, reqwest::Error> {
    client
        .put(format!("{replica}/hello/{user}"))
        .json(&json!({ "dateOfBirth": date.format("%Y-%m-%d").to_string() }))
        .send()
        .await
        .map(|response| response.status())
}

/// The greeting every replica gives for `user`; fails unless all agree.
async fn agreed_greeting(client: &reqwest::Client, urls: &[String], user: &str) -> Option<String> {
    let mut views = Vec::new();
    for url in urls {
        views.push(greeting(client, url, user).await);
    }
    assert!(
        views.iter().all(|view| *view == views[0]),
        "{user}: the replicas disagree: {views:?}"
    );
    views.swap_remove(0)
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
    // The test's own view of what the replicas stored.
    let db = PgPool::connect(database.url())
        .await
        .expect("connect to the test database");

    // 1. Concurrent writers, each rotating its writes over the replicas and
    //    reading every write back through a *different* replica: the date is
    //    stored, and the other replica's greeting is the writing replica's,
    //    and no longer the one before the write (the dates are a week apart,
    //    so every write changes the greeting).
    let writers: Vec<_> = (0..24u64)
        .map(|writer| {
            let (client, urls, db) = (client.clone(), urls.clone(), db.clone());
            tokio::spawn(async move {
                let user = format!("writer{}", char::from(b'a' + writer as u8));
                let mut last = None;
                let mut before = None;
                for round in 0..12u64 {
                    let date = nth_date(writer + round);
                    let via = &urls[((writer + round) % 3) as usize];
                    let status = put(&client, via, &user, date).await.expect("PUT answered");
                    assert_eq!(
                        status,
                        StatusCode::NO_CONTENT,
                        "{user}: write {round} via {via}"
                    );
                    assert_eq!(
                        stored(&db, &user).await,
                        Some(date),
                        "{user}: write {round} via {via} not stored"
                    );
                    let other = &urls[((writer + round + 1) % 3) as usize];
                    let seen = greeting(&client, other, &user).await;
                    assert!(
                        seen.is_some(),
                        "{user}: write {round} via {via} not seen via {other}"
                    );
                    assert_ne!(
                        seen, before,
                        "{user}: write {round} via {via}: {other} still greets as before it"
                    );
                    let own = greeting(&client, via, &user).await;
                    assert_eq!(
                        seen, own,
                        "{user}: write {round}: {other} and {via} disagree"
                    );
                    before = seen;
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
        assert_eq!(stored(&db, user).await, Some(*date), "{user}: last write");
        let seen = agreed_greeting(&client, &urls, user).await;
        assert!(seen.is_some(), "{user}: not found");
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
                    assert_eq!(status.expect("PUT answered"), StatusCode::NO_CONTENT);
                }
            })
        })
        .collect();
    for racer in racers {
        racer.await.expect("racer task");
    }
    let view = agreed_greeting(&client, &urls, "contended").await;
    assert!(view.is_some(), "contended: not found");
    let winner = stored(&db, "contended").await.expect("contended stored");
    assert!(
        (0..30).any(|racer| nth_date(racer) == winner),
        "contended: {winner} was never written"
    );

    // 3. kill -9 the third replica while writers stream PUTs through it.
    let stop = Arc::new(AtomicBool::new(false));
    // Set just before the kill: a failed PUT while it is false failed on a
    // live replica.
    let killing = Arc::new(AtomicBool::new(false));
    let acknowledged_so_far = Arc::new(AtomicUsize::new(0));
    let refused_so_far = Arc::new(AtomicUsize::new(0));
    let doomed = urls[2].clone();
    let streamers: Vec<_> = (0..8u64)
        .map(|streamer| {
            let (client, doomed, stop, killing, counter, refused_counter) = (
                client.clone(),
                doomed.clone(),
                stop.clone(),
                killing.clone(),
                acknowledged_so_far.clone(),
                refused_so_far.clone(),
            );
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut refused = Vec::new();
                let mut sequence = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let user = format!("s{}n{}", letters(streamer), letters(sequence));
                    match put(&client, &doomed, &user, nth_date(sequence)).await {
                        Ok(StatusCode::NO_CONTENT) => {
                            acknowledged.push((user, nth_date(sequence)));
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        // A live replica answered something else.
                        Ok(status) => {
                            refused.push(format!("{user}: {status}"));
                            refused_counter.fetch_add(1, Ordering::Relaxed);
                        }
                        // The connection died with the process: not
                        // acknowledged. Before the kill it is a failure.
                        Err(err) => {
                            if !killing.load(Ordering::SeqCst) {
                                refused.push(format!("{user}: {err}"));
                                refused_counter.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                    }
                    sequence += 1;
                }
                (acknowledged, refused)
            })
        })
        .collect();
    // Kill mid-stream, once there is plenty to lose.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while acknowledged_so_far.load(Ordering::Relaxed) < 200
        && refused_so_far.load(Ordering::Relaxed) == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica acknowledged too few PUTs"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    killing.store(true, Ordering::SeqCst);
    replicas[2].kill();
    stop.store(true, Ordering::Relaxed);
    let (mut acknowledged, mut refused) = (Vec::new(), Vec::new());
    for streamer in streamers {
        let (acked, failed) = streamer.await.expect("streamer task");
        acknowledged.extend(acked);
        refused.extend(failed);
    }
    assert!(refused.is_empty(), "before the kill: {refused:?}");
    let rows: Vec<(String, NaiveDate)> =
        sqlx::query_as("SELECT username, date_of_birth FROM people")
            .fetch_all(&db)
            .await
            .expect("SELECT from people");
    let rows: HashMap<String, NaiveDate> = rows.into_iter().collect();
    for (index, (user, date)) in acknowledged.iter().enumerate() {
        assert_eq!(
            rows.get(user),
            Some(date),
            "acknowledged {user} lost after kill -9"
        );
        let via = &urls[index % 2];
        let seen = greeting(&client, via, user).await;
        assert!(
            seen.is_some(),
            "acknowledged {user} not readable after kill -9 (via {via})"
        );
    }
    db.close().await;
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
