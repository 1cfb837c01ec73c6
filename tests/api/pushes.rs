//! Real-time pushes (SPEC §9) with a raw WebSocket client over the daemon's TLS listener:
//! `GET /api/v1/wsurl`, `POST /api/v1/broadcasting/auth` and its every error, the socket's
//! frames and close codes, and the `UserPush` events after admin changes (REST and the
//! DeviceHive socket), never for a refused change, in commit order. Session endings are in
//! `pushes_sessions`, the real clients in `pushes_clients`. The helpers here are shared.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use vmsd::model::UserType;
use vmsd::push_protocol;

use crate::admin_support::{create_camera, delete, expect, put, seed_cameras, CAMERAS, USERS};
use crate::common::{assert_field_error, TestServer};
use crate::websocket::{call as dh_call, socket_with as dh_socket, Ws};

pub(crate) const CLIENT_PASSWORD: &str = "client-password-1";

/// A Pusher socket and its id.
pub(crate) struct Push {
    pub ws: Ws,
    pub socket_id: String,
}

/// What the server did next on a socket.
#[derive(Debug, PartialEq)]
pub(crate) enum Next {
    Frame(Value),
    Closed(u16),
}

/// Opens `path` (with its query) as a WebSocket; the first frame as JSON.
pub(crate) async fn open_raw(s: &TestServer, path: &str, subprotocol: bool) -> (Ws, Value) {
    let mut request = format!("wss://localhost{path}")
        .into_client_request()
        .unwrap();
    if subprotocol {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            push_protocol::SUBPROTOCOL.parse().unwrap(),
        );
    }
    let (mut ws, response) = tokio_tungstenite::client_async(request, s.tls().await)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    if subprotocol {
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(push_protocol::SUBPROTOCOL)
        );
    }
    let first = match next(&mut ws).await {
        Next::Frame(v) => v,
        other => panic!("expected a frame, got {other:?}"),
    };
    (ws, first)
}

/// A socket on `/pusher/app/key?protocol=7`, past `connection_established`.
pub(crate) async fn push_socket(s: &TestServer) -> Push {
    let (ws, hello) = open_raw(s, "/pusher/app/key?protocol=7&client=js", false).await;
    assert_eq!(hello["event"], "pusher:connection_established");
    let data: Value = serde_json::from_str(hello["data"].as_str().unwrap()).unwrap();
    let socket_id = data["socket_id"].as_str().unwrap().to_owned();
    Push { ws, socket_id }
}

/// The next text frame (as JSON) or the close code; panics after 10 s.
pub(crate) async fn next(ws: &mut Ws) -> Next {
    next_within(ws, Duration::from_secs(10))
        .await
        .expect("nothing within 10 s")
}

/// `next`, or `None` when nothing came within `limit`.
pub(crate) async fn next_within(ws: &mut Ws, limit: Duration) -> Option<Next> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        match frame {
            None | Some(Err(_)) => return Some(Next::Closed(1006)),
            Some(Ok(Message::Text(t))) => {
                return Some(Next::Frame(serde_json::from_str(t.as_str()).unwrap()))
            }
            Some(Ok(Message::Close(frame))) => {
                return Some(Next::Closed(
                    frame.map(|f| u16::from(f.code)).unwrap_or(1005),
                ))
            }
            Some(Ok(_)) => continue,
        }
    }
}

pub(crate) async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// `POST /api/v1/broadcasting/auth` as the AIPIX iOS SDK sends it: a form, no Content-Type.
pub(crate) async fn auth(s: &TestServer, token: &str, socket_id: &str, channel: &str) -> Value {
    let bearer = format!("Bearer {token}");
    let r = s
        .raw(
            "POST",
            "/api/v1/broadcasting/auth",
            &[("authorization", &bearer)],
            format!("socket_id={socket_id}&channel_name={channel}"),
        )
        .await;
    expect(&r, 200).clone()
}

/// Authorizes and subscribes `channel`; asserts `subscription_succeeded`.
pub(crate) async fn subscribe(s: &TestServer, p: &mut Push, token: &str, channel: &str) {
    let signed = auth(s, token, &p.socket_id, channel).await;
    send(
        &mut p.ws,
        json!({"event": "pusher:subscribe", "data": {"auth": signed["auth"], "channel": channel}}),
    )
    .await;
    assert_eq!(
        next(&mut p.ws).await,
        Next::Frame(
            json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})
        )
    );
}

/// Asserts the next frame is `event` on `channel` with this (decoded) data.
#[track_caller]
pub(crate) fn assert_event(got: Next, channel: &str, event: &str, data: Value) {
    let Next::Frame(frame) = got else {
        panic!("expected {event} on {channel}, got {got:?}");
    };
    assert_eq!(frame["event"], event, "{frame}");
    assert_eq!(frame["channel"], channel, "{frame}");
    let decoded: Value = serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
    assert_eq!(decoded, data, "{frame}");
}

pub(crate) fn user_push(subject: &str, inner: Value) -> Value {
    json!({"subject": subject, "data": {"type": subject, "status": "ok", "data": inner}})
}

/// Asserts that nothing arrives for a while (the socket stays open and silent).
pub(crate) async fn assert_silent(p: &mut Push, limit: Duration) {
    if let Some(got) = next_within(&mut p.ws, limit).await {
        panic!("expected silence, got {got:?}");
    }
}

/// A client account with a session: (account id, token, access_token_id).
pub(crate) async fn client(s: &TestServer, login: &str) -> (u64, String, String) {
    let id = match s.app.store.account_by_login(login).unwrap() {
        Some(a) => a.id,
        None => s.create_account(login, CLIENT_PASSWORD, UserType::User).id,
    };
    let token = s.login(login, CLIENT_PASSWORD).await;
    let token_id = current_token_id(s, &token).await;
    (id, token, token_id)
}

pub(crate) async fn current_token_id(s: &TestServer, token: &str) -> String {
    let sessions = s.get("/api/v1/sessions", token).await.body;
    sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["is_current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A socket subscribed to both private channels of a client session.
pub(crate) async fn subscribed(s: &TestServer, id: u64, token: &str, token_id: &str) -> Push {
    let mut p = push_socket(s).await;
    subscribe(s, &mut p, token, &push_protocol::user_channel(id)).await;
    subscribe(s, &mut p, token, &push_protocol::token_channel(token_id)).await;
    p
}

#[tokio::test]
async fn wsurl_follows_the_host_and_is_throttled_per_ip() {
    let s = TestServer::start().await;
    let r = s.raw("GET", "/api/v1/wsurl", &[], "").await;
    assert_eq!(
        expect(&r, 200),
        &json!({"ws_url": "wss://vms.local/pusher", "app_key": "key", "port": 443,
                "host": "vms.local", "path": "/pusher", "is_encrypted": true})
    );
    let body = wsurl_with_host(&s, "10.1.2.3:8443").await;
    assert_eq!(body["ws_url"], "wss://10.1.2.3:8443/pusher");
    assert_eq!(
        (body["host"].clone(), body["port"].clone()),
        (json!("10.1.2.3"), json!(8443))
    );
    let body = wsurl_with_host(&s, "[::1]:443").await;
    assert_eq!(body["ws_url"], "wss://[::1]/pusher", "443 is left out");
    for _ in 3..20 {
        expect(&s.raw("GET", "/api/v1/wsurl", &[], "").await, 200);
    }
    let r = s.raw("GET", "/api/v1/wsurl", &[], "").await;
    assert_eq!(r.status, 429, "the 21st request in 5 min");
    assert!(r.header("retry-after").is_some());
}

/// `GET /api/v1/wsurl` with exactly this Host header; the JSON answer.
async fn wsurl_with_host(s: &TestServer, host: &str) -> Value {
    let mut tls = s.tls().await;
    let request =
        format!("GET /api/v1/wsurl HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    let answer = crate::common::http_exchange(&mut tls, request.as_bytes()).await;
    serde_json::from_str(&answer[answer.find("\r\n\r\n").unwrap() + 4..]).unwrap_or(Value::Null)
}

#[tokio::test]
async fn wsurl_uses_push_path_and_the_first_hostname_for_a_bad_host() {
    let s = TestServer::start_with(|c| {
        c.push.path = "/rt".into();
        c.push.app_key = "app-key".into();
        c.tls.hostnames = vec!["box.example".into(), "localhost".into()];
    })
    .await;
    let body = wsurl_with_host(&s, "bad_host").await;
    assert_eq!(
        body,
        json!({"ws_url": "wss://box.example/rt", "app_key": "app-key", "port": 443,
               "host": "box.example", "path": "/rt", "is_encrypted": true})
    );
    // The socket answers under push.path as well as the fixed prefixes.
    for path in ["/rt", "/pusher", "/ws", ""] {
        let (_, hello) = open_raw(&s, &format!("{path}/app/app-key?protocol=7"), false).await;
        assert_eq!(hello["event"], "pusher:connection_established", "{path}");
    }
}

#[tokio::test]
async fn the_socket_speaks_the_protocol_every_client_reads() {
    let s = TestServer::start().await;
    for (protocol, subprotocol) in [("5", false), ("6", false), ("7", true)] {
        let (mut ws, hello) = open_raw(
            &s,
            &format!("/pusher/app/key?client=x&protocol={protocol}&version=1"),
            subprotocol,
        )
        .await;
        assert_eq!(hello["event"], "pusher:connection_established");
        let data: Value = serde_json::from_str(hello["data"].as_str().unwrap()).unwrap();
        assert!(push_protocol::valid_socket_id(
            data["socket_id"].as_str().unwrap()
        ));
        assert_eq!(data["activity_timeout"], "30", "a numeric string");
        for ping in [
            json!({"event": "pusher:ping", "data": {}}),
            json!({"event": "pusher:ping"}),
            json!({"event": "pusher:ping", "data": ""}),
        ] {
            send(&mut ws, ping).await;
            assert_eq!(
                next(&mut ws).await,
                Next::Frame(json!({"event": "pusher:pong", "data": {}}))
            );
        }
        ws.send(Message::Ping("x".into())).await.unwrap();
        let pong = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap();
        assert!(matches!(pong, Some(Ok(Message::Pong(_)))), "{pong:?}");
    }
}

#[tokio::test]
async fn subscribe_errors_leave_the_socket_open() {
    let s = TestServer::start_with(|c| c.push.max_subscriptions = 3).await;
    let (id, token, _) = client(&s, "sam").await;
    let mut p = push_socket(&s).await;
    let error = |message: &str, code: Value| json!({"event": "pusher:error", "data": {"message": message, "code": code}});
    // Public channels need no auth (pusher-js sends "").
    send(
        &mut p.ws,
        json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": "news"}}),
    )
    .await;
    assert_eq!(
        next(&mut p.ws).await,
        Next::Frame(
            json!({"event": "pusher_internal:subscription_succeeded", "channel": "news", "data": "{}"})
        )
    );
    let user = push_protocol::user_channel(id);
    for bad in [None, Some("key:00"), Some("other:abc")] {
        let mut data = json!({"channel": user});
        if let Some(a) = bad {
            data["auth"] = json!(a);
        }
        send(
            &mut p.ws,
            json!({"event": "pusher:subscribe", "data": data}),
        )
        .await;
        let Next::Frame(f) = next(&mut p.ws).await else {
            panic!()
        };
        assert_eq!(f["event"], "pusher:error");
        assert_eq!(f["data"]["code"], Value::Null);
        assert!(
            f["data"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid signature"),
            "{f}"
        );
    }
    // A signature for another socket is wrong for this one.
    let other = push_socket(&s).await;
    let signed = auth(&s, &token, &other.socket_id, &user).await;
    send(
        &mut p.ws,
        json!({"event": "pusher:subscribe", "data": {"auth": signed["auth"], "channel": user}}),
    )
    .await;
    let Next::Frame(f) = next(&mut p.ws).await else {
        panic!()
    };
    assert_eq!(f["event"], "pusher:error");
    for channel in ["presence-room", "private-encrypted-x"] {
        send(
            &mut p.ws,
            json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": "key:00"}}),
        )
        .await;
        assert_eq!(
            next(&mut p.ws).await,
            Next::Frame(error("Presence channels are not supported", Value::Null))
        );
    }
    send(
        &mut p.ws,
        json!({"event": "client-typing", "channel": user, "data": {}}),
    )
    .await;
    let Next::Frame(f) = next(&mut p.ws).await else {
        panic!()
    };
    assert_eq!(f["event"], "pusher:error");
    ws_text(&mut p, "not json").await;
    let Next::Frame(f) = next(&mut p.ws).await else {
        panic!()
    };
    assert_eq!(
        (f["event"].clone(), f["data"]["code"].clone()),
        (json!("pusher:error"), Value::Null)
    );
    // Unsubscribe has no answer; the limit counts live subscriptions.
    send(
        &mut p.ws,
        json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}}),
    )
    .await;
    for channel in ["a", "b", "c"] {
        send(
            &mut p.ws,
            json!({"event": "pusher:subscribe", "data": {"channel": channel}}),
        )
        .await;
        let Next::Frame(f) = next(&mut p.ws).await else {
            panic!()
        };
        assert_eq!(f["event"], "pusher_internal:subscription_succeeded", "{f}");
    }
    send(
        &mut p.ws,
        json!({"event": "pusher:subscribe", "data": {"channel": "d"}}),
    )
    .await;
    assert_eq!(
        next(&mut p.ws).await,
        Next::Frame(error("Subscription limit reached", json!(4302)))
    );
    // Still open and answering.
    send(&mut p.ws, json!({"event": "pusher:ping"})).await;
    assert_eq!(
        next(&mut p.ws).await,
        Next::Frame(json!({"event": "pusher:pong", "data": {}}))
    );
}

#[tokio::test]
async fn frames_longer_than_the_sockets_read_buffer_arrive_whole() {
    // A Pusher socket reads through a 1 KiB buffer (handlers::pusher::READ_BUFFER_BYTES): a
    // longer frame must still be read whole, however many reads it takes, and the socket
    // must go on reading frames after it.
    let s = TestServer::start().await;
    let (id, token, _) = client(&s, "lena").await;
    let mut p = push_socket(&s).await;
    let user = push_protocol::user_channel(id);
    let signed = auth(&s, &token, &p.socket_id, &user).await;
    for pad in [3_000, 100_000] {
        send(
            &mut p.ws,
            json!({"event": "pusher:ping", "data": {"pad": "x".repeat(pad)}}),
        )
        .await;
        assert_eq!(
            next(&mut p.ws).await,
            Next::Frame(json!({"event": "pusher:pong", "data": {}})),
            "a {pad}-byte ping"
        );
    }
    send(
        &mut p.ws,
        json!({"event": "pusher:subscribe", "data": {"auth": signed["auth"], "channel": user, "channel_data": "y".repeat(5_000)}}),
    )
    .await;
    assert_eq!(
        next(&mut p.ws).await,
        Next::Frame(
            json!({"event": "pusher_internal:subscription_succeeded", "channel": user, "data": "{}"})
        )
    );
    send(&mut p.ws, json!({"event": "pusher:ping"})).await;
    assert_eq!(
        next(&mut p.ws).await,
        Next::Frame(json!({"event": "pusher:pong", "data": {}}))
    );
}

async fn ws_text(p: &mut Push, text: &str) {
    p.ws.send(Message::text(text.to_owned())).await.unwrap();
}

#[tokio::test]
async fn unknown_keys_and_protocols_are_told_then_closed() {
    let s = TestServer::start().await;
    for (path, code, message) in [
        (
            "/pusher/app/nokey?protocol=7",
            4001,
            "Application does not exist",
        ),
        ("/app/key?protocol=4", 4007, "Unsupported protocol version"),
        (
            "/ws/app/key?protocol=8",
            4007,
            "Unsupported protocol version",
        ),
        ("/pusher/app/key", 4008, "No protocol version supplied"),
    ] {
        let (mut ws, first) = open_raw(&s, path, false).await;
        assert_eq!(
            first,
            json!({"event": "pusher:error", "data": {"message": message, "code": code}}),
            "{path}"
        );
        assert_eq!(next(&mut ws).await, Next::Closed(code), "{path}");
    }
}

#[tokio::test]
async fn pusher_and_devicehive_sockets_share_one_cap_and_overflow_closes_4100() {
    // max_connections 4: at most 2 sockets, whatever their kind.
    let s = TestServer::start_with(|c| c.limits.max_connections = 4).await;
    let _dh = crate::websocket::connect(&s).await;
    let _push = push_socket(&s).await;
    let (mut ws, first) = open_raw(&s, "/pusher/app/key?protocol=7", false).await;
    assert_eq!(
        first,
        json!({"event": "pusher:error", "data": {"message": "Over capacity", "code": 4100}})
    );
    assert_eq!(next(&mut ws).await, Next::Closed(4100));
    assert_eq!(s.app.sockets.open_count(), 2);
}

#[tokio::test]
async fn idle_sockets_close_with_4201_and_shutdown_with_4200() {
    let s = TestServer::start_with(|c| c.push.activity_timeout = Duration::from_secs(1)).await;
    let mut idle = push_socket(&s).await;
    let started = std::time::Instant::now();
    assert_eq!(next(&mut idle.ws).await, Next::Closed(4201));
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    let mut open = push_socket(&s).await;
    // Activity keeps it open past 2 × activity_timeout.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        send(&mut open.ws, json!({"event": "pusher:ping"})).await;
        assert!(matches!(next(&mut open.ws).await, Next::Frame(_)));
    }
    let stop = tokio::spawn(s.stop());
    assert_eq!(next(&mut open.ws).await, Next::Closed(4200));
    stop.await.unwrap();
}

#[tokio::test]
async fn broadcasting_auth_signs_only_the_callers_own_channels() {
    let s = TestServer::start().await;
    let (id, token, token_id) = client(&s, "ann").await;
    let (other_id, _, other_token_id) = client(&s, "bob").await;
    let p = push_socket(&s).await;
    let secret = s
        .app
        .store
        .secret_or_insert(vmsd::app::PUSH_APP_SECRET, b"unused")
        .unwrap();
    assert!(secret.len() >= 32, "generated: at least 32 bytes");
    let bearer = format!("Bearer {token}");
    let user = push_protocol::user_channel(id);
    let token_channel = push_protocol::token_channel(&token_id);
    let post = |body: String, content_type: Option<&'static str>| {
        let s = &s;
        let bearer = bearer.clone();
        async move {
            let mut headers = vec![("authorization", bearer.as_str())];
            if let Some(ct) = content_type {
                headers.push(("content-type", ct));
            }
            s.raw("POST", "/api/v1/broadcasting/auth", &headers, body)
                .await
        }
    };
    let sid = &p.socket_id;
    for (body, ct, channel) in [
        (format!("socket_id={sid}&channel_name={user}"), None, &user),
        (
            format!("channel_name={token_channel}&socket_id={sid}"),
            Some("application/x-www-form-urlencoded"),
            &token_channel,
        ),
        (
            json!({"socket_id": sid, "channel_name": user}).to_string(),
            Some("application/json"),
            &user,
        ),
        (
            format!("socket_id={sid}&channel_name={user}"),
            Some("text/plain"),
            &user,
        ),
    ] {
        let r = post(body, ct).await;
        let expected = push_protocol::sign("key", &secret, sid, channel);
        assert_eq!(expect(&r, 200), &json!({"auth": expected}));
    }
    // Someone else's channels, and anything else.
    for channel in [
        push_protocol::user_channel(other_id),
        push_protocol::token_channel(&other_token_id),
        "private-admins".to_owned(),
        "news".to_owned(),
    ] {
        let r = post(format!("socket_id={sid}&channel_name={channel}"), None).await;
        assert_eq!(r.status, 403, "{channel}");
    }
    let r = post(String::new(), None).await;
    assert_field_error(&r, "socket_id", &["The socket id field is required."]);
    assert_field_error(&r, "channel_name", &["The channel name field is required."]);
    for bad in ["abc", "1.", ".1", "1.2.3", "12"] {
        let r = post(format!("socket_id={bad}&channel_name={user}"), None).await;
        assert_field_error(&r, "socket_id", &["The socket id format is invalid."]);
    }
    let r = s
        .raw(
            "POST",
            "/api/v1/broadcasting/auth",
            &[],
            format!("socket_id={sid}&channel_name={user}"),
        )
        .await;
    assert_eq!(r.status, 401);
    let admin = s.admin_token().await;
    let r = s
        .raw(
            "POST",
            "/api/v1/broadcasting/auth",
            &[("authorization", &format!("Bearer {admin}"))],
            format!("socket_id={sid}&channel_name=private-user.1"),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn admin_changes_push_user_events_in_commit_order() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let cams = seed_cameras(&s, 3);
    let (id, token, token_id) = client(&s, "cleo").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    let user = push_protocol::user_channel(id);
    let path = format!("{USERS}/{id}");

    expect(
        &put(&s, &admin, &path, json!({"permissions": [9]})).await,
        200,
    );
    assert_event(
        next(&mut p.ws).await,
        &user,
        "App\\Events\\UserPush",
        user_push("permissions_updated", json!({})),
    );
    // The same set again changes nothing and pushes nothing.
    expect(
        &put(&s, &admin, &path, json!({"permissions": [9]})).await,
        200,
    );
    expect(
        &put(
            &s,
            &admin,
            &path,
            json!({"cameras_to_attach": [cams[0], cams[1]]}),
        )
        .await,
        200,
    );
    assert_event(
        next(&mut p.ws).await,
        &user,
        "App\\Events\\UserPush",
        user_push(
            "cameras_updated",
            json!({"attached": [cams[0], cams[1]], "detached": []}),
        ),
    );
    expect(
        &put(&s, &admin, &path, json!({"cameras_to_detach": [cams[0]]})).await,
        200,
    );
    assert_event(
        next(&mut p.ws).await,
        &user,
        "App\\Events\\UserPush",
        user_push(
            "cameras_updated",
            json!({"attached": [], "detached": [cams[0]]}),
        ),
    );
    // Deleting a camera detaches it from everyone who had it.
    expect(
        &delete(&s, &admin, &format!("{CAMERAS}/{}", cams[1])).await,
        200,
    );
    assert_event(
        next(&mut p.ws).await,
        &user,
        "App\\Events\\UserPush",
        user_push(
            "cameras_updated",
            json!({"attached": [], "detached": [cams[1]]}),
        ),
    );

    // Concurrent attaches and detaches of one camera: only the commits that change the set
    // push, so in commit order the events alternate attached/detached and the last one
    // matches what is stored. Out of order, two of a kind would follow each other.
    let cam = cams[2];
    let mut tasks = Vec::new();
    for i in 0..16 {
        let key = if i % 2 == 0 {
            "cameras_to_attach"
        } else {
            "cameras_to_detach"
        };
        let body = json!({ key: [cam] });
        let (s, admin, path) = (&s, admin.clone(), path.clone());
        tasks.push(async move { put(s, &admin, &path, body).await });
    }
    for r in futures_util::future::join_all(tasks).await {
        expect(&r, 200);
    }
    let mut last_attached = false;
    let mut events = 0;
    while let Some(Next::Frame(f)) = next_within(&mut p.ws, Duration::from_millis(500)).await {
        let data: Value = serde_json::from_str(f["data"].as_str().unwrap()).unwrap();
        let attached = data["data"]["data"]["attached"] == json!([cam]);
        assert_ne!(
            attached,
            last_attached,
            "two {} in a row",
            if attached { "attaches" } else { "detaches" }
        );
        last_attached = attached;
        events += 1;
    }
    assert!(events >= 1);
    let stored = s
        .app
        .store
        .account(id)
        .unwrap()
        .unwrap()
        .cameras
        .contains(&cam);
    assert_eq!(stored, last_attached, "the last event is the stored state");
    assert_silent(&mut p, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn refused_changes_push_nothing() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let cams = seed_cameras(&s, 1);
    let special = crate::admin_support::create_special(
        &s,
        &admin,
        "tess",
        json!({"password": CLIENT_PASSWORD, "password_confirmation": CLIENT_PASSWORD}),
    )
    .await;
    let id = special["id"].as_u64().unwrap();
    let (_, token, token_id) = client(&s, "tess").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    let path = format!("{}/{id}", crate::admin_support::SPECIAL);
    // 402: an analytics permission with a camera and an empty pool.
    let r = put(
        &s,
        &admin,
        &path,
        json!({"permissions": [40], "cameras_to_attach": [cams[0]]}),
    )
    .await;
    assert_eq!(r.status, 402, "{:?}", r.body);
    // 422: a camera that does not exist.
    let r = put(&s, &admin, &path, json!({"cameras_to_attach": [999_999]})).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_silent(&mut p, Duration::from_millis(500)).await;
    // The socket is alive: the next accepted change arrives.
    expect(
        &put(&s, &admin, &path, json!({"cameras_to_attach": [cams[0]]})).await,
        200,
    );
    assert_event(
        next(&mut p.ws).await,
        &push_protocol::user_channel(id),
        "App\\Events\\UserPush",
        user_push(
            "cameras_updated",
            json!({"attached": [cams[0]], "detached": []}),
        ),
    );
}

#[tokio::test]
async fn devicehive_socket_changes_push_too() {
    let s = TestServer::start().await;
    let (id, token, token_id) = client(&s, "dora").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    let mut dh = crate::websocket::admin_socket(&s).await;
    // Role 1 → 0 makes the user an administrator: its permission set changes (pushed), and
    // its sessions end for a reason SPEC §9's list does not name (no logout), so the socket
    // closes with 4009 after the event.
    let r = dh_call(
        &mut dh,
        json!({"action": "user/update", "requestId": 1, "userId": id, "user": {"role": 0}}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    assert_event(
        next(&mut p.ws).await,
        &push_protocol::user_channel(id),
        "App\\Events\\UserPush",
        user_push("permissions_updated", json!({})),
    );
    assert_eq!(next(&mut p.ws).await, Next::Closed(4009));
    let _ = dh_socket;
    let _ = create_camera;
}
