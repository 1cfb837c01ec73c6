//! DeviceHive-compatible WebSocket API (SPEC §6, seed 003) on `GET /websocket`: the upgrade
//! handshake and each socket's life — its own task reading one frame at a time, paced so a
//! flood from one socket cannot starve the others, pings every 30 s, closes after 2 min without
//! traffic, a message size limit, and caps on sockets per account and in total. What the
//! actions do is in `actions`, what a frame's envelope and errors look like in `protocol`, how
//! a `user/update` or `user/insert` is decoded in `patch`, a `user/list` query in `list`; the
//! counts and timing in `crate::sockets`. The
//! handshake check, pacing, sending and closing helpers are shared with the Pusher socket
//! (`handlers::pusher`).

mod actions;
mod list;
mod patch;
mod protocol;

/// The frame decoder and one socket's action state, for the fuzz target `ws_frame`.
pub use actions::SocketSession;
pub use patch::decode_user_update;
pub use protocol::malformed;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::app::App;
use crate::auth::ClientMeta;
use crate::error::{json_response, ApiError, Body};
use crate::handlers::sane_host;
use crate::shutdown::Shutdown;

/// Largest message (and frame) a client may send: `data` may be 64 KiB serialized, and the
/// rest of a `user/update` (and a client's pretty-printing) needs room around it.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// Frames a socket may have handled per second on average, and in a burst. Beyond that the
/// socket's reading pauses (TCP pushes back on the client); nothing is refused.
const FRAMES_PER_SECOND: f64 = 200.0;
const FRAME_BURST: f64 = 400.0;

/// A reply that cannot be written for this long means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closing socket waits for the client's side of the close handshake.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// After an oversized frame, how much of the rest of it is read and dropped so that the close
/// frame reaches the client instead of being lost to a TCP reset.
const DRAIN_LIMIT_BYTES: usize = 4 * 1024 * 1024;

pub(crate) type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// tungstenite's read buffer of a DeviceHive socket. tungstenite zero-fills the buffer's free
/// capacity, up to this size, before every read attempt (`FrameCodec::read_in`), so it is
/// resident for as long as the socket lives and written on every wake-up of its task; a frame
/// longer than it still arrives whole (tungstenite reserves the frame's length).
pub(crate) const READ_BUFFER_BYTES: usize = 16 * 1024;

pub(crate) fn socket_config(read_buffer_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer_bytes)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * MAX_MESSAGE_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// How many sockets may be open at once: half the connection limit, so sockets alone cannot
/// take every place a REST client needs.
pub(crate) fn max_sockets(app: &App) -> usize {
    (app.config.limits.max_connections / 2).max(1)
}

/// `GET /websocket`: answers 101 and hands the connection to a socket task, or explains in
/// JSON why it will not (a plain GET, a wrong version, no key, too many sockets).
pub async fn upgrade(
    app: Arc<App>,
    mut req: hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
    shutdown: Shutdown,
) -> Result<Response<Body>, ApiError> {
    let key = match handshake_key(req.headers()) {
        Ok(key) => key,
        Err(refusal) => return Ok(refusal.into_response()),
    };
    let Some(slot) = app.sockets.try_open(max_sockets(&app)) else {
        tracing::warn!(%peer, "WebSocket limit reached; refusing an upgrade");
        return Err(ApiError::Unavailable { retry_after: 5 });
    };
    let accept =
        HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(ApiError::internal)?;
    let meta = ClientMeta::from_headers(req.headers(), Some(peer.ip()));
    let rest_url = rest_server_url(req.headers());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(socket_config(READ_BUFFER_BYTES)),
                )
                .await;
                let session = SocketSession::new(app.clone(), meta, rest_url);
                tracing::debug!(%peer, "WebSocket opened");
                serve_socket(&app, ws, session, peer, shutdown).await;
                tracing::debug!(%peer, "WebSocket closed");
            }
            Err(e) => tracing::debug!(%peer, error = %e, "WebSocket upgrade failed"),
        }
        drop(slot);
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Ok(response)
}

pub(crate) fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// Why a request to `/websocket` is not a handshake this server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    status: StatusCode,
    message: &'static str,
}

impl Refusal {
    pub(crate) fn into_response(self) -> Response<Body> {
        let mut r = json_response(self.status, &json!({ "message": self.message }));
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        r
    }
}

/// The client's `Sec-WebSocket-Key` when the request is a WebSocket handshake RFC 6455 accepts.
pub(crate) fn handshake_key(headers: &HeaderMap) -> Result<String, Refusal> {
    if !header_has_token(headers, header::UPGRADE, "websocket")
        || !header_has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err(Refusal {
            status: StatusCode::UPGRADE_REQUIRED,
            message: "Upgrade Required. This endpoint only speaks WebSocket.",
        });
    }
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if version != Some("13") {
        return Err(Refusal {
            status: StatusCode::UPGRADE_REQUIRED,
            message: "Unsupported WebSocket version. Use version 13.",
        });
    }
    // RFC 6455: the key is 16 random bytes in base64, always 24 characters.
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| {
            k.len() == 24
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        });
    key.map(str::to_owned).ok_or(Refusal {
        status: StatusCode::BAD_REQUEST,
        message: "Bad Request. Sec-WebSocket-Key is missing or malformed.",
    })
}

/// `restServerUrl` of `server/info`: this box's REST API, as the client reached it.
fn rest_server_url(headers: &HeaderMap) -> String {
    let host = sane_host(headers).unwrap_or("vms.local");
    format!("https://{host}/api/v1")
}

/// A token bucket that delays the reading of the next frame instead of refusing it.
pub(crate) struct Pace {
    tokens: f64,
    last: Instant,
}

impl Pace {
    pub(crate) fn new() -> Self {
        Pace {
            tokens: FRAME_BURST,
            last: Instant::now(),
        }
    }

    pub(crate) async fn take(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * FRAMES_PER_SECOND).min(FRAME_BURST);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return;
        }
        let wait = (1.0 - self.tokens) / FRAMES_PER_SECOND;
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        self.tokens = 0.0;
        self.last = Instant::now();
    }
}

pub(crate) async fn send(ws: &mut Socket, message: Message) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, ws.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "WebSocket write failed");
            Err(())
        }
        Err(_) => {
            tracing::debug!("WebSocket client stopped reading; closing");
            Err(())
        }
    }
}

/// Sends a close frame and waits a little for the client's, so the close is clean.
pub(crate) async fn close(ws: &mut Socket, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if send(ws, Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// After an oversized frame the stream is mid-frame and cannot be parsed any more: say why
/// (1009), then read and drop what the client is still sending, within bounds.
async fn close_oversized(ws: &mut Socket) {
    let frame = CloseFrame {
        code: CloseCode::Size,
        reason: "message too big".into(),
    };
    if send(ws, Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let io = ws.get_mut();
    let mut buf = vec![0u8; 16 * 1024];
    let mut drained = 0;
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while drained < DRAIN_LIMIT_BYTES {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// The next message a socket sent, or `None` when it ended or broke (logged at debug); a
/// message over the size limit is answered with 1009 (`close_oversized`) and ends it too.
/// Both socket protocols (DeviceHive here, Pusher in `handlers::pusher`) read through it.
pub(crate) async fn next_message(ws: &mut Socket, peer: SocketAddr) -> Option<Message> {
    match ws.next().await? {
        Ok(message) => Some(message),
        Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size })) => {
            tracing::info!(%peer, size, max_size, "WebSocket message over the size limit; closing");
            close_oversized(ws).await;
            None
        }
        Err(e) => {
            tracing::debug!(%peer, error = %e, "WebSocket read failed");
            None
        }
    }
}

fn binary_refusal() -> Message {
    let reply = json!({
        "code": 400,
        "status": "error",
        "error": "Binary frames are not supported. Send each action as JSON in a text frame.",
    });
    Message::text(reply.to_string())
}

/// One socket, until the client leaves, it idles out, the server shuts down, or it breaks the
/// protocol. Frames are handled strictly one after another.
async fn serve_socket(
    app: &App,
    mut ws: Socket,
    mut session: SocketSession,
    peer: SocketAddr,
    mut shutdown: Shutdown,
) {
    let timing = app.sockets.timing();
    let period = timing
        .ping_every
        .min(timing.idle_timeout / 4)
        .max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    let mut last_ping = Instant::now();
    let mut pace = Pace::new();
    loop {
        tokio::select! {
            frame = next_message(&mut ws, peer) => {
                let Some(message) = frame else { break };
                last_seen = Instant::now();
                let reply = match message {
                    Message::Text(text) => Some(Message::text(session.handle(text.as_str()).await.to_string())),
                    Message::Binary(_) => Some(binary_refusal()),
                    // Pings are answered by tungstenite itself; pongs only prove liveness.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
                    // tungstenite echoes the close; the stream then ends.
                    Message::Close(_) => None,
                };
                if let Some(reply) = reply {
                    if send(&mut ws, reply).await.is_err() {
                        break;
                    }
                }
                pace.take().await;
                // Let every other socket's task run before this one takes its next frame.
                tokio::task::yield_now().await;
            }
            _ = shutdown.wait() => {
                close(&mut ws, CloseCode::Away, "server shutting down").await;
                break;
            }
            _ = tick.tick() => {
                if last_seen.elapsed() >= timing.idle_timeout {
                    tracing::debug!(%peer, "WebSocket idle; closing");
                    close(&mut ws, CloseCode::Normal, "idle timeout").await;
                    break;
                }
                if last_ping.elapsed() >= timing.ping_every {
                    last_ping = Instant::now();
                    if send(&mut ws, Message::Ping(Bytes::new())).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn a_proper_handshake_yields_its_key() {
        let h = headers(&[
            ("upgrade", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", KEY),
        ]);
        assert_eq!(handshake_key(&h).ok().as_deref(), Some(KEY));
        // RFC 6455's own example of the accept value.
        assert_eq!(
            derive_accept_key(KEY.as_bytes()),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn non_handshakes_are_refused_with_reasons() {
        let plain = headers(&[]);
        let r = handshake_key(&plain).err().map(|r| r.status);
        assert_eq!(r, Some(StatusCode::UPGRADE_REQUIRED));
        let old = headers(&[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "8"),
            ("sec-websocket-key", KEY),
        ]);
        let r = handshake_key(&old).err().map(|r| r.status);
        assert_eq!(r, Some(StatusCode::UPGRADE_REQUIRED));
        let keyless = headers(&[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "short"),
        ]);
        let r = handshake_key(&keyless).err().map(|r| r.status);
        assert_eq!(r, Some(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn rest_url_comes_from_a_sane_host() {
        assert_eq!(
            rest_server_url(&headers(&[("host", "vms.local:8443")])),
            "https://vms.local:8443/api/v1"
        );
        assert_eq!(
            rest_server_url(&headers(&[("host", "evil/path")])),
            "https://vms.local/api/v1"
        );
        assert_eq!(rest_server_url(&headers(&[])), "https://vms.local/api/v1");
    }

    #[tokio::test]
    async fn pace_lets_a_burst_through_then_slows_down() {
        let mut pace = Pace::new();
        let started = Instant::now();
        for _ in 0..FRAME_BURST as usize {
            pace.take().await;
        }
        assert!(started.elapsed() < Duration::from_millis(200));
        let started = Instant::now();
        for _ in 0..20 {
            pace.take().await;
        }
        // 20 frames at 200 per second: about 100 ms.
        assert!(started.elapsed() >= Duration::from_millis(80));
    }
}
