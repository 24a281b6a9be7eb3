//! What the HTTP adapter tells the operator's metrics, through a [`Telemetry`] the server
//! gives it (this crate depends on no metrics library): every answered request by method,
//! route template and status (the [`Observe`] middleware), the bytes of proxied and
//! signed-URL transfers, and the exposition served at `GET /metrics`.

use std::{
    future::{Ready, ready},
    pin::Pin,
    rc::Rc,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use actix_web::{
    Error,
    dev::{Service, ServiceRequest, ServiceResponse, Transform},
};
use storage_domain::{ErrorCode, model::BucketKind, ports::ByteStream};

/// The route label of a request that no route matched (the raw path is never a label).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `Content-Type` of the exposition (Prometheus text format 0.0.4).
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One answered request, as the metrics see it.
#[derive(Debug, Clone, Copy)]
pub struct ServedRequest<'a> {
    /// The request's method as sent.
    pub method: &'a str,
    /// The template of the route that matched (`/versions/{version_id}/approve`), or
    /// [`UNMATCHED_ROUTE`].
    pub route: &'a str,
    pub status: u16,
    /// The contract's code of an error answer.
    pub error: Option<ErrorCode>,
    /// From the request's arrival to its answer's head.
    pub elapsed: Duration,
}

/// The direction of a transfer through the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferDirection {
    /// A client's bytes going into the store.
    Upload,
    /// A stored object's bytes going to a client.
    Download,
}

/// The operator's metrics, as the HTTP adapter reports to them. Implementations must be cheap:
/// [`request_served`](Self::request_served) runs once per request.
pub trait Telemetry: Send + Sync {
    /// Records an answered request.
    fn request_served(&self, request: &ServedRequest<'_>);

    /// Wraps the body of a transfer (a proxy or signed-URL upload before the store reads it, a
    /// download before the client does), to count its bytes and keep it counted in flight
    /// until the stream is dropped.
    fn transfer(
        &self,
        direction: TransferDirection,
        bucket: BucketKind,
        body: ByteStream,
    ) -> ByteStream;

    /// The exposition in the Prometheus text format.
    fn render(&self) -> String;
}

/// The middleware reporting each answered request of the scope it wraps to a [`Telemetry`]
/// (a no-op without one).
#[derive(Clone)]
pub(crate) struct Observe(pub(crate) Option<Arc<dyn Telemetry>>);

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = ObserveService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveService {
            service: Rc::new(service),
            telemetry: self.0.clone(),
        }))
    }
}

pub(crate) struct ObserveService<S> {
    service: Rc<S>,
    telemetry: Option<Arc<dyn Telemetry>>,
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let Some(telemetry) = self.telemetry.clone() else {
            return Box::pin(async move { service.call(req).await });
        };
        let started = Instant::now();
        let method = req.method().clone();
        let route = req.match_pattern();
        Box::pin(async move {
            let answered = service.call(req).await;
            let (status, error) = match &answered {
                Ok(res) => (
                    res.response().status(),
                    res.response().extensions().get::<ErrorCode>().copied(),
                ),
                // Not for this scope's handlers (their errors are answers already); an error
                // of a middleware inside becomes its status here.
                Err(e) => (e.as_response_error().status_code(), None),
            };
            telemetry.request_served(&ServedRequest {
                method: method.as_str(),
                route: route.as_deref().unwrap_or(UNMATCHED_ROUTE),
                status: status.as_u16(),
                error,
                elapsed: started.elapsed(),
            });
            answered
        })
    }
}
