//! Optional write protection: a bearer token for PUT and DELETE.

use std::{fmt, str::FromStr};

use poem::{Request, RequestBody, http::StatusCode};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    auth::{Bearer, BearerAuthorization},
    registry::{MetaSecurityScheme, Registry},
};
use subtle::ConstantTimeEq;

use super::problem::Problem;

/// The security scheme of PUT and DELETE, as the OpenAPI document names it.
const WRITE_TOKEN_SCHEME: &str = "writeToken";

/// The credentials a write request carries, if any. Writes are open when the
/// service has no token, so a request without credentials is not an error
/// here.
///
/// Written out rather than derived: a derived security scheme reads the
/// query pairs that poem-openapi's `into_endpoint` layer parses, and the
/// public port serves the operations without that layer
/// ([`super::hello_routes`]). A bearer token is in a header. Documented as
/// the derived `enum` with a fallback was: the `writeToken` scheme, or none.
pub enum WriteCredentials {
    Bearer(Bearer),
    Anonymous,
}

impl<'a> ApiExtractor<'a> for WriteCredentials {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            WRITE_TOKEN_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "`Authorization: Bearer <token>`, needed by PUT and DELETE when the service\n\
                     runs with `--write-token`.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![WRITE_TOKEN_SCHEME]
    }

    fn has_security_fallback() -> bool {
        true
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(match Bearer::from_request(request) {
            Ok(bearer) => Self::Bearer(bearer),
            Err(_) => Self::Anonymous,
        })
    }
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
        WriteCredentials::Bearer(bearer) if required.matches(&bearer.token) => Ok(()),
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
        WriteCredentials::Bearer(Bearer {
            token: token.into(),
        })
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
