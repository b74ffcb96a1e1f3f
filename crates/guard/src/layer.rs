//! The tower layer and per-route requirements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::Request;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::bearer::presented_token;
use crate::claims::Claims;
use crate::error::GuardError;
use crate::guard::Guard;

/// Which claim a [`Requirement`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Granted {
    Scope,
    Permissions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    All,
    Any,
}

/// What a route needs beyond a valid token: scopes (the `scope` claim) or RBAC permissions
/// (the `permissions` claim), all or any of a list. Unmet → 403 `insufficient_scope` with
/// the listed values in the challenge's `scope` parameter.
///
/// `all` of an empty list is always met; `any` of an empty list never is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    granted: Granted,
    mode: Match,
    values: Vec<String>,
}

impl Requirement {
    /// The token's `scope` must contain `scope`.
    pub fn scope(scope: impl Into<String>) -> Self {
        Self::new(Granted::Scope, Match::All, [scope])
    }

    /// The token's `scope` must contain every one of `scopes`.
    pub fn all_scopes<I: IntoIterator<Item: Into<String>>>(scopes: I) -> Self {
        Self::new(Granted::Scope, Match::All, scopes)
    }

    /// The token's `scope` must contain at least one of `scopes`.
    pub fn any_scope<I: IntoIterator<Item: Into<String>>>(scopes: I) -> Self {
        Self::new(Granted::Scope, Match::Any, scopes)
    }

    /// The token's `permissions` must contain `permission`.
    pub fn permission(permission: impl Into<String>) -> Self {
        Self::new(Granted::Permissions, Match::All, [permission])
    }

    /// The token's `permissions` must contain every one of `permissions`.
    pub fn all_permissions<I: IntoIterator<Item: Into<String>>>(permissions: I) -> Self {
        Self::new(Granted::Permissions, Match::All, permissions)
    }

    /// The token's `permissions` must contain at least one of `permissions`.
    pub fn any_permission<I: IntoIterator<Item: Into<String>>>(permissions: I) -> Self {
        Self::new(Granted::Permissions, Match::Any, permissions)
    }

    fn new<I: IntoIterator<Item: Into<String>>>(granted: Granted, mode: Match, values: I) -> Self {
        Requirement {
            granted,
            mode,
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `claims` meet this requirement.
    pub fn is_met_by(&self, claims: &Claims) -> bool {
        let held = |value: &String| match self.granted {
            Granted::Scope => claims.has_scope(value),
            Granted::Permissions => claims.has_permission(value),
        };
        match self.mode {
            Match::All => self.values.iter().all(held),
            Match::Any => self.values.iter().any(held),
        }
    }

    /// `Ok` if met, otherwise the 403 error naming what is needed.
    pub fn check(&self, claims: &Claims) -> Result<(), GuardError> {
        if self.is_met_by(claims) {
            Ok(())
        } else {
            Err(GuardError::InsufficientScope {
                required: self.values.clone(),
            })
        }
    }
}

/// A tower layer that admits only requests with a valid access token (and, if built with
/// [`Guard::require`], one that meets a [`Requirement`]). The verified [`Claims`] are put
/// into the request extensions for the handler. Failures are answered here, per RFC 6750;
/// the inner service is never called for them.
///
/// Nested guard layers of the same [`Guard`] verify the token once: an inner
/// `require_scope` layer reuses the claims an outer `layer()` inserted.
#[derive(Debug, Clone)]
pub struct GuardLayer {
    guard: Guard,
    requirement: Option<Arc<Requirement>>,
}

impl GuardLayer {
    pub(crate) fn new(guard: Guard, requirement: Option<Requirement>) -> Self {
        GuardLayer {
            guard,
            requirement: requirement.map(Arc::new),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> GuardService<S> {
        GuardService {
            inner,
            guard: self.guard.clone(),
            requirement: self.requirement.clone(),
        }
    }
}

/// The service made by [`GuardLayer`].
#[derive(Debug, Clone)]
pub struct GuardService<S> {
    inner: S,
    guard: Guard,
    requirement: Option<Arc<Requirement>>,
}

impl<S, B> Service<Request<B>> for GuardService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = GuardFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // Usually the verdict is known at once (keys at hand, or a token verified by an
        // outer layer of this guard), and the inner service is called right here.
        let already = request
            .extensions()
            .get::<Claims>()
            .filter(|claims| claims.verified_by() == self.guard.id())
            .cloned();
        let verdict = match already {
            Some(claims) => Some(Ok(claims)),
            None => match presented_token(request.headers()) {
                Err(error) => Some(Err(error)),
                Ok(presented) => self.guard.verify_now(presented.token()).map(|result| {
                    result.map_err(GuardError::InvalidToken).and_then(|claims| {
                        self.guard.bind(
                            claims,
                            presented,
                            request.method(),
                            original_uri(&request),
                            request.headers(),
                        )
                    })
                }),
            },
        };
        match verdict {
            Some(Ok(claims)) => {
                if let Some(requirement) = &self.requirement
                    && let Err(error) = requirement.check(&claims)
                {
                    return GuardFuture::answered(self.guard.error_response(&error));
                }
                request.extensions_mut().insert(claims);
                GuardFuture::Admitted {
                    inner: self.inner.call(request),
                }
            }
            Some(Err(error)) => GuardFuture::answered(self.guard.error_response(&error)),
            None => self.call_after_refetch(request),
        }
    }
}

impl<S> GuardService<S> {
    /// The token names a key not yet fetched: wait for the refetch, then decide.
    fn call_after_refetch<B>(&mut self, mut request: Request<B>) -> GuardFuture<S::Future, S::Error>
    where
        S: Service<Request<B>> + Clone + Send + 'static,
        S::Response: IntoResponse,
        S::Future: Send + 'static,
        B: Send + 'static,
    {
        // The clone is not necessarily ready; keep the one poll_ready was called on.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        let requirement = self.requirement.clone();
        GuardFuture::Refetching {
            future: Box::pin(async move {
                let verdict = guard.authenticate_request(
                    request.method(),
                    original_uri(&request),
                    request.headers(),
                );
                let claims = match verdict.await {
                    Ok(claims) => claims,
                    Err(error) => return Ok(guard.error_response(&error)),
                };
                if let Some(requirement) = &requirement
                    && let Err(error) = requirement.check(&claims)
                {
                    return Ok(guard.error_response(&error));
                }
                request.extensions_mut().insert(claims);
                inner.call(request).await.map(IntoResponse::into_response)
            }),
        }
    }
}

/// The request's URI before axum's `nest` stripped a prefix: what the client addressed.
fn original_uri<B>(request: &Request<B>) -> &axum::http::Uri {
    request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or(request.uri(), |original| &original.0)
}

pin_project! {
    /// The future of [`GuardService`]: an answer given by the guard (401/400/403), the
    /// inner service's response, or — rarely — a wait for a JWKS refetch first.
    #[project = GuardFutureProjection]
    pub enum GuardFuture<F, E> {
        Answered { response: Option<Response> },
        Admitted { #[pin] inner: F },
        Refetching { future: Pin<Box<dyn Future<Output = Result<Response, E>> + Send>> },
    }
}

impl<F, E> GuardFuture<F, E> {
    fn answered(response: Response) -> Self {
        GuardFuture::Answered {
            response: Some(response),
        }
    }
}

impl<F, R, E> Future for GuardFuture<F, E>
where
    F: Future<Output = Result<R, E>>,
    R: IntoResponse,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardFutureProjection::Answered { response } => Poll::Ready(Ok(response
                .take()
                .expect("GuardFuture polled after completion"))),
            GuardFutureProjection::Admitted { inner } => inner
                .poll(cx)
                .map(|result| result.map(IntoResponse::into_response)),
            GuardFutureProjection::Refetching { future } => future.as_mut().poll(cx),
        }
    }
}
