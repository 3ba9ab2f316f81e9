//! The operations port: liveness, readiness and Prometheus metrics. Never
//! served on the public port.

pub mod metrics;

use std::sync::Arc;

use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler,
    http::StatusCode,
    web::{Data, Json},
};
use serde_json::json;

use crate::{
    api::{self, problem::Problem},
    store::Store,
};

/// `/healthz`, `/readyz`, `/metrics`. Their errors (an unknown route, a
/// method other than GET) are problem documents, as on the public port.
pub fn admin_routes(store: Arc<dyn Store>) -> impl Endpoint<Output = Response> {
    Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(prometheus_metrics))
        .data(store)
        .around(answer_errors_with_problems)
}

async fn answer_errors_with_problems<E: Endpoint>(
    endpoint: Arc<E>,
    request: Request,
) -> poem::Result<Response> {
    let method = request.method().clone();
    Ok(match endpoint.call(request).await {
        Ok(response) => response.into_response(),
        // Every route of this port takes GET only.
        Err(err) => api::problem_response(&err, &method, Some("GET")),
    })
}

/// 200 while the process is up.
#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when the store answers, 503 (a problem document naming the reason)
/// otherwise.
#[handler]
async fn readyz(store: Data<&Arc<dyn Store>>) -> Response {
    match store.ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the store does not answer: {err}"),
            )
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
