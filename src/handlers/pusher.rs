//! The Pusher-protocol socket of SPEC §9 on `{prefix}/app/{key}`: the upgrade (the key, the
//! `protocol` query, the `pusher-channels-protocol-7` subprotocol, the shared socket cap) and
//! each socket's life — `connection_established`, pings, subscribes checked by the hub
//! (`crate::pushes`), the frames the hub queues for it, and every way it closes: session
//! ended (4009), too slow or over capacity (4100), shutdown (4200), silent for
//! 2 × `push.activity_timeout` (4201), unknown key (4001), unsupported protocol (4007/4008).
//! The handshake check, pacing and close helpers are the DeviceHive socket's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::app::App;
use crate::error::{ApiError, Body};
use crate::handlers::websocket::{
    close, handshake_key, header_has_token, max_sockets, next_message, send, socket_config, Pace,
    Socket,
};
use crate::push_protocol::{
    self as protocol, Inbound, CLOSE_OVER_CAPACITY, CLOSE_PONG_NOT_RECEIVED, CLOSE_RESTART,
    CLOSE_UNKNOWN_APP_KEY, SUBPROTOCOL,
};
use crate::pushes::Outbound;
use crate::shutdown::Shutdown;
use crate::sockets::SocketSlot;

/// tungstenite's read buffer of a Pusher socket (see `websocket::READ_BUFFER_BYTES`): a
/// Pusher client only sends subscribes, unsubscribes and pings of a few hundred bytes, and
/// with a thousand idle sockets the DeviceHive socket's 16 KiB were half of the memory each
/// one held (bench/README.md, "The push scenario").
const READ_BUFFER_BYTES: usize = 1024;

/// What a socket does once the upgrade completes.
enum Opening {
    Serve(SocketSlot),
    /// Say why in a `pusher:error`, then close with the same code (SPEC §9: 4001, 4007, 4008;
    /// 4100 when the socket registry is full).
    Refuse(u16),
}

/// `GET {prefix}/app/{key}`: answers 101 and hands the connection to a socket task, or, for
/// a request that is not a WebSocket handshake, explains why in JSON. A wrong key, protocol
/// or a full registry are told over the socket, as Pusher clients expect them.
pub async fn upgrade(
    app: Arc<App>,
    mut req: hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
    shutdown: Shutdown,
    key: &str,
) -> Result<Response<Body>, ApiError> {
    let ws_key = match handshake_key(req.headers()) {
        Ok(key) => key,
        Err(refusal) => return Ok(refusal.into_response()),
    };
    let accept =
        HeaderValue::from_str(&derive_accept_key(ws_key.as_bytes())).map_err(ApiError::internal)?;
    let offers_subprotocol =
        header_has_token(req.headers(), header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL);
    let opening = if key != app.pushes.app_key() {
        Opening::Refuse(CLOSE_UNKNOWN_APP_KEY)
    } else if let Err(code) = protocol::accepted_protocol(req.uri().query()) {
        Opening::Refuse(code)
    } else {
        match app.sockets.try_open(max_sockets(&app)) {
            Some(slot) => Opening::Serve(slot),
            None => {
                tracing::warn!(%peer, "socket limit reached; closing a Pusher socket with 4100");
                Opening::Refuse(CLOSE_OVER_CAPACITY)
            }
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "Pusher upgrade failed");
                return;
            }
        };
        let mut ws = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(socket_config(READ_BUFFER_BYTES)),
        )
        .await;
        match opening {
            Opening::Refuse(code) => refuse(&mut ws, code).await,
            Opening::Serve(slot) => {
                serve(&app, ws, peer, shutdown).await;
                drop(slot);
            }
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    if offers_subprotocol {
        // The AIPIX iOS SDK offers it and expects it back (RFC 6455: echo one offered).
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    Ok(response)
}

fn close_code(code: u16) -> CloseCode {
    CloseCode::from(code)
}

async fn refuse(ws: &mut Socket, code: u16) {
    let reason = protocol::close_reason(code);
    let frame = protocol::error(reason, Some(code));
    if send(ws, Message::text(frame)).await.is_ok() {
        close(ws, close_code(code), reason).await;
    }
}

async fn close_with(ws: &mut Socket, code: u16) {
    close(ws, close_code(code), protocol::close_reason(code)).await;
}

/// One socket until the client leaves or vmsd closes it.
async fn serve(app: &App, mut ws: Socket, peer: SocketAddr, mut shutdown: Shutdown) {
    let mut registration = match app.pushes.register() {
        Ok(r) => r,
        Err(_) => {
            tracing::error!("no randomness for a socket id; closing a Pusher socket");
            close_with(&mut ws, CLOSE_RESTART).await;
            return;
        }
    };
    let activity = app.config.push.activity_timeout;
    let idle_limit = activity * 2;
    let hello =
        protocol::connection_established(&registration.socket_id, activity.as_secs().max(1));
    if send(&mut ws, Message::text(hello)).await.is_err() {
        return;
    }
    tracing::debug!(%peer, socket_id = %registration.socket_id, "Pusher socket opened");
    let conn = registration.conn;
    let kill = registration.kill.clone();
    let mut tick = tokio::time::interval((idle_limit / 4).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    let mut pace = Pace::new();
    loop {
        tokio::select! {
            frame = next_message(&mut ws, peer) => {
                let Some(message) = frame else { break };
                // Any frame counts as activity: text, ping or pong.
                last_seen = Instant::now();
                let reply = match message {
                    Message::Text(text) => answer(app, conn, text.as_str()),
                    Message::Binary(_) => Some(protocol::error("Binary frames are not supported", None)),
                    // tungstenite answers pings and echoes the close; the stream then ends.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => None,
                };
                if let Some(reply) = reply {
                    if send(&mut ws, Message::text(reply)).await.is_err() {
                        break;
                    }
                }
                pace.take().await;
                tokio::task::yield_now().await;
            }
            out = registration.queue.recv() => match out {
                Some(Outbound::Frame(frame)) => {
                    if send(&mut ws, Message::text(frame.as_ref())).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close(code)) => {
                    close_with(&mut ws, code).await;
                    break;
                }
                None => break,
            },
            code = kill.fired() => {
                close_with(&mut ws, code).await;
                break;
            }
            _ = shutdown.wait() => {
                close_with(&mut ws, CLOSE_RESTART).await;
                break;
            }
            _ = tick.tick() => {
                if last_seen.elapsed() >= idle_limit {
                    tracing::debug!(%peer, "Pusher socket silent; closing (4201)");
                    close_with(&mut ws, CLOSE_PONG_NOT_RECEIVED).await;
                    break;
                }
            }
        }
    }
    tracing::debug!(%peer, socket_id = %registration.socket_id, "Pusher socket closed");
}

/// The answer to one client text frame, if it has one.
fn answer(app: &App, conn: u64, text: &str) -> Option<String> {
    match protocol::parse_inbound(text) {
        Ok(Inbound::Ping) => Some(protocol::pong()),
        Ok(Inbound::Pong) | Ok(Inbound::Unknown { .. }) => None,
        Ok(Inbound::Subscribe { channel, auth, .. }) => {
            match app.pushes.subscribe(conn, &channel, auth.as_deref()) {
                Ok(()) => Some(protocol::subscription_succeeded(&channel)),
                Err(refusal) => Some(protocol::error(&refusal.message, refusal.code)),
            }
        }
        Ok(Inbound::Unsubscribe { channel }) => {
            app.pushes.unsubscribe(conn, &channel);
            None
        }
        Ok(Inbound::ClientEvent { .. }) => Some(protocol::error(
            protocol::MSG_CLIENT_EVENTS_UNSUPPORTED,
            None,
        )),
        Err(e) => Some(protocol::error(&e.to_string(), None)),
    }
}
