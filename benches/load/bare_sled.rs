//! `bare-sled`: the baseline's bare poem server, with the service's sled store.
//!
//! Same routes and handler work as `benches/baseline` (no OpenAPI layer, no
//! metrics, no logs, no guards), but records live in `SledStore` (sled plus
//! the service's group commit) instead of a map, and a PUT answers once its
//! record is durable. It shows what HTTP on sled costs with nothing else
//! added: the best any service on sled could do on this machine.
//!
//! ```text
//! bare-sled --listen ADDR --data-dir DIR [--cache-mb M]
//! ```

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use birthday_api::{
    domain::{DateOfBirth, Greeting, Username, days_until_next_birthday},
    store::{Store, sled_store::SledStore},
};
use chrono::Utc;
use clap::Parser;
use poem::{
    EndpointExt, Route, Server, get, handler,
    http::StatusCode,
    listener::TcpListener,
    web::{Data, Json, Path},
};
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};

mod sled_cache_arg;
use sled_cache_arg::SledCacheArg;

/// The service's allocator (src/main.rs): sled's cost depends on it, and a
/// floor measured with another would not bound the service.
#[global_allocator]
static ALLOCATOR: birthday_api::allocator::MiMalloc = birthday_api::allocator::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "bare-sled",
    about = "Bare poem server on the service's sled store."
)]
struct Args {
    #[arg(long)]
    listen: SocketAddr,
    /// sled directory (filled by `birthday-api import`).
    #[arg(long)]
    data_dir: PathBuf,
    #[command(flatten)]
    cache: SledCacheArg,
}

#[derive(Deserialize)]
struct PutBody {
    #[serde(rename = "dateOfBirth")]
    date_of_birth: String,
}

#[derive(Serialize)]
struct Message {
    message: String,
}

type SharedStore = Arc<SledStore>;

#[handler]
async fn get_hello(
    Path(name): Path<String>,
    store: Data<&SharedStore>,
) -> poem::Result<Json<Message>> {
    let username = Username::parse(&name).map_err(|_| status(StatusCode::BAD_REQUEST))?;
    let date_of_birth = store
        .get(&username)
        .await
        .map_err(|_| status(StatusCode::SERVICE_UNAVAILABLE))?
        .ok_or_else(|| status(StatusCode::NOT_FOUND))?;
    let days = days_until_next_birthday(date_of_birth, Utc::now().date_naive())
        .ok_or_else(|| status(StatusCode::SERVICE_UNAVAILABLE))?;
    Ok(Json(Message {
        message: Greeting::new(&username, days).into_message(),
    }))
}

#[handler]
async fn put_hello(
    Path(name): Path<String>,
    Json(body): Json<PutBody>,
    store: Data<&SharedStore>,
) -> poem::Result<StatusCode> {
    let username = Username::parse(&name).map_err(|_| status(StatusCode::BAD_REQUEST))?;
    let date_of_birth = DateOfBirth::parse(&body.date_of_birth, Utc::now().date_naive())
        .map_err(|_| status(StatusCode::BAD_REQUEST))?;
    store
        .put(&username, date_of_birth)
        .await
        .map_err(|_| status(StatusCode::SERVICE_UNAVAILABLE))?;
    Ok(StatusCode::NO_CONTENT)
}

#[handler]
fn ready() -> &'static str {
    "ok"
}

/// SIGTERM (how `bench.py` stops servers) or Ctrl-C.
async fn stop_requested() {
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn status(code: StatusCode) -> poem::Error {
    poem::Error::from_status(code)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store: SharedStore = Arc::new(SledStore::open(&args.data_dir, args.cache.cache_mb)?);
    let app = Route::new()
        .at("/hello/:username", get(get_hello).put(put_hello))
        .at("/readyz", get(ready))
        .data(Arc::clone(&store));
    let served = Server::new(TcpListener::bind(args.listen))
        .run_with_graceful_shutdown(app, stop_requested(), None)
        .await;
    store.flush().await?;
    Ok(served?)
}
