//! Secrets (issue 6 item 8, SPEC §1, §3): a full session against the real binary logging at
//! `trace` — admin login, user creation, client login, a wrong guess, a self password change,
//! a WebSocket `token` + `authenticate` + password change, an admin password change, logouts —
//! leaves no password, token, token hash or argon2 hash (nor its salt or digest) in the log;
//! and the data dir keeps other local users out even when it was created world-readable.
//!
//! Covered elsewhere: tokens and passwords stored only as hashes (sessions.rs
//! `tokens_and_passwords_are_stored_only_as_hashes`), the initial admin password file and the
//! generated key at 0600 (cli.rs `serve_takes_flags_over_the_file_and_writes_the_first_admin_password`),
//! backup files at 0600 (recovery.rs), argon2 parameters bounded before verifying (src/password.rs
//! `stored_parameters_are_bounded_and_garbage_fails`).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use vmsd::auth::hash_token;
use vmsd::store::Store;

use crate::cli::Daemon;
use crate::common::connector_for;

const ADMIN_PASSWORD: &str = "Secret-Admin-Pass-1";
const ADMIN_PASSWORD_2: &str = "Secret-Admin-Pass-2";
const USER_PASSWORD: &str = "Secret-User-Pass-1";
const USER_PASSWORD_2: &str = "Secret-User-Pass-2";
const USER_PASSWORD_3: &str = "Secret-User-Pass-3";
const WRONG_GUESS: &str = "Secret-Wrong-Guess";

/// One JSON request/reply over a WebSocket.
async fn ws_call<S>(ws: &mut S, frame: Value) -> Value
where
    S: SinkExt<Message>
        + StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    ws.send(Message::text(frame.to_string())).await.unwrap();
    loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

fn token_of(r: &crate::common::Reply) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_full_session_logged_at_trace_leaves_no_secret_in_the_log() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("trace.toml");
    std::fs::write(
        &config,
        "log = \"trace\"\n[argon2]\nmemory_kib = 256\niterations = 1\n",
    )
    .unwrap();
    let data = work.path().join("data");
    let mut daemon = Daemon::spawn(work.path(), &config, &data, Some(ADMIN_PASSWORD))
        .ready()
        .await;

    let admin = token_of(&daemon.admin_login(ADMIN_PASSWORD).await);
    let r = daemon
        .call(
            "POST",
            "/api/admin/v1/users",
            Some(&admin),
            Some(json!({"login": "sam", "password": USER_PASSWORD, "password_confirmation": USER_PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let login = |password: &str| json!({"login": "sam", "password": password});
    let r = daemon
        .call("POST", "/api/v1/token", None, Some(login(WRONG_GUESS)))
        .await;
    assert_eq!(r.status, 422);
    let client = token_of(
        &daemon
            .call("POST", "/api/v1/token", None, Some(login(USER_PASSWORD)))
            .await,
    );
    // SPEC §9: where the push socket is, and a channel signature for the client's socket.
    let mut push_replies = Vec::new();
    push_replies.push(daemon.call("GET", "/api/v1/wsurl", None, None).await);
    let sam_id = daemon
        .call("GET", "/api/v1/users/self", Some(&client), None)
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    let r = daemon
        .call(
            "POST",
            "/api/v1/broadcasting/auth",
            Some(&client),
            Some(
                json!({"socket_id": "1234.1234", "channel_name": format!("private-user.{sam_id}")}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    push_replies.push(r);
    let r = daemon
        .call(
            "PUT",
            "/api/v1/users/self",
            Some(&client),
            Some(
                json!({"password": USER_PASSWORD_2, "password_confirmation": USER_PASSWORD_2,
                        "current_password": USER_PASSWORD}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Video (SPEC §8): a stream token for sam's camera, checked by the media hook in both
    // shapes, allowed and refused (decisions are logged at debug, never with the token).
    let r = daemon
        .call(
            "POST",
            "/api/admin/v1/cameras",
            Some(&admin),
            Some(json!({"name": "door"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let camera = r.body["id"].as_u64().unwrap();
    let r = daemon
        .call(
            "PUT",
            &format!("/api/admin/v1/users/{sam_id}"),
            Some(&admin),
            Some(json!({"cameras_to_attach": [camera]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = daemon
        .call(
            "GET",
            &format!("/api/v1/cameras/{camera}/streams"),
            Some(&client),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let stream_token = r.body["url"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let hook = hook_addr(&daemon.log());
    let body = json!({"action": "read", "path": format!("cam{camera}"), "token": "",
                      "password": "", "query": format!("token={stream_token}")})
    .to_string();
    for (request, status) in [
        (
            format!("POST /media/auth HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()),
            "200",
        ),
        (
            format!("GET /media/auth HTTP/1.1\r\nhost: x\r\nx-original-uri: /cam999/index.m3u8?token={stream_token}\r\nconnection: close\r\n\r\n"),
            "403",
        ),
    ] {
        let mut tcp = TcpStream::connect(hook).await.unwrap();
        let answer = crate::common::http_exchange(&mut tcp, request.as_bytes()).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
    }

    // The WebSocket: a token for sam, the socket bound to it, a password change through it.
    let tcp = TcpStream::connect(daemon.addr).await.unwrap();
    let tls = connector_for(&data.join("tls/cert.pem"))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/websocket", tls)
        .await
        .unwrap();
    let r = ws_call(
        &mut ws,
        json!({"action": "token", "login": "sam", "password": USER_PASSWORD_2}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    let first_socket_token = r["accessToken"].as_str().unwrap().to_owned();
    let refresh_token = r["refreshToken"].as_str().unwrap().to_owned();
    // The DeviceHive refresh (SPEC §6): a new access token for the session.
    let r = ws_call(
        &mut ws,
        json!({"action": "token/refresh", "refreshToken": refresh_token}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    let socket_token = r["accessToken"].as_str().unwrap().to_owned();
    let r = ws_call(
        &mut ws,
        json!({"action": "authenticate", "token": socket_token}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    let r = ws_call(
        &mut ws,
        json!({"action": "user/updateCurrent", "user": {"password": USER_PASSWORD_3}}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    drop(ws);

    let r = daemon
        .call(
            "PUT",
            "/api/admin/v1/users/self/update-password",
            Some(&admin),
            Some(
                json!({"old_password": ADMIN_PASSWORD, "password": ADMIN_PASSWORD_2,
                        "password_confirmation": ADMIN_PASSWORD_2}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for (path, token) in [
        ("/api/v1/logout", &socket_token),
        ("/api/admin/v1/auth/logout", &admin),
    ] {
        assert_eq!(
            daemon.call("POST", path, Some(token), None).await.status,
            200,
            "{path}"
        );
    }
    assert_eq!(daemon.terminate().await.code(), Some(0));
    let log = daemon.log();
    // Logging really was at trace: per-request lines and the session's events are there.
    for needle in [
        "request served",
        "logged in",
        "changed their password",
        "updated over WebSocket",
        "refreshed",
        "media hook decision",
    ] {
        assert!(
            log.contains(needle),
            "{needle:?} is not in the log; was it at trace?\n{log}"
        );
    }

    let store = Store::open(&data, 1 << 20).unwrap();
    let mut secrets: Vec<(String, String)> = [
        ADMIN_PASSWORD,
        ADMIN_PASSWORD_2,
        USER_PASSWORD,
        USER_PASSWORD_2,
        USER_PASSWORD_3,
        WRONG_GUESS,
    ]
    .iter()
    .map(|p| ("a password".to_owned(), (*p).to_owned()))
    .collect();
    for token in [
        &admin,
        &client,
        &first_socket_token,
        &refresh_token,
        &socket_token,
        &stream_token,
    ] {
        secrets.push(("a token".into(), token.clone()));
        secrets.push(("a token hash".into(), hex::encode(hash_token(token))));
    }
    for account in store.accounts() {
        let hash = account.unwrap().password_hash;
        // `$argon2id$v=19$m=..,t=..,p=..$<salt>$<digest>`: the whole string and each secret part.
        let parts: Vec<&str> = hash.split('$').collect();
        secrets.push(("an argon2 hash".into(), hash.clone()));
        secrets.push(("an argon2 salt".into(), parts[4].to_owned()));
        secrets.push(("an argon2 digest".into(), parts[5].to_owned()));
    }
    let push_secret = store
        .secret_or_insert(vmsd::app::PUSH_APP_SECRET, b"absent")
        .unwrap();
    assert!(push_secret.len() >= 32);
    for reply in &push_replies {
        assert!(
            !String::from_utf8_lossy(&reply.raw).contains(&hex::encode(&push_secret)),
            "push.app_secret in a response"
        );
    }
    secrets.push((
        "push.app_secret".into(),
        String::from_utf8_lossy(&push_secret).into_owned(),
    ));
    assert!(secrets.len() >= 6 + 6 + 6, "{} secrets", secrets.len());
    for (what, secret) in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{what} is in the log: {secret}"
        );
        // Frame and buffer dumps (a dependency's trace output) show bytes as hex.
        let hex = hex::encode(secret);
        assert!(!log.contains(&hex), "{what} is in the log as hex: {secret}");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_database_is_private_even_in_a_world_readable_data_dir() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("small.toml");
    std::fs::write(&config, "[argon2]\nmemory_kib = 256\niterations = 1\n").unwrap();
    // As systemd's StateDirectory= makes it by default.
    let data = work.path().join("data");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&data)
        .unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut daemon = Daemon::spawn(work.path(), &config, &data, None)
        .ready()
        .await;
    assert_eq!(daemon.terminate().await.code(), Some(0));

    assert_eq!(mode(&data.join("db")), 0o700, "the database directory");
    assert_eq!(mode(&data.join("tls")), 0o700, "the TLS directory");
    assert_eq!(mode(&data.join("tls/key.pem")), 0o600, "the private key");
    assert_eq!(
        mode(&data.join("initial-admin-password")),
        0o600,
        "the initial password"
    );
    // Every file holding secrets sits in a directory only the owner may enter, or is 0600.
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let private = mode(&path) & 0o077 == 0
                || path
                    .ancestors()
                    .take_while(|a| *a != data)
                    .any(|a| a != path && mode(a) & 0o077 == 0);
            let public_by_design = path.ends_with("tls/cert.pem") || path == data.join("tls");
            assert!(
                private || public_by_design || path.is_dir(),
                "{} is readable by others",
                path.display()
            );
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    // A fresh data dir is private as a whole.
    let fresh = work.path().join("fresh");
    let mut daemon = Daemon::spawn(work.path(), &config, &fresh, None)
        .ready()
        .await;
    assert_eq!(daemon.terminate().await.code(), Some(0));
    assert_eq!(mode(&fresh), 0o700);
}

/// Where the daemon's media hook listens (it was started with `--hook-listen 127.0.0.1:0`),
/// from its start-up line.
fn hook_addr(log: &str) -> std::net::SocketAddr {
    let (_, rest) = log
        .split_once("media hook on http://")
        .expect("the start-up line names the hook");
    rest.split('/').next().unwrap().parse().unwrap()
}
