use std::fmt;

use chrono::{Datelike, NaiveDate};

/// A date of birth the service accepts: a real calendar date in year 1 or
/// later that lies strictly before "today" as the caller defined it when
/// parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateOfBirth(NaiveDate);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateOfBirthError {
    #[error("not written YYYY-MM-DD")]
    NotIsoFormat,
    #[error("not a real calendar date")]
    NotACalendarDate,
    #[error("before year 0001")]
    BeforeYearOne,
    #[error("not before today")]
    NotInThePast,
}

impl DateOfBirth {
    /// Parses exactly `YYYY-MM-DD` and checks the date is before `today`.
    pub fn parse(text: &str, today: NaiveDate) -> Result<Self, DateOfBirthError> {
        let (year, month, day) = split_iso_date(text).ok_or(DateOfBirthError::NotIsoFormat)?;
        if year < 1 {
            return Err(DateOfBirthError::BeforeYearOne);
        }
        let date =
            NaiveDate::from_ymd_opt(year, month, day).ok_or(DateOfBirthError::NotACalendarDate)?;
        if date >= today {
            return Err(DateOfBirthError::NotInThePast);
        }
        Ok(Self(date))
    }

    /// Rebuilds a date that was valid when it was stored. "Before today" is
    /// not checked again: a date stored yesterday stays a date of birth.
    pub fn from_stored(date: NaiveDate) -> Result<Self, DateOfBirthError> {
        if date.year() < 1 {
            return Err(DateOfBirthError::BeforeYearOne);
        }
        Ok(Self(date))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

impl fmt::Display for DateOfBirth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// Splits `DDDD-DD-DD` (ASCII digits only) into its numbers.
fn split_iso_date(text: &str) -> Option<(i32, u32, u32)> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .fold(0u32, |acc, digit| acc * 10 + u32::from(digit - b'0'))
    };
    let year = i32::try_from(number(0..4)).ok()?;
    Some((year, number(5..7), number(8..10)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const TODAY: (i32, u32, u32) = (2026, 11, 28);

    fn today() -> NaiveDate {
        day(TODAY.0, TODAY.1, TODAY.2)
    }

    #[test]
    fn accepts_real_past_dates() {
        assert_eq!(
            DateOfBirth::parse("2000-01-01", today()).unwrap().date(),
            day(2000, 1, 1)
        );
        assert!(DateOfBirth::parse("0001-01-01", today()).is_ok());
        assert!(DateOfBirth::parse("2000-02-29", today()).is_ok());
        assert!(DateOfBirth::parse("2026-11-27", today()).is_ok());
    }

    #[test]
    fn rejects_today_and_the_future() {
        for text in ["2026-11-28", "2026-11-29", "9999-12-31"] {
            assert_eq!(
                DateOfBirth::parse(text, today()),
                Err(DateOfBirthError::NotInThePast),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_dates_that_do_not_exist() {
        for text in [
            "1999-02-29",
            "2000-02-30",
            "2000-13-01",
            "2000-00-10",
            "2000-04-31",
            "2000-01-00",
        ] {
            assert_eq!(
                DateOfBirth::parse(text, today()),
                Err(DateOfBirthError::NotACalendarDate),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_year_zero() {
        assert_eq!(
            DateOfBirth::parse("0000-01-01", today()),
            Err(DateOfBirthError::BeforeYearOne)
        );
    }

    #[test]
    fn rejects_anything_but_the_exact_format() {
        for text in [
            "",
            "2000-1-01",
            "2000-01-1",
            "20000-01-01",
            "200-01-01",
            "2000/01/01",
            "01-01-2000",
            "2000-01-01T00:00:00",
            " 2000-01-01",
            "2000-01-01 ",
            "+2000-01-01",
            "-200-01-01",
            "２０００-01-01",
            "2000-0a-01",
            "2000_01_01",
        ] {
            assert_eq!(
                DateOfBirth::parse(text, today()),
                Err(DateOfBirthError::NotIsoFormat),
                "{text:?}"
            );
        }
    }

    #[test]
    fn displays_as_iso_with_four_digit_year() {
        let dob = DateOfBirth::parse("0042-03-07", today()).unwrap();
        assert_eq!(dob.to_string(), "0042-03-07");
    }

    #[test]
    fn stored_dates_are_not_checked_against_today() {
        assert!(DateOfBirth::from_stored(day(2999, 1, 1)).is_ok());
        assert_eq!(
            DateOfBirth::from_stored(day(0, 1, 1)),
            Err(DateOfBirthError::BeforeYearOne)
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,16}") {
            let _ = DateOfBirth::parse(&text, today());
        }

        #[test]
        fn round_trips_every_valid_date(days in 0i32..(365 * 9999)) {
            let date = day(1, 1, 1) + chrono::Days::new(days as u64);
            let today = date + chrono::Days::new(1);
            let parsed = DateOfBirth::parse(&date.format("%Y-%m-%d").to_string(), today).unwrap();
            prop_assert_eq!(parsed.date(), date);
            prop_assert_eq!(parsed.to_string(), date.format("%Y-%m-%d").to_string());
        }
    }
}
