//! Request inputs as they arrive, before the domain parses them.
//!
//! The raw strings are kept unvalidated here on purpose: validation happens
//! in one place ([`super::hello`]) so a request that breaks several rules is
//! told about all of them at once.

use std::{borrow::Cow, marker::PhantomData};

use poem::{Request, RequestBody, error::ReadBodyError, http::StatusCode};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry},
    types::{ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
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
        Ok(body) => body
            .into_bytes_limit(MAX_BODY_BYTES)
            .await
            .map_err(body_read_problem)?,
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

/// What a non-empty JSON body says about the date of birth. Public so the
/// fuzz targets can call it without a server.
pub fn body_date_from_json(bytes: &[u8]) -> Result<BodyDate, Problem> {
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
        Some(Value::String(text)) => BodyDate::Text(text),
        Some(_) => BodyDate::NotText,
    })
}

fn body_read_problem(err: ReadBodyError) -> Problem {
    match err {
        ReadBodyError::PayloadTooLarge => payload_too_large(),
        other => Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the request body could not be read: {other}"),
        ),
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
}
