//! The accept loop and each connection's life: connection limit, TLS handshake under its own
//! timeout inside the connection's task, hyper HTTP/1.1 with a header-read timeout (which needs
//! a timer to work at all) and upgrades, the body size and request time limits, and a graceful
//! drain bounded by `limits.shutdown_grace`. Shaped like mini-redis: `run(listeners, ...)`
//! serves until the shutdown signal, so tests run the real server in-process.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, Method};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::console;
use crate::error::{ApiError, Body};
use crate::handlers::{self, Request};
use crate::router::Endpoint;
use crate::shutdown::{self, Shutdown, ShutdownTrigger};

/// hyper's read buffer, which bounds the request line plus headers.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// After the grace period, how long cut connections get to let go of their slots.
const CUT_WAIT: Duration = Duration::from_secs(1);

/// The connections of one listener (or group of listeners): at most `limit` at once, each
/// connection's task holding a slot until its socket is closed (so getting every slot back
/// means every connection is gone), and the signal that cuts those still open when the drain
/// runs out of time. The TLS server and the media hook share it.
pub(crate) struct Connections {
    slots: Arc<Semaphore>,
    limit: usize,
    cut_trigger: ShutdownTrigger,
    cut: Shutdown,
    listener: &'static str,
}

impl Connections {
    pub(crate) fn new(limit: usize, listener: &'static str) -> Connections {
        let (cut_trigger, cut) = shutdown::channel();
        Connections {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            cut_trigger,
            cut,
            listener,
        }
    }

    /// Fires when the drain gives up on the connections still open.
    pub(crate) fn cut(&self) -> Shutdown {
        self.cut.clone()
    }

    /// The next connection on `listener` with its slot, or `None` once `shutdown` fires. A
    /// failed accept (EMFILE and friends) backs off instead of spinning; a connection beyond
    /// the limit is dropped at once.
    pub(crate) async fn accept(
        &self,
        listener: &TcpListener,
        shutdown: &mut Shutdown,
    ) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.wait() => return None,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(listener = self.listener, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                tracing::warn!(
                    listener = self.listener,
                    %peer,
                    "connection limit reached; dropping a new connection"
                );
                continue;
            };
            let _ = tcp.set_nodelay(true);
            return Some((tcp, peer, slot));
        }
    }

    /// Waits up to `grace` for every connection to close, then cuts the rest and gives them
    /// `CUT_WAIT` to let go of their slots.
    pub(crate) async fn drain(&self, grace: Duration) {
        let all = u32::try_from(self.limit).unwrap_or(u32::MAX);
        match tokio::time::timeout(grace, self.slots.acquire_many(all)).await {
            Ok(_) => tracing::info!(listener = self.listener, "all connections closed"),
            Err(_) => {
                tracing::warn!(
                    listener = self.listener,
                    grace_ms = grace.as_millis() as u64,
                    "connections still open after the shutdown grace period; closing them"
                );
                self.cut_trigger.trigger();
                if tokio::time::timeout(CUT_WAIT, self.slots.acquire_many(all))
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        listener = self.listener,
                        "some connections did not close when cut"
                    );
                }
            }
        }
    }
}

/// Serves HTTPS on every listener until `shutdown`, then drains in-flight requests for at
/// most `limits.shutdown_grace`, cuts the connections still open, and returns.
pub async fn run(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    tls: Arc<rustls::ServerConfig>,
    shutdown: Shutdown,
) {
    let acceptor = TlsAcceptor::from(tls);
    let connections = Arc::new(Connections::new(app.config.limits.max_connections, "https"));
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        accept_tasks.push(tokio::spawn(accept_loop(
            listener,
            app.clone(),
            acceptor.clone(),
            connections.clone(),
            shutdown.clone(),
        )));
    }
    for task in accept_tasks {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "an accept loop ended abnormally");
        }
    }
    app.begin_shutdown();
    connections.drain(app.config.limits.shutdown_grace).await;
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    acceptor: TlsAcceptor,
    connections: Arc<Connections>,
    mut shutdown: Shutdown,
) {
    let cut = connections.cut();
    while let Some((tcp, peer, permit)) = connections.accept(&listener, &mut shutdown).await {
        let app = app.clone();
        let acceptor = acceptor.clone();
        let mut shutdown = shutdown.clone();
        let mut cut = cut.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let limits = &app.config.limits;
            let handshake =
                tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp));
            let tls = tokio::select! {
                // A connection still shaking hands when shutdown starts has no request to finish.
                _ = shutdown.wait() => return,
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            let service_app = app.clone();
            let service_shutdown = shutdown.clone();
            let service = service_fn(move |req| {
                let app = service_app.clone();
                let shutdown = service_shutdown.clone();
                async move { Ok::<_, Infallible>(handle(app, peer, req, shutdown).await) }
            });
            // hyper's own HTTP/1.1 connection, not hyper-util's `auto` one: `auto` first reads
            // the bytes that tell HTTP/2 from HTTP/1 without any timeout, so a client that
            // completes the handshake and then sends nothing would hold its slot forever.
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(MAX_HEADER_BYTES)
                .keep_alive(true);
            let connection = builder
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = shutdown.wait() => {
                    // Finish the request in flight (if any), then close; idle ones close now.
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        result = connection.as_mut() => result,
                        _ = cut.wait() => {
                            tracing::debug!(%peer, "connection cut at the end of the shutdown grace period");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// One request, under `limits.request_timeout`. Never fails: errors become responses.
async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
    shutdown: Shutdown,
) -> http::Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    // For the log lines below; a parsed URI shares its bytes, so this does not copy the path.
    let uri = req.uri().clone();
    let response = match tokio::time::timeout(
        app.config.limits.request_timeout,
        serve(&app, peer, req, shutdown),
    )
    .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => e.into_response(),
        Err(_) => {
            tracing::warn!(%method, path = uri.path(), "request timed out");
            ApiError::Unavailable { retry_after: 1 }.into_response()
        }
    };
    tracing::debug!(
        %method,
        path = uri.path(),
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request served"
    );
    response
}

fn is_json_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn serve(
    app: &Arc<App>,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
    shutdown: Shutdown,
) -> Result<http::Response<Body>, ApiError> {
    if app.is_shutting_down() {
        return Err(ApiError::Unavailable { retry_after: 5 });
    }
    // The admin console's pages never overlap an API route (`console::is_console_path`).
    if console::is_console_path(req.uri().path()) {
        return console::respond(req.method(), req.uri().path(), req.headers());
    }
    let (endpoint, params) = app.router.route(req.method(), req.uri().path())?;
    if endpoint == Endpoint::WebSocket {
        // The socket outlives this request: it closes on the server's own shutdown signal.
        return handlers::websocket::upgrade(app.clone(), req, peer, shutdown).await;
    }
    if endpoint == Endpoint::PusherSocket {
        let key = params.get("key").unwrap_or_default().to_owned();
        return handlers::pusher::upgrade(app.clone(), req, peer, shutdown, &key).await;
    }
    let (parts, body) = req.into_parts();
    let max = app.config.limits.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    // Most requests (every GET) have no body: skip the collecting machinery for them.
    let bytes = if hyper::body::Body::is_end_stream(&body) {
        bytes::Bytes::new()
    } else {
        collect_body(body, max).await?
    };
    // SPEC §9: the channel auth route reads its body as JSON or a form whatever the
    // Content-Type says (the AIPIX iOS SDK sends none, the others a form type).
    if !bytes.is_empty() && parts.method != Method::GET && endpoint != Endpoint::BroadcastingAuth {
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
            if !ct.to_str().is_ok_and(is_json_content_type) {
                return Err(ApiError::UnsupportedMediaType);
            }
        }
    }
    let query = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let request = Request {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query,
        headers: parts.headers,
        body: bytes,
        peer,
        params,
    };
    handlers::dispatch(app, endpoint, request).await
}

/// The request body, at most `max` bytes.
async fn collect_body(body: Incoming, max: usize) -> Result<bytes::Bytes, ApiError> {
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::PayloadTooLarge)
        }
        Err(_) => Err(ApiError::field(
            "body",
            crate::validate::MSG_BODY_INVALID_JSON,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/vnd.api+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/x-www-form-urlencoded"));
        assert!(!is_json_content_type("multipart/form-data; boundary=x"));
    }
}
