//! RFC 9457 problem documents: the one shape every error of the service takes.

use std::{fmt, marker::PhantomData};

use poem::{
    IntoResponse, Response,
    error::ResponseError,
    http::{StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// A problem document (RFC 9457).
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(example)]
pub struct Problem {
    /// Identifies the problem type; `about:blank` means the HTTP status says it all.
    #[oai(rename = "type")]
    pub problem_type: String,
    /// The HTTP reason phrase of `status`.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for a person to read.
    pub detail: String,
    /// On validation failures: every failing rule, by rule name.
    // Boxed so that `Result<_, Problem>` stays small (clippy::result_large_err).
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Box<ValidationErrors>>,
}

/// The validation rules a request broke. The keys are the ones the replaced
/// service used, so its clients keep working.
#[derive(Object, Debug, Clone, Default, PartialEq)]
pub struct ValidationErrors {
    /// The username is not 1-64 letters.
    #[oai(rename = "INVALID_USERNAME", skip_serializing_if_is_none)]
    pub invalid_username: Option<String>,
    /// The date of birth is missing, malformed, not a real date, or not before today.
    #[oai(rename = "INVALID_DATE", skip_serializing_if_is_none)]
    pub invalid_date: Option<String>,
}

impl ValidationErrors {
    pub fn count(&self) -> usize {
        usize::from(self.invalid_username.is_some()) + usize::from(self.invalid_date.is_some())
    }
}

impl poem_openapi::types::Example for Problem {
    fn example() -> Self {
        Problem::invalid(ValidationErrors {
            invalid_username: Some("username must be 1-64 letters".into()),
            invalid_date: Some("dateOfBirth must be a YYYY-MM-DD date before today".into()),
        })
    }
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            problem_type: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: None,
        }
    }

    /// A 400 that names every rule the request broke.
    pub fn invalid(errors: ValidationErrors) -> Self {
        let detail = match errors.count() {
            1 => "the request has 1 invalid field".to_string(),
            n => format!("the request has {n} invalid fields"),
        };
        Self {
            errors: Some(Box::new(errors)),
            ..Self::new(StatusCode::BAD_REQUEST, detail)
        }
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        Response::builder()
            .status(self.status_code())
            .header(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)
            .body(self.to_json_string())
    }
}

impl ResponseError for Problem {
    fn status(&self) -> StatusCode {
        self.status_code()
    }

    fn as_response(&self) -> Response {
        self.clone().into_response()
    }
}

/// The statuses one operation can fail with, as they appear in the OpenAPI
/// document (besides [`LIMIT_STATUSES`], which every operation gets).
pub trait ProblemStatuses: Send + Sync + 'static {
    const STATUSES: &'static [(u16, &'static str)];
}

/// The request limits' refusals (`net::admit`): they come before any
/// operation runs, so every operation can be answered with them.
const LIMIT_STATUSES: &[(u16, &str)] = &[
    (408, "The request body did not arrive in time"),
    (413, "The request body is larger than 4 KiB"),
    (414, "The request target is too long"),
    (431, "The request line and headers are too large"),
];

/// An operation's error response: a [`Problem`], declared in the OpenAPI
/// document under each of the operation's error statuses `S`.
pub struct ApiProblem<S>(pub Problem, PhantomData<S>);

impl<S> From<Problem> for ApiProblem<S> {
    fn from(problem: Problem) -> Self {
        Self(problem, PhantomData)
    }
}

impl<S: ProblemStatuses> ApiResponse for ApiProblem<S> {
    fn meta() -> MetaResponses {
        let mut statuses: Vec<_> = S::STATUSES.iter().chain(LIMIT_STATUSES).collect();
        statuses.sort_unstable_by_key(|&&(status, _)| status);
        MetaResponses {
            responses: statuses
                .into_iter()
                .map(|&(status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_CONTENT_TYPE,
                        schema: Problem::schema_ref(),
                    }],
                    headers: if status == 503 {
                        vec![retry_after()]
                    } else {
                        vec![]
                    },
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// Sent with the 503 of a request that timed out (`net::answer_within`).
fn retry_after() -> MetaHeader {
    MetaHeader {
        name: "Retry-After".into(),
        description: Some(
            "Seconds to wait before retrying; sent when the request timed out".into(),
        ),
        required: false,
        deprecated: false,
        schema: u32::schema_ref(),
    }
}

impl<S: Send> IntoResponse for ApiProblem<S> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<S> From<ApiProblem<S>> for poem::Error {
    fn from(problem: ApiProblem<S>) -> Self {
        problem.0.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_names_every_rule() {
        let problem = Problem::invalid(ValidationErrors {
            invalid_username: Some("u".into()),
            invalid_date: Some("d".into()),
        });
        let json: serde_json::Value = serde_json::from_str(&problem.to_json_string()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "about:blank", "title": "Bad Request", "status": 400,
                "detail": "the request has 2 invalid fields",
                "errors": {"INVALID_USERNAME": "u", "INVALID_DATE": "d"}
            })
        );
    }

    #[test]
    fn plain_problem_has_no_errors_member() {
        let json = Problem::new(StatusCode::NOT_FOUND, "nobody").to_json_string();
        assert!(!json.contains("errors"), "{json}");
    }
}
