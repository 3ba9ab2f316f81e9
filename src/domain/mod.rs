//! Pure rules of the service: what a username is, what a date of birth is,
//! and how many days remain until the next birthday. Nothing here does I/O.

mod birthday;
mod date_of_birth;
mod username;

pub use birthday::{Greeting, days_until_next_birthday, next_birthday};
pub use date_of_birth::{DateOfBirth, DateOfBirthError};
pub use username::{MAX_USERNAME_CHARS, Username, UsernameError};
