//! Benchmark usernames, shared by the baseline server and `store-floor`
//! (benches/load/store_floor.rs includes this file), so both name user `i`
//! alike; bench.py and common.lua spell the same scheme in their languages.

/// The benchmark's user `i`: `user` followed by `i` in base 26 as five letters
/// (`useraaaaa`, `useraaaab`, ...). The load scripts and the preload of the
/// service use the same scheme, so the same keys are looked up everywhere.
pub fn bench_username(i: u64) -> String {
    let mut letters = [b'a'; 5];
    let mut n = i;
    for slot in letters.iter_mut().rev() {
        *slot = b'a' + (n % 26) as u8;
        n /= 26;
    }
    let mut name = String::with_capacity(9);
    name.push_str("user");
    name.push_str(std::str::from_utf8(&letters).expect("ascii letters"));
    name
}
