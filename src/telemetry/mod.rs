//! Logs, and the one event every request produces.
//!
//! What a request event carries is fixed here: method, route template,
//! status, latency and request id. Never the path, the query string, a
//! header or a body, so dates of birth and tokens cannot reach a log line.

mod log_writer;
mod request_line;

use std::{
    cell::RefCell,
    io::IsTerminal,
    sync::{Arc, OnceLock},
    time::Instant,
};

use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response,
    http::{HeaderName, HeaderValue, Method},
};
use tracing::Level;
use tracing_subscriber::{EnvFilter, fmt};

use self::{
    log_writer::{BatchedWriter, WriterGuard},
    request_line::{Layout, RequestLine},
};
use crate::{config::LogFormat, ops::metrics::record_request};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Keeps the log-writer thread running; dropping it writes out every line
/// still pending, so hold it until the process is about to exit.
#[must_use = "log lines still pending are lost unless the guard lives until exit"]
pub struct LogGuard {
    _writer: Option<WriterGuard>,
}

/// Installs the global subscriber; logs go to stderr (stdout carries
/// `export` and `spec` output). The level comes from `RUST_LOG` (default
/// `info`). Calling it again is harmless.
///
/// Requests write their line themselves (`telemetry/request_line.rs`) but
/// never wait for `write(2)`: a writer thread writes every line in batches,
/// each within 50 ms of its first line (`telemetry/log_writer.rs`). Logging
/// waits when 16 MiB of lines are pending rather than drop lines. A process
/// killed outright loses the lines of its last 50 ms.
///
/// Fails only when the writer thread cannot be started.
pub fn init(format: LogFormat) -> std::io::Result<LogGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = BatchedWriter::spawn(std::io::stderr())?;
    let colours = std::io::stderr().is_terminal();
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone())
        .with_ansi(colours);
    let (installed, layout) = match format {
        LogFormat::Pretty => (builder.try_init(), Layout::Text),
        LogFormat::Json => (builder.json().flatten_event(true).try_init(), Layout::Json),
    };
    // Colours are the stock formatter's: on a terminal, request events go
    // through tracing like every other.
    if installed.is_ok() && !colours {
        let _ = DIRECT_REQUEST_LINES.set(DirectRequestLines { writer, layout });
    }
    // Already installed (tests build several applications): keep the first,
    // and let this writer thread end.
    Ok(LogGuard {
        _writer: installed.is_ok().then_some(guard),
    })
}

/// Where request lines go without tracing's dispatch, once `init` has set
/// up the subscriber whose lines they copy.
static DIRECT_REQUEST_LINES: OnceLock<DirectRequestLines> = OnceLock::new();

struct DirectRequestLines {
    writer: BatchedWriter,
    layout: Layout,
}

impl DirectRequestLines {
    fn write(&self, request: &RequestLine<'_>) {
        thread_local! {
            static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            request.write(self.layout, chrono::Utc::now(), line);
            self.writer.append(line);
        });
    }
}

/// Wraps `endpoint` so each request is timed, counted, logged once and
/// answered with an `x-request-id` (the caller's, if it sent a sane one).
pub fn observe_requests<E>(
    endpoint: E,
    route_of: fn(&str) -> &'static str,
) -> impl Endpoint<Output = Response>
where
    E: Endpoint + 'static,
{
    endpoint.around(move |endpoint: Arc<E>, request: Request| async move {
        let observation = RequestObservation::start(&request, route_of(request.uri().path()));
        let response = match endpoint.call(request).await {
            Ok(output) => output.into_response(),
            Err(err) => err.into_response(),
        };
        Ok(observation.finish(response))
    })
}

/// One request's telemetry, from the moment it is routed to its answer.
///
/// The public port uses it inside its single request layer
/// ([`crate::api::public_endpoint`]) rather than as a layer of its own.
pub struct RequestObservation {
    started: Instant,
    /// Kept as the header it is sent back as: a caller's is handed on
    /// without a copy, and a new one is encoded once.
    request_id: HeaderValue,
    method: Method,
    route: &'static str,
}

impl RequestObservation {
    /// `route` names the request's route in metrics and logs.
    pub fn start(request: &Request, route: &'static str) -> Self {
        Self {
            started: Instant::now(),
            request_id: request
                .headers()
                .get(REQUEST_ID_HEADER)
                .filter(|id| is_sane_request_id(id.as_bytes()))
                .cloned()
                .unwrap_or_else(new_request_id),
            method: request.method().clone(),
            route,
        }
    }

    /// Counts and logs the request, and names it in the response.
    pub fn finish(self, mut response: Response) -> Response {
        let latency = self.started.elapsed();
        let status = response.status().as_u16();
        record_request(self.method.as_str(), self.route, status, latency);
        log_request(&RequestLine {
            method: &self.method,
            route: self.route,
            status,
            latency_ms: milliseconds(latency),
            // Sane ids are ASCII, so this is the whole id.
            request_id: self.request_id.to_str().unwrap_or_default(),
        });
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER, self.request_id);
        response
    }
}

/// A random (v4) UUID, hyphenated, encoded without the formatting machinery.
fn new_request_id() -> HeaderValue {
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    // A hyphenated UUID is always a valid header value; the fallback only
    // keeps this free of a panic path.
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The target and level of the request event.
const REQUEST_EVENT_TARGET: &str = module_path!();
const REQUEST_EVENT_LEVEL: Level = Level::INFO;

/// Logs the request: straight into the log writer when `init` allows it and
/// tracing's filter lets the request event through, as the event otherwise.
fn log_request(request: &RequestLine<'_>) {
    match DIRECT_REQUEST_LINES.get() {
        Some(direct) => {
            if tracing::enabled!(target: REQUEST_EVENT_TARGET, REQUEST_EVENT_LEVEL) {
                direct.write(request);
            }
        }
        None => request_event(request),
    }
}

/// The request event, as tracing's formatters write it; the direct line is
/// held to their output by `request_line`'s tests.
fn request_event(request: &RequestLine<'_>) {
    tracing::event!(
        target: REQUEST_EVENT_TARGET,
        REQUEST_EVENT_LEVEL,
        method = %request.method,
        route = request.route,
        status = request.status,
        latency_ms = request.latency_ms,
        request_id = %request.request_id,
        "request"
    );
}

/// Nanoseconds divided once, so the value is the `f64` nearest to the exact
/// milliseconds and prints as at most 15 digits below 11 days (1.234567, not
/// `as_secs_f64() * 1000.0`'s 1.2345670000000001), which the request line
/// writes on its fast path.
fn milliseconds(latency: std::time::Duration) -> f64 {
    latency.as_nanos() as f64 / 1e6
}

fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_and_plain() {
        assert!(is_sane_request_id(b"4f1c-abc_1.2:3"));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id(&[b'a'; 129]));
        assert!(!is_sane_request_id(b"a b"));
        assert!(!is_sane_request_id(b"a\nb"));
    }
}
