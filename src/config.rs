//! The command line and its environment variables, and the settings the
//! application is built from.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::net::{LimitArgs, Limits};

use crate::{
    api::auth::WriteToken,
    store::{StoreSettings, postgres::DatabaseUrl},
};

#[derive(Debug, Parser)]
#[command(
    name = "birthday-api",
    version,
    about = "Remembers people's dates of birth and greets them.",
    long_about = "Remembers people's dates of birth and greets them.\n\n\
                  With no subcommand, `serve` runs. Every flag can also be set with the \
                  environment variable shown in its help.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Print the OpenAPI document; opens no store.
    Spec(SpecArgs),
    /// Write every record to stdout as JSON Lines.
    Export(StoreArgs),
    /// Read JSON Lines records from stdin and store them.
    Import(StoreArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the public API.
    #[arg(long, env = "BIRTHDAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the operations endpoints (/healthz, /readyz, /metrics).
    #[arg(long, env = "BIRTHDAY_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// IANA time zone that decides what "today" is.
    #[arg(long, env = "BIRTHDAY_TIMEZONE", default_value = "UTC", value_parser = parse_timezone)]
    pub timezone: Tz,
    /// When set, PUT and DELETE need `Authorization: Bearer <token>`.
    #[arg(long, env = "BIRTHDAY_WRITE_TOKEN", hide_env_values = true)]
    pub write_token: Option<WriteToken>,
    /// Log line format.
    #[arg(long, env = "BIRTHDAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "BIRTHDAY_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub shutdown_timeout_secs: u64,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the embedded sled database (created on first start).
    #[arg(long, env = "BIRTHDAY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// sled page cache size in MiB.
    #[arg(long, env = "BIRTHDAY_CACHE_MB", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub cache_mb: u64,
    /// `postgres://user:password@host:port/database[?sslmode=require]`: keep
    /// records in PostgreSQL instead of sled (then --data-dir is unused).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
    /// Most PostgreSQL connections this process opens.
    #[arg(long, env = "BIRTHDAY_DATABASE_POOL_SIZE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool_size: u32,
    /// Milliseconds a PostgreSQL call may take before it fails with 503.
    #[arg(long, env = "BIRTHDAY_DATABASE_TIMEOUT_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub database_timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = SpecFormat::Json)]
    pub format: SpecFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpecFormat {
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("`{name}` is not an IANA time zone such as Europe/London"))
}

impl StoreArgs {
    pub fn settings(&self) -> StoreSettings {
        match &self.database_url {
            Some(url) => StoreSettings::Postgres {
                url: url.clone(),
                pool_size: self.database_pool_size,
                timeout: Duration::from_millis(self.database_timeout_ms),
            },
            None => StoreSettings::Sled {
                data_dir: self.data_dir.clone(),
                cache_mb: self.cache_mb,
            },
        }
    }
}

/// Where "today" comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock, read in this time zone.
    System(Tz),
    /// A fixed date, for tests that need a known "today".
    Fixed(NaiveDate),
}

impl Clock {
    pub fn today(&self) -> NaiveDate {
        match self {
            Clock::System(zone) => Utc::now().with_timezone(zone).date_naive(),
            Clock::Fixed(date) => *date,
        }
    }
}

/// Everything [`crate::startup::Application::build`] needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub store: StoreSettings,
    pub clock: Clock,
    pub write_token: Option<WriteToken>,
    pub shutdown_timeout: Duration,
    /// Connection limits and timeouts of both ports.
    pub limits: Limits,
}

impl From<&ServeArgs> for Settings {
    fn from(args: &ServeArgs) -> Self {
        Self {
            listen: args.listen,
            admin_listen: args.admin_listen,
            store: args.store.settings(),
            clock: Clock::System(args.timezone),
            write_token: args.write_token.clone(),
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout_secs),
            limits: Limits::from(&args.limits),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn no_subcommand_means_serve_with_defaults() {
        let cli = Cli::try_parse_from(["birthday-api"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cli.serve.admin_listen.to_string(), "127.0.0.1:9090");
        assert_eq!(cli.serve.timezone, Tz::UTC);
    }

    #[test]
    fn parses_subcommands() {
        let cli = Cli::try_parse_from(["birthday-api", "spec", "--format", "yaml"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Spec(SpecArgs {
                format: SpecFormat::Yaml
            }))
        ));
        let cli = Cli::try_parse_from(["birthday-api", "export", "--data-dir", "/tmp/x"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Export(args)) if args.data_dir == Path::new("/tmp/x"))
        );
    }

    #[test]
    fn rejects_bad_values() {
        for args in [
            &["birthday-api", "--listen", "nowhere"][..],
            &["birthday-api", "--timezone", "Mars/Olympus"],
            &["birthday-api", "--cache-mb", "0"],
            &["birthday-api", "--write-token", ""],
            &["birthday-api", "--log-format", "xml"],
            &["birthday-api", "--database-url", "mysql://db/birthdays"],
            &["birthday-api", "--database-pool-size", "0"],
            &["birthday-api", "--database-timeout-ms", "0"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn database_url_selects_postgres_for_every_store_command() {
        let url = "postgres://app@db.example/birthdays";
        let cli = Cli::try_parse_from(["birthday-api", "--database-url", url]).unwrap();
        assert!(matches!(
            cli.serve.store.settings(),
            StoreSettings::Postgres { pool_size: 10, timeout, .. } if timeout == Duration::from_secs(2)
        ));
        for command in ["export", "import"] {
            let cli = Cli::try_parse_from([
                "birthday-api",
                command,
                "--database-url",
                url,
                "--database-pool-size",
                "3",
                "--database-timeout-ms",
                "500",
            ])
            .unwrap();
            let Some(Command::Export(args) | Command::Import(args)) = cli.command else {
                panic!("{command} did not parse as a store command");
            };
            assert!(matches!(
                args.settings(),
                StoreSettings::Postgres { pool_size: 3, timeout, .. } if timeout == Duration::from_millis(500)
            ));
        }
        let cli = Cli::try_parse_from(["birthday-api", "export"]).unwrap();
        let Some(Command::Export(args)) = cli.command else {
            panic!("export did not parse");
        };
        assert!(matches!(args.settings(), StoreSettings::Sled { .. }));
    }

    #[test]
    fn time_zone_decides_today() {
        // UTC+14 and UTC-12 are 26 hours apart: their dates always differ.
        let kiritimati = Clock::System("Pacific/Kiritimati".parse().unwrap()).today();
        let baker_island = Clock::System("Etc/GMT+12".parse().unwrap()).today();
        let ahead = (kiritimati - baker_island).num_days();
        assert!((1..=2).contains(&ahead), "{ahead}");
    }
}
