//! The request event's line, written straight into the log writer.
//!
//! Every request logs one line. Sent through tracing, it cost the stock
//! formatter about 10 000 instructions, and a formatter of its own still
//! 3 300: the dispatch to the subscriber, and every field through
//! `tracing::field::Visit` and `core::fmt` (docs/benchmarks.md). Its fields
//! are fixed, so [`RequestLine`] writes them directly, byte for byte the line
//! the stock formatter writes for the same event (the tests compare the two,
//! escapes included), and `telemetry::log_request` sends it to the log
//! writer whenever tracing would have logged the event and written it
//! without colours.

use std::{cell::RefCell, fmt::Write as _, io::Write as _};

use chrono::{DateTime, Utc};
use poem::http::Method;
use serde::Serializer as _;

/// The request event's target, as both layouts write it.
const TARGET: &str = super::REQUEST_EVENT_TARGET;

#[derive(Clone, Copy, Debug)]
pub enum Layout {
    /// tracing-subscriber's default ("full") text line, without colours.
    Text,
    /// tracing-subscriber's JSON line with `flatten_event(true)`.
    Json,
}

/// One request, as its log line tells it.
pub struct RequestLine<'a> {
    pub method: &'a Method,
    pub route: &'a str,
    pub status: u16,
    pub latency_ms: f64,
    pub request_id: &'a str,
}

impl RequestLine<'_> {
    /// Appends the whole line, newline included, stamped with `now`.
    pub fn write(&self, layout: Layout, now: DateTime<Utc>, line: &mut Vec<u8>) {
        match layout {
            Layout::Text => {
                push_timestamp(now, line);
                // ` {:>5} ` of the level: INFO has four letters, so two spaces.
                line.extend_from_slice(b"  ");
                line.extend_from_slice(super::REQUEST_EVENT_LEVEL.as_str().as_bytes());
                line.push(b' ');
                line.extend_from_slice(TARGET.as_bytes());
                line.extend_from_slice(b": request method=");
                line.extend_from_slice(self.method.as_str().as_bytes());
                line.extend_from_slice(b" route=");
                push_text_quoted(self.route, line);
                line.extend_from_slice(b" status=");
                line.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
                line.extend_from_slice(b" latency_ms=");
                push_f64_debug(self.latency_ms, line);
                line.extend_from_slice(b" request_id=");
                line.extend_from_slice(self.request_id.as_bytes());
                line.push(b'\n');
            }
            Layout::Json => {
                line.extend_from_slice(b"{\"timestamp\":\"");
                push_timestamp(now, line);
                line.extend_from_slice(b"\",\"level\":\"");
                line.extend_from_slice(super::REQUEST_EVENT_LEVEL.as_str().as_bytes());
                line.extend_from_slice(b"\",\"message\":\"request\",\"method\":");
                push_json_string(self.method.as_str(), line);
                line.extend_from_slice(b",\"route\":");
                push_json_string(self.route, line);
                line.extend_from_slice(b",\"status\":");
                line.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
                line.extend_from_slice(b",\"latency_ms\":");
                push_json_number(self.latency_ms, line);
                line.extend_from_slice(b",\"request_id\":");
                push_json_string(self.request_id, line);
                line.extend_from_slice(b",\"target\":\"");
                line.extend_from_slice(TARGET.as_bytes());
                line.extend_from_slice(b"\"}\n");
            }
        }
    }
}

/// A string as the stock text layout writes a `&str` field: quoted, and
/// through `{:?}` when it holds anything that needs escaping.
fn push_text_quoted(value: &str, line: &mut Vec<u8>) {
    if value
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ')
    {
        line.push(b'"');
        line.extend_from_slice(value.as_bytes());
        line.push(b'"');
    } else {
        let _ = write!(line, "{value:?}");
    }
}

/// A JSON string as serde_json (the stock JSON layout) writes it: by
/// serde_json itself.
fn push_json_string(value: &str, line: &mut Vec<u8>) {
    // Writing into a `Vec` cannot fail.
    let _ = (&mut serde_json::Serializer::new(line)).serialize_str(value);
}

/// A JSON number as serde_json writes an `f64`, by serde_json itself (ryu,
/// and `null` for what JSON cannot hold).
fn push_json_number(value: f64, line: &mut Vec<u8>) {
    // Writing into a `Vec` cannot fail.
    let _ = (&mut serde_json::Serializer::new(line)).serialize_f64(value);
}

/// `value` as `{value:?}` writes it, through ryu where that is sure to
/// agree, at under half the cost.
///
/// Between 1e-4 and 1e16 both write the shortest decimal that reads back as
/// `value` (outside, `{:?}` switches to exponent notation, which ryu spells
/// differently). With 15 significant digits or fewer that decimal is the
/// only one of its length, since such decimals lie further apart than two
/// neighbouring `f64`s; with 16 or 17 there can be two, and the two
/// algorithms may pick differently (1280361066154849.2 against .3).
fn push_f64_debug(value: f64, line: &mut Vec<u8>) {
    if value == 0.0 || (1e-4..1e16).contains(&value.abs()) {
        let mut buffer = ryu::Buffer::new();
        let text = buffer.format_finite(value);
        if significant_digits(text) <= 15 {
            line.extend_from_slice(text.as_bytes());
            return;
        }
    }
    let _ = write!(line, "{value:?}");
}

/// The significant digits of a plain decimal such as `-0.0012` (2).
fn significant_digits(decimal: &str) -> usize {
    let digits = decimal.trim_start_matches(['-', '0', '.']);
    let digits = digits.trim_end_matches(['0', '.']);
    digits.bytes().filter(u8::is_ascii_digit).count()
}

/// `2026-11-28T10:57:35.123456Z`, as tracing-subscriber's `SystemTime`
/// writes it. The date and time of day change once a second, so each thread
/// keeps them and only writes the microseconds anew.
fn push_timestamp(now: DateTime<Utc>, line: &mut Vec<u8>) {
    thread_local! {
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let (seconds, micros) = (now.timestamp(), now.timestamp_subsec_micros());
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != seconds {
            text.clear();
            let _ = write!(text, "{}", now.format("%Y-%m-%dT%H:%M:%S"));
            *cached = seconds;
        }
        line.extend_from_slice(text.as_bytes());
    });
    // A leap second's `micros` run past 999 999; the stock clock never
    // shows one, so neither does this.
    push_fraction_of_second(micros.min(999_999), line);
}

/// Appends `.123456Z` for 123 456 µs (at most 999 999): what `.{micros:06}Z`
/// writes, without the formatting machinery.
fn push_fraction_of_second(micros: u32, line: &mut Vec<u8>) {
    line.push(b'.');
    let mut divisor = 100_000;
    while divisor > 0 {
        line.push(b'0' + (micros / divisor % 10) as u8);
        divisor /= 10;
    }
    line.push(b'Z');
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
        time::Duration,
    };

    use proptest::prelude::*;
    use tracing_subscriber::fmt::{self as stock, MakeWriter};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    /// The line tracing-subscriber's stock formatter writes for the request
    /// event (the event `log_request` sends when it cannot write directly).
    fn stock_line(request: &RequestLine<'_>, layout: Layout) -> String {
        let output = Captured::default();
        let builder = stock::fmt().with_writer(output.clone()).with_ansi(false);
        let emit = || super::super::request_event(request);
        match layout {
            Layout::Text => tracing::subscriber::with_default(builder.finish(), emit),
            Layout::Json => {
                tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), emit)
            }
        }
        String::from_utf8(output.0.lock().unwrap().clone()).unwrap()
    }

    fn direct_line(request: &RequestLine<'_>, layout: Layout) -> String {
        let mut line = Vec::new();
        request.write(layout, Utc::now(), &mut line);
        String::from_utf8(line).unwrap()
    }

    /// The line and its timestamp, apart.
    fn cut_timestamp(line: &str, layout: Layout) -> (String, String) {
        let timestamp = match layout {
            Layout::Text => line.split(' ').next().unwrap().to_owned(),
            Layout::Json => {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["timestamp"].as_str().unwrap().to_owned()
            }
        };
        (line.replacen(&timestamp, "", 1), timestamp)
    }

    fn assert_as_stock(request: &RequestLine<'_>) {
        for layout in [Layout::Text, Layout::Json] {
            let (direct, direct_time) = cut_timestamp(&direct_line(request, layout), layout);
            let (stock, stock_time) = cut_timestamp(&stock_line(request, layout), layout);
            assert_eq!(direct, stock, "{layout:?}");
            assert_eq!(
                direct_time.len(),
                stock_time.len(),
                "{direct_time} {stock_time}"
            );
            assert!(
                DateTime::parse_from_rfc3339(&direct_time).is_ok(),
                "{direct_time}"
            );
        }
    }

    #[test]
    fn lines_are_the_stock_formatters() {
        assert_as_stock(&RequestLine {
            method: &Method::GET,
            route: "/hello/{username}",
            status: 200,
            latency_ms: super::super::milliseconds(Duration::from_micros(1234)),
            request_id: "4f1c-abc_1.2:3",
        });
        assert_as_stock(&RequestLine {
            method: &Method::from_bytes(b"PURGE").unwrap(),
            route: "unmatched",
            status: 405,
            latency_ms: super::super::milliseconds(Duration::from_nanos(17)),
            request_id: "x",
        });
        // Not the service's values: what must still be escaped as the stock
        // formatters escape it.
        assert_as_stock(&RequestLine {
            method: &Method::DELETE,
            route: "quote \" back\\slash \u{1b} tab\t and é",
            status: 0,
            latency_ms: 1280361066154849.2,
            request_id: "\"odd\"\n",
        });
        assert_as_stock(&RequestLine {
            method: &Method::PUT,
            route: "say \"hi\" \\ there",
            status: 204,
            latency_ms: 0.0,
            request_id: "\u{8}\u{c}\u{1}\r",
        });
        // No duration gives one, but what JSON cannot hold is `null` there.
        assert_as_stock(&RequestLine {
            method: &Method::GET,
            route: "/docs",
            status: 500,
            latency_ms: f64::NAN,
            request_id: "nan",
        });
    }

    proptest! {
        #[test]
        fn any_request_is_written_as_the_stock_formatters_write_it(
            method in "[A-Z]{1,12}",
            route in "[\\x00-\\x7f]{0,30}|\\PC{0,30}",
            status: u16,
            nanos in 0u64..1_000_000_000_000_000,
            request_id in "[A-Za-z0-9._:-]{1,40}",
        ) {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert_as_stock(&RequestLine {
                method: &method,
                route: &route,
                status,
                latency_ms: super::super::milliseconds(Duration::from_nanos(nanos)),
                request_id: &request_id,
            });
        }

        #[test]
        fn floats_are_written_as_debug_writes_them(bits: u64) {
            let value = f64::from_bits(bits);
            prop_assume!(value.is_finite());
            prop_assert_eq!(f64_debug(value), format!("{value:?}"));
        }

        #[test]
        fn floats_of_every_magnitude_are_written_as_debug_writes_them(exponent in -8.0f64..20.0, negative: bool) {
            let value = if negative { -1.0 } else { 1.0 } * 10f64.powf(exponent);
            prop_assert_eq!(f64_debug(value), format!("{value:?}"));
        }

        #[test]
        fn latencies_are_written_as_debug_writes_them_on_the_fast_path(nanos in 0u64..1_000_000_000_000_000) {
            let value = super::super::milliseconds(Duration::from_nanos(nanos));
            prop_assert_eq!(f64_debug(value), format!("{value:?}"));
            prop_assert!(significant_digits(&format!("{value:?}")) <= 15, "{}", value);
        }
    }

    fn f64_debug(value: f64) -> String {
        let mut text = Vec::new();
        push_f64_debug(value, &mut text);
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn floats_at_the_edges_of_ryus_range_are_written_as_debug_writes_them() {
        for value in [
            0.0,
            -0.0,
            1e-4,
            1280361066154849.2,
            9.999999999999999e-5,
            1e-5,
            1.7e-5,
            0.001,
            1.0,
            123456.0,
            1e15,
            9_999_999_999_999_998.0,
            1e16,
            1e17,
            -1e-4,
            -2.5,
            1e300,
            5e-324,
        ] {
            assert_eq!(f64_debug(value), format!("{value:?}"));
        }
    }

    #[test]
    fn significant_digits_leave_out_leading_and_trailing_zeros() {
        assert_eq!(significant_digits("-0.0012"), 2);
        assert_eq!(significant_digits("100.5"), 4);
        assert_eq!(significant_digits("1200.0"), 2);
        assert_eq!(significant_digits("1.5"), 2);
        assert_eq!(significant_digits("0.0"), 0);
        assert_eq!(significant_digits("1280361066154849.2"), 17);
    }

    #[test]
    fn timestamps_have_microseconds_and_a_zone() {
        for (micros, expected) in [
            (7, "2026-11-28T10:57:35.000007Z"),
            (123_456, "2026-11-28T10:57:35.123456Z"),
            (999_999, "2026-11-28T10:57:35.999999Z"),
        ] {
            let now = DateTime::parse_from_rfc3339("2026-11-28T10:57:35Z")
                .unwrap()
                .to_utc()
                + Duration::from_micros(micros);
            let mut line = Vec::new();
            push_timestamp(now, &mut line);
            assert_eq!(String::from_utf8(line).unwrap(), expected);
        }
        // The second's text is kept per thread; a new second replaces it.
        let later = DateTime::parse_from_rfc3339("2026-11-28T10:57:36Z")
            .unwrap()
            .to_utc();
        let mut line = Vec::new();
        push_timestamp(later, &mut line);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "2026-11-28T10:57:36.000000Z"
        );
    }
}
