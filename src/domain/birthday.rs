use chrono::{Datelike, NaiveDate};

use super::{DateOfBirth, Username};

/// The date on which someone born on `dob` celebrates in `year`: the same
/// month and day, except that 29 February falls on 28 February in years that
/// are not leap years.
fn birthday_in(dob: DateOfBirth, year: i32) -> Option<NaiveDate> {
    let born = dob.date();
    NaiveDate::from_ymd_opt(year, born.month(), born.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
}

/// The first date on or after `today` that is a birthday of `dob`.
///
/// `None` only at the very end of the calendar chrono can represent, far
/// beyond any date a clock can produce.
pub fn next_birthday(dob: DateOfBirth, today: NaiveDate) -> Option<NaiveDate> {
    let this_year = birthday_in(dob, today.year())?;
    if this_year >= today {
        Some(this_year)
    } else {
        birthday_in(dob, today.year().checked_add(1)?)
    }
}

/// Days from `today` to the next birthday: 0 on the birthday itself, at most
/// 365.
pub fn days_until_next_birthday(dob: DateOfBirth, today: NaiveDate) -> Option<u16> {
    let days = (next_birthday(dob, today)? - today).num_days();
    u16::try_from(days).ok()
}

/// The greeting `GET /hello/{username}` answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting(String);

impl Greeting {
    pub fn new(username: &Username, days_until_birthday: u16) -> Self {
        Self(match days_until_birthday {
            0 => format!("Hello, {username}! Happy birthday!"),
            days => format!("Hello, {username}! Your birthday is in {days} day(s)"),
        })
    }

    pub fn into_message(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use chrono::Days;
    use proptest::prelude::*;

    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn born(y: i32, m: u32, d: u32) -> DateOfBirth {
        DateOfBirth::from_stored(day(y, m, d)).unwrap()
    }

    fn days(dob: DateOfBirth, today: NaiveDate) -> u16 {
        days_until_next_birthday(dob, today).unwrap()
    }

    /// The rule, applied one day at a time.
    fn walk_to_birthday(dob: DateOfBirth, today: NaiveDate) -> u16 {
        let born = dob.date();
        let mut date = today;
        let mut steps = 0;
        loop {
            let leap_day_stand_in = born.month() == 2
                && born.day() == 29
                && date.month() == 2
                && date.day() == 28
                && NaiveDate::from_ymd_opt(date.year(), 2, 29).is_none();
            if (date.month() == born.month() && date.day() == born.day()) || leap_day_stand_in {
                return steps;
            }
            date = date + Days::new(1);
            steps += 1;
        }
    }

    #[test]
    fn birthday_today_is_zero() {
        assert_eq!(days(born(1990, 11, 28), day(2026, 11, 28)), 0);
    }

    #[test]
    fn tomorrow_is_one() {
        assert_eq!(days(born(1990, 11, 29), day(2026, 11, 28)), 1);
    }

    #[test]
    fn yesterday_is_almost_a_year_away() {
        assert_eq!(days(born(1990, 11, 27), day(2026, 11, 28)), 364);
        assert_eq!(days(born(1990, 11, 27), day(2027, 11, 28)), 365);
    }

    #[test]
    fn crosses_the_new_year() {
        assert_eq!(days(born(2000, 1, 1), day(2026, 12, 31)), 1);
        assert_eq!(days(born(2000, 12, 31), day(2026, 1, 1)), 364);
    }

    #[test]
    fn leap_day_birthday_is_28_february_in_common_years() {
        let leapling = born(2000, 2, 29);
        assert_eq!(days(leapling, day(2027, 2, 28)), 0);
        assert_eq!(days(leapling, day(2027, 2, 27)), 1);
        assert_eq!(days(leapling, day(2027, 3, 1)), 365);
        assert_eq!(days(leapling, day(2028, 2, 28)), 1);
        assert_eq!(days(leapling, day(2028, 2, 29)), 0);
        assert_eq!(days(leapling, day(2028, 3, 1)), 364);
        assert_eq!(days(leapling, day(2100, 2, 28)), 0);
        assert_eq!(days(leapling, day(2026, 11, 28)), 92);
    }

    #[test]
    fn february_28_birthday_in_a_leap_year() {
        let born_28th = born(2001, 2, 28);
        assert_eq!(days(born_28th, day(2028, 2, 28)), 0);
        assert_eq!(days(born_28th, day(2028, 2, 29)), 365);
        assert_eq!(days(born(2001, 3, 1), day(2028, 2, 28)), 2);
    }

    #[test]
    fn greeting_texts() {
        let alice = Username::parse("alice").unwrap();
        assert_eq!(
            Greeting::new(&alice, 0).into_message(),
            "Hello, alice! Happy birthday!"
        );
        assert_eq!(
            Greeting::new(&alice, 1).into_message(),
            "Hello, alice! Your birthday is in 1 day(s)"
        );
        assert_eq!(
            Greeting::new(&alice, 365).into_message(),
            "Hello, alice! Your birthday is in 365 day(s)"
        );
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        (0u64..3_652_058).prop_map(|offset| day(1, 1, 1) + Days::new(offset))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn agrees_with_a_day_by_day_walk(birth in any_date(), gap in 1u64..3_000_000) {
            let dob = DateOfBirth::from_stored(birth).unwrap();
            let today = birth + Days::new(gap);
            let answer = days(dob, today);
            prop_assert!(answer <= 365);
            prop_assert_eq!(answer, walk_to_birthday(dob, today));
        }

        #[test]
        fn zero_exactly_on_the_birthday(birth in any_date(), years in 1i32..3000) {
            let dob = DateOfBirth::from_stored(birth).unwrap();
            let year = birth.year() + years;
            let birthday = birthday_in(dob, year).unwrap();
            prop_assert_eq!(days(dob, birthday), 0);
            prop_assert_ne!(days(dob, birthday + Days::new(1)), 0);
            prop_assert_eq!(days(dob, birthday - Days::new(1)), 1);
        }
    }
}
