//! The REST side of real-time pushes (SPEC §9): `GET /api/v1/wsurl`, where an AIPIX app
//! learns where the push socket is, and `POST /api/v1/broadcasting/auth`, which signs the
//! caller's own two private channels for its socket and remembers which session did so.

use std::time::Duration;

use serde_json::json;

use crate::error::ApiError;
use crate::handlers::{host_and_port, ok, HandlerResult, Request};
use crate::push_protocol::{self as protocol, parse_auth_body, valid_socket_id};
use crate::validate::{self, FieldErrors};
use crate::App;

/// `GET /api/v1/wsurl` requests per IP address in `WSURL_WINDOW` (SPEC §9).
const WSURL_LIMIT: u32 = 20;
const WSURL_WINDOW: Duration = Duration::from_secs(5 * 60);

pub const MSG_SOCKET_ID_INVALID: &str = "The socket id format is invalid.";

/// `GET /api/v1/wsurl` (no auth).
pub fn wsurl(app: &App, req: &Request) -> HandlerResult {
    app.throttle
        .wsurl
        .hit(req.peer.ip(), WSURL_LIMIT, WSURL_WINDOW)
        .map_err(|retry_after| ApiError::TooManyAttempts { retry_after })?;
    let fallback = app
        .config
        .tls
        .hostnames
        .first()
        .map(String::as_str)
        .unwrap_or("vms.local");
    let host_header = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let (host, port) = host_and_port(host_header).unwrap_or((fallback, 443));
    let path = &app.config.push.path;
    let ws_url = if port == 443 {
        format!("wss://{host}{path}")
    } else {
        format!("wss://{host}:{port}{path}")
    };
    ok(&json!({
        "ws_url": ws_url,
        "app_key": app.config.push.app_key,
        "port": port,
        "host": host,
        "path": path,
        "is_encrypted": true,
    }))
}

/// `POST /api/v1/broadcasting/auth`: a client (not admin) token, `socket_id` and
/// `channel_name` as JSON or a form whatever the Content-Type → `{"auth": ...}` for the
/// caller's `private-user.{id}` or `private-token.{access_token_id}`.
pub fn broadcasting_auth(app: &App, req: &Request) -> HandlerResult {
    let caller = req.caller(app)?;
    if caller.is_admin() {
        return Err(ApiError::Forbidden);
    }
    let body = parse_auth_body(&req.body)
        .map_err(|_| ApiError::field("body", validate::MSG_BODY_INVALID_JSON))?;
    let mut errors = FieldErrors::new();
    match &body.socket_id {
        None => errors.add("socket_id", validate::msg_required("socket_id")),
        Some(s) if s.is_empty() => errors.add("socket_id", validate::msg_required("socket_id")),
        Some(s) if !valid_socket_id(s) => errors.add("socket_id", MSG_SOCKET_ID_INVALID),
        Some(_) => {}
    }
    if body.channel_name.as_deref().is_none_or(str::is_empty) {
        errors.add("channel_name", validate::msg_required("channel_name"));
    }
    errors.into_result()?;
    let (Some(socket_id), Some(channel)) = (body.socket_id, body.channel_name) else {
        return Err(ApiError::internal("validated auth fields missing"));
    };
    let own_user = protocol::user_channel(caller.account.id);
    let own_token = protocol::token_channel(&caller.session.access_token_id);
    if channel != own_user && channel != own_token {
        return Err(ApiError::Forbidden);
    }
    app.pushes
        .record_authorization(&socket_id, &caller.session.access_token_id);
    // The session may have ended between the check above and the record: its notice then
    // found no socket to close. Checked again now that the record is in place, the socket is
    // closed here instead.
    if req.caller(app).is_err() {
        app.pushes
            .end_session_silently(caller.account.id, &caller.session.access_token_id);
        return Err(ApiError::Unauthenticated);
    }
    ok(&json!({ "auth": app.pushes.sign(&socket_id, &channel) }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_from_the_host_header() {
        assert_eq!(host_and_port(Some("vms.local")), Some(("vms.local", 443)));
        assert_eq!(
            host_and_port(Some("vms.local:8443")),
            Some(("vms.local", 8443))
        );
        assert_eq!(host_and_port(Some("10.0.0.7:443")), Some(("10.0.0.7", 443)));
        assert_eq!(host_and_port(Some("[::1]:9443")), Some(("[::1]", 9443)));
        assert_eq!(host_and_port(Some("[fe80::1]")), Some(("[fe80::1]", 443)));
        for bad in [
            "",
            "evil/path",
            "a b",
            "host:",
            "host:0",
            "host:99999",
            "host:12a",
            "-x.local",
            "x..local",
            "[nothex]:1",
            "user@host",
        ] {
            assert_eq!(host_and_port(Some(bad)), None, "{bad}");
        }
        assert_eq!(host_and_port(None), None);
    }
}
