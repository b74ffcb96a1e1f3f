//! The tower layer that records every request of the main router, and the metrics
//! listener's own router (`GET /metrics`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::process::Process;
use super::{CONTENT_TYPE, StoreUnavailable, method_slot};
use crate::AppState;

/// The request layer of the main router: counts every response by route template, method
/// and status, and times it. A hand-written tower layer rather than `middleware::from_fn`,
/// which boxes the inner service and the future on every request.
#[derive(Clone)]
pub(crate) struct RecordLayer(pub(crate) AppState);

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            state: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Record<S> {
    inner: S,
    state: AppState,
}

impl<S> Service<Request> for Record<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RecordFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // `Router::layer` wraps each route, where `MatchedPath` is already set.
        let route = self.state.metrics().route_slot(
            request
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str),
        );
        let method = method_slot(request.method());
        RecordFuture {
            started: Instant::now(),
            inner: self.inner.call(request),
            state: self.state.clone(),
            route,
            method,
        }
    }
}

pub(crate) struct RecordFuture<F> {
    inner: F,
    state: AppState,
    route: usize,
    method: usize,
    started: Instant,
}

impl<F, E> Future for RecordFuture<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let result = std::task::ready!(Pin::new(&mut this.inner).poll(cx));
        if let Ok(response) = &result {
            let metrics = this.state.metrics();
            let status = response.status().as_u16();
            metrics.record_request(this.route, this.method, status, this.started.elapsed());
            if response.extensions().get::<StoreUnavailable>().is_some() {
                metrics.count_store_unavailable();
            }
        }
        Poll::Ready(result)
    }
}

/// `GET /metrics` on the metrics listener.
async fn scrape(State(state): State<AppState>) -> Response {
    let keys = state.keys();
    let body = state.metrics().render(
        keys.state_counts(),
        &state.store().pool_stats(),
        &Process::read(),
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The metrics listener's routes: `/metrics` and nothing else.
pub(crate) fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(state)
}
