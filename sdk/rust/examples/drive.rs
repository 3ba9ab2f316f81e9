//! Drives the generated client against a live server. sdk/ci.sh starts the
//! server and sets `BIRTHDAY_API_URL` and `BIRTHDAY_API_TOKEN`:
//!
//! ```sh
//! cargo run -p birthday-api-client --example drive
//! ```

use std::env;

use birthday_api_client::{Client, Error, types};
use chrono::NaiveDate;

type Outcome = Result<(), Box<dyn std::error::Error>>;

// Letters only, and no other driver uses it, so the drivers can share a server.
const USERNAME: &str = "Rustacean";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Outcome {
    let client = Client::with_write_token(
        &env::var("BIRTHDAY_API_URL")?,
        &env::var("BIRTHDAY_API_TOKEN")?,
    )?;
    round_trip(&client).await?;
    unknown_user_is_a_problem(&client).await?;
    bad_date_names_the_rule(&client).await?;
    println!("rust sdk: 3 passed, 0 failed");
    Ok(())
}

async fn round_trip(client: &Client) -> Outcome {
    let body = types::BirthdayRequest {
        date_of_birth: NaiveDate::from_ymd_opt(1990, 7, 14).ok_or("bad test date")?,
    };
    let saved = client.put_birthday(&USERNAME.parse()?, None, &body).await?;
    assert_eq!(saved.status(), 204);

    let greeting = client.get_greeting(&USERNAME.parse()?).await?;
    assert_eq!(greeting.status(), 200);
    let message = &greeting.message;
    let rest = message
        .strip_prefix("Hello, Rustacean! ")
        .ok_or_else(|| format!("unexpected greeting {message:?}"))?;
    let days = rest
        .strip_prefix("Your birthday is in ")
        .and_then(|rest| rest.strip_suffix(" day(s)"));
    assert!(
        rest == "Happy birthday!"
            || days
                .and_then(|n| n.parse::<u16>().ok())
                .is_some_and(|n| n >= 1),
        "unexpected greeting {message:?}"
    );

    let deleted = client.delete_birthday(&USERNAME.parse()?).await?;
    assert_eq!(deleted.status(), 204);
    Ok(())
}

async fn unknown_user_is_a_problem(client: &Client) -> Outcome {
    match client.get_greeting(&"Nobodyknowsme".parse()?).await {
        Err(Error::ErrorResponse(problem)) => {
            assert_eq!(problem.status(), 404);
            assert_eq!(problem.status, 404);
            assert_eq!(problem.title, "Not Found");
            assert!(problem.detail.contains("Nobodyknowsme"), "{problem:?}");
            Ok(())
        }
        other => Err(format!("expected a 404 problem, got {other:?}").into()),
    }
}

async fn bad_date_names_the_rule(client: &Client) -> Outcome {
    let body = types::BirthdayRequest {
        date_of_birth: NaiveDate::from_ymd_opt(9999, 12, 31).ok_or("bad test date")?,
    };
    match client.put_birthday(&USERNAME.parse()?, None, &body).await {
        Err(Error::ErrorResponse(problem)) => {
            assert_eq!(problem.status(), 400);
            let errors = problem.errors.as_ref().ok_or("no errors member")?;
            let rule = errors.invalid_date.as_deref().unwrap_or_default();
            assert!(rule.starts_with("dateOfBirth must be"), "{problem:?}");
            assert!(errors.invalid_username.is_none(), "{problem:?}");
            Ok(())
        }
        other => Err(format!("expected a 400 problem, got {other:?}").into()),
    }
}
