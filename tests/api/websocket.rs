//! The DeviceHive-compatible WebSocket API (SPEC §6, seed 003), rule by rule, with a real
//! WebSocket client over the server's TLS listener: the handshake, the envelopes, every action
//! and error text, the side effects shared with REST (one end-to-end test mixes both APIs),
//! and the socket limits (pings, idle close, frame size, caps, fairness under a flood).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use vmsd::handlers::websocket::{SocketTiming, MAX_SOCKETS_PER_ACCOUNT};
use vmsd::model::{fmt_resource, UserType};

use crate::common::{wait_for, TestServer, ADMIN_PASSWORD};

type Ws = WebSocketStream<TlsStream<TcpStream>>;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

async fn connect(s: &TestServer) -> Ws {
    let (ws, response) =
        tokio_tungstenite::client_async("wss://localhost/websocket", s.tls().await)
            .await
            .unwrap();
    assert_eq!(response.status(), 101);
    ws
}

/// The next data frame as JSON (pings and pongs skipped); panics on close or after 10 s.
async fn recv(ws: &mut Ws) -> Value {
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

async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

async fn call(ws: &mut Ws, frame: Value) -> Value {
    send_text(ws, &frame.to_string()).await;
    recv(ws).await
}

/// A socket authenticated with `token`.
async fn socket_with(s: &TestServer, token: &str) -> Ws {
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

async fn admin_socket(s: &TestServer) -> Ws {
    let token = s.admin_token().await;
    socket_with(s, &token).await
}

fn error(action: &str, request_id: Value, code: u16, text: &str) -> Value {
    json!({"action": action, "requestId": request_id, "status": "error", "code": code, "error": text})
}

fn success(action: &str, request_id: Value) -> Value {
    json!({"action": action, "requestId": request_id, "status": "success"})
}

async fn update(ws: &mut Ws, user_id: Value, user: Value) -> Value {
    call(
        ws,
        json!({"action": "user/update", "requestId": 7, "userId": user_id, "user": user}),
    )
    .await
}

async fn update_current(ws: &mut Ws, user: Value) -> Value {
    call(
        ws,
        json!({"action": "user/updateCurrent", "requestId": 9, "user": user}),
    )
    .await
}

async fn get_current(ws: &mut Ws) -> Value {
    call(ws, json!({"action": "user/getCurrent", "requestId": 1})).await
}

async fn get_user(ws: &mut Ws, id: Value) -> Value {
    call(
        ws,
        json!({"action": "user/get", "requestId": 2, "userId": id}),
    )
    .await
}

/// `<DhUser>` of a stored account, as the socket must render it.
fn dh_user(s: &TestServer, id: u64, status: u8) -> Value {
    let a = s.app.store.account(id).unwrap().unwrap();
    json!({
        "id": a.id,
        "login": a.login,
        "role": if a.user_type == UserType::Admin { 0 } else { 1 },
        "status": status,
        "lastLogin": a.last_login.map(fmt_resource),
        "data": a.data,
        "introReviewed": a.intro_reviewed,
    })
}

/// The audit entries about `id`, newest first.
fn events(s: &TestServer, id: u64) -> Vec<vmsd::model::AuditEntry> {
    s.app.store.account_events(id, 50).unwrap()
}

async fn upgrade_headers(s: &TestServer, extra: &[(&str, &str)]) -> crate::common::Reply {
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
    assert_eq!(
        r,
        json!({"action": "token", "requestId": 1, "status": "success", "accessToken": admin_token})
    );
    assert_eq!(admin_token.len(), 64);
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
async fn get_current_renders_the_devicehive_user() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let mut ws = socket_with(&s, &token).await;
    let r = get_current(&mut ws).await;
    let a = s.app.store.account(alice.id).unwrap().unwrap();
    assert!(a.last_login.is_some());
    assert_eq!(
        r,
        json!({"action": "user/getCurrent", "requestId": 1, "status": "success",
               "current": {"id": alice.id, "login": "alice", "role": 1, "status": 0,
                           "lastLogin": fmt_resource(a.last_login.unwrap()),
                           "data": null, "introReviewed": false}})
    );
    s.stop().await;
}

#[tokio::test]
async fn user_get_is_for_administrators() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let alice_token = s.login("alice", "alice-password").await;
    let mut user_ws = socket_with(&s, &alice_token).await;
    assert_eq!(
        get_user(&mut user_ws, json!(alice.id)).await,
        error("user/get", json!(2), 403, "Access is denied")
    );

    let mut ws = admin_socket(&s).await;
    let expected = json!({"action": "user/get", "requestId": 2, "status": "success",
                          "user": dh_user(&s, alice.id, 0)});
    assert_eq!(get_user(&mut ws, json!(alice.id)).await, expected);
    assert_eq!(
        get_user(&mut ws, json!(alice.id.to_string())).await,
        expected
    );
    let me = get_user(&mut ws, json!("current")).await;
    assert_eq!(me["user"]["login"], "admin");
    assert_eq!(me["user"]["role"], 0);
    assert_eq!(
        get_user(&mut ws, json!(999999)).await,
        error("user/get", json!(2), 404, "User with id = 999999 not found")
    );
    assert_eq!(
        get_user(&mut ws, Value::Null).await,
        error("user/get", json!(2), 400, "User id is wrong or empty")
    );
    s.stop().await;
}

#[tokio::test]
async fn an_admin_updates_every_field_and_it_is_audited_by_name_only() {
    let s = TestServer::start().await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    let bob_token = s.login("bob", "bob-password").await;
    let mut ws = admin_socket(&s).await;
    let r = update(
        &mut ws,
        json!(bob.id),
        json!({"login": "  robert ", "password": "new-bob-password", "status": 0,
               "role": 1, "data": {"secret-value": "s3cr3t"}, "introReviewed": true}),
    )
    .await;
    assert_eq!(r, success("user/update", json!(7)));

    let r = get_user(&mut ws, json!(bob.id)).await;
    assert_eq!(
        r["user"],
        json!({"id": bob.id, "login": "robert", "role": 1, "status": 0,
               "lastLogin": r["user"]["lastLogin"], "data": {"secret-value": "s3cr3t"},
               "introReviewed": true})
    );
    // New login and password at REST; the old ones fail; bob's session was revoked.
    assert_eq!(s.try_login("bob", "bob-password", &[]).await.status, 422);
    assert_eq!(s.try_login("robert", "bob-password", &[]).await.status, 422);
    s.login("robert", "new-bob-password").await;
    assert_eq!(s.self_status(&bob_token).await, 401);

    let entries = events(&s, bob.id);
    let entry = entries
        .iter()
        .find(|e| e.action == "ws_user_update")
        .unwrap();
    assert_eq!(
        entry.fields,
        ["login", "password", "data", "intro_reviewed"]
    );
    assert_eq!(entry.actor_id, Some(1));
    assert!(entries.iter().any(|e| e.action == "session_revoked"));
    for e in &entries {
        let text = serde_json::to_string(&e.view()).unwrap();
        for secret in ["new-bob-password", "s3cr3t", "$argon2"] {
            assert!(!text.contains(secret), "audit leaks {secret}: {text}");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn a_client_changes_only_its_own_password_data_and_intro() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let other = s.create_account("other", "other-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let mut ws = socket_with(&s, &token).await;

    // Seed 003's client examples.
    let r = update_current(
        &mut ws,
        json!({"password": "devicehive", "data": {"theme": "dark"}}),
    )
    .await;
    assert_eq!(r, success("user/updateCurrent", json!(9)));
    for user in [
        json!({"role": 0}),
        json!({"login": "alice2"}),
        json!({"status": 0}),
        json!({"login": "alice", "data": {}}),
    ] {
        assert_eq!(
            update_current(&mut ws, user).await,
            error(
                "user/updateCurrent",
                json!(9),
                403,
                "Admin permissions required for this action"
            )
        );
    }
    for target in [
        json!(other.id),
        json!(other.id.to_string()),
        json!(999999),
        json!(-1),
    ] {
        assert_eq!(
            update(&mut ws, target, json!({"data": {}})).await,
            error("user/update", json!(7), 403, "Access is denied")
        );
    }
    assert_eq!(
        update(&mut ws, json!(other.id), json!({"status": 2})).await["error"],
        "Access is denied"
    );
    // Its own id works in every spelling; `null` for a field means "not sent".
    for target in [
        json!(alice.id),
        json!(alice.id.to_string()),
        json!("current"),
    ] {
        assert_eq!(
            update(
                &mut ws,
                target,
                json!({"introReviewed": true, "login": null})
            )
            .await,
            success("user/update", json!(7))
        );
    }
    let me = get_current(&mut ws).await;
    assert_eq!(me["current"]["introReviewed"], true);
    assert_eq!(me["current"]["data"], json!({"theme": "dark"}));
    assert_eq!(me["current"]["login"], "alice");
    s.login("alice", "devicehive").await;
    let untouched = s.app.store.account(other.id).unwrap().unwrap();
    assert_eq!((untouched.data, untouched.status), (None, 0));

    // An account that may not change its password cannot do it here either.
    s.edit_account(alice.id, |a| a.can_update_password = false);
    assert_eq!(
        update_current(&mut ws, json!({"password": "another-password"})).await,
        error(
            "user/updateCurrent",
            json!(9),
            403,
            "This account is not allowed to change its password"
        )
    );
    s.stop().await;
}

#[tokio::test]
async fn data_is_kept_when_omitted_cleared_by_null_and_must_be_a_small_object() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let mut ws = socket_with(&s, &token).await;
    let data = |s: &TestServer| s.app.store.account(alice.id).unwrap().unwrap().data;

    update_current(&mut ws, json!({"data": {"k": "v"}})).await;
    assert_eq!(data(&s), Some(json!({"k": "v"})));
    assert_eq!(
        update_current(&mut ws, json!({"introReviewed": true})).await["status"],
        "success"
    );
    assert_eq!(data(&s), Some(json!({"k": "v"})), "omitted data is kept");
    for bad in [json!([1, 2]), json!("text"), json!(5), json!(true)] {
        assert_eq!(
            update_current(&mut ws, json!({"data": bad})).await,
            error(
                "user/updateCurrent",
                json!(9),
                400,
                "User data must be a JSON object or null"
            )
        );
    }
    // 64 KiB serialized is the limit: `{"k":"…"}` is 8 bytes around the string.
    let fits = json!({"k": "x".repeat(64 * 1024 - 8)});
    assert_eq!(serde_json::to_vec(&fits).unwrap().len(), 64 * 1024);
    assert_eq!(
        update_current(&mut ws, json!({"data": fits})).await["status"],
        "success"
    );
    let over = json!({"k": "x".repeat(64 * 1024 - 7)});
    assert_eq!(
        update_current(&mut ws, json!({"data": over})).await,
        error(
            "user/updateCurrent",
            json!(9),
            400,
            "User data must not be larger than 65536 bytes"
        )
    );
    assert_eq!(data(&s), Some(fits));
    assert_eq!(
        update_current(&mut ws, json!({"data": null})).await["status"],
        "success"
    );
    assert_eq!(data(&s), None);
    assert_eq!(get_current(&mut ws).await["current"]["data"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn update_validation_errors_change_nothing() {
    let s = TestServer::start().await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    s.create_account("Alice", "alice-password", UserType::User);
    let mut ws = admin_socket(&s).await;
    let before = s.app.store.account(bob.id).unwrap().unwrap();
    let cases = [
        (
            json!({"login": "ALICE", "data": {"x": 1}}),
            403,
            "User with such login already exists. Please, select another one",
        ),
        (
            json!({"password": "short", "data": {"x": 1}}),
            400,
            "Password can contain only from 8 to 128 symbols!",
        ),
        (
            json!({"password": "p".repeat(129)}),
            400,
            "Password can contain only from 8 to 128 symbols!",
        ),
        (
            json!({"role": 2, "data": {"x": 1}}),
            400,
            "User role must be 0 (administrator) or 1 (client)",
        ),
        (
            json!({"role": "admin"}),
            400,
            "User role must be 0 (administrator) or 1 (client)",
        ),
        (
            json!({"status": 3, "data": {"x": 1}}),
            400,
            "User status must be 0 (active), 1 (locked out) or 2 (disabled)",
        ),
        (
            json!({"status": -1}),
            400,
            "User status must be 0 (active), 1 (locked out) or 2 (disabled)",
        ),
        (
            json!({"login": ""}),
            400,
            "Field login cannot be empty. The length of login should not be more than 128 symbols.",
        ),
        (
            json!({"login": "l".repeat(129)}),
            400,
            "Field login cannot be empty. The length of login should not be more than 128 symbols.",
        ),
        (
            json!({"introReviewed": "yes"}),
            400,
            "Field introReviewed must be true or false",
        ),
    ];
    for (user, code, text) in cases {
        assert_eq!(
            update(&mut ws, json!(bob.id), user.clone()).await,
            error("user/update", json!(7), code, text),
            "{user}"
        );
    }
    let r = call(
        &mut ws,
        json!({"action": "user/update", "requestId": 7, "userId": bob.id}),
    )
    .await;
    assert_eq!(r, error("user/update", json!(7), 400, "User is required"));
    let r = call(
        &mut ws,
        json!({"action": "user/update", "requestId": 7, "userId": bob.id, "user": [1]}),
    )
    .await;
    assert_eq!(
        r,
        error("user/update", json!(7), 400, "Malformed Json received.")
    );
    let r = call(
        &mut ws,
        json!({"action": "user/update", "requestId": 7, "user": {"data": {}}}),
    )
    .await;
    assert_eq!(
        r,
        error("user/update", json!(7), 400, "User id is wrong or empty")
    );
    assert_eq!(s.app.store.account(bob.id).unwrap().unwrap(), before);
    // Renaming to its own login in another case is not a duplicate.
    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"login": "BOB"})).await["status"],
        "success"
    );
    assert_eq!(s.app.store.account(bob.id).unwrap().unwrap().login, "BOB");
    s.stop().await;
}

#[tokio::test]
async fn password_length_follows_the_configured_minimum() {
    let s = TestServer::start_with(|c| c.auth.password_min_length = 10).await;
    let mut ws = admin_socket(&s).await;
    let r = update_current(&mut ws, json!({"password": "nine-char"})).await;
    assert_eq!(
        r,
        error(
            "user/updateCurrent",
            json!(9),
            400,
            "Password can contain only from 10 to 128 symbols!"
        )
    );
    assert_eq!(
        update_current(&mut ws, json!({"password": "ten-chars!"})).await["status"],
        "success"
    );
    s.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_404_with_devicehive_text() {
    let s = TestServer::start().await;
    let mut ws = admin_socket(&s).await;
    // Seed 003's own example.
    let r = call(
        &mut ws,
        json!({"action": "user/update", "requestId": 8, "userId": 999999,
               "user": {"data": {"userdata": 123}}}),
    )
    .await;
    assert_eq!(
        r,
        error(
            "user/update",
            json!(8),
            404,
            "User with id = 999999 not found"
        )
    );
    assert_eq!(
        update(&mut ws, json!(-1), json!({"data": {}})).await,
        error("user/update", json!(7), 404, "User with id = -1 not found")
    );
    assert_eq!(
        update(&mut ws, json!("42"), json!({"data": {}})).await,
        error("user/update", json!(7), 404, "User with id = 42 not found")
    );
    s.stop().await;
}

#[tokio::test]
async fn role_moves_accounts_between_admin_and_user_only() {
    let s = TestServer::start().await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    let sub = s.create_account("sub", "sub-password", UserType::Subuser);
    let temp = s.create_account("temp", "temp-password", UserType::Special);
    let bob_token = s.login("bob", "bob-password").await;
    let mut ws = admin_socket(&s).await;

    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"role": 0})).await,
        success("user/update", json!(7))
    );
    let promoted = s.app.store.account(bob.id).unwrap().unwrap();
    assert_eq!(promoted.user_type, UserType::Admin);
    assert_eq!(get_user(&mut ws, json!(bob.id)).await["user"]["role"], 0);
    // A new role ends the old sessions; the admin login now admits bob.
    assert_eq!(s.self_status(&bob_token).await, 401);
    assert_eq!(s.try_admin_login("bob", "bob-password").await.status, 200);
    assert_eq!(s.try_login("bob", "bob-password", &[]).await.status, 422);

    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"role": 1})).await["status"],
        "success"
    );
    let demoted = s.app.store.account(bob.id).unwrap().unwrap();
    assert_eq!(demoted.user_type, UserType::User);
    assert!(demoted.permissions.is_empty());
    s.login("bob", "bob-password").await;

    for id in [sub.id, temp.id] {
        assert_eq!(
            update(&mut ws, json!(id), json!({"role": 0})).await,
            error(
                "user/update",
                json!(7),
                400,
                "Only administrator and regular user accounts can change role; sub-users and temporary users cannot"
            )
        );
        // Their current role is not a change.
        assert_eq!(
            update(&mut ws, json!(id), json!({"role": 1})).await["status"],
            "success"
        );
    }

    // A user with sub-users stays a user.
    s.edit_account(sub.id, |a| a.parent_id = Some(bob.id));
    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"role": 0})).await,
        error(
            "user/update",
            json!(7),
            400,
            "A user with sub-users cannot become an administrator"
        )
    );
    s.stop().await;
}

#[tokio::test]
async fn the_last_active_administrator_cannot_lock_itself_out() {
    let s = TestServer::start().await;
    let mut ws = admin_socket(&s).await;
    for user in [
        json!({"status": 2}),
        json!({"status": 1}),
        json!({"role": 1}),
    ] {
        assert_eq!(
            update_current(&mut ws, user).await,
            error(
                "user/updateCurrent",
                json!(9),
                403,
                "The last active administrator cannot be disabled, locked or demoted"
            )
        );
    }
    // With a second administrator it is allowed, and the socket's own session ends with it.
    s.create_account("admin2", "admin2-password", UserType::Admin);
    assert_eq!(
        update_current(&mut ws, json!({"status": 2})).await,
        success("user/updateCurrent", json!(9))
    );
    assert_eq!(
        get_current(&mut ws).await,
        error("user/getCurrent", json!(1), 401, "Unauthorized")
    );
    s.stop().await;
}

#[tokio::test]
async fn status_locks_disables_and_unlocks_like_rest() {
    let s = TestServer::start().await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    let mut ws = admin_socket(&s).await;

    // Seed 003's admin example, with the data it carries.
    let token = s.login("bob", "bob-password").await;
    let r = call(
        &mut ws,
        json!({"action": "user/update", "requestId": 7, "userId": bob.id,
               "user": {"status": 2, "data": {"k": "v"}}}),
    )
    .await;
    assert_eq!(r, success("user/update", json!(7)));
    assert_eq!(s.self_status(&token).await, 401);
    let disabled = s.try_login("bob", "bob-password", &[]).await;
    crate::common::assert_field_error(&disabled, "login", &["This account is disabled."]);
    assert_eq!(get_user(&mut ws, json!(bob.id)).await["user"]["status"], 2);

    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"status": 1})).await["status"],
        "success"
    );
    assert_eq!(s.try_login("bob", "bob-password", &[]).await.status, 429);
    assert_eq!(get_user(&mut ws, json!(bob.id)).await["user"]["status"], 1);

    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"status": 0})).await["status"],
        "success"
    );
    let token = s.login("bob", "bob-password").await;
    assert_eq!(s.self_status(&token).await, 200);

    // An automatic lockout shows as status 1 and an admin's status 0 lifts it.
    for _ in 0..5 {
        s.try_login("bob", "wrong-password", &[]).await;
    }
    assert_eq!(s.try_login("bob", "bob-password", &[]).await.status, 429);
    assert_eq!(
        get_user(&mut ws, json!(bob.id)).await["user"],
        dh_user(&s, bob.id, 1)
    );
    assert_eq!(s.app.store.account(bob.id).unwrap().unwrap().status, 0);
    // Sessions open before the lockout keep working (SPEC §3).
    assert_eq!(s.self_status(&token).await, 200);
    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"status": 0})).await["status"],
        "success"
    );
    assert_eq!(get_user(&mut ws, json!(bob.id)).await["user"]["status"], 0);
    s.login("bob", "bob-password").await;
    let unlock = events(&s, bob.id)
        .into_iter()
        .find(|e| e.action == "ws_user_update")
        .unwrap();
    assert_eq!(unlock.fields, ["status"]);
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
        .transaction(|tx| tx.delete_account(&gone))
        .unwrap();
    assert_eq!(get_current(&mut ws).await, unauthorized);
    s.stop().await;
}

#[tokio::test]
async fn end_to_end_socket_and_rest_act_on_the_same_accounts() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);

    // Socket → REST: a password change over the socket.
    let rest_1 = s.login("alice", "alice-password").await;
    let rest_2 = s.login("alice", "alice-password").await;
    let mut ws = connect(&s).await;
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 1, "login": "alice", "password": "alice-password"}),
    )
    .await;
    let ws_token = r["accessToken"].as_str().unwrap().to_owned();
    call(
        &mut ws,
        json!({"action": "authenticate", "requestId": 2, "token": ws_token}),
    )
    .await;
    assert_eq!(
        update_current(&mut ws, json!({"password": "changed-over-ws"})).await,
        success("user/updateCurrent", json!(9))
    );
    assert_eq!(s.self_status(&rest_1).await, 401);
    assert_eq!(s.self_status(&rest_2).await, 401);
    assert_eq!(
        s.self_status(&ws_token).await,
        200,
        "the socket's own session stays"
    );
    assert_eq!(get_current(&mut ws).await["status"], "success");
    crate::common::assert_field_error(
        &s.try_login("alice", "alice-password", &[]).await,
        "login",
        &["These credentials do not match our records."],
    );
    let rest_3 = s.login("alice", "changed-over-ws").await;
    let me = s.get("/api/v1/users/self", &rest_3).await;
    assert_eq!(me.body["id"], alice.id);

    // REST → socket: a password change at REST revokes the socket's session.
    let r = s
        .call(
            "PUT",
            "/api/v1/users/self",
            Some(&rest_3),
            Some(
                json!({"password": "changed-at-rest", "password_confirmation": "changed-at-rest",
                        "current_password": "changed-over-ws"}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        get_current(&mut ws).await,
        error("user/getCurrent", json!(1), 401, "Unauthorized")
    );
    // The socket's token action sees the REST password.
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 3, "login": "alice", "password": "changed-at-rest"}),
    )
    .await;
    assert_eq!(r["status"], "success");

    // An admin disabling alice over one socket: her REST token and her other socket get 401.
    let rest_4 = s.login("alice", "changed-at-rest").await;
    let mut alice_ws = socket_with(&s, &rest_4).await;
    let mut admin_ws = admin_socket(&s).await;
    let before = get_user(&mut admin_ws, json!(alice.id)).await;
    assert_eq!(before["user"]["status"], 0);
    assert_eq!(
        update(&mut admin_ws, json!(alice.id), json!({"status": 2})).await,
        success("user/update", json!(7))
    );
    assert_eq!(s.self_status(&rest_4).await, 401);
    assert_eq!(
        get_current(&mut alice_ws).await,
        error("user/getCurrent", json!(1), 401, "Unauthorized")
    );
    // And REST's view agrees with the socket's: the admin API no longer logs her in.
    crate::common::assert_field_error(
        &s.try_login("alice", "changed-at-rest", &[]).await,
        "login",
        &["This account is disabled."],
    );
    assert_eq!(
        get_user(&mut admin_ws, json!(alice.id)).await["user"],
        dh_user(&s, alice.id, 2)
    );
    s.stop().await;
}

#[tokio::test]
async fn a_flood_from_one_socket_does_not_starve_another() {
    let s = TestServer::start().await;
    s.create_account("alice", "alice-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let mut flooder = socket_with(&s, &token).await;
    let mut other = socket_with(&s, &token).await;

    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let flood = tokio::spawn(async move {
        let mut started = Some(started_tx);
        for i in 0..2000 {
            let frame = json!({"action": "user/getCurrent", "requestId": i}).to_string();
            if flooder.send(Message::text(frame)).await.is_err() {
                break;
            }
            if i == 100 {
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
            }
        }
        flooder
    });
    started_rx.await.unwrap();
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let t = Instant::now();
        let r = call(
            &mut other,
            json!({"action": "user/getCurrent", "requestId": format!("o{i}")}),
        )
        .await;
        worst = worst.max(t.elapsed());
        assert_eq!(r["requestId"], format!("o{i}"));
        assert_eq!(r["status"], "success");
    }
    assert!(worst < Duration::from_secs(1), "worst round trip {worst:?}");
    // The flooder's frames are handled too, in order.
    let mut flooder = flood.await.unwrap();
    for i in 0..50 {
        assert_eq!(recv(&mut flooder).await["requestId"], i);
    }
    s.stop().await;
}

#[tokio::test]
async fn an_oversized_frame_closes_that_socket_and_the_server_keeps_serving() {
    let s = TestServer::start().await;
    let mut ws = connect(&s).await;
    let big = format!(
        r#"{{"action":"server/info","pad":"{}"}}"#,
        "x".repeat(200 * 1024)
    );
    ws.send(Message::text(big)).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(Message::Text(t))) => panic!("oversized frame was answered: {t}"),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(closed, Some(CloseCode::Size));
    wait_for(
        Duration::from_secs(5),
        "the socket to be released",
        || async { s.app.sockets.open_count() == 0 },
    )
    .await;
    // A frame just under the limit is fine, and new sockets are served.
    let mut ws = connect(&s).await;
    let fits = format!(
        r#"{{"action":"server/info","requestId":1,"pad":"{}"}}"#,
        "x".repeat(120 * 1024)
    );
    send_text(&mut ws, &fits).await;
    assert_eq!(recv(&mut ws).await["status"], "success");
    s.stop().await;
}

#[tokio::test]
async fn the_server_pings_and_closes_idle_sockets() {
    let s = TestServer::start().await;
    s.app.sockets.set_timing(SocketTiming {
        ping_every: Duration::from_millis(150),
        idle_timeout: Duration::from_millis(800),
    });
    let mut ws = connect(&s).await;
    // A client that reads answers the pings (tungstenite pongs by itself) and stays open
    // well past the idle timeout.
    let mut pings = 0;
    let until = Instant::now() + Duration::from_millis(1600);
    while Instant::now() < until {
        if let Ok(Some(Ok(Message::Ping(_)))) =
            tokio::time::timeout(Duration::from_millis(100), ws.next()).await
        {
            pings += 1;
        }
    }
    assert!(pings >= 5, "only {pings} pings in 1.6 s");
    let r = call(&mut ws, json!({"action": "server/info", "requestId": 1})).await;
    assert_eq!(r["status"], "success");

    // A client that goes quiet (reads nothing, so answers no ping) is closed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(close.code, CloseCode::Normal);
    assert_eq!(close.reason.as_str(), "idle timeout");
    s.stop().await;
}

#[tokio::test]
async fn sockets_per_account_are_capped() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let mut sockets = Vec::new();
    for _ in 0..MAX_SOCKETS_PER_ACCOUNT {
        sockets.push(socket_with(&s, &token).await);
    }
    assert_eq!(
        s.app.sockets.account_count(alice.id),
        MAX_SOCKETS_PER_ACCOUNT
    );
    let mut extra = connect(&s).await;
    let r = call(
        &mut extra,
        json!({"action": "authenticate", "requestId": 1, "token": token}),
    )
    .await;
    assert_eq!(
        r,
        error(
            "authenticate",
            json!(1),
            429,
            "Too many WebSocket connections for this account"
        )
    );
    // Authenticating again on a socket that already holds a place takes no second one.
    let r = call(
        &mut sockets[0],
        json!({"action": "authenticate", "requestId": 2, "token": token}),
    )
    .await;
    assert_eq!(r["status"], "success");
    // The admin is not affected by alice's cap.
    admin_socket(&s).await;
    sockets.pop().unwrap().close(None).await.unwrap();
    wait_for(Duration::from_secs(5), "a place to free up", || async {
        s.app.sockets.account_count(alice.id) < MAX_SOCKETS_PER_ACCOUNT
    })
    .await;
    let r = call(
        &mut extra,
        json!({"action": "authenticate", "requestId": 3, "token": token}),
    )
    .await;
    assert_eq!(r, success("authenticate", json!(3)));
    s.stop().await;
}

#[tokio::test]
async fn sockets_in_total_are_capped() {
    // max_connections 8 → 4 sockets.
    let s = TestServer::start_with(|c| c.limits.max_connections = 8).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(connect(&s).await);
    }
    let handshake = [
        ("upgrade", "websocket"),
        ("connection", "upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", KEY),
    ];
    let refused = upgrade_headers(&s, &handshake).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.body, json!({"message": "Service Unavailable."}));
    assert!(refused.header("retry-after").is_some());
    // REST still answers while the sockets are full.
    assert_eq!(s.raw("GET", "/healthz", &[], Vec::new()).await.status, 200);
    drop(open.pop());
    wait_for(
        Duration::from_secs(5),
        "a socket place to free up",
        || async { s.app.sockets.open_count() < 4 },
    )
    .await;
    let mut ws = connect(&s).await;
    assert_eq!(
        call(&mut ws, json!({"action": "server/info"})).await["status"],
        "success"
    );
    s.stop().await;
}

#[tokio::test]
async fn sockets_are_closed_when_the_server_shuts_down() {
    let s = TestServer::start().await;
    let mut ws = connect(&s).await;
    assert_eq!(
        call(&mut ws, json!({"action": "server/info"})).await["status"],
        "success"
    );
    s.stop().await;
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(close, Some(CloseCode::Away));
}
