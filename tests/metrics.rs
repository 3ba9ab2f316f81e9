//! The operations port's `/metrics`, in a test binary of its own: the
//! metrics recorder is global to the process, so in one shared with the
//! other API tests, their requests could produce the lines these look for.

mod common;

use common::{TestApp, assert_problem};

#[tokio::test]
async fn operations_port_serves_health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    app.put_date("alice", "2000-01-01").await;
    app.get("/hello/alice").await;

    let client = &app.client;
    for probe in ["/healthz", "/readyz"] {
        let response = client.get(app.admin_url(probe)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{probe}");
    }
    let metrics = app.metrics().await;
    for needle in [
        "http_requests_total{method=\"PUT\",route=\"/hello/{username}\",status=\"204\"}",
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/hello/{username}\",status=\"200\"",
        "birthday_store_operation_duration_seconds_bucket{operation=\"put\",outcome=\"ok\"",
        "birthday_api_build_info{version=\"",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    // Usernames never become label values.
    assert!(!metrics.contains("alice"));
    // The public API is not on the operations port.
    assert_problem(
        client
            .get(app.admin_url("/hello/alice"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn unknown_methods_share_one_metric_label() {
    let app = TestApp::spawn().await;
    let invented = reqwest::Method::from_bytes(b"FROBNICATE").unwrap();
    let response = app
        .client
        .request(invented, app.url("/hello/alice"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 405).await;
    let metrics = app.metrics().await;
    assert!(!metrics.contains("FROBNICATE"), "{metrics}");
    assert!(
        metrics.contains(
            "http_requests_total{method=\"other\",route=\"/hello/{username}\",status=\"405\"}"
        ),
        "{metrics}"
    );
}
