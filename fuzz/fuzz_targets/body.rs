//! The JSON step of the PUT body extractor on any bytes: never panics, and
//! every rejection is a 400 problem (never 5xx).
#![no_main]

use birthday_api::api::extract::{BodyDate, body_date_from_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    match body_date_from_json(bytes) {
        Ok(BodyDate::Text(text)) => {
            let json: serde_json::Value = serde_json::from_slice(bytes).expect("it parsed once");
            assert_eq!(json["dateOfBirth"].as_str(), Some(text.as_str()));
        }
        Ok(BodyDate::Missing | BodyDate::NotText | BodyDate::NoBody) => {}
        Err(problem) => assert_eq!(problem.status, 400, "{problem}"),
    }
});
