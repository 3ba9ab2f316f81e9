//! Microbenchmarks of the pure rules: birthday arithmetic, username and date
//! parsing, and the greeting text. `cargo bench --bench domain`.

use std::hint::black_box;

use birthday_api::domain::{DateOfBirth, Greeting, Username, days_until_next_birthday};
use chrono::NaiveDate;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn birthday_arithmetic(c: &mut Criterion) {
    let today = day(2026, 11, 28);
    let mut group = c.benchmark_group("days_until_next_birthday");
    for (name, dob) in [
        ("later_this_year", day(1990, 12, 24)),
        ("next_year", day(1990, 3, 14)),
        ("today", day(1990, 11, 28)),
        ("leap_day", day(2000, 2, 29)),
    ] {
        let dob = DateOfBirth::parse(&dob.format("%Y-%m-%d").to_string(), today).expect("valid");
        group.bench_with_input(BenchmarkId::from_parameter(name), &dob, |b, dob| {
            b.iter(|| days_until_next_birthday(black_box(*dob), black_box(today)))
        });
    }
    group.finish();

    let username = Username::parse("useraaaaa").expect("valid");
    c.bench_function("greeting_message", |b| {
        b.iter(|| Greeting::new(black_box(&username), black_box(42)).into_message())
    });
}

fn username_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("username_parse");
    for (name, raw) in [
        ("ascii_9", "useraaaaa".to_string()),
        ("ascii_64", "a".repeat(64)),
        ("latin_nfc", "Jürgen".to_string()),
        ("latin_decomposed", "Zoe\u{0308}".to_string()),
        ("cyrillic", "Мария".to_string()),
        ("invalid_digit", "alice1".to_string()),
        ("invalid_too_long", "a".repeat(65)),
    ] {
        group.bench_with_input(BenchmarkId::from_parameter(name), &raw, |b, raw| {
            b.iter(|| Username::parse(black_box(raw)))
        });
    }
    group.finish();
}

fn date_parsing(c: &mut Criterion) {
    let today = day(2026, 11, 28);
    let mut group = c.benchmark_group("date_of_birth_parse");
    for (name, raw) in [
        ("valid", "1990-07-14"),
        ("not_a_date", "1990-02-30"),
        ("wrong_format", "14/07/1990"),
        ("future", "2030-01-01"),
    ] {
        group.bench_with_input(BenchmarkId::from_parameter(name), raw, |b, raw| {
            b.iter(|| DateOfBirth::parse(black_box(raw), black_box(today)))
        });
    }
    group.finish();
}

criterion_group!(benches, birthday_arithmetic, username_parsing, date_parsing);
criterion_main!(benches);
