//! The server loop's limits and lifecycle (issue 2 item 4, SPEC §7): TLS handshake and header
//! read timeouts (measured, while others are served), the connection limit, the bounded
//! argon2 queue (503 + Retry-After), the request timeout, the graceful drain bounded by
//! `shutdown_grace`, durability across a restart, and the first-start admin.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vmsd::model::UserType;

use crate::common::{http_exchange, wait_for, TestServer, ADMIN_PASSWORD};

/// Reads until the peer closes (EOF or a reset) and returns what came before the close;
/// panics if it is still open after `limit`.
#[track_caller]
pub(crate) fn until_closed<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> impl Future<Output = Vec<u8>> + '_ {
    let caller = std::panic::Location::caller();
    async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let read_all = async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        };
        if tokio::time::timeout(limit, read_all).await.is_err() {
            panic!("{caller}: the server kept the connection open for {limit:?}");
        }
        got
    }
}

/// True while `stream` is open with nothing to read.
pub(crate) async fn still_open<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut buf = [0u8; 1];
    tokio::time::timeout(Duration::from_millis(10), stream.read(&mut buf))
        .await
        .is_err()
}

#[track_caller]
pub(crate) fn assert_about(elapsed: Duration, expected: Duration, what: &str) {
    assert!(
        elapsed >= expected - Duration::from_millis(150) && elapsed < expected * 3,
        "{what}: closed after {elapsed:?}, configured {expected:?}"
    );
}

#[tokio::test]
async fn a_client_that_never_says_hello_is_dropped_after_the_handshake_timeout() {
    let s =
        TestServer::start_with(|c| c.limits.tls_handshake_timeout = Duration::from_secs(1)).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    // Meanwhile others are served.
    let r = s.raw("GET", "/healthz", &[], &b""[..]).await;
    assert_eq!(r.status, 200);
    assert!(still_open(&mut silent).await, "dropped too early");
    let got = until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "the server wrote {got:?}");
    assert_about(
        started.elapsed(),
        Duration::from_secs(1),
        "handshake timeout",
    );
    s.stop().await;
}

#[tokio::test]
async fn slow_and_idle_request_heads_are_dropped_after_the_header_read_timeout() {
    let s = TestServer::start_with(|c| c.limits.header_read_timeout = Duration::from_secs(1)).await;
    let started = Instant::now();
    let mut partial = s.tls().await;
    partial.write_all(b"GET /heal").await.unwrap();
    partial.flush().await.unwrap();
    let mut idle = s.tls().await;
    let r = s.raw("GET", "/healthz", &[], &b""[..]).await;
    assert_eq!(r.status, 200);
    assert!(still_open(&mut partial).await, "dropped too early");
    let got = until_closed(&mut partial, Duration::from_secs(5)).await;
    assert_about(
        started.elapsed(),
        Duration::from_secs(1),
        "partial request line",
    );
    // No half-baked non-JSON answer either.
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    let got = until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert_about(started.elapsed(), Duration::from_secs(1), "idle connection");
    s.stop().await;
}

#[tokio::test]
async fn connections_beyond_max_connections_are_closed() {
    let s = TestServer::start_with(|c| c.limits.max_connections = 2).await;
    let mut first = s.tls().await;
    let _second = s.tls().await;
    let refused = s.try_tls().await;
    assert!(refused.is_err(), "a third connection was served");
    // The two admitted connections are served.
    let answer = http_exchange(
        &mut first,
        b"GET /healthz HTTP/1.1\r\nhost: vms.local\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.ends_with("{\"status\":\"ok\"}"), "{answer}");
    // Once one closes, a new connection gets its place.
    drop(first);
    let sp = &s;
    wait_for(
        Duration::from_secs(5),
        "a free connection slot",
        || async move {
            match sp.try_tls().await {
                Ok(mut tls) => http_exchange(
                    &mut tls,
                    b"GET /healthz HTTP/1.1\r\nhost: vms.local\r\nconnection: close\r\n\r\n",
                )
                .await
                .starts_with("HTTP/1.1 200 "),
                Err(_) => false,
            }
        },
    )
    .await;
    s.stop().await;
}

/// Runs `test` on a runtime whose blocking pool has one thread, which the test can jam to
/// keep an admitted password hash from finishing: the hashing queue's state is then known
/// exactly, instead of racing real hashes.
fn with_one_blocking_thread<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test());
}

/// Occupies the only blocking thread until the returned sender is used or dropped.
fn jam_blocking_pool() -> std::sync::mpsc::Sender<()> {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = wait.recv();
    });
    release
}

#[track_caller]
fn assert_unavailable(r: &crate::common::Reply) {
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body, json!({"message": "Service Unavailable."}));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
}

#[test]
fn concurrent_logins_beyond_the_hashing_queue_get_503_with_retry_after() {
    with_one_blocking_thread(|| async {
        let s = TestServer::start_with(|c| {
            c.argon2.max_concurrent = 1;
            c.argon2.queue_limit = 0;
        })
        .await;
        s.create_account("yan", "yan-password", UserType::User);
        let release = jam_blocking_pool();
        let admitted = {
            let a = s.try_login("yan", "yan-password", &[("x-uuid", "a")]);
            let b = s.try_login("yan", "yan-password", &[("x-uuid", "b")]);
            tokio::pin!(a, b);
            // One login holds the only hashing slot and cannot finish while the pool is
            // jammed, so the first answer is the other one's, and it is a 503.
            let (refused, other) = tokio::select! {
                r = &mut a => (r, b),
                r = &mut b => (r, a),
            };
            assert_unavailable(&refused);
            release.send(()).unwrap();
            other.await
        };
        assert_eq!(admitted.status, 200, "{:?}", admitted.body);
        let token = admitted.body["access_token"].as_str().unwrap();
        assert_eq!(s.self_status(token).await, 200);
        s.stop().await;
    });
}

#[test]
fn hashing_queue_refusals_are_not_failed_logins() {
    with_one_blocking_thread(|| async {
        let s = TestServer::start_with(|c| {
            c.argon2.max_concurrent = 1;
            c.argon2.queue_limit = 0;
            c.auth.lockout_threshold = 2;
        })
        .await;
        let zoe = s.create_account("zoe", "zoe-password", UserType::User);
        let token = s.login("zoe", "zoe-password").await;
        let release = jam_blocking_pool();
        // A hash that takes the only slot and waits behind the jam.
        let mut occupant = Box::pin(s.app.hasher.hash("occupant-password".into()));
        assert!(occupant.as_mut().now_or_never().is_none());
        for _ in 0..3 {
            assert_unavailable(&s.try_login("zoe", "zoe-password", &[]).await);
        }
        // A password change needs the hasher too: refused the same way, changing nothing.
        let r = s
            .call(
                "PUT",
                "/api/v1/users/self",
                Some(&token),
                Some(json!({
                    "password": "zoe-new-password",
                    "password_confirmation": "zoe-new-password",
                    "current_password": "zoe-password",
                    "language": "ru",
                })),
            )
            .await;
        assert_unavailable(&r);
        assert_eq!(s.app.store.sessions_of(zoe.id).unwrap().len(), 1);
        release.send(()).unwrap();
        occupant.await.unwrap();
        // Three refusals did not lock the account (threshold 2), nor change it.
        let r = s.try_login("zoe", "zoe-password", &[]).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["user"]["language"], "en");
        s.stop().await;
    });
}

#[test]
fn logins_cut_by_the_request_timeout_do_not_count_against_the_account() {
    with_one_blocking_thread(|| async {
        let s = TestServer::start_with(|c| {
            c.limits.request_timeout = Duration::from_millis(300);
            c.auth.lockout_threshold = 2;
        })
        .await;
        s.create_account("amy", "amy-password", UserType::User);
        let release = jam_blocking_pool();
        // Each login waits for the jammed pool until the request timeout drops it.
        for _ in 0..3 {
            assert_unavailable(&s.try_login("amy", "amy-password", &[]).await);
        }
        release.send(()).unwrap();
        let r = s.try_login("amy", "amy-password", &[]).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        s.stop().await;
    });
}

#[tokio::test]
async fn a_request_body_that_never_ends_is_answered_at_the_request_timeout() {
    let s = TestServer::start_with(|c| c.limits.request_timeout = Duration::from_secs(1)).await;
    s.create_account("abe", "abe-password", UserType::User);
    let token = s.login("abe", "abe-password").await;
    let mut tls = s.tls().await;
    let head = format!(
        "PUT /api/v1/users/self HTTP/1.1\r\nhost: vms.local\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: 17\r\n\r\n{{\"langu"
    );
    let started = Instant::now();
    let answer = http_exchange(&mut tls, head.as_bytes()).await;
    assert_about(started.elapsed(), Duration::from_secs(1), "request timeout");
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: "),
        "{answer}"
    );
    assert!(
        answer.ends_with("{\"message\":\"Service Unavailable.\"}"),
        "{answer}"
    );
    assert_eq!(
        s.get("/api/v1/users/self", &token).await.body["language"],
        "en"
    );
    s.stop().await;
}

/// Sends a request head with `Expect: 100-continue` and waits for the `100 Continue` that
/// hyper sends once the handler reads the body: from then on the request is in flight.
async fn start_request<S>(stream: &mut S, token: &str, body_len: usize)
where
    S: AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let head = format!(
        "PUT /api/v1/users/self HTTP/1.1\r\nhost: vms.local\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {body_len}\r\n\
         expect: 100-continue\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("no 100 Continue")
            .unwrap();
        assert!(n > 0, "closed before 100 Continue");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test]
async fn an_in_flight_request_completes_during_shutdown_and_new_connections_are_refused() {
    let s = TestServer::start_with(|c| c.limits.shutdown_grace = Duration::from_secs(5)).await;
    s.create_account("bea", "bea-password", UserType::User);
    let token = s.login("bea", "bea-password").await;
    let cfg = s.app.config.clone();
    let app = s.app.clone();
    let addr = s.addr;
    let body = br#"{"language":"ru"}"#;
    let mut tls = s.tls().await;
    start_request(&mut tls, &token, body.len()).await;

    let stopped_at = Instant::now();
    let stopping = tokio::spawn(s.stop());
    let a = &app;
    wait_for(
        Duration::from_secs(5),
        "the shutdown to start",
        || async move { a.is_shutting_down() },
    )
    .await;
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    drop(app);

    tls.write_all(body).await.unwrap();
    tls.flush().await.unwrap();
    let answer = until_closed(&mut tls, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("\"language\":\"ru\""), "{answer}");
    let dir = tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the server did not stop")
        .unwrap();
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "waited out the whole grace period although nothing was left"
    );
    // The answered write is durable.
    let s = TestServer::start_again(dir, cfg).await;
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["language"], "ru");
    s.stop().await;
}

#[tokio::test]
async fn shutdown_is_bounded_by_the_grace_period_and_closes_what_is_left() {
    let s = TestServer::start_with(|c| c.limits.shutdown_grace = Duration::from_secs(1)).await;
    s.create_account("cal", "cal-password", UserType::User);
    let token = s.login("cal", "cal-password").await;
    let mut stuck = s.tls().await;
    start_request(&mut stuck, &token, 17).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), s.stop())
        .await
        .expect("stop() hung");
    assert_about(started.elapsed(), Duration::from_secs(1), "shutdown grace");
    // The request that never finished is cut, not left running after the server stopped.
    until_closed(&mut stuck, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn an_acknowledged_write_survives_a_restart() {
    let s = TestServer::start().await;
    s.create_account("dee", "dee-password", UserType::User);
    let token = s.login("dee", "dee-password").await;
    let r = s
        .call(
            "PUT",
            "/api/v1/users/self",
            Some(&token),
            Some(json!({
                "language": "ru",
                "password": "dee-new-password",
                "password_confirmation": "dee-new-password",
                "current_password": "dee-password",
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let s = s.restart().await;
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(me.status, 200, "the session did not survive: {:?}", me.body);
    assert_eq!(me.body["language"], "ru");
    assert_eq!(s.try_login("dee", "dee-password", &[]).await.status, 422);
    s.login("dee", "dee-new-password").await;
    s.stop().await;
}

#[tokio::test]
async fn the_first_start_creates_admin_once() {
    let s = TestServer::start().await;
    assert_eq!(s.app.store.account_count(), 1);
    assert!(!s.dir.path().join("initial-admin-password").exists());
    let token = s.admin_token().await;
    let r = s
        .call(
            "PUT",
            "/api/admin/v1/users/self/update-password",
            Some(&token),
            Some(json!({
                "old_password": ADMIN_PASSWORD,
                "password": "changed-admin-password",
                "password_confirmation": "changed-admin-password",
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A restart finds the admin and leaves it alone.
    let s = s.restart().await;
    assert_eq!(s.app.store.account_count(), 1);
    assert_eq!(s.try_admin_login("admin", ADMIN_PASSWORD).await.status, 422);
    assert_eq!(
        s.try_admin_login("admin", "changed-admin-password")
            .await
            .status,
        200
    );
    s.stop().await;
}
