//! Brute force (issue 6 item 5, SPEC §3, §7): concurrent guesses against one account get no
//! more password checks than `auth.lockout_threshold`, concurrent guesses from one address no
//! more than `auth.ip_login_limit`, and a login flood against the real binary keeps its peak
//! memory within `argon2.max_concurrent` hashes of `argon2.memory_kib` each.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use vmsd::model::UserType;

use crate::cli::Daemon;
use crate::common::{connector_for, https, Reply, TestServer};

/// Audit entries of `action`, in the whole log.
fn audited(s: &TestServer, action: &str, target: Option<u64>) -> usize {
    let (entries, _) = s.app.store.audit_page(0, 10_000).unwrap();
    entries
        .iter()
        .filter(|e| e.action == action && (target.is_none() || e.target_id == target))
        .count()
}

#[track_caller]
fn assert_too_many(r: &Reply) {
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.body, json!({"message": "Too Many Attempts."}));
    let retry = r.header("retry-after").and_then(|v| v.parse::<u64>().ok());
    assert!(retry.is_some_and(|s| s >= 1), "Retry-After {retry:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_guesses_get_no_more_password_checks_than_the_lockout_threshold() {
    let s = TestServer::start_with(|c| c.auth.ip_login_limit = 100_000).await;
    let threshold = s.app.config.auth.lockout_threshold as usize;
    let target = s.create_account("victim", "victim-password", UserType::User);
    let guesses = (0..50).map(|i| {
        let s = &s;
        async move { s.try_login("victim", &format!("guess-{i}"), &[]).await }
    });
    let replies = join_all(guesses).await;
    let checked = replies.iter().filter(|r| r.status == 422).count();
    for r in replies.iter().filter(|r| r.status != 422) {
        assert_too_many(r);
    }
    assert_eq!(checked, threshold, "wrong-password answers");
    assert_eq!(audited(&s, "login_failed", Some(target.id)), threshold);
    assert_eq!(audited(&s, "lockout", Some(target.id)), 1);
    // The owner's right password waits out the lockout like everyone else.
    assert_too_many(&s.try_login("victim", "victim-password", &[]).await);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_guesses_from_one_address_get_no_more_checks_than_the_ip_limit() {
    let s = TestServer::start().await;
    let limit = s.app.config.auth.ip_login_limit as usize;
    for i in 0..5 {
        s.create_account(&format!("user{i}"), "user-password", UserType::User);
    }
    // Spread over known and unknown logins, so no account's own lockout gets in the way.
    let guesses = (0..50).map(|i| {
        let s = &s;
        async move {
            s.try_login(&format!("user{}", i % 10), "wrong-password", &[])
                .await
        }
    });
    let replies = join_all(guesses).await;
    let checked = replies.iter().filter(|r| r.status == 422).count();
    for r in replies.iter().filter(|r| r.status != 422) {
        assert_too_many(r);
    }
    assert_eq!(checked, limit, "password checks from one address");
    assert_eq!(audited(&s, "login_failed", None), limit);
    assert_too_many(&s.try_login("user0", "user-password", &[]).await);
    s.stop().await;
}

/// `VmHWM` (peak resident memory) or `VmRSS` of a process, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const FLOOD_MEMORY_KIB: u64 = 16 * 1024;
const FLOOD_CONCURRENT: u64 = 2;
/// What besides the hashes a flood may add to the resident set: a TLS session and buffers
/// per connection (64 at once), request tasks, sled's page cache filling with the audit
/// entries the failed logins write, and the allocator's per-thread arenas.
const FLOOD_SLACK_KIB: u64 = 24 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_keeps_argon2_memory_within_max_concurrent_hashes() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("flood.toml");
    std::fs::write(
        &config,
        format!(
            "log = \"warn\"\n[argon2]\nmemory_kib = {FLOOD_MEMORY_KIB}\niterations = 1\n\
             max_concurrent = {FLOOD_CONCURRENT}\nqueue_limit = 64\n\
             [auth]\nip_login_limit = 100000\n"
        ),
    )
    .unwrap();
    let data = work.path().join("data");
    let daemon = Daemon::spawn(work.path(), &config, &data, Some("flood-admin-password"))
        .ready()
        .await;
    let pid = daemon.child.id();
    let connector = connector_for(&data.join("tls/cert.pem"));
    let attempt = |i: usize| {
        let connector = connector.clone();
        let addr = daemon.addr;
        async move {
            let body =
                serde_json::to_vec(&json!({"login": format!("nobody-{i}"), "password": "guess"}))
                    .unwrap();
            let headers = [("content-type", "application/json")];
            https(&connector, addr, "POST", "/api/v1/token", &headers, body)
                .await
                .map(|r| r.status)
        }
    };
    // Warm up: one hash has run, the allocator and the runtime have their working set.
    assert_eq!(attempt(0).await, Some(422));
    let baseline = status_kib(pid, "VmRSS:");
    let started = Instant::now();
    let (mut checked, mut refused) = (0, 0);
    while started.elapsed() < Duration::from_secs(3) {
        for status in join_all((0..64).map(attempt)).await {
            match status {
                Some(422) => checked += 1,
                Some(503) => refused += 1,
                other => panic!("a flood login answered {other:?}"),
            }
        }
    }
    let peak = status_kib(pid, "VmHWM:");
    let bound = baseline + FLOOD_CONCURRENT * FLOOD_MEMORY_KIB + FLOOD_SLACK_KIB;
    println!(
        "login flood: {checked} checked, {refused} refused (503); RSS {baseline} KiB before, \
         peak {peak} KiB, bound {bound} KiB"
    );
    assert!(checked > 10, "the flood never reached the hashes");
    assert!(
        peak <= bound,
        "peak RSS {peak} KiB over {bound} KiB ({baseline} KiB before)"
    );
}
