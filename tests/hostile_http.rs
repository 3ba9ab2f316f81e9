//! Hostile clients: slow heads and bodies, too many connections, oversized
//! request lines and headers, and handlers that take too long. Each must be
//! answered with the right status and a problem document, or closed, and
//! never hold a connection forever.
//!
//! The tests speak raw HTTP/1.1 over TCP, because an HTTP client library
//! would refuse to send what these tests send.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use birthday_api::{
    api::{self, AppState},
    config::Clock,
    domain::{DateOfBirth, Username},
    net::{GuardedAcceptor, Limits, MAX_HEAD_BYTES, MAX_REQUEST_LINE_BYTES},
    store::{Record, Store, StoreError, sled_store::SledStore},
};
use chrono::NaiveDate;
use futures::stream::BoxStream;
use poem::{Server, listener::TcpAcceptor};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const SECOND: Duration = Duration::from_secs(1);

fn limits() -> Limits {
    Limits {
        max_connections: 64,
        header_read_timeout: SECOND,
        keep_alive_timeout: 2 * SECOND,
        body_read_timeout: SECOND,
        request_timeout: SECOND,
    }
}

/// Delays writes by a fixed time, to stand for a slow store; never answers
/// a read of the username `slow`, to stand for a store that hangs; panics on
/// the username `panic`, to stand for a bug.
struct SlowStore {
    inner: SledStore,
    delay: Duration,
}

#[async_trait]
impl Store for SlowStore {
    async fn put(&self, username: &Username, date_of_birth: DateOfBirth) -> Result<(), StoreError> {
        assert_ne!(username.as_str(), "panic", "a store fault");
        tokio::time::sleep(self.delay).await;
        self.inner.put(username, date_of_birth).await
    }
    async fn put_many(&self, records: &[Record]) -> Result<(), StoreError> {
        self.inner.put_many(records).await
    }
    async fn get(&self, username: &Username) -> Result<Option<DateOfBirth>, StoreError> {
        assert_ne!(username.as_str(), "panic", "a store fault");
        if username.as_str() == "slow" {
            std::future::pending::<()>().await;
        }
        self.inner.get(username).await
    }
    async fn delete(&self, username: &Username) -> Result<bool, StoreError> {
        self.inner.delete(username).await
    }
    fn export(&self) -> BoxStream<'_, Result<Record, StoreError>> {
        self.inner.export()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}

struct Service {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// Serves the real public routes behind the real limits, as
/// `startup::Application` wires them, on a store whose PUTs take
/// `store_delay`.
async fn serve(limits: Limits, store_delay: Duration) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let store = SlowStore {
        inner: SledStore::open(dir.path(), 8).unwrap(),
        delay: store_delay,
    };
    let state = Arc::new(AppState {
        store: Arc::new(store),
        clock: Clock::Fixed(NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()),
        write_token: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = GuardedAcceptor::new(TcpAcceptor::from_tokio(listener).unwrap(), limits);
    tokio::spawn(Server::new_with_acceptor(acceptor).run(api::public_endpoint(state, limits)));
    Service { addr, _dir: dir }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// Asserts the answer is a problem document for `status`.
    fn assert_problem(&self, status: u16) {
        assert_eq!(self.status, status, "{}\n{}", self.head, self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.head
        );
        let json: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        assert_eq!(json["status"], status, "{json}");
        assert_eq!(json["type"], "about:blank", "{json}");
        assert!(
            json["detail"]
                .as_str()
                .is_some_and(|detail| !detail.is_empty())
        );
    }
}

/// Reads one response (head and a Content-Length body).
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(
            read > 0,
            "connection closed before a response head: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(bytes[..head_end].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    let mut answer = Answer {
        status,
        head,
        body: String::new(),
    };
    let length: usize = answer
        .header("content-length")
        .map_or(0, |length| length.parse().unwrap());
    while bytes.len() < head_end + length {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "connection closed inside a response body");
        bytes.extend_from_slice(&chunk[..read]);
    }
    answer.body = String::from_utf8(bytes[head_end..head_end + length].to_vec()).unwrap();
    answer
}

/// Waits until the server closes the connection; fails if it sends more or
/// keeps it open longer than `within`.
async fn assert_closed_within(stream: &mut TcpStream, within: Duration) {
    let mut rest = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut rest)).await {
        Ok(Ok(_)) | Ok(Err(_)) => assert!(
            rest.is_empty(),
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&rest)
        ),
        Err(_) => panic!("the server kept the connection open for {within:?}"),
    }
}

async fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_answer(&mut stream).await
}

/// Sends `pieces` one every 100 ms (and, should they end, nothing more,
/// keeping the connection open); returns all the server sent until it
/// closed the connection.
async fn what_a_trickle_gets<'a>(
    stream: &mut TcpStream,
    pieces: impl Iterator<Item = &'a [u8]>,
) -> String {
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        for piece in pieces {
            if writer.write_all(piece).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::future::pending::<()>().await;
    };
    let mut received = Vec::new();
    tokio::select! {
        _ = trickle => unreachable!(),
        read = tokio::time::timeout(HANG_GUARD, reader.read_to_end(&mut received)) => {
            read.expect("the trickling client was never cut off").unwrap();
        }
    }
    String::from_utf8(received).unwrap()
}

/// How long a test waits for something that must happen long before, only
/// so that a broken timeout fails the test instead of hanging it.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_head_trickled_byte_by_byte_is_answered_408_and_closed() {
    let service = serve(limits(), Duration::ZERO).await;
    let mut stream = TcpStream::connect(service.addr).await.unwrap();
    let started = Instant::now();
    // A byte every 100 ms for ever (a header value that never ends): the head
    // is never complete and the client never goes quiet, so only a deadline
    // for the whole head, not a wait for the next byte, can answer 408.
    let head = b"GET /hello/alice HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    let text = what_a_trickle_gets(
        &mut stream,
        head.iter()
            .chain(std::iter::repeat(&b'a'))
            .map(std::slice::from_ref),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= SECOND,
        "cut off after {elapsed:?}, before the timeout"
    );
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let answer = Answer {
        status: head[9..12].parse().unwrap(),
        head: head.to_owned(),
        body: body.to_owned(),
    };
    answer.assert_problem(408);
    assert_eq!(answer.header("connection"), Some("close"));
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_head_timeout() {
    let service = serve(limits(), Duration::ZERO).await;
    let mut stream = TcpStream::connect(service.addr).await.unwrap();
    let started = Instant::now();
    assert_closed_within(&mut stream, Duration::from_secs(4)).await;
    assert!(started.elapsed() >= SECOND, "{:?}", started.elapsed());
}

/// A keep-alive timeout far from the 1 s head timeout, so that sleeping
/// half-way between the two leaves seconds of margin on both sides.
fn long_keep_alive() -> Limits {
    Limits {
        keep_alive_timeout: 5 * SECOND,
        ..limits()
    }
}

#[tokio::test]
async fn keep_alive_serves_several_requests_then_closes_when_idle() {
    let service = serve(long_keep_alive(), Duration::ZERO).await;
    let mut stream = TcpStream::connect(service.addr).await.unwrap();
    for round in 0..3 {
        if round > 0 {
            // Idle time between requests counts against the keep-alive
            // timeout (5 s), not the (shorter) head timeout (1 s): closed
            // after the head timeout, the connection would fail the next
            // request.
            tokio::time::sleep(SECOND * 5 / 2).await;
        }
        stream
            .write_all(b"GET /hello/nobody HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        read_answer(&mut stream).await.assert_problem(404);
    }
    let idle = Instant::now();
    assert_closed_within(&mut stream, HANG_GUARD).await;
    // Not closed at the head timeout either (the keep-alive timer started
    // before `idle`, so this only allows for a late close, not an early one).
    assert!(idle.elapsed() >= SECOND * 5 / 2, "{:?}", idle.elapsed());
}

#[tokio::test]
async fn a_head_trickled_after_an_idle_pause_has_the_head_timeout_from_its_first_byte() {
    let service = serve(long_keep_alive(), Duration::ZERO).await;
    let mut stream = TcpStream::connect(service.addr).await.unwrap();
    stream
        .write_all(b"GET /hello/nobody HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    read_answer(&mut stream).await.assert_problem(404);
    // Longer than the head timeout, well within the keep-alive timeout.
    tokio::time::sleep(SECOND * 5 / 2).await;
    stream.write_all(b"GET /hello/nobody HT").await.unwrap();
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(4), read_answer(&mut stream))
        .await
        .expect("no answer within 4 s");
    answer.assert_problem(408);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_trickled_too_slowly_is_answered_408() {
    let service = serve(limits(), Duration::ZERO).await;
    let mut stream = TcpStream::connect(service.addr).await.unwrap();
    stream
        .write_all(
            b"PUT /hello/alice HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 30\r\n\r\n{\"dateOfBirth\"",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut stream))
        .await
        .expect("no answer within 5 s");
    answer.assert_problem(408);
    assert!(started.elapsed() >= SECOND, "{:?}", started.elapsed());
}

/// Only the HTTP/2 preface's own request line (`PRI * HTTP/2.0`) hands a
/// connection to HTTP/2; an HTTP/1 head that merely starts with `PRI` keeps
/// the head deadline.
#[tokio::test]
async fn a_trickled_head_starting_with_pri_is_answered_408() {
    let service = serve(limits(), Duration::ZERO).await;
    let mut stream = TcpStream::connect(service.addr).await.unwrap();
    let text = what_a_trickle_gets(
        &mut stream,
        std::iter::once(&b"PRI /hello/alice HTTP/1.1\r\nHost: localhost\r\n"[..])
            .chain(std::iter::repeat(&b"X-Slow: a\r\n"[..])),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

/// hyper sets no idle limit on HTTP/2 connections; this layer closes a quiet
/// one after the keep-alive time, as it does an HTTP/1 one.
#[tokio::test]
async fn a_quiet_http2_connection_is_closed_after_the_keep_alive_timeout() {
    let service = serve(limits(), Duration::ZERO).await;
    let mut stream = TcpStream::connect(service.addr).await.unwrap();
    // The client preface, then an empty SETTINGS frame, then nothing.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut received))
        .await
        .expect("the quiet HTTP/2 connection was never closed")
        .ok();
    assert!(
        started.elapsed() >= limits().keep_alive_timeout / 2,
        "closed after {:?}",
        started.elapsed()
    );
}

/// A client that pipelines requests and never reads the answers leaves
/// hyper writing (not reading) for ever; the keep-alive time bounds that
/// too, and the slot is free again.
#[tokio::test]
async fn a_client_that_never_reads_its_answers_loses_its_slot() {
    let limits = Limits {
        max_connections: 1,
        ..limits()
    };
    let service = serve(limits, Duration::ZERO).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut greedy = socket.connect(service.addr).await.unwrap();
    // Swagger UI's page is large: thirty of them fill every buffer between.
    greedy
        .write_all(&b"GET /docs HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(30))
        .await
        .unwrap();
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let answer = exchange(
            service.addr,
            b"GET /hello/nobody HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .await;
        if answer.status != 503 {
            answer.assert_problem(404);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client that never reads still holds the only slot"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(greedy);
}

/// HTTP/2 frames a body without `Content-Length` or `Transfer-Encoding`; one
/// that stalls must be cut off as an HTTP/1.1 body is, not left to the
/// handler until the request timeout.
#[tokio::test]
async fn an_http2_body_that_stalls_is_answered_408() {
    use futures::StreamExt as _;

    let service = serve(limits(), Duration::ZERO).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let stalled_body = futures::stream::once(async {
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"dateOfBirth\""))
    })
    .chain(futures::stream::pending());
    let response = tokio::time::timeout(
        HANG_GUARD,
        client
            .put(format!("http://{}/hello/alice", service.addr))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stalled_body))
            .send(),
    )
    .await
    .expect("the stalled body was never cut off")
    .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 408);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn connections_over_the_cap_are_answered_503_until_one_closes() {
    let limits = Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_secs(30),
        ..limits()
    };
    let service = serve(limits, Duration::ZERO).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(service.addr).await.unwrap();
        // A complete request proves the connection was accepted and holds a slot.
        stream
            .write_all(b"GET /hello/nobody HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        read_answer(&mut stream).await.assert_problem(404);
        held.push(stream);
    }

    let refused = exchange(
        service.addr,
        b"GET /hello/nobody HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    refused.assert_problem(503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("connection"), Some("close"));

    drop(held.pop());
    // The server notices the close on its next read; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let answer = exchange(
            service.addr,
            b"GET /hello/nobody HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        if answer.status == 404 {
            break;
        }
        answer.assert_problem(503);
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_overlong_request_line_is_answered_414() {
    let service = serve(limits(), Duration::ZERO).await;
    let request = format!(
        "GET /hello/{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(MAX_REQUEST_LINE_BYTES)
    );
    exchange(service.addr, request.as_bytes())
        .await
        .assert_problem(414);
}

#[tokio::test]
async fn oversized_headers_are_answered_431_and_large_ones_within_the_limit_are_served() {
    let service = serve(limits(), Duration::ZERO).await;
    let request = format!(
        "GET /hello/nobody HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "b".repeat(MAX_HEAD_BYTES)
    );
    exchange(service.addr, request.as_bytes())
        .await
        .assert_problem(431);

    let many = (0..250)
        .map(|index| format!("X-Header-{index}: {}\r\n", "c".repeat(60)))
        .collect::<String>();
    let request = format!("GET /hello/nobody HTTP/1.1\r\nHost: localhost\r\n{many}\r\n");
    assert!(request.len() > MAX_HEAD_BYTES, "{}", request.len());
    exchange(service.addr, request.as_bytes())
        .await
        .assert_problem(431);

    let request = format!(
        "GET /hello/nobody HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "b".repeat(MAX_HEAD_BYTES / 2)
    );
    exchange(service.addr, request.as_bytes())
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn a_slow_get_is_answered_503() {
    let service = serve(limits(), Duration::ZERO).await;
    // The store never answers for `slow`: only the request timeout can.
    let answer = tokio::time::timeout(
        HANG_GUARD,
        exchange(
            service.addr,
            b"GET /hello/slow HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ),
    )
    .await
    .expect("the request timeout never fired");
    answer.assert_problem(503);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert!(
        answer.body.contains("did not finish within"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn a_put_that_times_out_is_answered_503_and_still_lands() {
    let service = serve(limits(), Duration::from_secs(2)).await;
    let body = r#"{"dateOfBirth":"1990-07-14"}"#;
    let request = format!(
        "PUT /hello/alice HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange(service.addr, request.as_bytes()).await;
    answer.assert_problem(503);
    assert!(
        answer.body.contains("repeating it is safe"),
        "{}",
        answer.body
    );

    // The handler was not cancelled: the write completes after the answer.
    let deadline = Instant::now() + HANG_GUARD;
    let answer = loop {
        let answer = exchange(
            service.addr,
            b"GET /hello/alice HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .await;
        if answer.status != 404 {
            break answer;
        }
        assert!(Instant::now() < deadline, "the timed-out PUT never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("Hello, alice!"), "{}", answer.body);
}

#[tokio::test]
async fn a_handler_that_panics_is_answered_500_and_the_connection_serves_on() {
    let service = serve(limits(), Duration::ZERO).await;
    let body = r#"{"dateOfBirth":"1990-07-14"}"#;
    let requests = [
        "GET /hello/panic HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
        format!(
            "PUT /hello/panic HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    ];
    let mut stream = TcpStream::connect(service.addr).await.unwrap();
    for request in requests {
        stream.write_all(request.as_bytes()).await.unwrap();
        read_answer(&mut stream).await.assert_problem(500);
    }
    // The same connection still answers.
    stream
        .write_all(b"GET /hello/alice HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    read_answer(&mut stream).await.assert_problem(404);
}

#[tokio::test]
async fn requests_within_every_limit_are_served_as_usual() {
    let service = serve(limits(), Duration::ZERO).await;
    let body = r#"{"dateOfBirth":"1990-07-14"}"#;
    let request = format!(
        "PUT /hello/alice HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange(service.addr, request.as_bytes()).await;
    assert_eq!(answer.status, 204, "{}", answer.body);

    // A chunked body is buffered by the limits layer like a sized one.
    let chunked = format!(
        "PUT /hello/bob HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let answer = exchange(service.addr, chunked.as_bytes()).await;
    assert_eq!(answer.status, 204, "{}", answer.body);

    let too_big = format!(
        "PUT /hello/carol HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: 5000\r\n\r\n{}",
        " ".repeat(5000)
    );
    exchange(service.addr, too_big.as_bytes())
        .await
        .assert_problem(413);

    let answer = exchange(
        service.addr,
        b"GET /hello/bob HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}
