//! Operations wiring: the Prometheus metrics (`storage-metrics`) around the adapters and the
//! HTTP adapter, their listener (`METRICS_BIND_ADDR`) and upkeep, and the shutdown sequence
//! (readiness 503 first, then the listener closes, then requests in flight finish).

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::dev::ServerHandle;
use storage_domain::{
    model::BucketKind,
    ports::{ByteStream, MetadataStore},
};
use storage_http_actix::{AppState, Readiness, ServedRequest, Telemetry, TransferDirection};
use storage_metrics::{
    Direction, MeteredBlobs, MeteredMetadata, MeteredProjects, Metrics, PoolFigures,
};
use tokio::task::JoinHandle;

use crate::{
    app::{Adapters, StartError},
    config::Config,
};

/// How often buffered histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A pool's figures as the metrics take them.
pub fn figures(status: deadpool::Status) -> PoolFigures {
    PoolFigures {
        max_size: status.max_size,
        size: status.size,
        idle: status.available,
        waiting: status.waiting,
    }
}

/// `store` in its metered decorator, when there are metrics.
pub fn meter_metadata(
    metrics: Option<&Metrics>,
    store: Arc<dyn MetadataStore>,
) -> Arc<dyn MetadataStore> {
    match metrics {
        Some(metrics) => Arc::new(MeteredMetadata::new(store, metrics.clone())),
        None => store,
    }
}

/// The metrics as the HTTP adapter's [`Telemetry`].
struct PrometheusTelemetry(Metrics);

impl Telemetry for PrometheusTelemetry {
    fn request_served(&self, r: &ServedRequest<'_>) {
        self.0
            .record_http(r.method, r.route, r.status, r.error, r.elapsed);
    }

    fn transfer(
        &self,
        direction: TransferDirection,
        bucket: BucketKind,
        body: ByteStream,
    ) -> ByteStream {
        let direction = match direction {
            TransferDirection::Upload => Direction::Upload,
            TransferDirection::Download => Direction::Download,
        };
        self.0.meter_transfer(direction, bucket, body)
    }

    fn render(&self) -> String {
        self.0.render()
    }
}

/// The metrics of one application (when `METRICS_ENABLED`), its readiness, and the tasks that
/// serve them.
pub struct Observability {
    metrics: Option<Metrics>,
    readiness: Readiness,
    /// The metrics listener's port and handle (`METRICS_BIND_ADDR`).
    listener: Option<(u16, ServerHandle)>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Observability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observability")
            .field("metrics", &self.metrics.is_some())
            .field("metrics_port", &self.metrics_port())
            .finish_non_exhaustive()
    }
}

impl Observability {
    /// A recorder of its own (never the process's global one), its upkeep task, and its
    /// listener when `METRICS_BIND_ADDR` is set. Must run inside a Tokio runtime.
    ///
    /// # Errors
    /// [`StartError::Bind`] when `METRICS_BIND_ADDR` cannot be bound.
    pub fn new(config: &Config) -> Result<Self, StartError> {
        let mut this = Self {
            metrics: None,
            readiness: Readiness::default(),
            listener: None,
            tasks: Vec::new(),
        };
        if !config.ops.metrics_enabled {
            return Ok(this);
        }
        let metrics = Metrics::new();
        let upkeep = metrics.clone();
        this.tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                ticker.tick().await;
                upkeep.run_upkeep();
            }
        }));
        if let Some(addr) = config.ops.metrics_bind_addr {
            let bind_error = |source| StartError::Bind {
                addr: format!("{addr} (METRICS_BIND_ADDR)"),
                source,
            };
            let listener = TcpListener::bind(addr).map_err(bind_error)?;
            let port = listener.local_addr().map_err(bind_error)?.port();
            let server = storage_http_actix::build_metrics_server(
                listener,
                Arc::new(PrometheusTelemetry(metrics.clone())),
            )
            .map_err(bind_error)?;
            this.listener = Some((port, server.handle()));
            this.tasks.push(tokio::spawn(async move {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            }));
            tracing::info!(port, "metrics listening");
        }
        this.metrics = Some(metrics);
        Ok(this)
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    pub fn metrics_port(&self) -> Option<u16> {
        self.listener.as_ref().map(|(port, _)| *port)
    }

    /// The adapters, each port wrapped in its metered decorator, the pools watched.
    pub fn meter(&self, adapters: Adapters) -> Adapters {
        let Some(metrics) = &self.metrics else {
            return adapters;
        };
        for (name, probe) in &adapters.pools {
            metrics.watch_pool(name, Arc::clone(probe));
        }
        Adapters {
            metadata: meter_metadata(Some(metrics), adapters.metadata),
            blobs: Arc::new(MeteredBlobs::new(adapters.blobs, metrics.clone())),
            projects: Arc::new(MeteredProjects::new(adapters.projects, metrics.clone())),
            signed_blobs: adapters.signed_blobs,
            upload_urls: adapters.upload_urls,
            pools: adapters.pools,
            worker_pools: adapters.worker_pools,
        }
    }

    /// The HTTP state with the readiness flag, and the telemetry (serving `GET /metrics` on
    /// the API's listener unless it has its own).
    pub fn serve(&self, state: AppState) -> AppState {
        let state = state.with_readiness(self.readiness.clone());
        match &self.metrics {
            Some(metrics) => state.with_telemetry(
                Arc::new(PrometheusTelemetry(metrics.clone())),
                self.listener.is_none(),
            ),
            None => state,
        }
    }

    /// The server's shutdown signal: once `signal` completes, readiness answers 503 for
    /// `delay` while the listener still accepts (load balancers notice and stop sending),
    /// then the returned future completes and the server stops accepting.
    pub fn drain_after(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
        delay: Duration,
    ) -> impl Future<Output = ()> + Send + 'static {
        let readiness = self.readiness.clone();
        let metrics = self.metrics.clone();
        async move {
            signal.await;
            readiness.start_draining();
            if let Some(metrics) = &metrics {
                metrics.set_draining(true);
            }
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                transfers_in_flight = metrics.as_ref().map(Metrics::transfers_in_flight),
                "draining: readiness answers 503; the listener closes after the delay"
            );
            tokio::time::sleep(delay).await;
            tracing::info!(
                transfers_in_flight = metrics.as_ref().map(Metrics::transfers_in_flight),
                "the listener closes; requests in flight finish within the grace period"
            );
        }
    }

    /// Stops the metrics listener and the upkeep.
    pub async fn stop(mut self) {
        if let Some((_, handle)) = self.listener.take() {
            handle.stop(true).await;
        }
    }
}

/// An application that did not start (or stopped) leaves no task behind.
impl Drop for Observability {
    fn drop(&mut self) {
        if let Some((_, handle)) = self.listener.take() {
            // The command is sent at once; its completion is not awaited here.
            drop(handle.stop(false));
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}
