//! Microbenchmarks of the sled store, in a temporary directory:
//! `get` of a present and an absent user among N stored (N = 1 000 and
//! 100 000; set STORE_BENCH_USERS to change the larger one), the durable
//! `put` of one writer, and 64 concurrent durable `put`s (what group commit
//! is for). `cargo bench --bench store`.

use std::{hint::black_box, sync::Arc, time::Duration};

use birthday_api::{
    domain::{DateOfBirth, Username},
    store::{Record, Store, sled_store::SledStore},
};
use chrono::NaiveDate;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// Same naming scheme as the load benchmark (benches/load/bench.py).
fn bench_username(mut i: u64) -> Username {
    let mut letters = [b'a'; 5];
    for slot in letters.iter_mut().rev() {
        *slot = b'a' + (i % 26) as u8;
        i /= 26;
    }
    let name = format!("user{}", std::str::from_utf8(&letters).expect("ascii"));
    Username::parse(&name).expect("valid username")
}

fn bench_date(i: u64) -> DateOfBirth {
    let date = NaiveDate::from_ymd_opt(1950, 1, 1).expect("valid")
        + chrono::Days::new(i.wrapping_mul(7919) % 20_000);
    DateOfBirth::from_stored(date).expect("valid date")
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A store in a fresh temporary directory with users `0..n`.
fn filled_store(rt: &Runtime, n: u64) -> (tempfile::TempDir, Arc<SledStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SledStore::open(dir.path(), 32).expect("open sled"));
    rt.block_on(async {
        let mut i = 0;
        while i < n {
            let end = (i + 10_000).min(n);
            let records: Vec<Record> = (i..end)
                .map(|k| Record {
                    username: bench_username(k),
                    date_of_birth: bench_date(k),
                })
                .collect();
            store.put_many(&records).await.expect("put_many");
            i = end;
        }
    });
    (dir, store)
}

fn store_get(c: &mut Criterion) {
    let rt = runtime();
    let large: u64 = std::env::var("STORE_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut group = c.benchmark_group("sled_get");
    for n in [1_000, large] {
        let (_dir, store) = filled_store(&rt, n);
        // A fixed pseudo-random walk over the stored keys (Knuth's multiplicative hash).
        let keys: Vec<Username> = (0..4096u64)
            .map(|k| bench_username(k.wrapping_mul(2_654_435_761) % n))
            .collect();
        let mut next = 0usize;
        group.bench_with_input(BenchmarkId::new("present", n), &n, |b, _| {
            b.to_async(&rt).iter(|| {
                next = (next + 1) % keys.len();
                let key = &keys[next];
                let store = &store;
                async move { store.get(black_box(key)).await.expect("get") }
            })
        });
        let absent = Username::parse("nobodyhere").expect("valid");
        group.bench_with_input(BenchmarkId::new("absent", n), &n, |b, _| {
            b.to_async(&rt)
                .iter(|| async { store.get(black_box(&absent)).await.expect("get") })
        });
    }
    group.finish();
}

fn store_put(c: &mut Criterion) {
    let rt = runtime();
    let (_dir, store) = filled_store(&rt, 10_000);
    let mut group = c.benchmark_group("sled_put_durable");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    let mut i = 0u64;
    group.bench_function("one_writer", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let (name, date) = (bench_username(i % 10_000), bench_date(i));
            let store = &store;
            async move { store.put(&name, date).await.expect("put") }
        })
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("64_concurrent_writers", |b| {
        b.to_async(&rt).iter(|| {
            i += 64;
            let store = Arc::clone(&store);
            let base = i;
            async move {
                let tasks: Vec<_> = (0..64)
                    .map(|k| {
                        let store = Arc::clone(&store);
                        tokio::spawn(async move {
                            let n = base + k;
                            store
                                .put(&bench_username(n % 10_000), bench_date(n))
                                .await
                                .expect("put")
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("join");
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, store_get, store_put);
criterion_main!(benches);
