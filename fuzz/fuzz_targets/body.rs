//! The JSON step of the PUT body extractor on any bytes: never panics, every
//! rejection is a 400 problem (never 5xx), and it finds what a plain
//! `serde_json::Value` reading of the same bytes finds.
#![no_main]

use birthday_api::api::extract::{BodyDate, body_date_from_json};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|bytes: &[u8]| {
    let tree = serde_json::from_slice::<Value>(bytes);
    match body_date_from_json(bytes) {
        Ok(found) => {
            let Ok(Value::Object(members)) = tree else {
                panic!("accepted a body that is not a JSON object: {tree:?}");
            };
            let expected = match members.get("dateOfBirth") {
                None => BodyDate::Missing,
                Some(Value::String(text)) => BodyDate::Text(text.clone()),
                Some(_) => BodyDate::NotText,
            };
            assert_eq!(found, expected);
        }
        Err(problem) => {
            assert_eq!(problem.status, 400, "{problem}");
            assert!(
                !matches!(tree, Ok(Value::Object(_))),
                "refused a JSON object: {problem}"
            );
        }
    }
});
