//! The request event's line, written without the stock formatter's cost.
//!
//! tracing-subscriber's formatters spent ~10 000 instructions on each
//! request's line: every field goes through `nu_ansi_term` styles and
//! nested `write!`s, and the timestamp through six padded integers
//! (docs/benchmarks.md). The request event is the one event per request and
//! its values are known to need no escaping in either layout, so
//! [`RequestLineFormat`] writes it directly, byte for byte the line the stock
//! formatter writes (the tests compare the two), and hands every other event
//! to the stock formatter.

use std::{cell::RefCell, fmt, fmt::Write as _};

use tracing::{Event, Level, Metadata, Subscriber, field::Field};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

/// The field only the request event carries; with the target, it tells the
/// request event from every other.
const REQUEST_ID_FIELD: &str = "request_id";

#[derive(Clone, Copy)]
enum Layout {
    /// tracing-subscriber's default ("full") text line, without colours.
    Text,
    /// tracing-subscriber's JSON line with `flatten_event(true)`.
    Json,
}

/// Wraps the stock event formatter `inner`, which must produce the same
/// layout, and takes over the request event.
pub struct RequestLineFormat<F> {
    inner: F,
    layout: Layout,
    /// What the layout writes between the timestamp and the fields, and
    /// after the fields, for the request event's level and target: the same
    /// on every line, so written once here rather than formatted per line.
    after_timestamp: String,
    after_fields: String,
}

impl<F> RequestLineFormat<F> {
    pub fn text(inner: F) -> Self {
        Self {
            inner,
            layout: Layout::Text,
            after_timestamp: format!(" {:>5} {}: ", REQUEST_LEVEL, super::REQUEST_EVENT_TARGET),
            after_fields: "\n".to_owned(),
        }
    }

    pub fn json(inner: F) -> Self {
        Self {
            inner,
            layout: Layout::Json,
            after_timestamp: format!("\",\"level\":\"{REQUEST_LEVEL}\""),
            after_fields: format!(",\"target\":\"{}\"}}\n", super::REQUEST_EVENT_TARGET),
        }
    }
}

/// The request event's level; an event at another level is not taken over.
const REQUEST_LEVEL: Level = Level::INFO;

fn is_request_event(metadata: &Metadata<'_>) -> bool {
    metadata.target() == super::REQUEST_EVENT_TARGET
        && *metadata.level() == REQUEST_LEVEL
        && metadata.fields().field(REQUEST_ID_FIELD).is_some()
}

impl<S, N, F> FormatEvent<S, N> for RequestLineFormat<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        // Colours (a terminal) and spans are the stock formatter's business.
        if !is_request_event(metadata)
            || writer.has_ansi_escapes()
            || ctx.lookup_current().is_some()
        {
            return self.inner.format_event(ctx, writer, event);
        }
        if let Layout::Json = self.layout {
            writer.write_str("{\"timestamp\":\"")?;
        }
        write_timestamp(&mut writer)?;
        writer.write_str(&self.after_timestamp)?;
        let mut fields = Fields {
            writer: &mut writer,
            layout: self.layout,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(&self.after_fields)
    }
}

/// Writes the fields as the stock field formatters do: text `name=value`
/// (the message bare, first), JSON `,"name":value`, strings escaped as each
/// of them escapes. The request event's values (numbers, route templates,
/// HTTP methods, sanitised request ids) never need it, so the escaping is
/// a scan that finds nothing.
struct Fields<'w, 'a> {
    writer: &'w mut Writer<'a>,
    layout: Layout,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// Writes what goes before the value, then the value.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>, Layout) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        let writer = &mut *self.writer;
        let separated = match self.layout {
            Layout::Text if name == "message" => Ok(()),
            Layout::Text => (if self.first {
                Ok(())
            } else {
                writer.write_char(' ')
            })
            .and_then(|()| writer.write_str(name))
            .and_then(|()| writer.write_char('=')),
            Layout::Json => writer
                .write_str(",\"")
                .and_then(|()| writer.write_str(name))
                .and_then(|()| writer.write_str("\":")),
        };
        self.result = separated.and_then(|()| value(writer, self.layout));
        self.first = false;
    }
}

/// A quoted string value, as each stock formatter quotes it.
fn write_quoted(writer: &mut Writer<'_>, layout: Layout, value: &str) -> fmt::Result {
    match layout {
        Layout::Text
            if !value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' || b == b' ') =>
        {
            write!(writer, "{value:?}")
        }
        Layout::Text => {
            writer.write_char('"')?;
            writer.write_str(value)?;
            writer.write_char('"')
        }
        Layout::Json => {
            writer.write_char('"')?;
            JsonEscaped(writer).write_str(value)?;
            writer.write_char('"')
        }
    }
}

/// Writes through to the line, escaping what a JSON string must escape, the
/// way serde_json (the stock JSON formatter) does.
struct JsonEscaped<'w, 'a>(&'w mut Writer<'a>);

impl fmt::Write for JsonEscaped<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut unescaped = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[unescaped..at])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            unescaped = at + 1;
        }
        self.0.write_str(&text[unescaped..])
    }
}

impl tracing::field::Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let message = field.name() == "message";
        self.field(field, |writer, layout| match layout {
            // The stock text layout shows the message unquoted.
            Layout::Text if message => writer.write_str(value),
            _ => write_quoted(writer, layout, value),
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |writer, _| {
            writer.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, |writer, layout| match layout {
            Layout::Text => write_f64_debug(writer, value),
            // serde_json's spelling (ryu; `null` for what JSON cannot hold).
            Layout::Json if value.is_finite() => {
                writer.write_str(ryu::Buffer::new().format_finite(value))
            }
            Layout::Json => writer.write_str("null"),
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |writer, layout| match layout {
            Layout::Text => write!(writer, "{value:?}"),
            Layout::Json => {
                writer.write_char('"')?;
                write!(JsonEscaped(writer), "{value:?}")?;
                writer.write_char('"')
            }
        });
    }
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
fn write_f64_debug(writer: &mut Writer<'_>, value: f64) -> fmt::Result {
    if value == 0.0 || (1e-4..1e16).contains(&value.abs()) {
        let mut buffer = ryu::Buffer::new();
        let text = buffer.format_finite(value);
        if significant_digits(text) <= 15 {
            return writer.write_str(text);
        }
    }
    write!(writer, "{value:?}")
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
fn write_timestamp(writer: &mut Writer<'_>) -> fmt::Result {
    thread_local! {
        /// The second it holds, the length of its text, and its text with
        /// the last line's fraction after it.
        static SECOND: RefCell<(i64, usize, String)> =
            const { RefCell::new((i64::MIN, 0, String::new())) };
    }
    let now = chrono::Utc::now();
    let (seconds, micros) = (now.timestamp(), now.timestamp_subsec_micros());
    SECOND.with_borrow_mut(|(cached, whole_seconds, text)| {
        if *cached != seconds {
            text.clear();
            write!(text, "{}", now.format("%Y-%m-%dT%H:%M:%S"))?;
            *cached = seconds;
            *whole_seconds = text.len();
        }
        text.truncate(*whole_seconds);
        // A leap second's `micros` run past 999 999; the stock clock never
        // shows one, so neither does this.
        push_fraction_of_second(text, micros.min(999_999));
        writer.write_str(text)
    })
}

/// Appends `.123456Z` for 123 456 µs (at most 999 999): what `.{micros:06}Z`
/// writes, without the formatting machinery.
fn push_fraction_of_second(text: &mut String, micros: u32) {
    text.push('.');
    let mut divisor = 100_000;
    while divisor > 0 {
        text.push(char::from(b'0' + (micros / divisor % 10) as u8));
        divisor /= 10;
    }
    text.push('Z');
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
        time::Duration,
    };

    use poem::http::Method;
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

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// Events as the service logs them: one request, and one other.
    fn log_some_events() {
        super::super::log_request(
            &Method::GET,
            "/hello/{username}",
            200,
            Duration::from_micros(1234),
            "4f1c-abc_1.2:3",
        );
        super::super::log_request(
            &Method::from_bytes(b"PURGE").unwrap(),
            "unmatched",
            405,
            Duration::from_nanos(17),
            "x",
        );
        tracing::warn!(target: "birthday_api::telemetry", detail = "quote \" here", "other event");
        // Not the service's: values the fast path must still escape as the
        // stock formatters do.
        tracing::info!(
            target: "birthday_api::telemetry",
            message = "a str message",
            detail = "quote \" and \u{1b} escape",
            debugged = ?"quote \" and\ttab",
            request_id = "odd",
        );
    }

    fn capture_text(fast: bool) -> String {
        let output = Captured::default();
        let builder = stock::fmt().with_writer(output.clone()).with_ansi(false);
        if fast {
            let subscriber = builder
                .event_format(RequestLineFormat::text(stock::format()))
                .finish();
            tracing::subscriber::with_default(subscriber, log_some_events);
        } else {
            tracing::subscriber::with_default(builder.finish(), log_some_events);
        }
        output.text()
    }

    fn capture_json(fast: bool) -> String {
        let output = Captured::default();
        let builder = stock::fmt()
            .with_writer(output.clone())
            .json()
            .flatten_event(true);
        if fast {
            let subscriber = builder
                .event_format(RequestLineFormat::json(
                    stock::format().json().flatten_event(true),
                ))
                .finish();
            tracing::subscriber::with_default(subscriber, log_some_events);
        } else {
            tracing::subscriber::with_default(builder.finish(), log_some_events);
        }
        output.text()
    }

    /// Splits `<timestamp><rest>` for a text line.
    fn without_timestamp(line: &str) -> (&str, &str) {
        line.split_at(line.find(' ').unwrap())
    }

    fn assert_stock_timestamp(timestamp: &str) {
        assert_eq!(
            timestamp.len(),
            "2026-11-28T10:57:35.123456Z".len(),
            "{timestamp}"
        );
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
    }

    #[test]
    fn text_lines_are_the_stock_formatters() {
        let (fast, stock) = (capture_text(true), capture_text(false));
        assert_eq!(fast.lines().count(), 4, "{fast}");
        assert!(fast.contains("request method=GET"), "{fast}");
        for (fast, stock) in fast.lines().zip(stock.lines()) {
            let (fast_time, fast_rest) = without_timestamp(fast);
            assert_eq!(fast_rest, without_timestamp(stock).1);
            assert_stock_timestamp(fast_time);
        }
    }

    /// Without this, the comparisons above would also pass if every event
    /// went to the stock formatter.
    #[test]
    fn only_the_request_event_skips_the_stock_formatter() {
        struct Stock;
        impl<S, N> FormatEvent<S, N> for Stock
        where
            S: Subscriber + for<'a> LookupSpan<'a>,
            N: for<'a> FormatFields<'a> + 'static,
        {
            fn format_event(
                &self,
                _: &FmtContext<'_, S, N>,
                mut writer: Writer<'_>,
                _: &Event<'_>,
            ) -> fmt::Result {
                writeln!(writer, "stock")
            }
        }
        for format in [
            RequestLineFormat::text(Stock),
            RequestLineFormat::json(Stock),
        ] {
            let output = Captured::default();
            let subscriber = stock::fmt()
                .with_writer(output.clone())
                .with_ansi(false)
                .event_format(format)
                .finish();
            tracing::subscriber::with_default(subscriber, log_some_events);
            let lines: Vec<_> = output.text().lines().map(str::to_owned).collect();
            assert_eq!(lines.len(), 4);
            assert!(lines[0].contains("request_id") && lines[1].contains("request_id"));
            assert_eq!(lines[2], "stock");
        }
    }

    fn written(write: impl FnOnce(&mut Writer<'_>) -> fmt::Result) -> String {
        let mut text = String::new();
        write(&mut Writer::new(&mut text)).unwrap();
        text
    }

    proptest::proptest! {
        #[test]
        fn floats_are_written_as_debug_writes_them(bits: u64) {
            let value = f64::from_bits(bits);
            proptest::prop_assume!(value.is_finite());
            proptest::prop_assert_eq!(written(|w| write_f64_debug(w, value)), format!("{value:?}"));
        }

        #[test]
        fn floats_of_every_magnitude_are_written_as_debug_writes_them(exponent in -8.0f64..20.0, negative: bool) {
            let value = if negative { -1.0 } else { 1.0 } * 10f64.powf(exponent);
            proptest::prop_assert_eq!(written(|w| write_f64_debug(w, value)), format!("{value:?}"));
        }

        #[test]
        fn latencies_are_written_as_debug_writes_them_on_the_fast_path(nanos in 0u64..1_000_000_000_000_000) {
            let value = super::super::milliseconds(std::time::Duration::from_nanos(nanos));
            proptest::prop_assert_eq!(written(|w| write_f64_debug(w, value)), format!("{value:?}"));
            proptest::prop_assert!(significant_digits(&format!("{value:?}")) <= 15, "{}", value);
        }
    }

    #[test]
    fn floats_at_the_edges_of_ryus_range_are_written_as_debug_writes_them() {
        for value in [
            0.0,
            -0.0,
            1e-4,
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
            assert_eq!(written(|w| write_f64_debug(w, value)), format!("{value:?}"));
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
    fn fractions_of_a_second_have_six_digits() {
        for micros in [0, 7, 12_345, 100_000, 999_999] {
            let mut text = "12:00:00".to_owned();
            push_fraction_of_second(&mut text, micros);
            assert_eq!(text, format!("12:00:00.{micros:06}Z"));
        }
    }

    #[test]
    fn json_lines_are_the_stock_formatters() {
        let (fast, stock) = (capture_json(true), capture_json(false));
        assert_eq!(fast.lines().count(), 4, "{fast}");
        for (fast, stock) in fast.lines().zip(stock.lines()) {
            // Key order too: compare the text with the timestamp cut out.
            let cut = |line: &str| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                let timestamp = value["timestamp"].as_str().unwrap().to_owned();
                (line.replace(&timestamp, ""), timestamp)
            };
            let (fast_rest, fast_time) = cut(fast);
            assert_eq!(fast_rest, cut(stock).0);
            assert_stock_timestamp(&fast_time);
        }
    }
}
