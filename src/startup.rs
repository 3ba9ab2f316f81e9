//! Wires store, API, operations port and telemetry into one application.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use poem::{Server, listener::TcpAcceptor};
use tokio::{net::TcpListener, sync::watch};

use crate::{
    api::{self, AppState},
    config::Settings,
    net::{GuardedAcceptor, Limits},
    ops,
    store::{self, Store, metered::MeteredStore},
    telemetry,
};

/// A built application: store open, both ports bound, not yet serving.
pub struct Application {
    public: TcpListener,
    admin: TcpListener,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
    store: Arc<dyn Store>,
    state: Arc<AppState>,
    shutdown_timeout: Duration,
    limits: Limits,
}

impl Application {
    /// Opens the store and binds both listeners (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        ops::metrics::install();
        let public = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let admin = TcpListener::bind(settings.admin_listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.admin_listen))?;
        let store: Arc<dyn Store> =
            Arc::new(MeteredStore::new(store::open(&settings.store).await?));
        let state = Arc::new(AppState {
            store: store.clone(),
            clock: settings.clock,
            write_token: settings.write_token,
        });
        Ok(Self {
            public_addr: public.local_addr()?,
            admin_addr: admin.local_addr()?,
            public,
            admin,
            store,
            state,
            shutdown_timeout: settings.shutdown_timeout,
            limits: settings.limits,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, lets
    /// in-flight requests finish (up to the shutdown timeout) and flushes
    /// the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let when_stopped = |mut stopped: watch::Receiver<bool>| async move {
            // An error means the sender is gone, which also means stop.
            let _ = stopped.wait_for(|stop| *stop).await;
        };

        let limits = self.limits;
        let public = Server::new_with_acceptor(GuardedAcceptor::new(
            TcpAcceptor::from_tokio(self.public)?,
            limits,
        ))
        .name("public")
        .run_with_graceful_shutdown(
            api::public_endpoint(self.state, limits),
            when_stopped(stopped.clone()),
            Some(self.shutdown_timeout),
        );
        let admin = Server::new_with_acceptor(GuardedAcceptor::new(
            TcpAcceptor::from_tokio(self.admin)?,
            limits,
        ))
        .name("operations")
        .run_with_graceful_shutdown(
            telemetry::observe_requests(ops::admin_routes(self.store.clone()), ops::route_template),
            when_stopped(stopped),
            Some(self.shutdown_timeout),
        );
        let public = tokio::spawn(public);
        let admin = tokio::spawn(admin);
        let upkeep = tokio::spawn(ops::metrics::run_upkeep(Duration::from_secs(5)));

        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = stop.send(true);
        public.await.context("public server task")??;
        admin.await.context("operations server task")??;
        upkeep.abort();
        self.store.flush().await.context("final flush")?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}
