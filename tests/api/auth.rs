//! Logging in, rule by rule (SPEC §3, issue 2 item 6): both login routes and their answers,
//! identical failures, disabled/expired accounts, lockout and per-IP throttling. The helpers
//! here are shared with `sessions`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vmsd::model::{now, UserType, STATUS_DISABLED, STATUS_LOCKED};
use vmsd::permissions::PERMISSIONS;

use crate::common::{
    assert_same_shape, is_lower_hex, parse_resource_time, seed_json, wait_for, Reply, TestServer,
    ADMIN_PASSWORD,
};

const BAD_CREDENTIALS: &str = "These credentials do not match our records.";

pub(crate) fn bad_credentials() -> Value {
    json!({"message": "The given data was invalid.", "errors": {"login": [BAD_CREDENTIALS]}})
}

#[track_caller]
pub(crate) fn assert_reply(r: &Reply, status: u16, body: &Value) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(&r.body, body);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[track_caller]
fn assert_too_many(r: &Reply) {
    assert_reply(r, 429, &json!({"message": "Too Many Attempts."}));
    let retry: u64 = r
        .header("retry-after")
        .expect("429 without Retry-After")
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(retry >= 1, "Retry-After {retry}");
}

pub(crate) fn token_of(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

pub(crate) fn token_id_of(r: &Reply) -> String {
    r.body["user"]["access_token_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Tests that log in many times from 127.0.0.1 lift the per-IP throttle out of the way.
pub(crate) async fn server() -> TestServer {
    TestServer::start_with(|c| c.auth.ip_login_limit = 10_000).await
}

/// Two client-side permissions from the catalogue, so permission items are rendered.
fn client_permissions() -> BTreeSet<u64> {
    PERMISSIONS
        .iter()
        .filter(|p| p.user_type == UserType::User)
        .take(2)
        .map(|p| p.id)
        .collect()
}

#[tokio::test]
async fn client_login_answers_the_seed_user_and_a_token() {
    let s = server().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let perms = client_permissions();
    s.edit_account(alice.id, |a| a.permissions = perms.clone());
    let headers = [
        ("x-uuid", "device-1"),
        ("x-client", "ios-cctv"),
        ("user-agent", "vmsd-tests/1"),
    ];
    let r = s.try_login("alice", "alice-password", &headers).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let user = &r.body["user"];
    match seed_json("000") {
        Some(seed) => assert_same_shape(&seed, user, "user"),
        None => println!("note: seed 000 not found next to the repository; shape check skipped"),
    }
    assert_eq!(user["id"], alice.id);
    assert_eq!(user["login"], "alice");
    assert_eq!(user["name"], "alice");
    assert_eq!(user["parent_id"], Value::Null);
    assert_eq!(user["language"], "en");
    assert_eq!(user["can_update_password"], true);
    let got: BTreeSet<u64> = user["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(got, perms);
    for p in user["permissions"].as_array().unwrap() {
        let known = PERMISSIONS
            .iter()
            .find(|c| Some(c.id) == p["id"].as_u64())
            .unwrap();
        assert_eq!(p["name"], known.name);
    }
    let pools: Vec<&str> = user["analytic_license"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["type"].as_str().unwrap())
        .collect();
    assert_eq!(pools, ["analytic_l1", "analytic_l2", "analytic_l3"]);
    let token = token_of(&r);
    // Opaque, at least 256 bits of randomness.
    assert!(
        is_lower_hex(&token, token.len()) && token.len() >= 64,
        "{token}"
    );
    let token_id = token_id_of(&r);
    assert!(is_lower_hex(&token_id, 80), "access_token_id {token_id}");

    // The token works, and names the session that was just created.
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["access_token_id"], token_id.as_str());
    let sessions = s.get("/api/v1/sessions", &token).await;
    assert_eq!(
        sessions.body,
        json!([{
            "id": token_id,
            "online": true,
            "last": sessions.body[0]["last"],
            "user_agent": "vmsd-tests/1",
            "client": "ios-cctv",
            "ip": "127.0.0.1",
            "is_current": true,
        }])
    );
    let last = sessions.body[0]["last"].as_i64().unwrap();
    assert!((now() - last).abs() < 60, "last {last}");

    // Every login is a new token with a new public id.
    let again = s.try_login("alice", "alice-password", &[]).await;
    assert_ne!(token_of(&again), token);
    assert_ne!(token_id_of(&again), token_id);
    s.stop().await;
}

#[tokio::test]
async fn logins_are_case_insensitive_and_trimmed() {
    let s = server().await;
    s.create_account("Mixed", "mixed-password", UserType::User);
    for login in ["mixed", "MIXED", "  Mixed  "] {
        let r = s.try_login(login, "mixed-password", &[]).await;
        assert_eq!(r.status, 200, "{login:?}: {:?}", r.body);
        assert_eq!(r.body["user"]["login"], "Mixed");
        assert_eq!(s.self_status(&token_of(&r)).await, 200);
    }
    s.stop().await;
}

#[tokio::test]
async fn admin_login_answers_the_admin_user_expiry_and_bearer() {
    let s =
        TestServer::start_with(|c| c.auth.admin_token_ttl = Duration::from_secs(2 * 3600)).await;
    let r = s.try_admin_login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    let expires = r.body["expires_at"].as_str().unwrap();
    let expires = parse_resource_time(expires).expect("expires_at is Y-m-d H:i:s");
    assert!(
        (expires - (now() + 2 * 3600)).abs() < 60,
        "expires_at is not now + admin_token_ttl"
    );
    let user = &r.body["user"];
    match seed_json("002") {
        Some(seed) => assert_same_shape(&seed, user, "user"),
        None => println!("note: seed 002 not found next to the repository; shape check skipped"),
    }
    assert_eq!(user["login"], "admin");
    assert!(user["id"].is_u64());
    assert!(parse_resource_time(user["created_at"].as_str().unwrap()).is_some());
    assert!(parse_resource_time(user["updated_at"].as_str().unwrap()).is_some());
    assert_eq!(user["expired_at"], Value::Null);
    assert_eq!(user["admin_camera_groups"], json!([]));
    assert_eq!(user["dhcp_subnet_groups"], json!([]));
    let token_id = token_id_of(&r);
    assert!(is_lower_hex(&token_id, 80), "access_token_id {token_id}");
    let token = token_of(&r);

    // The token is the admin's, for that session.
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["login"], "admin");
    assert_eq!(me.body["access_token_id"], token_id.as_str());
    s.stop().await;
}

#[tokio::test]
async fn a_login_at_the_wrong_route_or_with_a_wrong_password_is_answered_like_an_unknown_login() {
    let s = server().await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    let unknown_client = s.try_login("nobody", "whatever-password", &[]).await;
    assert_reply(&unknown_client, 422, &bad_credentials());
    let unknown_admin = s.try_admin_login("nobody", "whatever-password").await;
    let cases = [
        (
            "admin at the client route",
            s.try_login("admin", ADMIN_PASSWORD, &[]).await,
        ),
        (
            "client at the admin route",
            s.try_admin_login("bob", "bob-password").await,
        ),
        (
            "wrong password",
            s.try_login("bob", "not-bobs-password", &[]).await,
        ),
        (
            "wrong admin password",
            s.try_admin_login("admin", "not-the-password").await,
        ),
        ("unknown at the admin route", unknown_admin),
    ];
    for (what, r) in &cases {
        assert_reply(r, 422, &bad_credentials());
        // Byte for byte the same answer, so logins cannot be probed.
        assert_eq!(r.raw, unknown_client.raw, "{what}");
        assert_eq!(r.header("retry-after"), None, "{what}");
    }
    // None of them opened a session.
    assert!(s.app.store.sessions_of(bob.id).unwrap().is_empty());
    let admin = s.app.store.account_by_login("admin").unwrap().unwrap();
    assert!(s.app.store.sessions_of(admin.id).unwrap().is_empty());
    s.stop().await;
}

#[tokio::test]
async fn login_validates_its_body() {
    let s = server().await;
    let r = s.try_login_body(&json!({}), &[]).await;
    assert_reply(
        &r,
        422,
        &json!({"message": "The given data was invalid.", "errors": {
            "login": ["The login field is required."],
            "password": ["The password field is required."],
        }}),
    );
    let r = s
        .try_login_body(&json!({"login": 5, "password": true}), &[])
        .await;
    assert_reply(
        &r,
        422,
        &json!({"message": "The given data was invalid.", "errors": {
            "login": ["The login must be a string."],
            "password": ["The password must be a string."],
        }}),
    );
    s.stop().await;
}

#[tokio::test]
async fn disabled_locked_and_expired_accounts_cannot_log_in_and_their_tokens_stop() {
    let s = server().await;
    let carol = s.create_account("carol", "carol-password", UserType::User);
    let token = s.login("carol", "carol-password").await;
    s.edit_account(carol.id, |a| a.status = STATUS_DISABLED);
    assert_eq!(s.self_status(&token).await, 401);
    let r = s.try_login("carol", "carol-password", &[]).await;
    assert_reply(
        &r,
        422,
        &json!({"message": "The given data was invalid.", "errors": {"login": ["This account is disabled."]}}),
    );
    // A wrong password does not reveal that the account exists and is disabled.
    let r = s.try_login("carol", "wrong-password", &[]).await;
    assert_reply(&r, 422, &bad_credentials());
    // No session was opened by either attempt (the one from before stays until swept).
    assert_eq!(s.app.store.sessions_of(carol.id).unwrap().len(), 1);

    // Locked by an admin (status 1): tokens stop, logins are refused as locked.
    let dan = s.create_account("dan", "dan-password", UserType::User);
    let token = s.login("dan", "dan-password").await;
    s.edit_account(dan.id, |a| a.status = STATUS_LOCKED);
    assert_eq!(s.self_status(&token).await, 401);
    assert_too_many(&s.try_login("dan", "dan-password", &[]).await);

    // A temporary user past expired_at.
    let temp = s.create_account("temp", "temp-password", UserType::Special);
    s.edit_account(temp.id, |a| a.expired_at = Some(now() + 3600));
    let token = s.login("temp", "temp-password").await;
    assert_eq!(s.self_status(&token).await, 200);
    s.edit_account(temp.id, |a| a.expired_at = Some(now() - 1));
    assert_eq!(s.self_status(&token).await, 401);
    let r = s.try_login("temp", "temp-password", &[]).await;
    assert_reply(
        &r,
        422,
        &json!({"message": "The given data was invalid.", "errors": {"login": ["This account has expired."]}}),
    );
    s.stop().await;
}

#[tokio::test]
async fn lockout_after_the_threshold_blocks_logins_only_and_lifts_by_itself() {
    let s = TestServer::start_with(|c| {
        c.auth.ip_login_limit = 10_000;
        c.auth.lockout_threshold = 3;
        c.auth.lockout_duration = Duration::from_secs(2);
    })
    .await;
    let dave = s.create_account("dave", "dave-password", UserType::User);
    s.create_account("erin", "erin-password", UserType::User);
    let before = s.login("dave", "dave-password").await;
    for _ in 0..3 {
        assert_reply(
            &s.try_login("dave", "wrong-password", &[]).await,
            422,
            &bad_credentials(),
        );
    }
    let locked_at = Instant::now();
    // Locked: the right password too, and more guesses.
    assert_too_many(&s.try_login("dave", "dave-password", &[]).await);
    assert_too_many(&s.try_login("dave", "wrong-password", &[]).await);
    // A client account at the admin route stays an unknown login there, locked or not.
    assert_reply(
        &s.try_admin_login("dave", "dave-password").await,
        422,
        &bad_credentials(),
    );
    // The session opened before keeps working; no new session was made.
    assert_eq!(s.self_status(&before).await, 200);
    assert_eq!(s.app.store.sessions_of(dave.id).unwrap().len(), 1);
    // Other accounts are not affected.
    s.login("erin", "erin-password").await;

    let sp = &s;
    wait_for(
        Duration::from_secs(5),
        "the lockout to lift",
        || async move { sp.try_login("dave", "dave-password", &[]).await.status == 200 },
    )
    .await;
    assert!(
        locked_at.elapsed() >= Duration::from_millis(1900),
        "lifted after {:?}, before lockout_duration",
        locked_at.elapsed()
    );
    assert_eq!(s.app.store.sessions_of(dave.id).unwrap().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn a_successful_login_resets_the_failure_count() {
    let s = TestServer::start_with(|c| {
        c.auth.ip_login_limit = 10_000;
        c.auth.lockout_threshold = 3;
        c.auth.lockout_duration = Duration::from_secs(60);
    })
    .await;
    s.create_account("fay", "fay-password", UserType::User);
    for _ in 0..2 {
        assert_eq!(s.try_login("fay", "wrong-password", &[]).await.status, 422);
    }
    s.login("fay", "fay-password").await;
    for _ in 0..2 {
        assert_eq!(s.try_login("fay", "wrong-password", &[]).await.status, 422);
    }
    // Four failures in all, but never three in a row.
    s.login("fay", "fay-password").await;
    // The threshold still applies to consecutive failures.
    for _ in 0..3 {
        assert_eq!(s.try_login("fay", "wrong-password", &[]).await.status, 422);
    }
    assert_too_many(&s.try_login("fay", "fay-password", &[]).await);
    s.stop().await;
}

#[tokio::test]
async fn the_per_ip_throttle_answers_429_for_every_account() {
    let s = TestServer::start_with(|c| {
        c.auth.ip_login_limit = 3;
        c.auth.ip_login_window = Duration::from_secs(600);
    })
    .await;
    let gil = s.create_account("gil", "gil-password", UserType::User);
    s.create_account("hal", "hal-password", UserType::User);
    let token = s.login("gil", "gil-password").await;
    assert_eq!(s.try_login("gil", "wrong-password", &[]).await.status, 422);
    assert_eq!(
        s.try_login("nobody", "wrong-password", &[]).await.status,
        422
    );
    // The fourth attempt from this address, right password or not, any account, any route.
    for r in [
        s.try_login("gil", "gil-password", &[]).await,
        s.try_login("hal", "hal-password", &[]).await,
        s.try_admin_login("admin", ADMIN_PASSWORD).await,
    ] {
        assert_too_many(&r);
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!(retry <= 600, "Retry-After {retry}");
    }
    assert_eq!(s.app.store.sessions_of(gil.id).unwrap().len(), 1);
    // Throttling logins does not touch working tokens.
    assert_eq!(s.self_status(&token).await, 200);
    s.stop().await;
}

#[tokio::test]
async fn the_per_ip_throttle_window_slides() {
    let s = TestServer::start_with(|c| {
        c.auth.ip_login_limit = 1;
        c.auth.ip_login_window = Duration::from_secs(2);
    })
    .await;
    s.create_account("ida", "ida-password", UserType::User);
    s.login("ida", "ida-password").await;
    let throttled_at = Instant::now();
    assert_too_many(&s.try_login("ida", "ida-password", &[]).await);
    let sp = &s;
    wait_for(
        Duration::from_secs(5),
        "the IP window to pass",
        || async move { sp.try_login("ida", "ida-password", &[]).await.status == 200 },
    )
    .await;
    assert!(throttled_at.elapsed() >= Duration::from_secs(1));
    s.stop().await;
}
