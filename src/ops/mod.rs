//! The operations port: liveness, readiness and Prometheus metrics. Never
//! served on the public port.

pub mod metrics;

use std::sync::Arc;

use poem::{
    EndpointExt, IntoResponse, Response, Route, get, handler,
    http::StatusCode,
    web::{Data, Json},
};
use serde_json::json;

use crate::store::Store;

/// `/healthz`, `/readyz`, `/metrics`.
pub fn admin_routes(store: Arc<dyn Store>) -> impl poem::Endpoint<Output = Response> {
    Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(prometheus_metrics))
        .data(store)
        .map_to_response()
}

/// 200 while the process is up.
#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when the store answers, 503 otherwise.
#[handler]
async fn readyz(store: Data<&Arc<dyn Store>>) -> Response {
    match store.ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            Json(json!({ "status": "unavailable", "reason": err.to_string() }))
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .into_response()
        }
    }
}

#[handler]
fn prometheus_metrics() -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics::render())
}

/// The route names of the operations port, for metrics and logs.
pub fn route_template(path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        _ => "unmatched",
    }
}
