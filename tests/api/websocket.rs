//! The DeviceHive-compatible WebSocket API (SPEC §6, seed 003), rule by rule, with a real
//! WebSocket client over the server's TLS listener: the handshake, the envelopes and their
//! error texts, authentication (`authenticate`, `token`, the lockout) and losing it when the
//! token stops working. The helpers here are shared with `websocket_users` and
//! `websocket_limits`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use vmsd::model::UserType;

use crate::common::{TestServer, ADMIN_PASSWORD};

pub(crate) type Ws = WebSocketStream<TlsStream<TcpStream>>;

pub(crate) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

pub(crate) async fn connect(s: &TestServer) -> Ws {
    let (ws, response) =
        tokio_tungstenite::client_async("wss://localhost/websocket", s.tls().await)
            .await
            .unwrap();
    assert_eq!(response.status(), 101);
    ws
}

/// The next data frame as JSON (pings and pongs skipped); panics on close or after 10 s.
pub(crate) async fn recv(ws: &mut Ws) -> Value {
    let deadline = Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout(deadline, ws.next())
            .await
            .expect("no reply within 10 s")
            .expect("socket ended")
            .expect("socket error");
        match frame {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

pub(crate) async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

pub(crate) async fn call(ws: &mut Ws, frame: Value) -> Value {
    send_text(ws, &frame.to_string()).await;
    recv(ws).await
}

/// A socket authenticated with `token`.
pub(crate) async fn socket_with(s: &TestServer, token: &str) -> Ws {
    let mut ws = connect(s).await;
    let r = call(
        &mut ws,
        json!({"action": "authenticate", "requestId": "auth", "token": token}),
    )
    .await;
    assert_eq!(
        r,
        json!({"action": "authenticate", "requestId": "auth", "status": "success"})
    );
    ws
}

pub(crate) async fn admin_socket(s: &TestServer) -> Ws {
    let token = s.admin_token().await;
    socket_with(s, &token).await
}

pub(crate) fn error(action: &str, request_id: Value, code: u16, text: &str) -> Value {
    json!({"action": action, "requestId": request_id, "status": "error", "code": code, "error": text})
}

pub(crate) fn success(action: &str, request_id: Value) -> Value {
    json!({"action": action, "requestId": request_id, "status": "success"})
}

pub(crate) async fn get_current(ws: &mut Ws) -> Value {
    call(ws, json!({"action": "user/getCurrent", "requestId": 1})).await
}

/// The audit entries about `id`, newest first.
pub(crate) fn events(s: &TestServer, id: u64) -> Vec<vmsd::model::AuditEntry> {
    s.app.store.account_events(id, 50).unwrap()
}

pub(crate) async fn upgrade_headers(
    s: &TestServer,
    extra: &[(&str, &str)],
) -> crate::common::Reply {
    s.raw("GET", "/websocket", extra, Vec::new()).await
}
#[tokio::test]
async fn handshake_answers_101_with_the_rfc_accept_key() {
    let s = TestServer::start().await;
    let r = upgrade_headers(
        &s,
        &[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", KEY),
        ],
    )
    .await;
    assert_eq!(r.status, 101);
    // RFC 6455 §1.3's worked example.
    assert_eq!(
        r.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(r.header("upgrade"), Some("websocket"));
    // And a real client completes it (tungstenite checks the accept key itself).
    let mut ws = connect(&s).await;
    let r = call(&mut ws, json!({"action": "server/info"})).await;
    assert_eq!(r["status"], "success");
    s.stop().await;
}

#[tokio::test]
async fn non_upgrade_requests_get_a_clear_json_refusal() {
    let s = TestServer::start().await;
    let plain = s.raw("GET", "/websocket", &[], Vec::new()).await;
    assert_eq!(plain.status, 426);
    assert_eq!(
        plain.body,
        json!({"message": "Upgrade Required. This endpoint only speaks WebSocket."})
    );
    assert_eq!(plain.header("content-type"), Some("application/json"));
    assert_eq!(plain.header("upgrade"), Some("websocket"));

    let old = upgrade_headers(
        &s,
        &[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "8"),
            ("sec-websocket-key", KEY),
        ],
    )
    .await;
    assert_eq!(old.status, 426);
    assert_eq!(old.header("sec-websocket-version"), Some("13"));
    assert_eq!(
        old.body,
        json!({"message": "Unsupported WebSocket version. Use version 13."})
    );

    let keyless = upgrade_headers(
        &s,
        &[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "13"),
        ],
    )
    .await;
    assert_eq!(keyless.status, 400);
    assert_eq!(
        keyless.body,
        json!({"message": "Bad Request. Sec-WebSocket-Key is missing or malformed."})
    );

    let post = s.call("POST", "/websocket", None, None).await;
    assert_eq!(post.status, 405);
    s.stop().await;
}

#[tokio::test]
async fn server_info_needs_no_auth_and_echoes_any_request_id() {
    let s = TestServer::start().await;
    let mut ws = connect(&s).await;
    for request_id in [
        json!(1),
        json!("r-1"),
        json!({"nested": [1, null]}),
        json!(null),
    ] {
        let mut r = call(
            &mut ws,
            json!({"action": "server/info", "requestId": request_id}),
        )
        .await;
        let timestamp = r["info"]["serverTimestamp"].take();
        let ts = timestamp.as_str().unwrap();
        // DeviceHive's `yyyy-MM-dd'T'HH:mm:ss.SSS`, UTC, no zone.
        assert_eq!(ts.len(), 23, "{ts}");
        assert_eq!((&ts[4..5], &ts[10..11], &ts[19..20]), ("-", "T", "."));
        assert_eq!(
            r,
            json!({"action": "server/info", "requestId": request_id, "status": "success",
                   "info": {"apiVersion": "3.5.0", "serverTimestamp": null,
                            "restServerUrl": "https://localhost/api/v1",
                            "serverVersion": env!("CARGO_PKG_VERSION")}})
        );
    }
    // A missing requestId is echoed as null.
    let r = call(&mut ws, json!({"action": "server/info"})).await;
    assert_eq!(r["requestId"], Value::Null);
    assert!(r.as_object().unwrap().contains_key("requestId"));
    s.stop().await;
}

#[tokio::test]
async fn malformed_frames_get_400_without_action_or_request_id() {
    let s = TestServer::start().await;
    let mut ws = connect(&s).await;
    let malformed = json!({"code": 400, "status": "error", "error": "Malformed Json received."});
    for frame in [
        "not a Json",
        "1",
        "{\n\"text\": \n}",
        "[]",
        "null",
        "\"x\"",
        "",
    ] {
        send_text(&mut ws, frame).await;
        assert_eq!(recv(&mut ws).await, malformed, "frame {frame:?}");
    }
    // The socket keeps working after them.
    let r = call(&mut ws, json!({"action": "server/info", "requestId": 3})).await;
    assert_eq!(r["status"], "success");
    s.stop().await;
}

#[tokio::test]
async fn unknown_or_missing_actions_are_illegal_arguments() {
    let s = TestServer::start().await;
    let mut ws = connect(&s).await;
    let r = call(&mut ws, json!({"action": "foo/bar", "requestId": 1})).await;
    assert_eq!(
        r,
        error("foo/bar", json!(1), 400, "Illegal argument: foo/bar")
    );
    let r = call(&mut ws, json!({"requestId": 2})).await;
    assert_eq!(
        r,
        json!({"action": null, "requestId": 2, "status": "error", "code": 400,
               "error": "Illegal argument: null"})
    );
    let r = call(&mut ws, json!({"action": 5, "requestId": 3})).await;
    assert_eq!(
        r,
        json!({"action": 5, "requestId": 3, "status": "error", "code": 400,
               "error": "Illegal argument: 5"})
    );
    let r = call(&mut ws, json!({"action": "", "requestId": 4})).await;
    assert_eq!(r, error("", json!(4), 400, "Illegal argument: "));
    s.stop().await;
}

#[tokio::test]
async fn binary_frames_get_an_error_reply() {
    let s = TestServer::start().await;
    let mut ws = connect(&s).await;
    ws.send(Message::binary(br#"{"action":"server/info"}"#.to_vec()))
        .await
        .unwrap();
    assert_eq!(
        recv(&mut ws).await,
        json!({"code": 400, "status": "error",
               "error": "Binary frames are not supported. Send each action as JSON in a text frame."})
    );
    let r = call(&mut ws, json!({"action": "server/info"})).await;
    assert_eq!(r["status"], "success");
    s.stop().await;
}

#[tokio::test]
async fn protected_actions_need_authentication() {
    let s = TestServer::start().await;
    let mut ws = connect(&s).await;
    for action in [
        "user/getCurrent",
        "user/get",
        "user/update",
        "user/updateCurrent",
        "user/list",
        "user/insert",
        "user/delete",
    ] {
        let r = call(
            &mut ws,
            json!({"action": action, "requestId": action, "userId": 1,
                   "user": {"data": {"userdata": 123}}}),
        )
        .await;
        assert_eq!(r, error(action, json!(action), 401, "Unauthorized"));
    }
    assert_eq!(s.app.store.account(1).unwrap().unwrap().data, None);
    // Nothing was created or deleted either.
    assert_eq!(s.app.store.accounts().count(), 1);
    s.stop().await;
}

#[tokio::test]
async fn authenticate_rules() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let mut ws = connect(&s).await;
    for frame in [
        json!({"action": "authenticate", "requestId": 1}),
        json!({"action": "authenticate", "requestId": 1, "token": null}),
        json!({"action": "authenticate", "requestId": 1, "token": ""}),
    ] {
        assert_eq!(
            call(&mut ws, frame).await,
            error("authenticate", json!(1), 401, "Unauthorized")
        );
    }
    for bad in [json!("not-a-token"), json!(12345), json!("x".repeat(300))] {
        let r = call(
            &mut ws,
            json!({"action": "authenticate", "requestId": 2, "token": bad}),
        )
        .await;
        assert_eq!(
            r,
            error("authenticate", json!(2), 401, "Invalid credentials")
        );
    }
    // Still unauthenticated after the failures.
    assert_eq!(
        get_current(&mut ws).await,
        error("user/getCurrent", json!(1), 401, "Unauthorized")
    );
    let r = call(
        &mut ws,
        json!({"action": "authenticate", "requestId": 3, "token": token}),
    )
    .await;
    assert_eq!(r, success("authenticate", json!(3)));
    assert_eq!(s.app.sockets.account_count(alice.id), 1);
    let r = get_current(&mut ws).await;
    assert_eq!(r["current"]["login"], "alice");
    s.stop().await;
}

#[tokio::test]
async fn token_action_logs_in_any_account_type_with_the_rest_rules() {
    let s = TestServer::start().await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    let mut ws = connect(&s).await;

    // An administrator may log in over the socket too.
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 1, "login": "admin", "password": ADMIN_PASSWORD}),
    )
    .await;
    let admin_token = r["accessToken"].as_str().unwrap().to_owned();
    let refresh_token = r["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(
        r,
        json!({"action": "token", "requestId": 1, "status": "success", "accessToken": admin_token,
               "refreshToken": refresh_token})
    );
    assert_eq!(admin_token.len(), 64);
    assert_eq!(refresh_token.len(), 64);
    assert_ne!(refresh_token, admin_token);
    // `token` issues; it does not authenticate the socket (DeviceHive's behaviour).
    assert_eq!(get_current(&mut ws).await["code"], 401);
    let r = call(
        &mut ws,
        json!({"action": "authenticate", "requestId": 2, "token": admin_token}),
    )
    .await;
    assert_eq!(r["status"], "success");
    assert_eq!(get_current(&mut ws).await["current"]["role"], 0);

    // A socket-issued token is a vmsd token: REST accepts it.
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 3, "login": "BOB", "password": "bob-password"}),
    )
    .await;
    let bob_token = r["accessToken"].as_str().unwrap();
    assert_eq!(s.self_status(bob_token).await, 200);

    let wrong = call(
        &mut ws,
        json!({"action": "token", "requestId": 4, "login": "bob", "password": "wrong-password"}),
    )
    .await;
    assert_eq!(wrong, error("token", json!(4), 401, "Invalid credentials"));
    let unknown = call(
        &mut ws,
        json!({"action": "token", "requestId": 5, "login": "nobody", "password": "whatever-1"}),
    )
    .await;
    assert_eq!(
        unknown,
        error("token", json!(5), 401, "Invalid credentials")
    );
    let empty = call(
        &mut ws,
        json!({"action": "token", "requestId": 6, "login": "bob"}),
    )
    .await;
    assert_eq!(
        empty,
        error(
            "token",
            json!(6),
            400,
            "Invalid or empty authorization request parameters"
        )
    );
    s.edit_account(bob.id, |a| a.status = 2);
    let disabled = call(
        &mut ws,
        json!({"action": "token", "requestId": 7, "login": "bob", "password": "bob-password"}),
    )
    .await;
    assert_eq!(
        disabled,
        error("token", json!(7), 401, "User is locked or disabled")
    );
    s.stop().await;
}

#[tokio::test]
async fn token_action_counts_towards_the_lockout() {
    let s = TestServer::start().await;
    let carol = s.create_account("carol", "carol-password", UserType::User);
    let mut ws = connect(&s).await;
    for i in 0..5 {
        let r = call(
            &mut ws,
            json!({"action": "token", "requestId": i, "login": "carol", "password": "nope-nope"}),
        )
        .await;
        assert_eq!(r["code"], 401, "{r}");
    }
    // Locked: even the right password answers 429 now, over the socket and over REST.
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 9, "login": "carol", "password": "carol-password"}),
    )
    .await;
    assert_eq!(r["code"], 429, "{r}");
    assert_eq!(r["error"], "Too Many Attempts.");
    assert!(r["retryAfter"].as_u64().unwrap() > 0);
    assert_eq!(
        s.try_login("carol", "carol-password", &[]).await.status,
        429
    );
    let audit: Vec<String> = events(&s, carol.id).into_iter().map(|e| e.action).collect();
    assert!(audit.contains(&"lockout".to_owned()), "{audit:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_socket_loses_its_authentication_when_its_token_stops_working() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let temp = s.create_account("temp", "temp-password", UserType::Special);
    let gone = s.create_account("gone", "gone-password", UserType::User);
    let unauthorized = error("user/getCurrent", json!(1), 401, "Unauthorized");

    // Revoked: logout at REST.
    let token = s.login("alice", "alice-password").await;
    let mut ws = socket_with(&s, &token).await;
    assert_eq!(get_current(&mut ws).await["status"], "success");
    let r = s.call("POST", "/api/v1/logout", Some(&token), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(get_current(&mut ws).await, unauthorized);
    assert_eq!(s.app.sockets.account_count(alice.id), 0);
    // And it stays unauthenticated: the same token cannot come back.
    let r = call(
        &mut ws,
        json!({"action": "authenticate", "requestId": 1, "token": token}),
    )
    .await;
    assert_eq!(
        r,
        error("authenticate", json!(1), 401, "Invalid credentials")
    );

    // Expired: a temporary user past its expiry.
    let token = s.login("temp", "temp-password").await;
    let mut ws = socket_with(&s, &token).await;
    s.edit_account(temp.id, |a| a.expired_at = Some(vmsd::model::now() - 1));
    assert_eq!(get_current(&mut ws).await, unauthorized);

    // Deleted.
    let token = s.login("gone", "gone-password").await;
    let mut ws = socket_with(&s, &token).await;
    s.app
        .store
        .write_blocking(|tx| tx.delete_account(&gone))
        .unwrap();
    assert_eq!(get_current(&mut ws).await, unauthorized);
    s.stop().await;
}
