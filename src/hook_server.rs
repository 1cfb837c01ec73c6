//! The media hook's listener (SPEC §8): plain HTTP/1.1 on `media.hook_listen` (loopback only),
//! `POST /media/auth` (MediaMTX) and `GET /media/auth` (nginx `auth_request`, Flussonic,
//! Bearer). Bounded like the main listener: `limits.max_connections` connections, the header
//! read timeout (with the timer hyper needs for it to work at all), `limits.request_timeout`
//! and `media_hook::MAX_HOOK_BODY_BYTES`; drained on shutdown within `limits.shutdown_grace`.
//!
//! Answers from memory and the store's reads only (`media_access::decide`): the request path
//! never writes to disk. Every answer carries `Cache-Control: no-store`, so that no proxy in
//! front of vmsd keeps a decision beyond the request it was made for.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::server::Connections;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::app::App;
use crate::error::{ApiError, Body};
use crate::media_access::{self, MediaDecision};
use crate::media_hook::{self, HookCheck, HookDecodeError, MAX_HOOK_BODY_BYTES};
use crate::shutdown::Shutdown;

/// The hook's one path.
pub const HOOK_PATH: &str = "/media/auth";

/// hyper's read buffer, which bounds the request line plus headers (nginx forwards the
/// player's headers, cookies included).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The part of a stream path a debug line shows.
const LOGGED_PATH_CHARS: usize = 128;

/// Serves the hook on `listener` until `shutdown`, then drains like `server::run`.
pub async fn run(listener: TcpListener, app: Arc<App>, mut shutdown: Shutdown) {
    let connections = Connections::new(app.config.limits.max_connections, "media hook");
    let cut = connections.cut();
    while let Some((tcp, peer, permit)) = connections.accept(&listener, &mut shutdown).await {
        tokio::spawn(serve_connection(
            tcp,
            peer,
            app.clone(),
            permit,
            shutdown.clone(),
            cut.clone(),
        ));
    }
    drop(listener);
    connections.drain(app.config.limits.shutdown_grace).await;
    let (unauthenticated, forbidden) = app.media_refusals.snapshot();
    tracing::info!(
        refused_401 = unauthenticated,
        refused_403 = forbidden,
        "media hook stopped ({unauthenticated} answered 401, {forbidden} answered 403 since start)"
    );
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    _permit: tokio::sync::OwnedSemaphorePermit,
    mut shutdown: Shutdown,
    mut cut: Shutdown,
) {
    let service_app = app.clone();
    let service = service_fn(move |req| {
        let app = service_app.clone();
        async move { Ok::<_, Infallible>(handle(&app, req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Without the timer, header_read_timeout silently does nothing.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.limits.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.wait() => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection.as_mut() => result,
                _ = cut.wait() => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "media hook: connection ended with an error");
    }
}

/// One request under `limits.request_timeout`; never fails.
async fn handle(app: &App, req: hyper::Request<Incoming>) -> Response<Body> {
    match tokio::time::timeout(app.config.limits.request_timeout, answer(app, req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable { retry_after: 1 }.into_response(),
    }
}

async fn answer(app: &App, req: hyper::Request<Incoming>) -> Response<Body> {
    if req.uri().path() != HOOK_PATH {
        return ApiError::NotFound.into_response();
    }
    let check = match *req.method() {
        Method::POST => read_mediamtx(req).await,
        Method::GET | Method::HEAD => media_hook::from_get(
            req.headers(),
            req.uri().query(),
            &app.config.media.uri_prefix,
        ),
        _ => {
            let allowed = vec![Method::GET, Method::POST];
            return ApiError::MethodNotAllowed(allowed).into_response();
        }
    };
    // Formatted only when someone reads it: this runs on every play request.
    let described = tracing::enabled!(tracing::Level::DEBUG).then(|| describe(&check));
    match media_access::decide(app, check) {
        Ok(decision) => {
            if let Some(request) = described {
                tracing::debug!(%request, ?decision, "media hook decision");
            }
            render(decision)
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// MediaMTX's JSON body, at most `MAX_HOOK_BODY_BYTES`.
async fn read_mediamtx(req: hyper::Request<Incoming>) -> Result<HookCheck, HookDecodeError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_HOOK_BODY_BYTES as u64) {
        return Err(HookDecodeError::BodyTooLarge);
    }
    match Limited::new(req.into_body(), MAX_HOOK_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => media_hook::from_mediamtx(&body.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(HookDecodeError::BodyTooLarge)
        }
        Err(_) => Err(HookDecodeError::BadJson(
            "the body could not be read".into(),
        )),
    }
}

/// The request for the debug log: path and action, never the token.
fn describe(check: &Result<HookCheck, HookDecodeError>) -> String {
    match check {
        Ok(c) => format!(
            "path={:?} action={:?} token={}",
            // A body may carry a path of up to 64 KiB; the log gets its start.
            c.path.chars().take(LOGGED_PATH_CHARS).collect::<String>(),
            c.action,
            if c.token.is_some() {
                "present"
            } else {
                "absent"
            }
        ),
        Err(e) => e.to_string(),
    }
}

/// SPEC §8's answers: 200 `{"status":"ok"}`, 401 and 403 with the REST API's bodies.
pub fn render(decision: MediaDecision) -> Response<Body> {
    match decision {
        MediaDecision::Allow => allow(),
        MediaDecision::Unauthenticated(_) => ApiError::Unauthenticated.into_response(),
        MediaDecision::Forbidden(_) => ApiError::Forbidden.into_response(),
    }
}

/// 200 `{"status":"ok"}` from static bytes: the answer to nearly every check.
/// Like every JSON answer (`error::json_response`), not to be kept by any cache.
fn allow() -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from_static(b"{\"status\":\"ok\"}")));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::media_access::{Forbidden, Unauthenticated};
    use crate::stream_token::StreamTokenError;
    use serde_json::json;

    #[tokio::test]
    async fn decisions_render_as_spec_8_says() {
        let cases = [
            (MediaDecision::Allow, 200, json!({"status": "ok"})),
            (
                MediaDecision::Unauthenticated(Unauthenticated::Token(StreamTokenError::Expired)),
                401,
                json!({"message": "Unauthenticated."}),
            ),
            (
                MediaDecision::Forbidden(Forbidden::OtherCamera),
                403,
                json!({"message": "This action is unauthorized."}),
            ),
        ];
        for (decision, status, body) in cases {
            let response = render(decision);
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let got: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(got, body);
        }
    }
}
