//! Request inputs as they arrive, before the domain parses them.
//!
//! The raw strings are kept unvalidated here on purpose: validation happens
//! in one place ([`super::hello`]) so a request that breaks several rules is
//! told about all of them at once.

use std::{borrow::Cow, fmt, marker::PhantomData};

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited, combinators::BoxBody};
use poem::{Body, Request, RequestBody, http::StatusCode};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    error::ParseParamError,
    registry::{MetaMediaType, MetaParamIn, MetaRequest, MetaSchema, MetaSchemaRef, Registry},
    types::{ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, Visitor},
};
use serde_json::Value;

use super::{BirthdayRequest, problem::Problem};

/// The largest request body the service reads.
pub const MAX_BODY_BYTES: usize = 4096;

/// How one kind of raw text is described in the OpenAPI document.
pub trait TextSchema: Send + Sync + 'static {
    const NAME: &'static str;
    fn schema() -> MetaSchema;
}

/// Text taken verbatim from the request and documented by `S`; the domain
/// types parse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawText<S>(pub String, PhantomData<S>);

impl<S> RawText<S> {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into(), PhantomData)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: TextSchema> Type for RawText<S> {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        S::NAME.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(S::schema()))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<S: TextSchema> ParseFromParameter for RawText<S> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self::new(value))
    }
}

impl<S: TextSchema> ParseFromJSON for RawText<S> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self::new(text)),
            other => Err(poem_openapi::types::ParseError::expected_type(
                other.unwrap_or_default(),
            )),
        }
    }
}

impl<S: TextSchema> ToJSON for RawText<S> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameSchema;

impl TextSchema for UsernameSchema {
    const NAME: &'static str = "Username";

    fn schema() -> MetaSchema {
        MetaSchema {
            description: Some(
                "1 to 64 letters (Unicode Alphabetic, after NFC normalisation); case-sensitive",
            ),
            min_length: Some(1),
            max_length: Some(64),
            example: Some(Value::String("alice".into())),
            ..MetaSchema::new("string")
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateSchema;

impl TextSchema for DateSchema {
    const NAME: &'static str = "DateOfBirth";

    fn schema() -> MetaSchema {
        MetaSchema {
            description: Some("A calendar date, YYYY-MM-DD, year 0001 or later, before today"),
            pattern: Some(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$".into()),
            example: Some(Value::String("1990-07-14".into())),
            ..MetaSchema::new_with_format("string", "date")
        }
    }
}

/// The deprecated query-string form of the date: the body's schema without
/// the example. Swagger UI's "Try it out" fills parameters with their
/// examples, so with one it would send this next to the body, and a user who
/// edits only the body date would get a 400 for dates that differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryDateSchema;

impl TextSchema for QueryDateSchema {
    const NAME: &'static str = "DateOfBirth";

    fn schema() -> MetaSchema {
        MetaSchema {
            example: None,
            ..DateSchema::schema()
        }
    }
}

pub type UsernameText = RawText<UsernameSchema>;
pub type DateText = RawText<DateSchema>;
pub type QueryDateText = RawText<QueryDateSchema>;

/// A query parameter, read from the request's query string when the
/// operation asks for it.
///
/// poem-openapi's `Query` reads a list of every query pair that its
/// `into_endpoint` layer parses, into owned strings, for every request; the
/// public port serves the operations without that layer
/// ([`super::hello_routes`]), so `Query` would find no list. This reads the
/// pairs as that layer would (`application/x-www-form-urlencoded`, with
/// `form_urlencoded`, as poem does) and takes the first value named exactly
/// `name`, as `Query` does for an exploded, case-sensitive parameter
/// without a default: the only kind the API has.
pub struct QueryParam<T>(pub T);

impl<'a, T: ParseFromParameter> ApiExtractor<'a> for QueryParam<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    const PARAM_IS_REQUIRED: bool = T::IS_REQUIRED;
    type ParamType = T;
    type ParamRawType = T::RawValueType;

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Query)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(T::schema_ref())
    }

    fn param_raw_type(&self) -> Option<&Self::ParamRawType> {
        self.0.as_raw_value()
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let query = request.uri().query().unwrap_or_default();
        let values = form_urlencoded::parse(query.as_bytes())
            .filter(|(name, _)| name == param_opts.name)
            .map(|(_, value)| value);
        T::parse_from_parameters(values).map(Self).map_err(|err| {
            ParseParamError {
                name: param_opts.name,
                reason: err.into_message(),
            }
            .into()
        })
    }
}

/// What the body of a PUT said about the date of birth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDate {
    /// No body at all: the date may come from the query string instead.
    NoBody,
    /// A JSON object without a `dateOfBirth` member.
    Missing,
    /// `dateOfBirth` is there but is not a string.
    NotText,
    Text(String),
}

/// The optional JSON body of `PUT /hello/{username}`.
///
/// poem-openapi's `Json<Option<T>>` answers 415 when a request has no
/// `Content-Type`, but the replaced service's clients send
/// `PUT /hello/alice?dateOfBirth=…` with no body and no `Content-Type`. This
/// extractor accepts that, and otherwise reads JSON with the size limit and
/// the problem documents of this service. It never fails by itself: the
/// handler decides whether a body error or a missing token is reported first.
pub struct BirthdayBody(pub Result<BodyDate, Problem>);

impl<'a> ApiExtractor<'a> for BirthdayBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        BirthdayRequest::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some(
                "The date of birth. Optional only for clients of the replaced service, which \
                 send it as the `dateOfBirth` query parameter instead.",
            ),
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: BirthdayRequest::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(read_body_date(request, body).await))
    }
}

async fn read_body_date(request: &Request, body: &mut RequestBody) -> Result<BodyDate, Problem> {
    let bytes = match body.take() {
        Ok(body) => read_whole_body(body).await?,
        Err(_) => return Ok(BodyDate::NoBody),
    };
    if bytes.is_empty() {
        return Ok(BodyDate::NoBody);
    }
    if !request.content_type().is_some_and(is_json_media_type) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be JSON, sent with Content-Type: application/json",
        ));
    }
    body_date_from_json(&bytes)
}

/// The whole body, refused (413) past [`MAX_BODY_BYTES`].
///
/// Collects the body's own chunks, which for a body that came whole is a
/// single `Bytes` handed on without a copy. poem's `into_bytes_limit` would
/// zero a 4 KiB buffer and copy every body through it, and its future
/// carries that buffer.
pub async fn read_whole_body(body: Body) -> Result<Bytes, Problem> {
    let body: BoxBody<Bytes, std::io::Error> = body.into();
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(payload_too_large()),
        Err(err) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the request body could not be read: {err}"),
        )),
    }
}

/// What a non-empty JSON body says about the date of birth. Public so the
/// fuzz targets can call it without a server.
///
/// A PUT's body is read member by member, keeping only `dateOfBirth`,
/// instead of into a `serde_json::Value` tree (a map and a key string per
/// request). Any body that path refuses is read again as a tree, so every
/// rejection and its message is the tree's.
pub fn body_date_from_json(bytes: &[u8]) -> Result<BodyDate, Problem> {
    match serde_json::from_slice::<DateOfBirthMember>(bytes) {
        Ok(DateOfBirthMember(date)) => Ok(date),
        Err(_) => body_date_from_json_tree(bytes),
    }
}

fn body_date_from_json_tree(bytes: &[u8]) -> Result<BodyDate, Problem> {
    let json: Value = serde_json::from_slice(bytes).map_err(|err| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the request body is not valid JSON: {err}"),
        )
    })?;
    let Value::Object(mut members) = json else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "the request body must be a JSON object like {\"dateOfBirth\": \"YYYY-MM-DD\"}",
        ));
    };
    Ok(match members.remove("dateOfBirth") {
        None => BodyDate::Missing,
        Some(value) => member_date(value),
    })
}

fn member_date(value: Value) -> BodyDate {
    match value {
        Value::String(text) => BodyDate::Text(text),
        _ => BodyDate::NotText,
    }
}

/// A JSON object read for its `dateOfBirth` member alone. Every member's
/// value is still parsed in full (as a `Value`), so what it accepts is
/// exactly what the tree accepts; a repeated member counts once, the last
/// time, as in the tree.
struct DateOfBirthMember(BodyDate);

impl<'de> Deserialize<'de> for DateOfBirthMember {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DateOfBirthMemberVisitor)
    }
}

struct DateOfBirthMemberVisitor;

impl<'de> Visitor<'de> for DateOfBirthMemberVisitor {
    type Value = DateOfBirthMember;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Self::Value, A::Error> {
        let mut date = BodyDate::Missing;
        while let Some(name) = members.next_key::<MemberName>()? {
            let value = members.next_value::<Value>()?;
            if name == MemberName::DateOfBirth {
                date = member_date(value);
            }
        }
        Ok(DateOfBirthMember(date))
    }
}

/// A member's name, told apart without keeping it.
#[derive(PartialEq, Eq)]
enum MemberName {
    DateOfBirth,
    Other,
}

impl<'de> Deserialize<'de> for MemberName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(MemberNameVisitor)
    }
}

struct MemberNameVisitor;

impl Visitor<'_> for MemberNameVisitor {
    type Value = MemberName;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<MemberName, E> {
        Ok(if name == "dateOfBirth" {
            MemberName::DateOfBirth
        } else {
            MemberName::Other
        })
    }
}

pub fn payload_too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// `application/json` or any `application/*+json`, with or without parameters.
pub fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.strip_prefix("application/") {
        Some(subtype) => subtype == "json" || subtype.ends_with("+json"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/x-www-form-urlencoded"));
        assert!(!is_json_media_type(""));
    }

    /// The member-by-member read must accept exactly what the tree accepts,
    /// and find the same date; its refusals fall back to the tree, so they
    /// are only checked to happen.
    #[test]
    fn the_member_read_agrees_with_the_tree() {
        let bodies: &[&[u8]] = &[
            br#"{"dateOfBirth":"1990-07-14"}"#,
            br#" { "name": 1, "dateOfBirth" : "1990-07-14" , "x": [1, {"a": null}] } "#,
            br#"{"dateOfBirth":"1990-07-14","dateOfBirth":"2001-02-03"}"#,
            br#"{"dateOfBirth":"1990-07-14","dateOfBirth":5}"#,
            br#"{"dateOf\u0042irth":"1990-07-14"}"#,
            br#"{"dateOfBirth":"1990\u002d07-14"}"#,
            br#"{"dateOfBirth":null}"#,
            br#"{"dateOfBirth":{"dateOfBirth":"1990-07-14"}}"#,
            br#"{"other":"1990-07-14"}"#,
            br#"{}"#,
            br#"[]"#,
            br#""1990-07-14""#,
            br#""abc" trailing"#,
            br#"{"dateOfBirth":"1990-07-14"} trailing"#,
            br#"{"dateOfBirth":"1990-07-14","#,
            br#"{"dateOfBirth":"1990-07-14",}"#,
            br#"{"x":"\ud800","dateOfBirth":"1990-07-14"}"#,
            b"{\"x\":\"\xff\",\"dateOfBirth\":\"1990-07-14\"}",
            b"{\"x\":\"\t\",\"dateOfBirth\":\"1990-07-14\"}",
            b"{\"\xff\":1}",
            br#"{"x":01}"#,
            br#"{"x":1e999}"#,
        ];
        for body in bodies {
            let member_read = serde_json::from_slice::<DateOfBirthMember>(body).map(|read| read.0);
            let tree = body_date_from_json_tree(body);
            assert_eq!(
                member_read.ok(),
                tree.ok(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let deep = format!("{{\"x\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        assert!(serde_json::from_slice::<DateOfBirthMember>(deep.as_bytes()).is_err());
        assert!(body_date_from_json_tree(deep.as_bytes()).is_err());
    }

    #[test]
    fn a_refused_body_is_answered_as_the_tree_answers_it() {
        for body in [
            &b"[1,"[..],
            b"\"text\"",
            b"{\"a\":}",
            b"{\"dateOfBirth\":1} x",
        ] {
            let answer = body_date_from_json(body).unwrap_err();
            let tree = body_date_from_json_tree(body).unwrap_err();
            assert_eq!((answer.status, answer.detail), (tree.status, tree.detail));
        }
    }
}
