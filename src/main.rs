use std::process::ExitCode;

use anyhow::Context;
use birthday_api::{
    api,
    config::{Cli, Command, ServeArgs, Settings, SpecFormat, StoreArgs},
    startup::Application,
    store, telemetry, transfer,
};
use clap::{
    Parser,
    error::{ContextKind, ContextValue, ErrorKind},
};

/// mimalloc (`birthday_api::allocator` says why, and why not through the
/// `mimalloc` crate).
#[global_allocator]
static ALLOCATOR: birthday_api::allocator::MiMalloc = birthday_api::allocator::MiMalloc;

/// Exit code for bad flags, bad configuration, or a store that cannot be
/// opened (such as a data directory another process holds).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return report_usage_error(&err),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("birthday-api: error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

fn report_usage_error(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("birthday-api: {}", usage_message(err));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Flags whose values are secrets. clap quotes a rejected value in its
/// message, and stderr is where the logs go (CloudWatch in the deploy).
const SECRET_FLAGS: [&str; 2] = ["--write-token", "--database-url"];

/// The first line of clap's message, without the value when the flag is a
/// secret: a token with a stray newline must not end up in the logs.
fn usage_message(err: &clap::Error) -> String {
    match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(flag))
            if SECRET_FLAGS.iter().any(|secret| flag.starts_with(secret)) =>
        {
            // The parser's reason is a fixed text, never the value.
            let reason = std::error::Error::source(err)
                .map(|source| format!(": {source}"))
                .unwrap_or_default();
            format!("error: invalid value for '{flag}'{reason}")
        }
        _ => err
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid arguments")
            .to_owned(),
    }
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        None => serve(&cli.serve).await,
        Some(Command::Serve(args)) => serve(&args).await,
        Some(Command::Spec(args)) => {
            print!(
                "{}",
                match args.format {
                    SpecFormat::Json => api::spec_json(),
                    SpecFormat::Yaml => api::spec_yaml(),
                }
            );
            ExitCode::SUCCESS
        }
        Some(Command::Export(args)) => transfer_command(&args, Direction::Export).await,
        Some(Command::Import(args)) => transfer_command(&args, Direction::Import).await,
    }
}

async fn serve(args: &ServeArgs) -> ExitCode {
    let _log_guard = match telemetry::init(args.log_format) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("birthday-api: error: cannot start the log writer: {err}");
            return ExitCode::FAILURE;
        }
    };
    let application = match Application::build(Settings::from(args)).await {
        Ok(application) => application,
        Err(err) => {
            eprintln!("birthday-api: error: {err:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(err) => {
            eprintln!("birthday-api: error: cannot handle SIGTERM and SIGINT: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "serving on http://{addr}, Swagger UI at http://{addr}/docs, operations on http://{admin}",
        addr = application.public_addr(),
        admin = application.admin_addr(),
    );
    match application.run_until_stopped(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("birthday-api: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

enum Direction {
    Export,
    Import,
}

async fn transfer_command(args: &StoreArgs, direction: Direction) -> ExitCode {
    let store = match store::open(&args.settings()).await {
        Ok(store) => store,
        Err(err) => {
            eprintln!("birthday-api: error: {err:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let outcome = match direction {
        Direction::Export => transfer::export(store.as_ref(), tokio::io::stdout())
            .await
            .map(|count| eprintln!("birthday-api: exported {count} records")),
        Direction::Import => transfer::import(store.as_ref(), tokio::io::stdin())
            .await
            .map(|count| eprintln!("birthday-api: imported {count} records")),
    };
    match outcome.context("transfer failed") {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("birthday-api: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM. The handlers are in place when this
/// returns, so that a signal sent as soon as the start-up line appears
/// stops the service cleanly instead of killing it.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
