//! One accepted TCP connection: HTTP/1.1 or HTTP/2 (with upgrades) over hyper, under
//! the server's read limits. Until its first request's headers are parsed a
//! connection is *pending*: it holds a permit of the pending-connection cap and must
//! finish those headers within `http_server.read_header_timeout` or be dropped.
//! Later requests on a kept-alive HTTP/1 connection get the same header limit from
//! hyper, and every body gets `http_server.read_body_timeout` (see `body.rs`).
//! A first request to a streaming transport is served without hyper (`stream.rs`).

use std::convert::Infallible;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::body::DeadlineBody;
use super::stream;
use super::stream::writer::Writer;

/// The read limits every connection is served under (`http_server.*`); `None` = no limit.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    pub header: Option<Duration>,
    pub body: Option<Duration>,
}

/// What the accept loop hands a connection task.
pub(super) struct Accepted {
    pub stream: TcpStream,
    /// A permit of the pending-connection cap, released when the first request's
    /// headers have been parsed (`None` when the cap is off).
    pub pending: Option<OwnedSemaphorePermit>,
    /// Closed when the server starts shutting down.
    pub shutdown: watch::Receiver<()>,
}

/// Serves one connection to completion (or to its upgrade): a first request to a
/// streaming transport on `stream.rs`'s path, anything else on hyper.
///
/// The task is the connection's for the whole life of a stream, so while streaming it
/// holds the stream's writer and nothing else: the choice of path and the answer are
/// made in boxes of their own, freed before the stream starts (see [`Task`]).
pub(super) fn serve(accepted: Accepted, app: Router, limits: Limits, streams: stream::Routes) -> Task {
    Task::Routing(Box::pin(route(Box::new(Start { accepted, app, limits, streams }))))
}

/// A connection's task, by phase. Written by hand rather than as an `async` block: a
/// block keeps a slot for every value held across an await in any phase, and tokio
/// allocates a task as ~104 B plus its future rounded up to 128 B, so an idle stream's
/// task is 256 B only while this stays under ~152 B.
pub(super) enum Task {
    /// Waiting for the first request's headers, to choose the path.
    Routing(Pin<Box<dyn Future<Output = Route> + Send>>),
    /// Ours: reading the request and running the router. The shutdown signal is held
    /// from here to the stream's end, so a shutting-down server waits for its last push.
    Answering(Pin<Box<dyn Future<Output = Option<Writer>> + Send>>, watch::Receiver<()>),
    /// Writing the answer (for a stream, for as long as it lasts).
    Streaming(Writer),
    Hyper(Pin<Box<dyn Future<Output = ()> + Send>>),
    Done,
}

impl Future for Task {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match this {
                Task::Routing(route) => match ready!(route.as_mut().poll(cx)) {
                    Route::Closed => *this = Task::Done,
                    Route::Stream(taken, draining) => {
                        *this = Task::Answering(Box::pin(stream::answer(taken)), draining)
                    }
                    Route::Hyper(hyper) => *this = Task::Hyper(hyper),
                },
                Task::Answering(answer, _) => {
                    let writer = ready!(answer.as_mut().poll(cx));
                    *this = match (std::mem::replace(this, Task::Done), writer) {
                        (Task::Answering(_, draining), Some(writer)) => Task::Streaming(writer.holding(draining)),
                        _ => Task::Done,
                    };
                }
                Task::Streaming(writer) => {
                    if let Err(e) = ready!(Pin::new(writer).poll(cx)) {
                        tracing::trace!(error = %e, "stream ended with an error");
                    }
                    *this = Task::Done;
                }
                Task::Hyper(hyper) => {
                    ready!(hyper.as_mut().poll(cx));
                    *this = Task::Done;
                }
                Task::Done => return Poll::Ready(()),
            }
        }
    }
}

struct Start {
    accepted: Accepted,
    app: Router,
    limits: Limits,
    streams: stream::Routes,
}

/// Where a connection goes once its first request has been looked at.
pub(super) enum Route {
    /// The client left, or sent no complete headers in time.
    Closed,
    /// Ours (`stream.rs`), with the shutdown signal to hold while the stream lasts.
    Stream(Box<stream::Taken>, watch::Receiver<()>),
    Hyper(Pin<Box<dyn Future<Output = ()> + Send>>),
}

async fn route(start: Box<Start>) -> Route {
    let Start { accepted, app, limits, streams } = *start;
    let Accepted { stream, pending, mut shutdown } = accepted;
    let peer = stream.peer_addr().ok();
    // One deadline for the first request's headers, however they are read.
    let deadline = limits.header.map(|limit| Instant::now() + limit);
    if !streams.is_empty() {
        let peeked = tokio::select! {
            peeked = stream::peek(&stream, &streams, deadline) => peeked,
            // A server shutting down closes connections that have not sent a request.
            _ = shutdown.changed() => stream::Peeked::Gone,
        };
        match peeked {
            stream::Peeked::Gone => {
                tracing::trace!("no complete request headers in time, or the client left; closing");
                return Route::Closed;
            }
            stream::Peeked::Take { len } => {
                drop(pending);
                let write_timeout = streams.write_timeout();
                return Route::Stream(Box::new(stream::Taken { stream, len, app, write_timeout, peer }), shutdown);
            }
            stream::Peeked::Hyper => {}
        }
    }
    Route::Hyper(Box::pin(serve_hyper(Accepted { stream, pending, shutdown }, peer, app, limits, deadline)))
}

async fn serve_hyper(
    accepted: Accepted,
    peer: Option<std::net::SocketAddr>,
    app: Router,
    limits: Limits,
    deadline: Option<Instant>,
) {
    let Accepted { stream, mut pending, mut shutdown } = accepted;
    let first_headers = Arc::new(Notify::new());
    let service = {
        let first_headers = first_headers.clone();
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            first_headers.notify_one();
            if let Some(peer) = peer {
                // The client's address, for per-address limits (admin login throttle).
                req.extensions_mut().insert(ConnectInfo(peer));
            }
            let app = app.clone();
            async move { Ok::<_, Infallible>(call(app, req, limits.body).await) }
        })
    };
    let builder = builder(limits);
    let mut conn = pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
    let mut header_deadline = pin!(async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    });
    let mut awaiting_first = true;
    let mut draining = false;
    loop {
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = first_headers.notified(), if awaiting_first => {
                awaiting_first = false;
                drop(pending.take());
            }
            _ = &mut header_deadline, if awaiting_first => {
                tracing::debug!("no request headers within http_server.read_header_timeout; closing");
                return;
            }
            _ = shutdown.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

fn builder(limits: Limits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header);
    // Extended CONNECT: WebSocket over HTTP/2.
    builder.http2().enable_connect_protocol();
    builder
}

/// Runs one request through the router with its body under the body deadline. A
/// request whose body missed the deadline is answered 408 and the connection closed,
/// whatever the handler made of the truncated read.
async fn call(app: Router, req: Request<Incoming>, body_limit: Option<Duration>) -> Response {
    let Some(limit) = body_limit else {
        return app.oneshot(req.map(Body::new)).await.unwrap_or_else(|e| match e {});
    };
    let (parts, incoming) = req.into_parts();
    let (body, expired) = DeadlineBody::new(incoming, Instant::now() + limit);
    let response = app.oneshot(Request::from_parts(parts, Body::new(body))).await.unwrap_or_else(|e| match e {});
    if !expired.get() {
        return response;
    }
    let mut timeout = (StatusCode::REQUEST_TIMEOUT, "Request Timeout").into_response();
    timeout.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every idle stream on Rotor's own writer keeps in its task: this future,
    /// whose streaming state is the writer. A regression (a value held across the
    /// stream's await, a buffer in the writer) costs bytes per connection; the bounds
    /// have a little headroom over today's sizes.
    #[test]
    fn the_streaming_task_stays_small() {
        let task = std::mem::size_of::<Task>();
        let writer = std::mem::size_of::<Writer>();
        // 200 and 120 bytes when this was written (an `async` block: a 384-byte task);
        // 144 and 136 as a hand-written task holding the writer, which holds the
        // shutdown signal (a 256-byte task up to 152).
        assert!(task <= 152, "the connection task's future grew to {task} bytes");
        assert!(writer <= 144, "the stream writer grew to {writer} bytes");
    }
}
