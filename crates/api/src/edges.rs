//! The HTTP edge: the connection loop (header and body read timeouts, graceful shutdown), and
//! the layers every route shares: problem+json for answers the framework writes (404, 405,
//! 413, query rejections) and fail-fast 503 for commands while NATS is known to be down.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::FutureExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

/// How long a client may take to send its request head and its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// From the first byte of a request to the end of its headers (`MC_HTTP_HEADER_TIMEOUT_MS`).
    pub header_timeout: Duration,
    /// From the end of the headers to the end of the body (`MC_HTTP_BODY_TIMEOUT_MS`).
    pub body_timeout: Duration,
    /// Connections open at once (`MC_HTTP_MAX_CONNECTIONS`); past it a new connection waits in
    /// the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// Serve HTTP/1.1 on `listener` until `shutdown`: then stop accepting, let in-flight requests
/// finish (idle keep-alive connections close at once) and return. Connections may be upgraded
/// (WebSocket); an upgraded connection leaves this loop's accounting once handed over.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        limits.body_timeout,
        body_deadline,
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut full_since: Option<Instant> = None;
    loop {
        // At the cap, stop accepting: new connections wait in the kernel's backlog.
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        if let Some(since) = full_since.take() {
            tracing::warn!(waited = ?since.elapsed(), max = limits.max_connections,
                "http connection cap was reached; accepting again");
        }
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            // On shutdown: finish the request in flight, then close (idle ones close at once).
            let ended = tokio::select! {
                r = connection.as_mut() => r,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
            drop(slot);
        });
        if slots.available_permits() == 0 {
            full_since = Some(Instant::now());
        }
    }
    drop(listener);
    // Every connection holds a slot until it ends: having them all back means all are done.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// The error a request body yields once its deadline has passed.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body timed out")
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether reading a body failed because its deadline passed.
pub fn is_body_timeout(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<BodyTimedOut>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A body that fails with [`BodyTimedOut`] when it has not ended by `deadline`.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Give the request body a deadline `timeout` from now (the headers have just arrived).
async fn body_deadline(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    let deadline = Box::pin(tokio::time::sleep_until(Instant::now() + timeout));
    let req = req.map(|inner| {
        if inner.is_end_stream() {
            inner
        } else {
            Body::new(DeadlineBody { inner, deadline })
        }
    });
    next.run(req).await
}

/// Commands need NATS, queries need Postgres: while the one they need is known to be down
/// (NATS client not connected; the Postgres probe failed), answer 503 at once instead of
/// letting the request wait for a publish or pool timeout.
pub async fn fail_fast(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !reads && state.nats.connection_state() != async_nats::connection::State::Connected {
        return ApiError::Unavailable("nats: not connected".into()).into_response();
    }
    if reads && !state.is_postgres_up() {
        return ApiError::Unavailable("postgres: not reachable".into()).into_response();
    }
    next.run(req).await
}

const PANICS: &str = "mc_panics_total";
const PANICS_HELP: &str =
    "Requests and commands whose handling panicked (answered 500, process kept).";

/// A panic in a handler answers 500 problem+json, is logged and counted; the process and the
/// connection go on (without this, hyper would drop the connection with no answer).
pub async fn catch_panic(req: Request, next: Next) -> Response {
    let route = format!("{} {}", req.method(), req.uri().path());
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic_message(panic.as_ref());
            tracing::error!(%route, panic = %what, "request handler panicked");
            mc_metrics::count(PANICS, PANICS_HELP, &[("where", "http")], 1);
            ApiError::Internal(format!("the request could not be handled: {what}")).into_response()
        }
    }
}

/// The text a panic carried, when it carried text.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Count a panic caught elsewhere (the NATS command service).
pub fn count_panic(place: &'static str) {
    mc_metrics::count(PANICS, PANICS_HELP, &[("where", place)], 1);
}

/// Error answers the framework writes itself (no route, wrong method, a query string or path
/// that does not parse) become problem documents like every other error.
pub async fn problems(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| {
            // A handler's own JSON answer (readiness' 503 with its checks) is left as it is.
            ct.as_bytes().starts_with(b"application/problem+json")
                || ct.as_bytes().starts_with(b"application/json")
        });
    if is_problem || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty());
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound { what: "route" },
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: None },
        StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::BadHeader {
            header: "Content-Type",
            message: text.unwrap_or_else(|| "unsupported media type".into()),
        },
        s if s.is_server_error() => ApiError::Internal(text.unwrap_or_else(|| s.to_string())),
        s => ApiError::BadRequest(text.unwrap_or_else(|| s.to_string())),
    };
    let mut answer = error.into_response();
    // Keep what the original answer said about the connection and the methods it allows.
    for name in [header::CONNECTION, header::ALLOW] {
        if let Some(v) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, v.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_server_goes_on() {
        async fn boom() -> &'static str {
            panic!("boom at the edge")
        }
        let router = Router::new()
            .route("/boom", axum::routing::get(boom))
            .route("/fine", axum::routing::get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(catch_panic));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, router, HttpLimits::default(), stop.clone()));
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let answer = get("/boom").await;
        assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(answer.contains("boom at the edge"), "{answer}");
        let answer = get("/fine").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        stop.cancel();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn a_body_deadline_error_is_recognised_through_axum() {
        let e = axum::Error::new(Box::new(BodyTimedOut) as axum::BoxError);
        assert!(is_body_timeout(&e));
        assert!(!is_body_timeout(&axum::Error::new(std::io::Error::other(
            "x"
        ))));
    }
}
