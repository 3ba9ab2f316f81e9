//! Optional write protection: a bearer token for PUT and DELETE.

use std::{fmt, str::FromStr};

use poem::http::StatusCode;
use poem_openapi::{SecurityScheme, auth::Bearer};
use subtle::ConstantTimeEq;

use super::problem::Problem;

/// `Authorization: Bearer <token>`, needed by PUT and DELETE when the service
/// runs with `--write-token`.
#[derive(SecurityScheme)]
#[oai(rename = "writeToken", ty = "bearer")]
pub struct BearerToken(Bearer);

/// The credentials a write request carries, if any. Writes are open when the
/// service has no token, so a request without credentials is not an error
/// here.
#[derive(SecurityScheme)]
pub enum WriteCredentials {
    Bearer(BearerToken),
    #[oai(fallback)]
    Anonymous,
}

/// The token writes must present. Never printed: `Debug` hides it.
#[derive(Clone)]
pub struct WriteToken(String);

impl fmt::Debug for WriteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteToken(<redacted>)")
    }
}

impl FromStr for WriteToken {
    type Err = &'static str;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        if token.is_empty() {
            return Err("the write token must not be empty");
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the write token must be printable ASCII without spaces");
        }
        Ok(Self(token.to_owned()))
    }
}

impl WriteToken {
    fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// Lets a write through when no token is configured or the right one is
/// presented; compares in constant time.
pub fn authorize_write(
    required: Option<&WriteToken>,
    credentials: &WriteCredentials,
) -> Result<(), Problem> {
    let Some(required) = required else {
        return Ok(());
    };
    match credentials {
        WriteCredentials::Bearer(BearerToken(bearer)) if required.matches(&bearer.token) => Ok(()),
        _ => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "this service needs Authorization: Bearer <write token> for PUT and DELETE",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> WriteCredentials {
        WriteCredentials::Bearer(BearerToken(Bearer {
            token: token.into(),
        }))
    }

    #[test]
    fn open_when_no_token_is_configured() {
        assert!(authorize_write(None, &WriteCredentials::Anonymous).is_ok());
    }

    #[test]
    fn needs_the_exact_token() {
        let token: WriteToken = "s3cret".parse().unwrap();
        assert!(authorize_write(Some(&token), &bearer("s3cret")).is_ok());
        for wrong in [
            bearer("s3cre"),
            bearer("s3cret2"),
            bearer(""),
            WriteCredentials::Anonymous,
        ] {
            let problem = authorize_write(Some(&token), &wrong).unwrap_err();
            assert_eq!(problem.status, 401);
        }
    }

    #[test]
    fn token_is_never_printed() {
        let token: WriteToken = "s3cret".parse().unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn rejects_unusable_tokens() {
        assert!("".parse::<WriteToken>().is_err());
        assert!("has space".parse::<WriteToken>().is_err());
    }
}
