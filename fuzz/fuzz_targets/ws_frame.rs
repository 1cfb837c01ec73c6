//! The WebSocket action decoder (SPEC §6): one text frame through a socket's
//! `Session::handle`, as the server does for every frame of an unauthenticated socket, and
//! the `user/update` decoding (`decode_user_update`) on its own. Beyond "never panics": every
//! reply is an envelope with the frame's `action` and `requestId` echoed (or the malformed
//! reply for a frame that is not an object), errors carry an HTTP-like code and a text, and
//! nothing but `server/info` succeeds without authentication.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vmsd::auth::ClientMeta;
use vmsd::handlers::websocket::{decode_user_update, malformed, SocketSession};

fuzz_target!(|data: &[u8]| {
    // Text frames reach `handle` as UTF-8 (tungstenite refuses anything else); lossy
    // conversion keeps every input useful.
    let text = String::from_utf8_lossy(data);
    let frame = serde_json::from_str::<Value>(&text).ok();
    let object = frame.as_ref().and_then(Value::as_object);

    if let Some(request) = object {
        match decode_user_update(request, 8) {
            Ok(()) => {
                if let Some(Value::String(p)) = request.get("user").and_then(|u| u.get("password"))
                {
                    let n = p.chars().count();
                    assert!(
                        n == 0 || (8..=128).contains(&n),
                        "password of {n} chars passed"
                    );
                }
            }
            Err((code, error)) => assert!(code == 400 && !error.is_empty(), "{code} {error}"),
        }
        // A `token` frame with a login and a password runs a real login: a password hash and
        // an audit write per input. The REST tests and `request_json` cover that path.
        let is_login = request.get("action").and_then(Value::as_str) == Some("token")
            && request.get("login").is_some_and(Value::is_string)
            && request.get("password").is_some_and(Value::is_string);
        if is_login {
            return;
        }
    }

    let app = vmsd_fuzz::app().clone();
    let mut session =
        SocketSession::new(app, ClientMeta::default(), "https://vms.local/api".into());
    let reply = vmsd_fuzz::block_on(session.handle(&text));
    let Some(request) = object else {
        assert_eq!(reply, malformed());
        return;
    };
    assert_eq!(
        reply["action"],
        request.get("action").cloned().unwrap_or(Value::Null)
    );
    assert_eq!(
        reply["requestId"],
        request.get("requestId").cloned().unwrap_or(Value::Null)
    );
    match reply["status"].as_str() {
        Some("success") => {
            let action = request.get("action").and_then(Value::as_str);
            assert!(
                matches!(action, Some("server/info" | "token")),
                "{action:?} succeeded without authentication: {reply}"
            );
        }
        Some("error") => {
            let code = reply["code"].as_u64().unwrap_or(0);
            assert!((400..600).contains(&code), "code {code}");
            assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()));
            assert_ne!(code, 500, "a server error: {reply}");
        }
        other => panic!("status {other:?} in {reply}"),
    }
});
