//! The public HTTP API: poem-openapi handlers, the OpenAPI document built
//! from them, Swagger UI, and the mapping of every error to a problem
//! document.

pub mod auth;
pub mod extract;
pub mod hello;
pub mod problem;

use std::{collections::HashMap, marker::PhantomData, sync::Arc};

use futures::future::BoxFuture;
use poem::{
    Endpoint, IntoResponse, Request, Response, Route, RouteMethod,
    endpoint::{BoxEndpoint, make_sync},
    get,
    http::{Method, StatusCode, header},
    web::Html,
};
use poem_openapi::{
    ContactObject, LicenseObject, Object, OpenApi, OpenApiService, Tags,
    error::{ParsePathError, ParseRequestPayloadError},
    payload::{Json, Payload},
    registry::{MetaApi, MetaSchemaRef, Registry},
    types::Type,
};
use serde::Serialize;

use self::{
    auth::WriteToken,
    extract::{DateText, payload_too_large},
    hello::HelloApi,
    problem::Problem,
};
use crate::{
    config::Clock,
    net::{self, Limits},
    store::Store,
    telemetry::RequestObservation,
};

/// What the handlers share.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub write_token: Option<WriteToken>,
}

#[derive(Tags)]
pub enum ApiTags {
    /// Save dates of birth, greet people, forget them.
    Birthdays,
}

/// The body of `PUT /hello/{username}`.
#[derive(Object, Debug)]
#[oai(example)]
pub struct BirthdayRequest {
    #[oai(rename = "dateOfBirth")]
    pub date_of_birth: DateText,
}

impl poem_openapi::types::Example for BirthdayRequest {
    fn example() -> Self {
        Self {
            date_of_birth: DateText::new("1990-07-14"),
        }
    }
}

/// The answer of `GET /hello/{username}`.
// `Serialize` writes the body (`JsonBody`) and `Object` documents it; a test
// holds the two to the same fields.
#[derive(Object, Serialize, Debug)]
#[oai(example)]
pub struct GreetingMessage {
    /// `Hello, <username>! Your birthday is in N day(s)`, or `Hello, <username>! Happy birthday!`
    pub message: String,
}

impl poem_openapi::types::Example for GreetingMessage {
    fn example() -> Self {
        Self {
            message: "Hello, alice! Your birthday is in 42 day(s)".into(),
        }
    }
}

/// A JSON answer written straight from `T`'s `Serialize`, and documented
/// from its `Type` exactly as poem-openapi's `Json<T>` would be. `Json<T>`
/// first builds a `serde_json::Value` tree of the answer and then writes
/// that: about 1 000 more instructions for a greeting (docs/benchmarks.md).
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = <Json<T> as Payload>::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        <Json<T> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Serialize + Send> IntoResponse for JsonBody<T> {
    fn into_response(self) -> Response {
        poem::web::Json(self.0).into_response()
    }
}

/// The OpenAPI document and Swagger UI. Building it needs no store, so
/// `birthday-api spec` prints the document without opening one; the
/// operations themselves are served by [`hello_routes`].
pub fn openapi_service() -> OpenApiService<DocumentOf<HelloApi>, ()> {
    OpenApiService::new(
        DocumentOf(PhantomData),
        "birthday-api",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Remembers people's dates of birth and greets them on the way to their birthday. \
         Store a date of birth with `PUT /hello/{username}`, get a greeting with \
         `GET /hello/{username}`, forget it with `DELETE /hello/{username}`. Every error \
         is an RFC 9457 problem document (`application/problem+json`). When the service \
         runs with a write token, PUT and DELETE need `Authorization: Bearer <token>`.",
    )
    .contact(ContactObject::new().name("birthday-api developers"))
    .license(LicenseObject::new("MIT").url("https://opensource.org/licenses/MIT"))
    .server("/")
}

/// The document of the API `T`, without a value of it: the document is
/// built from `T`'s metadata alone, and a `HelloApi` holds the store.
pub struct DocumentOf<T>(PhantomData<T>);

impl<T: OpenApi> OpenApi for DocumentOf<T> {
    fn meta() -> Vec<MetaApi> {
        T::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    /// None: only the document is served from an `OpenApiService`.
    fn add_routes(self, _route_table: &mut HashMap<String, HashMap<Method, BoxEndpoint<'static>>>) {
    }
}

/// The API's operations, routed by path and method.
///
/// poem-openapi's `into_endpoint` would put three layers over these routes:
/// one that parses every query string into owned pairs (only `QueryParam`
/// needs the query, and it reads it itself), one that maps the output to a
/// response (the public endpoint does) and a box. Each layer copies the
/// request and the inner future once more; without them a request costs
/// about 2 000 fewer instructions (docs/benchmarks.md). A handler must
/// therefore take its query parameters as `QueryParam`: poem-openapi's
/// `Query` would find no parsed pairs and panic, which the tests of every
/// operation would show as a 500.
fn hello_routes(api: HelloApi) -> Route {
    let mut operations = HashMap::new();
    api.add_routes(&mut operations);
    operations
        .into_iter()
        .fold(Route::new(), |route, (path, methods)| {
            route.at(
                path,
                methods
                    .into_iter()
                    .fold(RouteMethod::new(), |route, (method, operation)| {
                        route.method(method, operation)
                    }),
            )
        })
}

/// `birthday-api spec --format json`; also what `openapi/openapi.json` holds.
pub fn spec_json() -> String {
    openapi_service().spec() + "\n"
}

/// `birthday-api spec --format yaml`; also what `openapi/openapi.yaml` holds.
pub fn spec_yaml() -> String {
    openapi_service().spec_yaml()
}

/// Everything served on the public port, behind one request layer: the
/// request-level limits, the request's telemetry and the mapping of every
/// error to a problem document.
///
/// One layer rather than one per concern: each poem layer keeps the request
/// and the next layer's future in its own, and poem copies the whole future
/// into a box per request, so every layer and every large inline future is
/// paid in `memcpy` (see docs/benchmarks.md).
pub fn public_endpoint(state: Arc<AppState>, limits: Limits) -> impl Endpoint<Output = Response> {
    let api = openapi_service();
    let swagger_ui = Html(api.swagger_ui_html());
    let documents = Route::new()
        .at("/docs", get(make_sync(move |_| swagger_ui.clone())))
        .at("/openapi.json", get(api.spec_endpoint()))
        .at("/openapi.yaml", get(api.spec_endpoint_yaml()));
    PublicEndpoint {
        hello: Arc::new(hello_routes(HelloApi::new(state))),
        documents: Arc::new(documents),
        limits,
    }
}

/// `/hello/…` goes straight to the OpenAPI routes, everything else to the
/// documents: one router fewer on the hot path than nesting both in a
/// `Route`.
struct PublicEndpoint<H, D> {
    hello: Arc<H>,
    documents: Arc<D>,
    limits: Limits,
}

impl<H, D> Endpoint for PublicEndpoint<H, D>
where
    H: Endpoint + 'static,
    D: Endpoint + 'static,
{
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let route = route_template(request.uri().path());
        let observation = RequestObservation::start(&request, route);
        let response = match net::admit(&mut request, &self.limits).await {
            Err(problem) => problem.into_response(),
            Ok(()) => {
                let method = request.method().clone();
                let allowed = allowed_methods(route);
                // Boxed: moving the handler's future (the request and poem's
                // routing state, some KiB) into the timeout, or into a task
                // when a write times out, would otherwise copy it, and keep it
                // twice in this future.
                let handler = if route == HELLO_ROUTE {
                    boxed_call(&self.hello, request)
                } else {
                    boxed_call(&self.documents, request)
                };
                match net::answer_within(&self.limits, &method, handler).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(err)) => problem_response(&err, &method, allowed),
                    Err(refusal) => refusal,
                }
            }
        };
        Ok(observation.finish(response))
    }
}

/// `endpoint`'s answer to `request` as a boxed future that owns both.
fn boxed_call<E: Endpoint + 'static>(
    endpoint: &Arc<E>,
    request: Request,
) -> BoxFuture<'static, poem::Result<Response>> {
    let endpoint = Arc::clone(endpoint);
    Box::pin(async move {
        endpoint
            .call(request)
            .await
            .map(IntoResponse::into_response)
    })
}

/// The problem document for an error, whoever raised it, with the `Allow`
/// header on a 405.
pub fn problem_response(
    err: &poem::Error,
    method: &Method,
    allowed: Option<&'static str>,
) -> Response {
    let mut response = problem_for(err, method).into_response();
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(allowed) = allowed {
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
        }
    }
    response
}

fn problem_for(err: &poem::Error, method: &Method) -> Problem {
    if let Some(problem) = err.downcast_ref::<Problem>() {
        return problem.clone();
    }
    let status = err.status();
    match status {
        StatusCode::NOT_FOUND => Problem::new(status, "there is no such route"),
        StatusCode::METHOD_NOT_ALLOWED => Problem::new(
            status,
            format!("{method} is not allowed on this route; see the Allow header"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::new(
            status,
            "the request body must be JSON, sent with Content-Type: application/json",
        ),
        StatusCode::BAD_REQUEST if err.is::<ParseRequestPayloadError>() => {
            Problem::new(status, format!("the request body is invalid: {err}"))
        }
        StatusCode::BAD_REQUEST if err.is::<ParsePathError>() => hello::undecodable_username(),
        status if status.is_server_error() => {
            tracing::error!(error = %err, "request failed");
            Problem::new(status, "the server could not answer this request")
        }
        status => Problem::new(status, err.to_string()),
    }
}

/// The `Allow` header of a 405, by route.
fn allowed_methods(route: &'static str) -> Option<&'static str> {
    match route {
        HELLO_ROUTE => Some("GET, PUT, DELETE"),
        "/docs" | "/openapi.json" | "/openapi.yaml" => Some("GET"),
        _ => None,
    }
}

const HELLO_ROUTE: &str = "/hello/{username}";

/// The route a path belongs to, as named in metrics and logs. Paths that
/// match no route share one name so that scanners cannot inflate the metric
/// cardinality, and no username or query string ever reaches a log line.
pub fn route_template(path: &str) -> &'static str {
    match path {
        "/openapi.json" => "/openapi.json",
        "/openapi.yaml" => "/openapi.yaml",
        "/docs" => "/docs",
        _ if path
            .strip_prefix("/hello/")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')) =>
        {
            HELLO_ROUTE
        }
        _ => "unmatched",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `into_endpoint` refused duplicate operation ids at start-up;
    /// `hello_routes` does not look, so this does.
    #[test]
    fn operation_ids_are_unique() {
        let ids: Vec<_> = HelloApi::meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .flat_map(|path| path.operations)
            .map(|operation| operation.operation_id)
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
    }

    /// `JsonBody` writes the greeting with serde; the document describes it
    /// with poem-openapi's `Object`. Renaming a field on one side only, or
    /// skipping one, makes them disagree.
    #[test]
    fn a_greeting_is_written_as_its_schema_describes_it() {
        use poem_openapi::types::{Example as _, ToJSON as _};

        for message in [
            GreetingMessage::example().message,
            "Hello, Zoë! Happy birthday!".to_owned(),
            "quote \" backslash \\ control \u{1}".to_owned(),
        ] {
            let greeting = GreetingMessage { message };
            assert_eq!(serde_json::to_value(&greeting).ok(), greeting.to_json());
        }
    }

    #[tokio::test]
    async fn a_json_body_is_answered_as_poem_openapi_json_would_be() {
        let greeting = || GreetingMessage {
            message: "Hello, alice! Happy birthday!".into(),
        };
        let ours = JsonBody(greeting()).into_response();
        let theirs = Json(greeting()).into_response();
        assert_eq!(ours.status(), theirs.status());
        assert_eq!(
            ours.headers().get(header::CONTENT_TYPE),
            theirs.headers().get(header::CONTENT_TYPE)
        );
        let (ours, theirs) = (
            ours.into_body().into_vec().await.unwrap(),
            theirs.into_body().into_vec().await.unwrap(),
        );
        assert_eq!(ours, theirs);
    }

    #[test]
    fn route_templates_hide_usernames() {
        assert_eq!(route_template("/hello/alice"), HELLO_ROUTE);
        assert_eq!(route_template("/hello/J%C3%BCrgen"), HELLO_ROUTE);
        assert_eq!(route_template("/hello/"), "unmatched");
        assert_eq!(route_template("/hello/a/b"), "unmatched");
        assert_eq!(route_template("/docs/oauth-receiver.html"), "unmatched");
        assert_eq!(route_template("/wp-admin"), "unmatched");
    }
}
