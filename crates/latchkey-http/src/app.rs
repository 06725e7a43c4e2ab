//! The application: shared state, the router, and serving with graceful
//! shutdown.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use latchkey_core::context::Core;

pub struct AppState {
    /// What the services work with.
    pub core: Arc<Core>,
    pub templates: crate::pages::Templates,
    /// Reverse proxies whose forwarding headers name the client.
    pub trusted_proxies: crate::http::proxy::TrustedProxies,
}

pub type SharedState = Arc<AppState>;

/// Handlers reach the ports through the state (`state.store`, `state.clock`)
/// and hand it to services as the `Core` they take.
impl std::ops::Deref for AppState {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl AppState {
    pub fn new(core: Core) -> anyhow::Result<Self> {
        Ok(Self {
            core: Arc::new(core),
            templates: crate::pages::Templates::new()?,
            trusted_proxies: crate::http::proxy::TrustedProxies::default(),
        })
    }
}

pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .merge(crate::oauth::routes(state.clone()))
        .merge(crate::dbconnections::routes(state.clone()))
        .merge(crate::login::routes())
        .merge(crate::myaccount::routes(state.clone()))
        .merge(crate::guardian::routes())
        .merge(crate::management::routes(state.clone()))
        // The languages a page may speak, for the request's duration.
        .layer(axum::middleware::from_fn(crate::pages::language::layer))
        .layer(axum::middleware::from_fn(crate::http::headers::edge))
        .with_state(state)
}

/// Readiness: whether this node can write to its database now (liveness is
/// `/healthz`, which only says the process answers). The probe goes the way
/// every write goes and writes nothing (`KeyStore::probe_write`), so a
/// database that answers reads but cannot take writes (locked by another
/// process, a read-only file, a writer that cannot write) is not ready.
async fn ready(
    axum::extract::State(state): axum::extract::State<SharedState>,
) -> (axum::http::StatusCode, &'static str) {
    match state.store.probe_write().await {
        Ok(()) => (axum::http::StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the database cannot take writes");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable",
            )
        }
    }
}

/// Serves until `shutdown` resolves; in-flight requests finish first (for at
/// most the default stop deadline).
pub async fn serve(
    listener: TcpListener,
    state: SharedState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        state,
        crate::http::serve::ServeOptions::default(),
        shutdown,
        std::future::pending(),
    )
    .await
}

/// Serves with the edge's limits (`opts`) until `shutdown` resolves; then
/// requests in flight have `opts.shutdown_timeout` to finish, unless
/// `stop_now` resolves first.
pub async fn serve_with(
    listener: TcpListener,
    state: SharedState,
    opts: crate::http::serve::ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
    stop_now: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    crate::http::serve::serve(listener, router(state), opts, shutdown, stop_now).await
}
