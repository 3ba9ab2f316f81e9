//! `/hello/{username}`: save, greet, forget.

use std::sync::Arc;

use chrono::NaiveDate;
use poem::http::StatusCode;
use poem_openapi::{ApiResponse, OpenApi, param::Path};

use super::{
    ApiTags, AppState, GreetingMessage, JsonBody,
    auth::{WriteCredentials, authorize_write},
    extract::{BirthdayBody, BodyDate, QueryDateText, QueryParam, UsernameText},
    problem::{ApiProblem, Problem, ProblemStatuses, ValidationErrors},
};
use crate::{
    domain::{DateOfBirth, Greeting, Username, UsernameError, days_until_next_birthday},
    store::StoreError,
};

/// The operations on `/hello/{username}`, with what they share.
pub struct HelloApi {
    state: Arc<AppState>,
}

impl HelloApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

const BAD_REQUEST: (u16, &str) = (
    400,
    "The input breaks a rule (`errors` names each one), or the body is not valid JSON",
);
const UNAUTHORIZED: (u16, &str) = (401, "The write token is missing or wrong");
const NOT_FOUND: (u16, &str) = (404, "No date of birth is stored for this username");
const NOT_JSON: (u16, &str) = (415, "The request body is not JSON");
const UNAVAILABLE: (u16, &str) = (
    503,
    "The store cannot be reached right now, or the request timed out (then with \
     `Retry-After`); retry later",
);

pub struct PutProblems;
impl ProblemStatuses for PutProblems {
    const STATUSES: &'static [(u16, &'static str)] =
        &[BAD_REQUEST, UNAUTHORIZED, NOT_JSON, UNAVAILABLE];
}

pub struct GetProblems;
impl ProblemStatuses for GetProblems {
    const STATUSES: &'static [(u16, &'static str)] = &[BAD_REQUEST, NOT_FOUND, UNAVAILABLE];
}

pub struct DeleteProblems;
impl ProblemStatuses for DeleteProblems {
    const STATUSES: &'static [(u16, &'static str)] =
        &[BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, UNAVAILABLE];
}

#[derive(ApiResponse)]
pub enum PutBirthdayResponse {
    /// Saved. The record is on disk before this answer is sent.
    #[oai(status = 204)]
    Saved,
}

#[derive(ApiResponse)]
pub enum GetGreetingResponse {
    /// The greeting, with the number of days until the next birthday.
    #[oai(status = 200)]
    Greeting(JsonBody<GreetingMessage>),
}

#[derive(ApiResponse)]
pub enum DeleteBirthdayResponse {
    /// Forgotten. The removal is on disk before this answer is sent.
    #[oai(status = 204)]
    Deleted,
}

#[OpenApi(tag = "ApiTags::Birthdays")]
impl HelloApi {
    /// Save or replace a date of birth
    ///
    /// Stores `dateOfBirth` for `username`, replacing any earlier date (last
    /// write wins). The date must be a real `YYYY-MM-DD` date before today.
    /// A 204 means the record is on disk. Clients of the replaced service may
    /// send the date as the `dateOfBirth` query parameter with no body; if
    /// both are given they must agree.
    #[oai(
        path = "/hello/:username",
        method = "put",
        operation_id = "putBirthday"
    )]
    async fn put_birthday(
        &self,
        credentials: WriteCredentials,
        /// Whose date of birth this is.
        username: Path<UsernameText>,
        /// Deprecated: the replaced service's way to send the date. Use the
        /// JSON body instead.
        #[oai(name = "dateOfBirth", deprecated)]
        date_of_birth: QueryParam<Option<QueryDateText>>,
        body: BirthdayBody,
    ) -> Result<PutBirthdayResponse, ApiProblem<PutProblems>> {
        authorize_write(self.state.write_token.as_ref(), &credentials)?;
        let body_date = body.0?;
        let date_text = choose_date_text(
            date_of_birth.0.as_ref().map(QueryDateText::as_str),
            body_date,
        );
        let (username, date_of_birth) =
            parse_birthday(username.0.as_str(), date_text, self.state.clock.today())?;
        self.state
            .store
            .put(&username, date_of_birth)
            .await
            .map_err(store_problem)?;
        Ok(PutBirthdayResponse::Saved)
    }

    /// Greet someone
    ///
    /// Answers `Hello, <username>! Your birthday is in N day(s)` or, on the
    /// birthday itself, `Hello, <username>! Happy birthday!`. Days count in
    /// the service's time zone; a 29 February birthday falls on 28 February
    /// in common years.
    #[oai(
        path = "/hello/:username",
        method = "get",
        operation_id = "getGreeting"
    )]
    async fn get_greeting(
        &self,
        /// Whose birthday to count down to.
        username: Path<UsernameText>,
    ) -> Result<GetGreetingResponse, ApiProblem<GetProblems>> {
        let username = parse_username(username.0.as_str())?;
        let date_of_birth = self
            .state
            .store
            .get(&username)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| not_found(&username))?;
        let days =
            days_until_next_birthday(date_of_birth, self.state.clock.today()).ok_or_else(|| {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the service clock is outside the supported calendar",
                )
            })?;
        Ok(GetGreetingResponse::Greeting(JsonBody(GreetingMessage {
            message: Greeting::new(&username, days).into_message(),
        })))
    }

    /// Forget someone
    ///
    /// Removes the stored date of birth (right to erasure). 404 when there
    /// was none.
    #[oai(
        path = "/hello/:username",
        method = "delete",
        operation_id = "deleteBirthday"
    )]
    async fn delete_birthday(
        &self,
        credentials: WriteCredentials,
        /// Whose date of birth to forget.
        username: Path<UsernameText>,
    ) -> Result<DeleteBirthdayResponse, ApiProblem<DeleteProblems>> {
        authorize_write(self.state.write_token.as_ref(), &credentials)?;
        let username = parse_username(username.0.as_str())?;
        if self
            .state
            .store
            .delete(&username)
            .await
            .map_err(store_problem)?
        {
            Ok(DeleteBirthdayResponse::Deleted)
        } else {
            Err(not_found(&username).into())
        }
    }
}

const USERNAME_RULE: &str = "username must be 1-64 letters";
const DATE_RULE: &str = "dateOfBirth must be a YYYY-MM-DD date before today";

/// Where the date comes from: the JSON body, or the replaced service's query
/// parameter. `Err` carries the reason no usable date text was given.
fn choose_date_text(query: Option<&str>, body: BodyDate) -> Result<String, String> {
    match (query, body) {
        (_, BodyDate::NotText) => Err("not a string".into()),
        // A body must match its documented schema, which requires
        // `dateOfBirth`, even when the query string carries the date.
        (_, BodyDate::Missing) => Err("missing from the JSON body".into()),
        (Some(query), BodyDate::Text(body)) if query != body => {
            Err("the query and the body give different dates".into())
        }
        (Some(query), _) => Ok(query.to_owned()),
        (None, BodyDate::Text(body)) => Ok(body),
        (None, BodyDate::NoBody) => Err("missing".into()),
    }
}

fn parse_username(raw: &str) -> Result<Username, Problem> {
    Username::parse(raw).map_err(|err| {
        Problem::invalid(ValidationErrors {
            invalid_username: Some(username_rule_broken(err)),
            invalid_date: None,
        })
    })
}

/// The 400 for a path segment that is not UTF-8 once percent-decoded, so
/// not a username at all (the router hands it on as no parameter).
pub(super) fn undecodable_username() -> Problem {
    Problem::invalid(ValidationErrors {
        invalid_username: Some(format!(
            "{USERNAME_RULE} (the path is not UTF-8 once percent-decoded)"
        )),
        invalid_date: None,
    })
}

fn username_rule_broken(err: UsernameError) -> String {
    format!("{USERNAME_RULE} ({err})")
}

/// Parses both inputs and reports every broken rule at once.
fn parse_birthday(
    raw_username: &str,
    date_text: Result<String, String>,
    today: NaiveDate,
) -> Result<(Username, DateOfBirth), Problem> {
    let username = Username::parse(raw_username);
    let date_of_birth =
        date_text.and_then(|text| DateOfBirth::parse(&text, today).map_err(|err| err.to_string()));
    match (username, date_of_birth) {
        (Ok(username), Ok(date_of_birth)) => Ok((username, date_of_birth)),
        (username, date_of_birth) => Err(Problem::invalid(ValidationErrors {
            invalid_username: username.err().map(username_rule_broken),
            invalid_date: date_of_birth
                .err()
                .map(|reason| format!("{DATE_RULE} ({reason})")),
        })),
    }
}

fn not_found(username: &Username) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("no date of birth is stored for {username}"),
    )
}

fn store_problem(err: StoreError) -> Problem {
    tracing::error!(error = %err, "store operation failed");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store is unavailable; retry later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_without_the_date_is_rejected_even_with_the_query_form() {
        let date = "2000-01-01";
        assert!(choose_date_text(Some(date), BodyDate::Missing).is_err());
        assert!(choose_date_text(None, BodyDate::Missing).is_err());
        assert_eq!(
            choose_date_text(Some(date), BodyDate::NoBody),
            Ok(date.into())
        );
        assert_eq!(
            choose_date_text(Some(date), BodyDate::Text(date.into())),
            Ok(date.into())
        );
    }
}
