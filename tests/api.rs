//! The HTTP contract (`../shared/api-contract.md`), rule by rule, against the
//! real application on a random port with a fresh data dir.

mod common;

use birthday_api::config::Clock;
use common::{TestApp, assert_problem, date, token};
use serde_json::json;

// --- the replaced service's own checks ---------------------------------------

#[tokio::test]
async fn replaced_service_checks_still_pass() {
    let app = TestApp::spawn().await;
    let put = app
        .client
        .put(app.url("/hello/auser?dateOfBirth=2020-01-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    assert_eq!(app.get("/hello/auser").await.status(), 200);
    assert_problem(app.get("/hello/notauser").await, 404).await;
}

// --- PUT -------------------------------------------------------------------

#[tokio::test]
async fn put_with_json_body_answers_204_with_empty_body() {
    let app = TestApp::spawn().await;
    let response = app.put_date("alice", "2000-01-01").await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn last_write_wins() {
    let app = TestApp::spawn().await;
    assert_eq!(app.put_date("alice", "2000-01-01").await.status(), 204);
    assert_eq!(app.put_date("alice", "1990-11-29").await.status(), 204);
    assert_eq!(
        app.greeting("alice").await,
        "Hello, alice! Your birthday is in 1 day(s)"
    );
}

#[tokio::test]
async fn query_and_body_may_both_be_given_when_they_agree() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .put(app.url("/hello/alice?dateOfBirth=2000-01-01"))
        .json(&json!({"dateOfBirth": "2000-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn query_and_body_that_differ_are_rejected() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .put(app.url("/hello/alice?dateOfBirth=2000-01-01"))
        .json(&json!({"dateOfBirth": "2000-01-02"}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 400).await;
    assert!(problem["errors"]["INVALID_DATE"].is_string(), "{problem}");
    assert_problem(app.get("/hello/alice").await, 404).await;
}

#[tokio::test]
async fn query_form_works_with_an_empty_json_body_too() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .put(app.url("/hello/alice?dateOfBirth=2000-01-01"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn query_form_is_read_as_a_form_first_value_first() {
    let app = TestApp::spawn().await;
    let put = |query: &'static str| {
        app.client
            .put(app.url(&format!("/hello/alice?{query}")))
            .send()
    };
    // Percent-encoded, among other pairs, and repeated: the first counts.
    let response = put("utm=x&dateOfBirth=2000%2D01%2D01&dateOfBirth=1990-11-29")
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.greeting("alice").await,
        "Hello, alice! Your birthday is in 34 day(s)"
    );
    // The name is case-sensitive, and a pair without `=` has an empty value.
    for query in ["DateOfBirth=2000-01-01", "dateOfBirth"] {
        let problem = assert_problem(put(query).await.unwrap(), 400).await;
        assert!(
            problem["errors"]["INVALID_DATE"].is_string(),
            "{query}: {problem}"
        );
    }
}

// --- GET ---------------------------------------------------------------------

#[tokio::test]
async fn greets_with_days_until_the_birthday() {
    // Today is 2026-11-28 in these tests.
    let app = TestApp::spawn().await;
    for (name, dob, message) in [
        ("tomorrow", "1990-11-29", "Your birthday is in 1 day(s)"),
        ("newyear", "2000-01-01", "Your birthday is in 34 day(s)"),
        ("yesterday", "1990-11-27", "Your birthday is in 364 day(s)"),
        ("today", "1990-11-28", "Happy birthday!"),
        ("leapling", "2000-02-29", "Your birthday is in 92 day(s)"),
    ] {
        assert_eq!(app.put_date(name, dob).await.status(), 204);
        assert_eq!(
            app.greeting(name).await,
            format!("Hello, {name}! {message}")
        );
    }
}

#[tokio::test]
async fn greeting_is_json_with_exactly_one_member() {
    let app = TestApp::spawn().await;
    app.put_date("alice", "2000-01-01").await;
    let response = app.get("/hello/alice").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"message": "Hello, alice! Your birthday is in 34 day(s)"})
    );
}

#[tokio::test]
async fn leap_day_birthday_is_celebrated_on_28_february_in_common_years() {
    let common_year = TestApp::spawn_with(|s| s.clock = Clock::Fixed(date("2027-02-28"))).await;
    common_year.put_date("leapling", "2000-02-29").await;
    assert_eq!(
        common_year.greeting("leapling").await,
        "Hello, leapling! Happy birthday!"
    );

    let day_after = TestApp::spawn_with(|s| s.clock = Clock::Fixed(date("2027-03-01"))).await;
    day_after.put_date("leapling", "2000-02-29").await;
    assert_eq!(
        day_after.greeting("leapling").await,
        "Hello, leapling! Your birthday is in 365 day(s)"
    );

    let leap_year = TestApp::spawn_with(|s| s.clock = Clock::Fixed(date("2028-02-28"))).await;
    leap_year.put_date("leapling", "2000-02-29").await;
    assert_eq!(
        leap_year.greeting("leapling").await,
        "Hello, leapling! Your birthday is in 1 day(s)"
    );
}

#[tokio::test]
async fn unknown_username_is_a_404_problem() {
    let app = TestApp::spawn().await;
    assert_problem(app.get("/hello/nobody").await, 404).await;
}

// --- usernames ---------------------------------------------------------------

#[tokio::test]
async fn unicode_usernames_are_percent_decoded_and_nfc_normalised() {
    let app = TestApp::spawn().await;
    // "Zoë" sent decomposed (e + combining diaeresis) ...
    assert_eq!(app.put_date("Zoe%CC%88", "2000-01-01").await.status(), 204);
    // ... is the same person as "Zoë" sent precomposed, and echoed in NFC.
    assert_eq!(
        app.greeting("Zo%C3%AB").await,
        "Hello, Zoë! Your birthday is in 34 day(s)"
    );
    for (encoded, name) in [
        ("J%C3%BCrgen", "Jürgen"),
        ("%D0%9C%D0%B0%D1%80%D0%B8%D1%8F", "Мария"),
    ] {
        assert_eq!(app.put_date(encoded, "2000-01-01").await.status(), 204);
        assert!(
            app.greeting(encoded)
                .await
                .starts_with(&format!("Hello, {name}!"))
        );
    }
}

#[tokio::test]
async fn usernames_are_case_sensitive() {
    let app = TestApp::spawn().await;
    app.put_date("Alice", "2000-01-01").await;
    assert_problem(app.get("/hello/alice").await, 404).await;
    assert_eq!(app.get("/hello/Alice").await.status(), 200);
}

#[tokio::test]
async fn invalid_usernames_are_rejected_on_every_method() {
    let app = TestApp::spawn().await;
    let too_long = "a".repeat(65);
    for name in [
        "alice1",
        "al%20ice",
        "al_ice",
        "al-ice",
        "al.ice",
        "a%2Fb",
        "%F0%9F%8E%82",
        // Not UTF-8 once decoded: the router drops such a segment.
        "%FF",
        "J%C3%28rgen",
        too_long.as_str(),
    ] {
        let problem = assert_problem(app.put_date(name, "2000-01-01").await, 400).await;
        assert!(
            problem["errors"]["INVALID_USERNAME"].is_string(),
            "{name}: {problem}"
        );
        assert!(
            problem["errors"].get("INVALID_DATE").is_none(),
            "{name}: {problem}"
        );

        let problem = assert_problem(app.get(&format!("/hello/{name}")).await, 400).await;
        assert!(
            problem["errors"]["INVALID_USERNAME"].is_string(),
            "{name}: {problem}"
        );

        let response = app
            .client
            .delete(app.url(&format!("/hello/{name}")))
            .send()
            .await
            .unwrap();
        assert_problem(response, 400).await;
    }
    let longest = "a".repeat(64);
    assert_eq!(app.put_date(&longest, "2000-01-01").await.status(), 204);
}

// --- dates -------------------------------------------------------------------

#[tokio::test]
async fn invalid_dates_are_rejected() {
    let app = TestApp::spawn().await;
    for dob in [
        "2026-11-28", // today
        "2026-11-29", // future
        "2001-02-29", // not a leap year
        "2000-13-01",
        "2000-04-31",
        "0000-01-01",
        "2000-1-01",
        "01-01-2000",
        "2000/01/01",
        "2000-01-01T00:00:00Z",
        "",
    ] {
        let problem = assert_problem(app.put_date("alice", dob).await, 400).await;
        assert!(
            problem["errors"]["INVALID_DATE"].is_string(),
            "{dob}: {problem}"
        );
        assert!(
            problem["errors"].get("INVALID_USERNAME").is_none(),
            "{dob}: {problem}"
        );
    }
    assert_problem(app.get("/hello/alice").await, 404).await;
    assert_eq!(app.put_date("alice", "0001-01-01").await.status(), 204);
    assert_eq!(app.put_date("alice", "2026-11-27").await.status(), 204);
}

#[tokio::test]
async fn missing_or_mistyped_date_is_a_validation_error() {
    let app = TestApp::spawn().await;
    for body in [
        json!({}),
        json!({"dateOfBirth": 20000101}),
        json!({"dateOfBirth": null}),
    ] {
        let problem = assert_problem(app.put_json("alice", body.clone()).await, 400).await;
        assert!(
            problem["errors"]["INVALID_DATE"].is_string(),
            "{body}: {problem}"
        );
    }
    let no_body_no_query = app
        .client
        .put(app.url("/hello/alice"))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(no_body_no_query, 400).await;
    assert!(problem["errors"]["INVALID_DATE"].is_string(), "{problem}");
}

#[tokio::test]
async fn every_failing_rule_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let problem = assert_problem(app.put_date("bad1", "2030-02-29").await, 400).await;
    assert_eq!(problem["detail"], "the request has 2 invalid fields");
    let errors = problem["errors"].as_object().unwrap();
    assert_eq!(errors.len(), 2, "{problem}");
    assert!(errors["INVALID_USERNAME"].is_string());
    assert!(errors["INVALID_DATE"].is_string());
}

// --- malformed requests ------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = TestApp::spawn().await;
    for body in [
        "{\"dateOfBirth\":",
        "not json",
        "[]",
        "\"2000-01-01\"",
        "null",
    ] {
        let response = app
            .client
            .put(app.url("/hello/alice"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(response, 400).await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415_problem() {
    let app = TestApp::spawn().await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = app
            .client
            .put(app.url("/hello/alice"))
            .body("{\"dateOfBirth\":\"2000-01-01\"}");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        assert_problem(request.send().await.unwrap(), 415).await;
    }
}

#[tokio::test]
async fn bodies_over_4_kib_are_a_413_problem() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(4096);
    let oversized = format!("{{\"dateOfBirth\":\"2000-01-01\",\"pad\":\"{padding}\"}}");
    let response = app
        .client
        .put(app.url("/hello/alice"))
        .header("content-type", "application/json")
        .body(oversized.clone())
        .send()
        .await
        .unwrap();
    assert_problem(response, 413).await;

    // Without Content-Length (chunked), the limit holds while reading.
    let response = put_json_in_chunks(&app, "alice", oversized, 512).await;
    assert_problem(response, 413).await;
    assert_problem(app.get("/hello/alice").await, 404).await;
}

/// `PUT /hello/{username}` with `json` sent chunked, `chunk` bytes at a
/// time, without a `Content-Length`.
async fn put_json_in_chunks(
    app: &TestApp,
    username: &str,
    json: String,
    chunk: usize,
) -> reqwest::Response {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = json
        .into_bytes()
        .chunks(chunk)
        .map(|part| Ok(part.to_vec()))
        .collect();
    app.client
        .put(app.url(&format!("/hello/{username}")))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_body_of_exactly_4_kib_is_read_whole_or_in_chunks() {
    let app = TestApp::spawn().await;
    let body = |date: &str| {
        let unpadded = format!("{{\"dateOfBirth\":\"{date}\",\"pad\":\"\"}}");
        let padding = "x".repeat(4096 - unpadded.len());
        format!("{{\"dateOfBirth\":\"{date}\",\"pad\":\"{padding}\"}}")
    };
    let whole = body("2000-11-29");
    assert_eq!(whole.len(), 4096);
    let response = app
        .client
        .put(app.url("/hello/alice"))
        .header("content-type", "application/json")
        .body(whole)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let response = put_json_in_chunks(&app, "bob", body("2001-11-30"), 1000).await;
    assert_eq!(response.status(), 204);

    assert_eq!(
        app.greeting("alice").await,
        "Hello, alice! Your birthday is in 1 day(s)"
    );
    assert_eq!(
        app.greeting("bob").await,
        "Hello, bob! Your birthday is in 2 day(s)"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/hello",
        "/hello/",
        "/hello/a/b",
        "/healthz",
        "/metrics",
        "/readyz",
    ] {
        assert_problem(app.get(path).await, 404).await;
    }
}

#[tokio::test]
async fn wrong_methods_are_405_problems_with_allow() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        (reqwest::Method::POST, "/hello/alice", "GET, PUT, DELETE"),
        (reqwest::Method::PATCH, "/hello/alice", "GET, PUT, DELETE"),
        (reqwest::Method::POST, "/openapi.json", "GET"),
        (reqwest::Method::PUT, "/openapi.yaml", "GET"),
        (reqwest::Method::DELETE, "/docs", "GET"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert_problem(response, 405).await;
    }
}

// --- DELETE ------------------------------------------------------------------

#[tokio::test]
async fn delete_forgets_and_then_answers_404() {
    let app = TestApp::spawn().await;
    app.put_date("alice", "2000-01-01").await;
    let delete = || async {
        app.client
            .delete(app.url("/hello/alice"))
            .send()
            .await
            .unwrap()
    };
    let first = delete().await;
    assert_eq!(first.status(), 204);
    assert!(first.bytes().await.unwrap().is_empty());
    assert_problem(app.get("/hello/alice").await, 404).await;
    assert_problem(delete().await, 404).await;
}

// --- write token -------------------------------------------------------------

#[tokio::test]
async fn write_token_guards_put_and_delete_but_not_get() {
    let app = TestApp::spawn_with(|s| s.write_token = Some(token("s3cret-token"))).await;
    let put = |auth: Option<&'static str>| {
        let mut request = app
            .client
            .put(app.url("/hello/alice"))
            .json(&json!({"dateOfBirth": "2000-01-01"}));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    assert_problem(put(None).await.unwrap(), 401).await;
    assert_problem(put(Some("Bearer wrong")).await.unwrap(), 401).await;
    assert_problem(
        put(Some("Bearer s3cret-token-and-more")).await.unwrap(),
        401,
    )
    .await;
    assert_problem(put(Some("Basic czNjcmV0LXRva2Vu")).await.unwrap(), 401).await;
    assert_eq!(
        put(Some("Bearer s3cret-token")).await.unwrap().status(),
        204
    );

    assert_eq!(app.get("/hello/alice").await.status(), 200);

    let unauthorised_delete = app
        .client
        .delete(app.url("/hello/alice"))
        .send()
        .await
        .unwrap();
    assert_problem(unauthorised_delete, 401).await;
    let delete = app
        .client
        .delete(app.url("/hello/alice"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
}

#[tokio::test]
async fn without_a_token_writes_are_open() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .put(app.url("/hello/alice"))
        .bearer_auth("anything")
        .json(&json!({"dateOfBirth": "2000-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

// --- documentation routes ----------------------------------------------------

#[tokio::test]
async fn swagger_ui_is_served_with_embedded_assets() {
    let app = TestApp::spawn().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger"), "not Swagger UI");
    assert!(html.contains("putBirthday"), "the document is not embedded");
    for external in ["https://", "http://", "//cdn", "unpkg", "jsdelivr"] {
        assert!(
            !html.contains(&format!("src=\"{external}"))
                && !html.contains(&format!("href=\"{external}")),
            "loads an asset from outside: {external}"
        );
    }
}

#[tokio::test]
async fn served_documents_are_the_committed_ones() {
    let app = TestApp::spawn().await;
    let json_doc = app.get("/openapi.json").await.text().await.unwrap();
    let committed_json = std::fs::read_to_string("openapi/openapi.json").unwrap();
    let served: serde_json::Value = serde_json::from_str(&json_doc).unwrap();
    let committed: serde_json::Value = serde_json::from_str(&committed_json).unwrap();
    assert_eq!(served, committed, "run `just spec`");

    let yaml_doc = app.get("/openapi.yaml").await.text().await.unwrap();
    let committed_yaml = std::fs::read_to_string("openapi/openapi.yaml").unwrap();
    assert_eq!(
        yaml_doc.trim_end(),
        committed_yaml.trim_end(),
        "run `just spec`"
    );
}

/// Clients generated from the document must know every answer an operation
/// can get, also the request limits' refusals, which come before the
/// operation runs.
#[tokio::test]
async fn the_limits_refusals_are_declared_for_every_operation() {
    let app = TestApp::spawn().await;
    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let long_name = "a".repeat(9 * 1024);
    let big_header = "x".repeat(7 * 1024);
    let big_body = "{}".repeat(3 * 1024);
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let responses =
            &spec["paths"]["/hello/{username}"][method.as_str().to_lowercase()]["responses"];
        let refusals = [
            app.client
                .request(method.clone(), app.url(&format!("/hello/{long_name}")))
                .send()
                .await
                .unwrap(),
            app.client
                .request(method.clone(), app.url("/hello/alice"))
                .header("x-one", &big_header)
                .header("x-two", &big_header)
                .header("x-three", &big_header)
                .send()
                .await
                .unwrap(),
            app.client
                .request(method.clone(), app.url("/hello/alice"))
                .header("content-type", "application/json")
                .body(big_body.clone())
                .send()
                .await
                .unwrap(),
        ];
        for (refusal, expected) in refusals.into_iter().zip([414, 431, 413]) {
            assert_eq!(refusal.status(), expected, "{method}");
            let declared = &responses[expected.to_string()]["content"]["application/problem+json"];
            assert!(
                declared.is_object(),
                "{method} can be answered {expected}, which the document does not declare"
            );
            assert_problem(refusal, expected).await;
        }
        assert!(
            responses["503"]["headers"]["Retry-After"].is_object(),
            "{method}: {}",
            responses["503"]
        );
        assert!(responses["408"].is_object(), "{method}: {responses}");
    }
}

// --- operations port ---------------------------------------------------------

#[tokio::test]
async fn operations_port_errors_are_problems_too() {
    let app = TestApp::spawn().await;
    for path in ["/", "/hello/alice", "/readyz/now"] {
        assert_problem(
            app.client.get(app.admin_url(path)).send().await.unwrap(),
            404,
        )
        .await;
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = app.client.post(app.admin_url(path)).send().await.unwrap();
        assert_eq!(response.headers()["allow"], "GET", "POST {path}");
        assert_problem(response, 405).await;
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_made_up() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/hello/alice"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let made_up = |response: reqwest::Response| {
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(uuid.get_version_num(), 4, "{id}");
        assert_eq!(id, uuid.hyphenated().to_string());
        id
    };
    let first = made_up(app.get("/hello/alice").await);
    let second = made_up(app.get("/hello/alice").await);
    assert_ne!(first, second);
    for insane in ["has space", &"a".repeat(129), "semi;colon"] {
        let response = app
            .client
            .get(app.url("/hello/alice"))
            .header("x-request-id", insane)
            .send()
            .await
            .unwrap();
        made_up(response);
    }
}

// --- persistence -------------------------------------------------------------

#[tokio::test]
async fn records_survive_a_clean_restart() {
    let app = TestApp::spawn().await;
    app.put_date("alice", "2000-01-01").await;
    app.put_date("Jürgen", "1990-02-28").await;
    let mut settings = common::test_settings(&app.data_dir);
    settings.clock = Clock::Fixed(common::default_today());
    let dir = app.stop().await;

    let restarted = TestApp::start(settings, dir).await;
    assert_eq!(
        restarted.greeting("alice").await,
        "Hello, alice! Your birthday is in 34 day(s)"
    );
    assert!(
        restarted
            .greeting("J%C3%BCrgen")
            .await
            .starts_with("Hello, Jürgen!")
    );
}
