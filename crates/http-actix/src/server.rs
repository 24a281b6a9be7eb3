//! Running the HTTP server: TCP_NODELAY, keep-alive, request timeouts, graceful shutdown.

use std::{io, net::TcpListener, sync::Arc, time::Duration};

use actix_web::{App, HttpResponse, HttpServer, dev::Server, web};

use crate::{AppState, METRICS_CONTENT_TYPE, Telemetry, configure};

/// Settings of the HTTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Worker threads; `None`: one per core.
    pub workers: Option<usize>,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive: Duration,
    /// How long a client has to send a request's head; slower clients get 408.
    pub client_request_timeout: Duration,
    /// How long to wait for a client to close a connection the server is done with.
    pub client_disconnect_timeout: Duration,
    /// How long a graceful shutdown lets in-flight requests finish before dropping them.
    pub shutdown_timeout: Duration,
    /// Most concurrent connections per worker.
    pub max_connections_per_worker: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            workers: None,
            keep_alive: Duration::from_secs(30),
            client_request_timeout: Duration::from_secs(10),
            client_disconnect_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(30),
            max_connections_per_worker: 25_000,
        }
    }
}

/// Builds the server on `listener` (already bound: port 0 works, the caller reads the port).
/// It stops gracefully when `shutdown` completes (OS signals are left to the caller), letting
/// in-flight requests finish within `shutdown_timeout`. Must be called inside a Tokio runtime;
/// await the returned [`Server`] to run it.
///
/// # Errors
/// When the listener cannot be used.
pub fn build_server(
    listener: TcpListener,
    state: AppState,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<Server> {
    build_server_per_worker(listener, move || state.clone(), config, shutdown)
}

/// [`build_server`] with a state of its own per worker thread: `make_state` runs once on each
/// worker as it starts (so what it opens lazily, a database pool's connections, is opened and
/// driven on the thread that uses it).
///
/// # Errors
/// When the listener cannot be used.
pub fn build_server_per_worker(
    listener: TcpListener,
    make_state: impl Fn() -> AppState + Send + Clone + 'static,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<Server> {
    let mut server = HttpServer::new(move || {
        let state = make_state();
        App::new().configure(move |cfg| configure(cfg, state))
    })
    .tcp_nodelay(true)
    .keep_alive(config.keep_alive)
    .client_request_timeout(config.client_request_timeout)
    .client_disconnect_timeout(config.client_disconnect_timeout)
    .shutdown_timeout(config.shutdown_timeout.as_secs())
    .max_connections(config.max_connections_per_worker)
    .shutdown_signal(shutdown);
    if let Some(workers) = config.workers {
        server = server.workers(workers);
    }
    Ok(server.listen(listener)?.run())
}

/// Runs the server until `shutdown` completes and in-flight requests are done. See
/// [`build_server`].
///
/// # Errors
/// When the listener cannot be used or the server fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    build_server(listener, state, &config, shutdown)?.await
}

/// A server of its own for `GET /metrics` (`METRICS_BIND_ADDR`): one worker, nothing else
/// routed (404 with an empty body), no OS signal handling: stop it with its handle
/// (`Server::handle().stop(true)`) once the API server has stopped. Must be called inside a
/// Tokio runtime.
///
/// # Errors
/// When the listener cannot be used.
pub fn build_metrics_server(
    listener: TcpListener,
    telemetry: Arc<dyn Telemetry>,
) -> io::Result<Server> {
    let server = HttpServer::new(move || {
        let telemetry = Arc::clone(&telemetry);
        App::new()
            .route(
                "/metrics",
                web::get().to(move || {
                    let text = telemetry.render();
                    async move {
                        HttpResponse::Ok()
                            .content_type(METRICS_CONTENT_TYPE)
                            .body(text)
                    }
                }),
            )
            .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}
