//! The official DeviceHive Python client against the daemon (SPEC §6, issue 18): devicehive
//! 2.1.6 from PyPI, unpatched, in the virtualenv `.ci/run` makes (`target/dh-venv`, pinned by
//! `tests/clients/devicehive-requirements.txt`), running `tests/clients/devicehive_client.py`
//! phase by phase over `wss://` and trusting the daemon's self-signed certificate through
//! `WEBSOCKET_CLIENT_CA_BUNDLE`. The script asserts every call's result; this test checks
//! what each phase left behind over REST (and a raw socket where REST does not show it).
//!
//! A missing virtualenv fails the test unless `VMSD_SKIP_REAL_CLIENTS=1`, as the Pusher
//! clients do (`pushes_clients`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::Command;

use crate::common::{clients_dir, skip_requested, TestServer, ADMIN_PASSWORD};
use crate::websocket::{call, connect};

/// `auth.client_token_ttl` of the test: the user phase waits it out.
const ACCESS_TTL_SECS: u64 = 5;

/// The virtualenv's python: `VMSD_DH_VENV` or `target/dh-venv`.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("VMSD_DH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dh-venv"));
    venv.join("bin/python")
}

fn script() -> PathBuf {
    clients_dir().join("devicehive_client.py")
}

/// Whether the library is installed; panics (fails the test) when it is not, unless
/// skipping was asked for.
async fn available() -> bool {
    let ok = Command::new(venv_python())
        .args([
            "-c",
            "import devicehive, websocket; from importlib.metadata import version; \
             assert version('devicehive') == '2.1.6'",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            skip_requested("VMSD_SKIP_REAL_CLIENTS"),
            "the DeviceHive client is not installed at {}: run .ci/run's install lines \
             (`python3 -m venv target/dh-venv && target/dh-venv/bin/pip install -r \
             tests/clients/devicehive-requirements.txt`), or set VMSD_SKIP_REAL_CLIENTS=1",
            venv_python().display()
        );
        eprintln!("skipping the DeviceHive client: not installed and VMSD_SKIP_REAL_CLIENTS=1");
    }
    ok
}

/// Runs one phase of the script to its end; panics with its output unless it exited 0 after
/// printing `done`. Returns its JSON lines by step.
async fn phase(s: &TestServer, args: &[&str]) -> Vec<Value> {
    let url = format!("wss://127.0.0.1:{}/websocket", s.addr.port());
    let run = Command::new(venv_python())
        .arg(script())
        .arg(&url)
        .args(args)
        .env(
            "WEBSOCKET_CLIENT_CA_BUNDLE",
            s.dir.path().join("tls/cert.pem"),
        )
        .env("DH_ACCESS_TTL_SECS", ACCESS_TTL_SECS.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("phase {args:?} did not end within 120 s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        out.status.success() && lines.last().is_some_and(|l| l["step"] == "done"),
        "phase {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    lines
}

fn step<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {lines:#?}"))
}

/// A socket `token` login, as the library's own first frame: the access and refresh tokens.
async fn socket_tokens(s: &TestServer, login: &str, password: &str) -> (String, String) {
    let mut ws = connect(s).await;
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 1, "login": login, "password": password}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    (
        r["accessToken"].as_str().unwrap().to_owned(),
        r["refreshToken"].as_str().unwrap().to_owned(),
    )
}

/// The audit actions about account `id` and their fields, oldest first, from the REST audit
/// log; failed logins (the test's own probes) left out.
async fn audit_actions(s: &TestServer, admin: &str, id: u64) -> Vec<(String, Vec<String>)> {
    let r = s.get("/api/admin/v1/audit?per_page=500", admin).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut found: Vec<(String, Vec<String>)> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target_id"] == json!(id) && e["action"] != "login_failed")
        .map(|e| {
            let fields = e["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect();
            (e["action"].as_str().unwrap().to_owned(), fields)
        })
        .collect();
    found.reverse();
    found
}

#[tokio::test]
async fn the_official_python_client_works_unpatched() {
    if !available().await {
        return;
    }
    let s = TestServer::start_with(|c| {
        c.auth.client_token_ttl = Duration::from_secs(ACCESS_TTL_SECS);
        c.auth.refresh_token_ttl = Duration::from_secs(3600);
    })
    .await;
    let admin_rest = s.admin_token().await;
    let admin_id = s.app.store.account_by_login("admin").unwrap().unwrap().id;

    // --- The administrator's phase.
    let lines = phase(&s, &["admin", "admin", ADMIN_PASSWORD]).await;
    let info = &step(&lines, "info")["info"];
    let rest_url = info["rest_server_url"].as_str().unwrap();
    assert_eq!(
        rest_url,
        format!("https://127.0.0.1:{}/api/v1", s.addr.port())
    );
    assert_eq!(info["api_version"], "3.5.0");
    // restServerUrl is vmsd's REST base: its own endpoints answer under it.
    let path = rest_url.split_once(&s.addr.port().to_string()).unwrap().1;
    let r = s.call("GET", &format!("{path}/wsurl"), None, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s.get(&format!("{path}/users/self"), &admin_rest).await;
    assert_eq!(r.status, 200);

    let created = step(&lines, "created");
    let alice_id = created["alice"]["id"].as_u64().unwrap();
    let bob_id = created["bob"]["id"].as_u64().unwrap();
    let carol_id = created["carol"]["id"].as_u64().unwrap();
    assert_eq!(step(&lines, "removed")["bob_id"], json!(bob_id));

    // Over REST: alice is a regular user, bob (promoted, then removed) is gone, carol is a
    // disabled administrator.
    let r = s
        .get(&format!("/api/admin/v1/users/{alice_id}"), &admin_rest)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (&r.body["login"], &r.body["user_type"]),
        (&json!("dh-alice"), &json!("user"))
    );
    let r = s
        .get(&format!("/api/admin/v1/users/{bob_id}"), &admin_rest)
        .await;
    assert_eq!(r.status, 404);
    let admins = s
        .get("/api/admin/v1/admins?per_page=100", &admin_rest)
        .await;
    assert_eq!(admins.status, 200);
    let admin_logins: Vec<&str> = admins.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["login"].as_str().unwrap())
        .collect();
    assert!(admin_logins.contains(&"dh-carol"), "{admin_logins:?}");
    assert!(!admin_logins.contains(&"dh-bob"), "{admin_logins:?}");
    crate::common::assert_field_error(
        &s.try_admin_login("dh-carol", "carol-password-1").await,
        "login",
        &["This account is disabled."],
    );
    // The admin set alice's password: the new one logs in at REST, the first does not.
    assert_eq!(
        s.try_login("dh-alice", "alice-password-1", &[])
            .await
            .status,
        422
    );
    s.login("dh-alice", "alice-password-2").await;
    // Every change audited like its REST twin, by the admin.
    assert_eq!(
        audit_actions(&s, &admin_rest, alice_id).await,
        [
            (
                "user_created".to_owned(),
                vec![
                    "login".to_owned(),
                    "name".into(),
                    "password".into(),
                    "data".into()
                ]
            ),
            ("ws_user_update".to_owned(), vec!["password".to_owned()]),
        ]
    );
    let bob_actions: Vec<String> = audit_actions(&s, &admin_rest, bob_id)
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        bob_actions,
        ["user_created", "ws_user_update", "admin_deleted"]
    );
    let carol_actions = audit_actions(&s, &admin_rest, carol_id).await;
    assert_eq!(carol_actions[0].0, "admin_created");
    assert_eq!(
        carol_actions[1],
        ("ws_user_update".to_owned(), vec!["status".to_owned()])
    );
    let by_admin = s.app.store.account_events(alice_id, 10).unwrap();
    assert!(by_admin
        .iter()
        .filter(|e| e.action != "login_failed")
        .all(|e| e.actor_id == Some(admin_id)));
    // Two library logins from one device (X-UUID): one session, the second one.
    let again = step(&lines, "admin_again");
    let device_sessions: Vec<_> = s
        .app
        .store
        .sessions_of(admin_id)
        .unwrap()
        .into_iter()
        .filter(|(_, session)| session.device.as_deref() == Some("dh-admin-device"))
        .collect();
    assert_eq!(device_sessions.len(), 1);
    assert_eq!(
        s.self_status(again["first_access_token"].as_str().unwrap())
            .await,
        401
    );
    assert_eq!(
        s.self_status(again["access_token"].as_str().unwrap()).await,
        200
    );

    // --- alice's own phase: data, password, and the library's refresh on 401.
    let lines = phase(
        &s,
        &["user", "dh-alice", "alice-password-2", "alice-password-3"],
    )
    .await;
    let refreshed = step(&lines, "refreshed_on_401");
    assert_eq!(refreshed["user"]["data"], json!({"team": "b"}));
    let expired = refreshed["expired_access_token"].as_str().unwrap();
    let current = refreshed["access_token"].as_str().unwrap();
    assert_eq!(s.self_status(expired).await, 401);
    assert_eq!(s.self_status(current).await, 200);
    let alice = s.app.store.account(alice_id).unwrap().unwrap();
    assert_eq!(alice.data, Some(json!({"team": "b"})));
    assert_eq!((alice.user_type.role(), alice.status), (1, 0));
    assert_eq!(
        s.try_login("dh-alice", "alice-password-2", &[])
            .await
            .status,
        422
    );
    s.login("dh-alice", "alice-password-3").await;
    let alice_actions = audit_actions(&s, &admin_rest, alice_id).await;
    assert_eq!(
        alice_actions[2..],
        [
            ("ws_user_update".to_owned(), vec!["data".to_owned()]),
            ("ws_user_update".to_owned(), vec!["password".to_owned()]),
            // Her own password change ended her other (REST) session.
            ("session_revoked".to_owned(), vec!["session".to_owned()]),
        ]
    );

    // --- Access token, then refresh token, also after the access token expired.
    let (access, refresh) = socket_tokens(&s, "dh-alice", "alice-password-3").await;
    let lines = phase(&s, &["access", &access, "dh-alice"]).await;
    assert_eq!(step(&lines, "access")["user"]["id"], json!(alice_id));
    tokio::time::sleep(Duration::from_millis(ACCESS_TTL_SECS * 1000 + 1100)).await;
    assert_eq!(s.self_status(&access).await, 401);
    let lines = phase(&s, &["expired", &access]).await;
    assert_eq!(step(&lines, "expired")["error"], "Invalid credentials");
    let lines = phase(&s, &["refresh", &refresh, "dh-alice"]).await;
    let new_access = step(&lines, "refresh")["access_token"].as_str().unwrap();
    assert_ne!(new_access, access);
    // The refresh token did not rotate: a second run works with the same one. Each refresh
    // ends the access token before it.
    let lines = phase(&s, &["refresh", &refresh, "dh-alice"]).await;
    let newest = step(&lines, "refresh")["access_token"].as_str().unwrap();
    assert_eq!(s.self_status(newest).await, 200);
    assert_eq!(s.self_status(new_access).await, 401);

    // --- An admin disables alice while she is connected: the library's 401 path gives up.
    let lines = phase(
        &s,
        &["disabled", "dh-alice", "alice-password-3", &admin_rest],
    )
    .await;
    assert_eq!(step(&lines, "disabled")["error"], "Invalid credentials");
    crate::common::assert_field_error(
        &s.try_login("dh-alice", "alice-password-3", &[]).await,
        "login",
        &["This account is disabled."],
    );
    assert_eq!(s.self_status(newest).await, 401);
    // Her refresh token ended with her sessions.
    let mut ws = connect(&s).await;
    let r = call(
        &mut ws,
        json!({"action": "token/refresh", "requestId": 1, "refreshToken": refresh}),
    )
    .await;
    assert_eq!(
        r,
        json!({"action": "token/refresh", "requestId": 1, "status": "error", "code": 401,
               "error": "Invalid credentials"})
    );
    let last = audit_actions(&s, &admin_rest, alice_id).await;
    assert!(
        last.contains(&("ws_user_update".to_owned(), vec!["status".to_owned()])),
        "{last:?}"
    );
    s.stop().await;
}
