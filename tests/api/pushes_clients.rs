//! The real Pusher clients against the daemon (SPEC §9, issue 17 item 5): pusher-js 8.6.0
//! under Node and Pysher 1.0.8, run as child processes from `tests/clients/` (see its
//! README), each over TLS trusting the daemon's self-signed certificate, authorizing
//! `private-user.{id}` and `private-token.{id}` through `/api/v1/broadcasting/auth`, and
//! receiving `cameras_updated`, `permissions_updated` and `logout` after admin REST calls.
//! pusher-js must then stay disconnected (no reconnect loop on 4009); Pysher reconnects after
//! any close by design, so only the close code it reports is checked.
//!
//! A missing Node, pusher-js or Pysher fails these tests unless `VMSD_SKIP_REAL_CLIENTS=1`.
//! Every child is bounded (`CLIENT_TIMEOUT_SECS`, the test's own deadlines) and killed when
//! the test ends, however it ends.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use vmsd::push_protocol;

use crate::admin_support::{delete, expect, put, seed_cameras, USERS};
use crate::common::{clients_dir, skip_requested, TestServer};
use crate::pushes::client;

fn skip_real_clients() -> bool {
    skip_requested("VMSD_SKIP_REAL_CLIENTS")
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    PusherJs,
    Pysher,
}

/// Whether the client's runtime and library are installed; panics (fails the test) when
/// they are not, unless skipping was asked for.
async fn available(kind: Kind) -> bool {
    let (program, args): (&str, Vec<&str>) = match kind {
        Kind::PusherJs => (
            "node",
            vec![
                "-e",
                "import('pusher-js').then(() => process.exit(0), () => process.exit(1))",
            ],
        ),
        Kind::Pysher => ("python3", vec!["-c", "import pysher, requests"]),
    };
    let ok = Command::new(program)
        .args(&args)
        .current_dir(clients_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            skip_real_clients(),
            "{kind:?} is not installed (run `npm ci` in tests/clients and \
             `pip install -r tests/clients/requirements.txt`), or set VMSD_SKIP_REAL_CLIENTS=1"
        );
        eprintln!("skipping {kind:?}: not installed and VMSD_SKIP_REAL_CLIENTS=1");
    }
    ok
}

/// A running client and what it printed so far.
struct RealClient {
    kind: Kind,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    seen: Vec<Value>,
}

impl RealClient {
    fn spawn(kind: Kind, s: &TestServer, token: &str, channels: &[String]) -> RealClient {
        let (program, script) = match kind {
            Kind::PusherJs => ("node", "pusher_js_client.mjs"),
            Kind::Pysher => ("python3", "pysher_client.py"),
        };
        let mut child = Command::new(program)
            .arg(clients_dir().join(script))
            .args(["127.0.0.1", &s.addr.port().to_string(), "key", token])
            .args(channels)
            .current_dir(clients_dir())
            .env("VMSD_CA", s.dir.path().join("tls/cert.pem"))
            .env("CLIENT_TIMEOUT_SECS", "60")
            .env("CLIENT_RECONNECT_SECS", "30")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stdout = child.stdout.take().unwrap();
        RealClient {
            kind,
            stdin: child.stdin.take(),
            child,
            lines: BufReader::new(stdout).lines(),
            seen: Vec::new(),
        }
    }

    /// Reads lines until one matches `want`; panics after `limit` or when the client exits.
    async fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(_) => panic!(
                    "{:?} ended before {what}; it printed {:#?}",
                    self.kind, self.seen
                ),
                Err(_) => panic!(
                    "{:?}: no {what} within {limit:?}; it printed {:#?}",
                    self.kind, self.seen
                ),
            };
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            self.seen.push(value.clone());
            if want(&value) {
                return value;
            }
        }
    }

    /// Every line printed within `limit`.
    async fn lines_for(&mut self, limit: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut out = Vec::new();
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout_at(deadline, self.lines.next_line()).await
        {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                self.seen.push(v.clone());
                out.push(v);
            }
        }
        out
    }
}

impl Drop for RealClient {
    fn drop(&mut self) {
        // Closing stdin ends the script (and pusher-js's re-executed child, which shares it);
        // the kill covers a script that hangs.
        self.stdin.take();
        let _ = self.child.start_kill();
    }
}

fn is_event(line: &Value, channel: &str, event: &str, subject: &str) -> bool {
    line["kind"] == "event"
        && line["channel"] == channel
        && line["event"] == event
        && line["data"]["subject"] == subject
}

async fn real_client_round_trip(kind: Kind) {
    if !available(kind).await {
        return;
    }
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let cams = seed_cameras(&s, 1);
    let login = format!("real-{kind:?}").to_lowercase();
    let (id, token, token_id) = client(&s, &login).await;
    let user = push_protocol::user_channel(id);
    let token_channel = push_protocol::token_channel(&token_id);
    let mut c = RealClient::spawn(kind, &s, &token, &[user.clone(), token_channel.clone()]);
    let limit = Duration::from_secs(20);
    for channel in [&user, &token_channel] {
        c.wait_for(&format!("subscribed {channel}"), limit, |l| {
            l["kind"] == "subscribed" && l["channel"] == *channel
        })
        .await;
    }
    let path = format!("{USERS}/{id}");
    expect(
        &put(&s, &admin, &path, json!({"cameras_to_attach": [cams[0]]})).await,
        200,
    );
    let line = c
        .wait_for("cameras_updated", limit, |l| {
            is_event(l, &user, "App\\Events\\UserPush", "cameras_updated")
        })
        .await;
    assert_eq!(
        line["data"]["data"]["data"],
        json!({"attached": [cams[0]], "detached": []})
    );
    expect(
        &put(&s, &admin, &path, json!({"permissions": [9]})).await,
        200,
    );
    c.wait_for("permissions_updated", limit, |l| {
        is_event(l, &user, "App\\Events\\UserPush", "permissions_updated")
    })
    .await;
    expect(&delete(&s, &admin, &path).await, 200);
    c.wait_for("logout", limit, |l| {
        is_event(l, &token_channel, "App\\Events\\TokenPush", "logout")
    })
    .await;
    c.wait_for("the 4009 close", limit, |l| {
        l["kind"] == "closed" && l["code"] == 4009
    })
    .await;
    if let Kind::PusherJs = kind {
        // 4009 is in 4000–4099: pusher-js disconnects for good instead of reconnecting.
        // The state change may come before or after the close line.
        let ended = |l: &Value| {
            l["kind"] == "state" && (l["state"] == "disconnected" || l["state"] == "unavailable")
        };
        if !c.seen.iter().any(ended) {
            c.wait_for("state disconnected", limit, ended).await;
        }
        let after = c.lines_for(Duration::from_secs(3)).await;
        assert!(
            !after.iter().any(|l| l["kind"] == "state"
                && (l["state"] == "connecting" || l["state"] == "connected")),
            "pusher-js reconnected after 4009: {after:#?}"
        );
    }
}

#[tokio::test]
async fn pusher_js_receives_every_event_and_stays_disconnected_after_logout() {
    real_client_round_trip(Kind::PusherJs).await;
}

#[tokio::test]
async fn pysher_receives_every_event_and_the_4009_close() {
    real_client_round_trip(Kind::Pysher).await;
}
