//! The socket limits of the WebSocket API (SPEC §6): fairness under a flood, frame size, pings
//! and idle close, caps per account and in total, and closing at shutdown.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use vmsd::model::UserType;
use vmsd::sockets::SocketTiming;

use crate::common::{wait_for, TestServer};
use crate::websocket::*;

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
    // SPEC §7 `limits.ws_sockets_per_account`, set below its default of 16.
    const CAP: usize = 3;
    let s = TestServer::start_with(|c| c.limits.ws_sockets_per_account = CAP).await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let mut sockets = Vec::new();
    for _ in 0..CAP {
        sockets.push(socket_with(&s, &token).await);
    }
    assert_eq!(s.app.sockets.account_count(alice.id), CAP);
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
    // `token` never binds the socket, so the cap never refuses it (SPEC §6): the extra socket
    // logs in and gets tokens, and still holds no place.
    let r = call(
        &mut extra,
        json!({"action": "token", "requestId": "t", "login": "alice", "password": "alice-password"}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    assert!(
        r["accessToken"].as_str().is_some_and(|t| !t.is_empty()),
        "{r}"
    );
    assert_eq!(s.app.sockets.account_count(alice.id), CAP);
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
        s.app.sockets.account_count(alice.id) < CAP
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
