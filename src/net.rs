//! Defences against slow, greedy and oversized clients, which poem 3's
//! `Server` does not offer: hyper's `header_read_timeout` and `max_buf_size`
//! are not reachable through it, and its own head limit is about 400 KiB.
//!
//! Two layers:
//! - [`GuardedAcceptor`] works on the byte stream of each HTTP/1 connection:
//!   it caps how many connections are open at once, gives a client a fixed
//!   time to deliver each request head (so a head trickled a byte at a time
//!   cannot hold a connection), and caps the request line and the head size.
//!   It answers those cases itself (503, 408, 414, 431), because hyper never
//!   sees a request it could route.
//! - [`admit`] and [`answer_within`] work on parsed requests: URI and header
//!   size limits again (HTTP/2 requests never pass the byte-stream checks), a
//!   body read timeout, and a per-request timeout around the handlers.
//!
//! Every refusal is a problem document, like every other error.

use std::{
    io,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use poem::{
    IntoResponse, Request, Response,
    http::{Method, StatusCode, Version, header},
    listener::Acceptor,
    web::{LocalAddr, RemoteAddr},
};
use poem_openapi::types::ToJSON;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};

use crate::api::{
    extract::{MAX_BODY_BYTES, payload_too_large, read_whole_body},
    problem::Problem,
};

/// The longest request line (method, target, version) the service reads.
/// Real targets here are `/hello/<64 letters>`, at most a few hundred bytes
/// even percent-encoded; 8 KiB is the usual proxy default.
pub const MAX_REQUEST_LINE_BYTES: usize = 8 * 1024;

/// The largest request head (request line and all headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How long a refused connection is drained after the refusal is sent, so
/// that closing it with unread input does not reset the connection and
/// destroy the answer before the client has read it.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// The command-line flags of [`Limits`].
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Most open connections per port; the next one is answered 503 and closed.
    #[arg(long, env = "BIRTHDAY_MAX_CONNECTIONS", default_value_t = DEFAULTS.max_connections as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Seconds a client has to send a complete request head (else 408).
    #[arg(long, env = "BIRTHDAY_HEADER_READ_TIMEOUT_SECS",
          default_value_t = DEFAULTS.header_read_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open between requests.
    /// Keep it above the idle timeout of any load balancer in front (AWS ALB:
    /// 60 s by default), or the balancer may reuse a connection just as it
    /// closes and answer 502.
    #[arg(long, env = "BIRTHDAY_KEEP_ALIVE_TIMEOUT_SECS",
          default_value_t = DEFAULTS.keep_alive_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub keep_alive_timeout_secs: u64,
    /// Seconds a client has to send a request body (else 408).
    #[arg(long, env = "BIRTHDAY_BODY_READ_TIMEOUT_SECS",
          default_value_t = DEFAULTS.body_read_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_read_timeout_secs: u64,
    /// Seconds a request may take once read (else 503).
    #[arg(long, env = "BIRTHDAY_REQUEST_TIMEOUT_SECS",
          default_value_t = DEFAULTS.request_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,
}

impl From<&LimitArgs> for Limits {
    fn from(args: &LimitArgs) -> Self {
        Self {
            max_connections: args.max_connections as usize,
            header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
            keep_alive_timeout: Duration::from_secs(args.keep_alive_timeout_secs),
            body_read_timeout: Duration::from_secs(args.body_read_timeout_secs),
            request_timeout: Duration::from_secs(args.request_timeout_secs),
        }
    }
}

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at once; the next one is answered 503 and closed.
    pub max_connections: usize,
    /// Time a client has to deliver a complete request head, counted from
    /// the connection's start or the first byte of the head.
    pub header_read_timeout: Duration,
    /// Time an idle connection is kept open after a response.
    pub keep_alive_timeout: Duration,
    /// Time a client has to deliver a request body.
    pub body_read_timeout: Duration,
    /// Time a handler has to answer once the request is read.
    pub request_timeout: Duration,
}

/// A head or body takes well under a second from any real client; 10 s
/// leaves room for bad mobile links while freeing a stuck slot quickly.
const DEFAULTS: Limits = Limits {
    max_connections: 1024,
    header_read_timeout: Duration::from_secs(10),
    keep_alive_timeout: Duration::from_secs(75),
    body_read_timeout: Duration::from_secs(10),
    request_timeout: Duration::from_secs(10),
};

impl Default for Limits {
    fn default() -> Self {
        DEFAULTS
    }
}

/// An [`Acceptor`] that caps concurrent connections and guards each
/// connection's request heads (see the module documentation).
pub struct GuardedAcceptor<A> {
    inner: A,
    limits: Limits,
    permits: Arc<Semaphore>,
    /// Refusals in progress: each holds a socket for up to [`LINGER`], so
    /// they are capped too; past this cap a connection is closed unanswered.
    refusals: Arc<Semaphore>,
}

impl<A: Acceptor> GuardedAcceptor<A> {
    pub fn new(inner: A, limits: Limits) -> Self {
        Self {
            inner,
            limits,
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            refusals: Arc::new(Semaphore::new(limits.max_connections.clamp(1, 256))),
        }
    }
}

impl<A: Acceptor> Acceptor for GuardedAcceptor<A> {
    type Io = GuardedIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        loop {
            let (io, local_addr, remote_addr, scheme) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // poem's accept loop retries at once, which spins while
                    // the process is out of file descriptors; pausing lets
                    // open connections finish and free some.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    return Ok((
                        GuardedIo::new(io, permit, &self.limits),
                        local_addr,
                        remote_addr,
                        scheme,
                    ));
                }
                Err(_) => {
                    metrics::counter!("birthday_connections_refused_total").increment(1);
                    if let Ok(refusal) = self.refusals.clone().try_acquire_owned() {
                        tokio::spawn(async move {
                            refuse_connection(io).await;
                            drop(refusal);
                        });
                    }
                }
            }
        }
    }
}

/// Answers a connection over the cap with a 503 and closes it.
async fn refuse_connection<T: AsyncRead + AsyncWrite + Unpin>(mut io: T) {
    let response = raw_problem_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server has too many open connections; retry shortly",
    );
    let answered = tokio::time::timeout(LINGER, async {
        io.write_all(&response).await?;
        io.shutdown().await
    })
    .await;
    if matches!(answered, Ok(Ok(()))) {
        let _ = tokio::time::timeout(LINGER, drain(&mut io)).await;
    }
}

async fn drain<T: AsyncRead + Unpin>(io: &mut T) {
    use tokio::io::AsyncReadExt;
    let mut scratch = [0u8; 4096];
    let mut budget = LINGER_BYTES;
    while budget > 0 {
        match io.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(read) => budget = budget.saturating_sub(read),
        }
    }
}

/// A complete HTTP/1.1 response carrying a problem document, for the cases
/// answered below hyper.
fn raw_problem_response(status: StatusCode, detail: &str) -> Vec<u8> {
    let body = Problem::new(status, detail).to_json_string();
    let mut response = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("Error"),
        body.len(),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.push_str("retry-after: 1\r\n");
    }
    response.push_str("\r\n");
    response.push_str(&body);
    response.into_bytes()
}

/// Where a connection is in its request/response cycle, as far as the
/// byte stream shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head to complete; the deadline runs.
    AwaitingHead,
    /// A head is complete: the body and the handler have their own timeouts
    /// ([`admit`], [`answer_within`]).
    InRequest,
    /// HTTP/2 with prior knowledge: binary frames, which the byte scan must
    /// not interpret; hyper's HTTP/2 limits apply instead.
    Passthrough,
    /// A refusal is being written, then the input drained, then EOF.
    Refusing,
}

/// Recognises the end of a request head in a byte stream, and measures its
/// request line and total size.
#[derive(Debug, Default)]
struct HeadScan {
    head_bytes: usize,
    /// Bytes of the current line, not counting CR.
    line_bytes: usize,
    lines: usize,
    /// The first bytes of the request line, to recognise the HTTP/2 preface.
    start: [u8; HTTP2_PREFACE_LINE.len()],
}

/// The request line of the HTTP/2 connection preface (RFC 9113 section
/// 3.4). Only the whole line counts: an HTTP/1 request whose method merely
/// starts with `PRI` is HTTP/1, which hyper serves and this layer watches.
const HTTP2_PREFACE_LINE: &[u8; 14] = b"PRI * HTTP/2.0";

#[derive(Debug, PartialEq, Eq)]
enum ScanOutcome {
    /// The head is not complete yet.
    Partial,
    Complete,
    Http2Preface,
    RequestLineTooLong,
    HeadTooLarge,
}

impl HeadScan {
    /// Scans `bytes`, the next part of the stream. Most bytes are ordinary
    /// (neither CR nor LF), and a run of them is taken in one step, with
    /// `memchr` finding its end: a byte-at-a-time loop made a GET's reads
    /// through the guard cost about 1 500 instructions more. What it answers is the byte loop's, byte for byte
    /// (the tests hold the two to each other).
    fn feed(&mut self, mut bytes: &[u8]) -> ScanOutcome {
        while let Some(&byte) = bytes.first() {
            if byte == b'\r' || byte == b'\n' {
                bytes = &bytes[1..];
                // Empty lines before the request line are tolerated (RFC
                // 9112 section 2.2) and are not part of the head.
                if self.lines == 0 && self.line_bytes == 0 {
                    continue;
                }
                self.head_bytes += 1;
                if byte == b'\n' {
                    if self.line_bytes == 0 {
                        return ScanOutcome::Complete;
                    }
                    if self.lines == 0 && self.is_http2_preface_line() {
                        return ScanOutcome::Http2Preface;
                    }
                    self.lines += 1;
                    self.line_bytes = 0;
                }
                if self.head_bytes > MAX_HEAD_BYTES {
                    return ScanOutcome::HeadTooLarge;
                }
                continue;
            }
            let run = memchr::memchr2(b'\r', b'\n', bytes).unwrap_or(bytes.len());
            // Ordinary bytes needed to pass each limit; where both are passed
            // by the same byte, the request line's is reported, as before.
            let past_line_limit = if self.lines == 0 {
                (MAX_REQUEST_LINE_BYTES + 1).saturating_sub(self.line_bytes)
            } else {
                usize::MAX
            };
            let past_head_limit = (MAX_HEAD_BYTES + 1).saturating_sub(self.head_bytes);
            if past_line_limit <= run && past_line_limit <= past_head_limit {
                return ScanOutcome::RequestLineTooLong;
            }
            if past_head_limit <= run {
                return ScanOutcome::HeadTooLarge;
            }
            if self.lines == 0 {
                for (slot, &byte) in self
                    .start
                    .iter_mut()
                    .skip(self.line_bytes)
                    .zip(&bytes[..run])
                {
                    *slot = byte;
                }
            }
            self.head_bytes += run;
            self.line_bytes += run;
            bytes = &bytes[run..];
        }
        ScanOutcome::Partial
    }

    /// Whether the request line just ended was the HTTP/2 preface's.
    fn is_http2_preface_line(&self) -> bool {
        self.line_bytes == HTTP2_PREFACE_LINE.len() && &self.start == HTTP2_PREFACE_LINE
    }
}

/// One guarded connection: holds its slot under the connection cap until it
/// is dropped, and enforces the request head deadline and size limits.
pub struct GuardedIo<T> {
    inner: T,
    _permit: OwnedSemaphorePermit,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    phase: Phase,
    scan: HeadScan,
    deadline: Pin<Box<Sleep>>,
    /// The refusal being written, and how much of it is out.
    refusal: Vec<u8>,
    refusal_sent: usize,
    shut_down: bool,
    linger_budget: usize,
}

impl<T> GuardedIo<T> {
    fn new(inner: T, permit: OwnedSemaphorePermit, limits: &Limits) -> Self {
        Self {
            inner,
            _permit: permit,
            header_read_timeout: limits.header_read_timeout,
            keep_alive_timeout: limits.keep_alive_timeout,
            phase: Phase::AwaitingHead,
            scan: HeadScan::default(),
            deadline: Box::pin(tokio::time::sleep(limits.header_read_timeout)),
            refusal: Vec::new(),
            refusal_sent: 0,
            shut_down: false,
            linger_budget: LINGER_BYTES,
        }
    }

    /// After a response: the connection may idle for the keep-alive time;
    /// the head time starts with the next request's first byte.
    fn await_next_head(&mut self) {
        self.phase = Phase::AwaitingHead;
        self.scan = HeadScan::default();
        self.keep_alive_from_now();
    }

    /// The connection may now stay quiet for the keep-alive time.
    fn keep_alive_from_now(&mut self) {
        let deadline = Instant::now() + self.keep_alive_timeout;
        self.deadline.as_mut().reset(deadline);
    }

    fn refuse(&mut self, status: StatusCode, detail: &str) {
        metrics::counter!("birthday_requests_refused_total", "status" => status.as_str().to_owned())
            .increment(1);
        self.phase = Phase::Refusing;
        self.refusal = raw_problem_response(status, detail);
        self.refusal_sent = 0;
        self.deadline.as_mut().reset(Instant::now() + LINGER);
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> GuardedIo<T> {
    /// Writes the refusal, shuts the write side, drains input for a moment,
    /// then reports end of stream to hyper.
    fn poll_refusal(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.refusal_sent < self.refusal.len() {
            let written = ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.refusal[self.refusal_sent..])
            )?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.refusal_sent += written;
        }
        if !self.shut_down {
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.shut_down = true;
        }
        let mut scratch = [0u8; 4096];
        while self.linger_budget > 0 {
            if self.deadline.as_mut().poll(cx).is_ready() {
                break;
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => break,
                Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
                Poll::Ready(Ok(())) => {
                    self.linger_budget = self.linger_budget.saturating_sub(buf.filled().len());
                }
            }
        }
        self.linger_budget = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.phase == Phase::Refusing {
            return this.poll_refusal(cx);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.phase == Phase::AwaitingHead {
                    let idle = this.scan.head_bytes == 0;
                    let outcome = this.scan.feed(&buf.filled()[before..]);
                    if idle && this.scan.head_bytes > 0 {
                        let deadline = Instant::now() + this.header_read_timeout;
                        this.deadline.as_mut().reset(deadline);
                    }
                    match outcome {
                        ScanOutcome::Partial => {}
                        ScanOutcome::Complete => this.phase = Phase::InRequest,
                        ScanOutcome::Http2Preface => {
                            this.phase = Phase::Passthrough;
                            this.keep_alive_from_now();
                        }
                        ScanOutcome::RequestLineTooLong => {
                            buf.set_filled(before);
                            this.refuse(
                                StatusCode::URI_TOO_LONG,
                                &format!(
                                    "the request line is longer than {MAX_REQUEST_LINE_BYTES} bytes"
                                ),
                            );
                            return this.poll_refusal(cx);
                        }
                        ScanOutcome::HeadTooLarge => {
                            buf.set_filled(before);
                            this.refuse(
                                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                                &format!(
                                    "the request line and headers are larger than {MAX_HEAD_BYTES} bytes"
                                ),
                            );
                            return this.poll_refusal(cx);
                        }
                    }
                } else if this.phase == Phase::Passthrough && buf.filled().len() > before {
                    this.keep_alive_from_now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                let watched = matches!(this.phase, Phase::AwaitingHead | Phase::Passthrough);
                if !watched || this.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if this.phase == Phase::Passthrough {
                    // An HTTP/2 connection that went quiet: closed as an idle
                    // HTTP/1 one is (hyper sets no HTTP/2 idle limit).
                    return Poll::Ready(Ok(()));
                }
                if this.scan.head_bytes == 0 {
                    // Nothing of a request arrived: an idle connection, which
                    // is closed without an answer (as keep-alive timeouts are).
                    return Poll::Ready(Ok(()));
                }
                this.refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "the request head did not arrive within {} seconds",
                        this.header_read_timeout.as_secs_f64()
                    ),
                );
                this.poll_refusal(cx)
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.phase {
            // hyper's own answer to a connection this layer already refused.
            Phase::Refusing => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            // An interim `100 Continue` is not the end of the request.
            Phase::InRequest if !buf.starts_with(b"HTTP/1.1 1") => {
                this.await_next_head();
                // hyper may already be parked in a read that began before
                // this response, and only a read polls the deadline. Polling
                // it here arms it for this task; a wake-up that makes hyper
                // read again did the same at the cost of a second pass
                // through the connection's whole stack per request.
                if this.deadline.as_mut().poll(cx).is_ready() {
                    cx.waker().wake_by_ref();
                }
            }
            _ => {}
        }
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        match (&written, &this.phase) {
            // The rest of a response, written in several parts: the next
            // head's time starts when the response is out.
            (Poll::Ready(Ok(1..)), Phase::AwaitingHead) if this.scan.head_bytes == 0 => {
                this.await_next_head();
            }
            (Poll::Ready(Ok(1..)), Phase::Passthrough) => this.keep_alive_from_now(),
            // A client that stopped reading its answers (and pipelines, so
            // hyper does not read either) would otherwise hold its slot for
            // ever: the deadline of the phase applies to writing too.
            (Poll::Pending, Phase::AwaitingHead | Phase::Passthrough)
                if this.deadline.as_mut().poll(cx).is_ready() =>
            {
                return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
            }
            _ => {}
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The request-level limits before a handler runs: URI and header size (for
/// HTTP/2, which the byte-stream checks do not see) and the body read
/// timeout. On success the body is in memory.
pub async fn admit(request: &mut Request, limits: &Limits) -> Result<(), Problem> {
    if let Some(problem) = oversized_head(request) {
        return Err(problem);
    }
    buffer_body(request, limits.body_read_timeout).await
}

/// Runs a handler under the per-request timeout. `Err` is the answer the
/// handler did not get to give: a 503 when it timed out, a 500 if it
/// panicked.
///
/// For GET the handler is dropped at the timeout. For PUT and DELETE it
/// keeps running to its end in the background: dropping it could abandon a
/// write that sled already holds in memory, and a later flush would make it
/// durable after the client was told it failed. So a 503 on a write means
/// "outcome unknown": the write may still land. Both are idempotent, so the
/// client repeats them; a 204 still always means the record is on disk.
///
/// The handler runs in the request's own task, and only a write that times
/// out moves to a task of its own: spawning every write would cost each
/// one a task, a wake-up and a hand-over, for the rare one that times out.
pub async fn answer_within<T: Send + 'static>(
    limits: &Limits,
    method: &Method,
    mut handler: BoxFuture<'static, T>,
) -> Result<T, Response> {
    let answered = tokio::time::timeout(
        limits.request_timeout,
        AssertUnwindSafe(&mut handler).catch_unwind(),
    )
    .await;
    match answered {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(panic)) => {
            let reason = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic without a message");
            tracing::error!(error = reason, "request handler panicked");
            Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not answer this request",
            )
            .into_response())
        }
        Err(_elapsed) => {
            if method != Method::GET && method != Method::HEAD {
                tokio::spawn(handler);
            }
            metrics::counter!("birthday_requests_timed_out_total").increment(1);
            let mut response = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the request did not finish within {} seconds; a PUT or DELETE may \
                     still take effect, and repeating it is safe",
                    limits.request_timeout.as_secs_f64()
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            Err(response)
        }
    }
}

fn oversized_head(request: &Request) -> Option<Problem> {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if uri_bytes > MAX_REQUEST_LINE_BYTES {
        return Some(Problem::new(
            StatusCode::URI_TOO_LONG,
            format!("the request target is longer than {MAX_REQUEST_LINE_BYTES} bytes"),
        ));
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if uri_bytes + header_bytes > MAX_HEAD_BYTES {
        return Some(Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request line and headers are larger than {MAX_HEAD_BYTES} bytes"),
        ));
    }
    None
}

/// Reads the whole body (at most [`MAX_BODY_BYTES`]) under the body read
/// timeout, so a client trickling its body is answered 408 instead of
/// holding a handler, and hands it on in memory.
async fn buffer_body(request: &mut Request, timeout: Duration) -> Result<(), Problem> {
    let declared: Option<u64> = request
        .header(header::CONTENT_LENGTH)
        .and_then(|length| length.parse().ok());
    // HTTP/1.1 says with a header that a body of unknown length follows;
    // HTTP/2 frames any body, so there one may come without either header.
    let unknown_length = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request.version() >= Version::HTTP_2;
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u64 => return Err(payload_too_large()),
        Some(0) => return Ok(()),
        None if !unknown_length => return Ok(()),
        _ => {}
    }
    match tokio::time::timeout(timeout, read_whole_body(request.take_body())).await {
        Ok(Ok(bytes)) => {
            request.set_body(bytes);
            Ok(())
        }
        Ok(Err(problem)) => Err(problem),
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} seconds",
                timeout.as_secs_f64()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn scan(input: &[u8]) -> ScanOutcome {
        HeadScan::default().feed(input)
    }

    /// The scan as it was first written, a byte at a time: the reference
    /// the faster `feed` must agree with.
    fn feed_byte_by_byte(scan: &mut HeadScan, bytes: &[u8]) -> ScanOutcome {
        for &byte in bytes {
            // Empty lines before the request line are tolerated (RFC 9112
            // section 2.2) and are not part of the head.
            if scan.lines == 0 && scan.line_bytes == 0 && (byte == b'\r' || byte == b'\n') {
                continue;
            }
            scan.head_bytes += 1;
            match byte {
                b'\r' => {}
                b'\n' if scan.line_bytes == 0 => return ScanOutcome::Complete,
                b'\n' => {
                    if scan.lines == 0
                        && scan.line_bytes == b"PRI * HTTP/2.0".len()
                        && &scan.start == b"PRI * HTTP/2.0"
                    {
                        return ScanOutcome::Http2Preface;
                    }
                    scan.lines += 1;
                    scan.line_bytes = 0;
                }
                _ => {
                    if scan.lines == 0 && scan.line_bytes < scan.start.len() {
                        scan.start[scan.line_bytes] = byte;
                    }
                    scan.line_bytes += 1;
                }
            }
            if scan.lines == 0 && scan.line_bytes > MAX_REQUEST_LINE_BYTES {
                return ScanOutcome::RequestLineTooLong;
            }
            if scan.head_bytes > MAX_HEAD_BYTES {
                return ScanOutcome::HeadTooLarge;
            }
        }
        ScanOutcome::Partial
    }

    /// Heads cut into reads at random points, from an alphabet heavy in the
    /// bytes the scan treats specially; long runs reach both limits.
    fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
        let piece = prop_oneof![
            4 => prop::sample::select(vec![
                &b"\r"[..], b"\n", b"\r\n", b"PRI", b"PRI * HTTP/2.0", b"PRI /a HTTP/1.1",
                b"GET /a HTTP/1.1", b"P", b"R", b"I", b"x",
            ])
                .prop_map(<[u8]>::to_vec),
            1 => (1..MAX_HEAD_BYTES + 10).prop_map(|n| vec![b'a'; n]),
            1 => (1..MAX_HEAD_BYTES).prop_map(|n| vec![b'\r'; n]),
        ];
        (
            prop::collection::vec(piece, 0..12),
            prop::collection::vec(0..20_000usize, 0..6),
        )
            .prop_map(|(pieces, mut cuts)| {
                let bytes = pieces.concat();
                cuts.iter_mut().for_each(|cut| *cut %= bytes.len() + 1);
                cuts.sort_unstable();
                (bytes, cuts)
            })
    }

    proptest! {
        #[test]
        fn the_run_scan_answers_as_the_byte_scan((bytes, cuts) in stream()) {
            let (mut fast, mut reference) = (HeadScan::default(), HeadScan::default());
            let mut from = 0;
            for to in cuts.into_iter().chain([bytes.len()]) {
                let part = &bytes[from..to];
                from = to;
                let expected = feed_byte_by_byte(&mut reference, part);
                let answered = fast.feed(part);
                prop_assert_eq!(&answered, &expected);
                if expected != ScanOutcome::Partial {
                    break;
                }
                prop_assert_eq!(
                    (fast.head_bytes, fast.line_bytes, fast.lines, fast.start),
                    (reference.head_bytes, reference.line_bytes, reference.lines, reference.start)
                );
            }
        }
    }

    #[test]
    fn finds_the_end_of_a_head_with_either_line_ending() {
        let head = b"GET /hello/alice HTTP/1.1\r\nhost: x\r\n\r\n{\"a\"";
        assert!(matches!(scan(head), ScanOutcome::Complete));
        assert!(matches!(
            scan(b"\r\nGET / HTTP/1.1\nhost: x\n\nbody"),
            ScanOutcome::Complete
        ));
        assert!(matches!(
            scan(b"GET / HTTP/1.1\r\nhost: x\r\n"),
            ScanOutcome::Partial
        ));
    }

    #[test]
    fn recognises_the_http2_preface() {
        assert!(matches!(
            scan(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            ScanOutcome::Http2Preface
        ));
        // Only the whole preface line: these are HTTP/1 requests.
        for head in [
            &b"PRI /hello/alice HTTP/1.1\r\nhost: x\r\n\r\n"[..],
            b"PRI * HTTP/2.00\r\n\r\n",
            b"PRIX * HTTP/2.0\r\n\r\n",
        ] {
            assert_eq!(
                scan(head),
                ScanOutcome::Complete,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn measures_request_line_and_head_across_reads() {
        let mut scan = HeadScan::default();
        let line = vec![b'a'; MAX_REQUEST_LINE_BYTES];
        assert!(matches!(scan.feed(&line), ScanOutcome::Partial));
        assert!(matches!(scan.feed(b"a"), ScanOutcome::RequestLineTooLong));

        let mut scan = HeadScan::default();
        assert!(matches!(
            scan.feed(b"GET / HTTP/1.1\r\n"),
            ScanOutcome::Partial
        ));
        let header = format!("x-big: {}\r\n", "b".repeat(MAX_HEAD_BYTES));
        assert!(matches!(
            scan.feed(header.as_bytes()),
            ScanOutcome::HeadTooLarge
        ));

        // CRs inside a line count toward the head, not the line: with 8 KiB
        // of them, the same byte passes both limits, and the request line's
        // is the one reported.
        let mut line = b"G".to_vec();
        line.extend(vec![b'\r'; MAX_HEAD_BYTES - MAX_REQUEST_LINE_BYTES]);
        line.extend(vec![b'a'; MAX_REQUEST_LINE_BYTES]);
        assert!(matches!(
            HeadScan::default().feed(&line),
            ScanOutcome::RequestLineTooLong
        ));
        assert!(matches!(
            feed_byte_by_byte(&mut HeadScan::default(), &line),
            ScanOutcome::RequestLineTooLong
        ));
    }

    #[test]
    fn refusals_are_problem_documents() {
        let response =
            String::from_utf8(raw_problem_response(StatusCode::REQUEST_TIMEOUT, "slow")).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{head}"
        );
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["status"], 408);
        assert_eq!(json["detail"], "slow");
    }
}
