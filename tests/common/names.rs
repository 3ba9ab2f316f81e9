//! Usernames for tests that need many: letters only, as the rules demand.

/// `number` spelled in base 26 with the letters a to z, most significant
/// first: `0` is `a`, `25` is `z`, `26` is `ba`. Different numbers give
/// different names.
pub fn letters(mut number: u64) -> String {
    let mut text = Vec::new();
    loop {
        text.push(b'a' + (number % 26) as u8);
        number /= 26;
        if number == 0 {
            break;
        }
    }
    text.reverse();
    String::from_utf8(text).expect("ASCII letters")
}
