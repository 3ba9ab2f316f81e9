//! Generates the client from the committed OpenAPI document at build time, so
//! the client cannot drift from `openapi/openapi.json`.
//!
//! progenitor only types response bodies declared as `application/json`; it
//! hands every other media type back as an untyped byte stream. The service's
//! errors are `application/problem+json`, which is JSON with a registered
//! meaning, so the generator is shown them as `application/json`. That way a
//! failed call returns `Error::ErrorResponse(ResponseValue<types::Problem>)`:
//! callers match on a typed problem document instead of parsing bytes.

use std::{env, error::Error, fs, path::PathBuf};

use serde_json::Value;

const SPEC: &str = "../../openapi/openapi.json";
const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={SPEC}");
    let mut spec: Value = serde_json::from_str(&fs::read_to_string(SPEC)?)?;
    let rewritten = type_problem_responses_as_json(&mut spec);
    if rewritten == 0 {
        return Err(format!("{SPEC} declares no {PROBLEM_MEDIA_TYPE} responses").into());
    }
    let spec: openapiv3::OpenAPI = serde_json::from_value(spec)?;
    let tokens = progenitor::Generator::default().generate_tokens(&spec)?;
    let code = prettyplease::unparse(&syn::parse2(tokens)?);
    fs::write(PathBuf::from(env::var("OUT_DIR")?).join("client.rs"), code)?;
    Ok(())
}

/// Renames every response's `application/problem+json` content to
/// `application/json`; returns how many it renamed.
fn type_problem_responses_as_json(spec: &mut Value) -> usize {
    let mut renamed = 0;
    let operations = spec
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|path_item| path_item.values_mut());
    for operation in operations {
        let responses = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|responses| responses.values_mut());
        for response in responses {
            let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
                continue;
            };
            if let Some(media) = content.remove(PROBLEM_MEDIA_TYPE) {
                content.insert("application/json".into(), media);
                renamed += 1;
            }
        }
    }
    renamed
}
