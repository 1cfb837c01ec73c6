//! Authentication and sessions, rule by rule (SPEC §3, issue 2 item 6): both login routes and
//! their answers, identical failures, disabled/expired accounts, lockout, per-IP throttling,
//! X-UUID replacement, the session limit and eviction, session listing and revocation, logouts,
//! the admin password change, 401/403 on the wrong token, token expiry, and hashed storage.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vmsd::model::{now, UserType, PERMISSIONS, STATUS_DISABLED, STATUS_LOCKED};

use crate::common::{
    assert_same_shape, is_lower_hex, parse_resource_time, seed_json, wait_for, Reply, TestServer,
    ADMIN_PASSWORD,
};

const BAD_CREDENTIALS: &str = "These credentials do not match our records.";

fn bad_credentials() -> Value {
    json!({"message": "The given data was invalid.", "errors": {"login": [BAD_CREDENTIALS]}})
}

fn unauthenticated() -> Value {
    json!({"message": "Unauthenticated."})
}

fn forbidden() -> Value {
    json!({"message": "This action is unauthorized."})
}

#[track_caller]
fn assert_reply(r: &Reply, status: u16, body: &Value) {
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

fn token_of(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

fn token_id_of(r: &Reply) -> String {
    r.body["user"]["access_token_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Tests that log in many times from 127.0.0.1 lift the per-IP throttle out of the way.
async fn server() -> TestServer {
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

#[tokio::test]
async fn a_login_from_a_known_device_replaces_its_session() {
    let s = server().await;
    let jo = s.create_account("jo", "jo-password", UserType::User);
    let first = s
        .try_login("jo", "jo-password", &[("x-uuid", "phone")])
        .await;
    let second = s
        .try_login("jo", "jo-password", &[("x-uuid", "phone")])
        .await;
    assert_eq!(s.self_status(&token_of(&first)).await, 401);
    let phone = token_of(&second);
    assert_eq!(s.self_status(&phone).await, 200);
    let list = s.get("/api/v1/sessions", &phone).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["id"], token_id_of(&second).as_str());

    // Another device adds a session; no device header never replaces anything.
    let tablet = token_of(
        &s.try_login("jo", "jo-password", &[("x-uuid", "tablet")])
            .await,
    );
    let plain1 = token_of(&s.try_login("jo", "jo-password", &[]).await);
    let plain2 = token_of(&s.try_login("jo", "jo-password", &[]).await);
    for t in [&phone, &tablet, &plain1, &plain2] {
        assert_eq!(s.self_status(t).await, 200);
    }
    assert_eq!(s.app.store.sessions_of(jo.id).unwrap().len(), 4);
    s.stop().await;
}

#[tokio::test]
async fn the_session_limit_answers_419_and_session_id_evicts() {
    let s = TestServer::start_with(|c| {
        c.auth.ip_login_limit = 10_000;
        c.auth.sessions_limit = 2;
    })
    .await;
    let kim = s.create_account("kim", "kim-password", UserType::User);
    let lee = s.create_account("lee", "lee-password", UserType::User);
    let a = s
        .try_login(
            "kim",
            "kim-password",
            &[("x-uuid", "a"), ("x-client", "web"), ("user-agent", "ua-a")],
        )
        .await;
    let b = s
        .try_login(
            "kim",
            "kim-password",
            &[
                ("x-uuid", "b"),
                ("x-client", "android"),
                ("user-agent", "ua-b"),
            ],
        )
        .await;
    let (a_token, b_token) = (token_of(&a), token_of(&b));
    let (a_id, b_id) = (token_id_of(&a), token_id_of(&b));

    let r = s.try_login("kim", "kim-password", &[("x-uuid", "c")]).await;
    assert_eq!(r.status, 419, "{:?}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.body["message"],
        "The number of sessions has reached the limit. End one of them to log in."
    );
    assert_eq!(r.body["sessions_limit"], 2);
    let items = r.body["sessions"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for (item, (id, client, ua)) in items
        .iter()
        .zip([(&a_id, "web", "ua-a"), (&b_id, "android", "ua-b")])
    {
        let keys: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "id",
                "online",
                "last",
                "user_agent",
                "client",
                "ip",
                "is_current"
            ])
        );
        assert_eq!(item["id"], id.as_str());
        assert_eq!(item["client"], client);
        assert_eq!(item["user_agent"], ua);
        assert_eq!(item["ip"], "127.0.0.1");
        assert_eq!(item["online"], true);
        assert_eq!(item["is_current"], false);
        assert!(item["last"].is_i64());
    }
    // The refused login changed nothing.
    assert_eq!(s.app.store.sessions_of(kim.id).unwrap().len(), 2);
    assert_eq!(s.self_status(&a_token).await, 200);
    assert_eq!(s.self_status(&b_token).await, 200);

    // Another account's session id cannot be evicted through this login.
    let lee_login = s.try_login("lee", "lee-password", &[]).await;
    let r = s
        .try_login_body(
            &json!({"login": "kim", "password": "kim-password", "session_id": token_id_of(&lee_login)}),
            &[("x-uuid", "c")],
        )
        .await;
    assert_eq!(r.status, 419);
    assert_eq!(s.self_status(&token_of(&lee_login)).await, 200);
    assert_eq!(s.app.store.sessions_of(lee.id).unwrap().len(), 1);

    // Evicting one of kim's sessions lets the login through.
    let c = s
        .try_login_body(
            &json!({"login": "kim", "password": "kim-password", "session_id": a_id}),
            &[("x-uuid", "c")],
        )
        .await;
    let c_token = token_of(&c);
    assert_eq!(s.self_status(&a_token).await, 401);
    assert_eq!(s.self_status(&b_token).await, 200);
    assert_eq!(s.self_status(&c_token).await, 200);
    let ids: BTreeSet<String> = s
        .get("/api/v1/sessions", &c_token)
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, BTreeSet::from([b_id.clone(), token_id_of(&c)]));

    // At the limit, a device that already has a session replaces it instead of getting 419.
    let b2 = s.try_login("kim", "kim-password", &[("x-uuid", "b")]).await;
    assert_eq!(b2.status, 200, "{:?}", b2.body);
    assert_eq!(s.self_status(&b_token).await, 401);
    assert_eq!(s.app.store.sessions_of(kim.id).unwrap().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn the_session_list_marks_the_current_session() {
    let s = server().await;
    s.create_account("max", "max-password", UserType::User);
    let a = s
        .try_login(
            "max",
            "max-password",
            &[("x-uuid", "a"), ("x-client", "web")],
        )
        .await;
    let b = s.try_login("max", "max-password", &[("x-uuid", "b")]).await;
    for (me, other) in [(&a, &b), (&b, &a)] {
        let r = s.get("/api/v1/sessions", &token_of(me)).await;
        assert_eq!(r.status, 200);
        let items = r.body.as_array().unwrap();
        assert_eq!(items.len(), 2);
        let find = |id: &str| items.iter().find(|i| i["id"] == id).unwrap().clone();
        let mine = find(&token_id_of(me));
        let theirs = find(&token_id_of(other));
        assert_eq!(mine["is_current"], true);
        assert_eq!(theirs["is_current"], false);
        for item in [&mine, &theirs] {
            assert_eq!(item["online"], true);
            assert!(item["last"].is_i64());
            assert_eq!(item["ip"], "127.0.0.1");
        }
    }
    let r = s.get("/api/v1/sessions", &token_of(&a)).await;
    let web = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["is_current"] == true)
        .unwrap()
        .clone();
    assert_eq!(web["client"], "web");
    assert_eq!(web["user_agent"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn a_session_is_revoked_by_its_id_but_only_the_callers() {
    let s = server().await;
    s.create_account("ned", "ned-password", UserType::User);
    s.create_account("oz", "oz-password", UserType::User);
    let a = s.try_login("ned", "ned-password", &[("x-uuid", "a")]).await;
    let b = s.try_login("ned", "ned-password", &[("x-uuid", "b")]).await;
    let oz = s.try_login("oz", "oz-password", &[]).await;
    let a_token = token_of(&a);
    let path = |r: &Reply| format!("/api/v1/sessions/{}", token_id_of(r));

    let r = s.call("POST", &path(&b), Some(&a_token), None).await;
    assert_reply(&r, 200, &json!({"status": "ok"}));
    assert_eq!(s.self_status(&token_of(&b)).await, 401);
    assert_eq!(s.self_status(&a_token).await, 200);
    // Already gone, someone else's, and made up: all 404, and nothing changes.
    for p in [
        path(&b),
        path(&oz),
        format!("/api/v1/sessions/{}", "0".repeat(80)),
        "/api/v1/sessions/42".into(),
    ] {
        let r = s.call("POST", &p, Some(&a_token), None).await;
        assert_reply(&r, 404, &json!({"message": "Not Found."}));
    }
    assert_eq!(s.self_status(&token_of(&oz)).await, 200);
    assert_eq!(s.self_status(&a_token).await, 200);
    // Without a token: 401, and oz's session stays.
    let r = s.call("POST", &path(&oz), None, None).await;
    assert_reply(&r, 401, &unauthenticated());
    assert_eq!(s.self_status(&token_of(&oz)).await, 200);
    s.stop().await;
}

#[tokio::test]
async fn logout_revokes_only_the_current_token() {
    let s = server().await;
    s.create_account("pam", "pam-password", UserType::User);
    let a = token_of(&s.try_login("pam", "pam-password", &[("x-uuid", "a")]).await);
    let b = token_of(&s.try_login("pam", "pam-password", &[("x-uuid", "b")]).await);
    let r = s
        .call(
            "POST",
            "/api/v1/logout",
            Some(&a),
            Some(json!({"uuid": "a"})),
        )
        .await;
    assert_reply(&r, 200, &json!({"status": "ok"}));
    assert_eq!(s.self_status(&a).await, 401);
    assert_eq!(s.self_status(&b).await, 200);
    let r = s.call("POST", "/api/v1/logout", Some(&a), None).await;
    assert_reply(&r, 401, &unauthenticated());
    let r = s.call("POST", "/api/v1/logout", Some(&b), None).await;
    assert_reply(&r, 200, &json!({"status": "ok"}));
    assert_eq!(s.self_status(&b).await, 401);
    s.stop().await;
}

#[tokio::test]
async fn admin_logout_revokes_the_admin_token_and_refuses_client_tokens() {
    let s = server().await;
    s.create_account("quin", "quin-password", UserType::User);
    let client = s.login("quin", "quin-password").await;
    let t1 = s.admin_token().await;
    let t2 = s.admin_token().await;
    let r = s
        .call("POST", "/api/admin/v1/auth/logout", Some(&client), None)
        .await;
    assert_reply(&r, 403, &forbidden());
    assert_eq!(s.self_status(&client).await, 200);
    let r = s
        .call("POST", "/api/admin/v1/auth/logout", Some(&t1), None)
        .await;
    assert_reply(&r, 200, &json!({"status": "ok"}));
    assert_eq!(s.self_status(&t1).await, 401);
    let r = s
        .call("POST", "/api/admin/v1/auth/logout", Some(&t1), None)
        .await;
    assert_reply(&r, 401, &unauthenticated());
    assert_eq!(s.self_status(&t2).await, 200);
    s.stop().await;
}

#[tokio::test]
async fn admin_password_change_checks_the_old_password_and_revokes_other_sessions() {
    let s = server().await;
    const PATH: &str = "/api/admin/v1/users/self/update-password";
    let t1 = s.admin_token().await;
    let t2 = s.admin_token().await;

    let r = s.call("PUT", PATH, Some(&t1), Some(json!({}))).await;
    assert_reply(
        &r,
        422,
        &json!({"message": "The given data was invalid.", "errors": {
            "old_password": ["The old password field is required."],
            "password": ["The password field is required."],
        }}),
    );
    let wrong_old = json!({
        "old_password": "not-the-password",
        "password": "new-admin-password",
        "password_confirmation": "new-admin-password",
    });
    let r = s.call("PUT", PATH, Some(&t1), Some(wrong_old)).await;
    assert_reply(
        &r,
        422,
        &json!({"message": "The given data was invalid.", "errors": {
            "old_password": ["The password is incorrect."],
        }}),
    );
    let bad_new = json!({
        "old_password": ADMIN_PASSWORD,
        "password": "short",
        "password_confirmation": "other",
    });
    let r = s.call("PUT", PATH, Some(&t1), Some(bad_new)).await;
    assert_reply(
        &r,
        422,
        &json!({"message": "The given data was invalid.", "errors": {
            "password": [
                "The password must be at least 8 characters.",
                "The password confirmation does not match.",
            ],
        }}),
    );
    // Nothing changed: the old password works, the proposed one does not, sessions stand.
    assert_eq!(
        s.try_admin_login("admin", "new-admin-password")
            .await
            .status,
        422
    );
    let t3 = s.admin_token().await;
    assert_eq!(s.self_status(&t2).await, 200);

    let good = json!({
        "old_password": ADMIN_PASSWORD,
        "password": "new-admin-password",
        "password_confirmation": "new-admin-password",
    });
    let r = s.call("PUT", PATH, Some(&t1), Some(good)).await;
    assert_reply(&r, 200, &json!({"status": "ok"}));
    assert_reply(
        &s.try_admin_login("admin", ADMIN_PASSWORD).await,
        422,
        &bad_credentials(),
    );
    assert_eq!(
        s.try_admin_login("admin", "new-admin-password")
            .await
            .status,
        200
    );
    assert_eq!(s.self_status(&t1).await, 200);
    assert_eq!(s.self_status(&t2).await, 401);
    assert_eq!(s.self_status(&t3).await, 401);
    s.stop().await;
}

#[tokio::test]
async fn client_tokens_get_403_on_admin_routes_and_admins_may_use_the_self_routes() {
    let s = server().await;
    s.create_account("ray", "ray-password", UserType::User);
    let client = s.login("ray", "ray-password").await;
    for (method, path, body) in [
        ("POST", "/api/admin/v1/auth/logout", None),
        (
            "PUT",
            "/api/admin/v1/users/self/update-password",
            Some(
                json!({"old_password": "ray-password", "password": "ray-password-2", "password_confirmation": "ray-password-2"}),
            ),
        ),
    ] {
        let r = s.call(method, path, Some(&client), body).await;
        assert_reply(&r, 403, &forbidden());
    }
    // The refused password change did not happen.
    s.login("ray", "ray-password").await;
    let admin = s.admin_token().await;
    let r = s.get("/api/v1/users/self", &admin).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["login"], "admin");
    s.stop().await;
}

#[tokio::test]
async fn requests_without_a_working_token_get_401_with_www_authenticate() {
    let s = server().await;
    s.create_account("sal", "sal-password", UserType::User);
    let revoked = s.login("sal", "sal-password").await;
    assert_eq!(
        s.call("POST", "/api/v1/logout", Some(&revoked), None)
            .await
            .status,
        200
    );
    let long = format!("Bearer {}", "a".repeat(300));
    let revoked_header = format!("Bearer {revoked}");
    let auths: [Option<&str>; 6] = [
        None,
        Some("Bearer"),
        Some("Bearer not-a-token"),
        Some("Basic c2FsOnNhbC1wYXNzd29yZA=="),
        Some(&long),
        Some(&revoked_header),
    ];
    let routes = [
        ("GET", "/api/v1/users/self"),
        ("PUT", "/api/v1/users/self"),
        ("GET", "/api/v1/sessions"),
        ("POST", "/api/v1/sessions/abc"),
        ("POST", "/api/v1/logout"),
        ("POST", "/api/admin/v1/auth/logout"),
        ("PUT", "/api/admin/v1/users/self/update-password"),
    ];
    for (method, path) in routes {
        for auth in auths {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(a) = auth {
                headers.push(("authorization", a));
            }
            let r = s.raw(method, path, &headers, &b"{}"[..]).await;
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}: {:?}", r.body);
            assert_eq!(r.body, unauthenticated(), "{method} {path}");
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer"),
                "{method} {path}"
            );
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn tokens_expire_after_their_ttl() {
    let s = TestServer::start_with(|c| c.auth.client_token_ttl = Duration::from_secs(2)).await;
    s.create_account("tom", "tom-password", UserType::User);
    let token = s.login("tom", "tom-password").await;
    // Expiry is kept in whole seconds: a 2 s token works for at least one.
    assert_eq!(s.self_status(&token).await, 200);
    let sp = &s;
    let t = token.as_str();
    wait_for(
        Duration::from_secs(5),
        "the token to expire",
        || async move { sp.self_status(t).await == 401 },
    )
    .await;
    let r = s.get("/api/v1/users/self", &token).await;
    assert_reply(&r, 401, &unauthenticated());
    s.stop().await;
}

/// Every file under `dir`, recursively, as bytes.
fn all_file_bytes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn tokens_and_passwords_are_stored_only_as_hashes() {
    let s = server().await;
    s.create_account("uma", "uma-secret-password", UserType::User);
    let client = s.try_login("uma", "uma-secret-password", &[]).await;
    let admin = s.try_admin_login("admin", ADMIN_PASSWORD).await;
    s.app.store.flush().await.unwrap();
    let files = all_file_bytes(s.dir.path());
    let found = |needle: &str| {
        files
            .iter()
            .filter(|(_, bytes)| contains(bytes, needle.as_bytes()))
            .map(|(p, _)| p.display().to_string())
            .collect::<Vec<_>>()
    };
    // The public id is on disk in plain text: the search does see the session records.
    assert!(
        !found(&token_id_of(&client)).is_empty(),
        "search sees nothing"
    );
    for secret in [token_of(&client), token_of(&admin)] {
        assert_eq!(
            found(&secret),
            Vec::<String>::new(),
            "a raw token is on disk"
        );
        assert_eq!(s.self_status(&secret).await, 200);
    }
    for password in ["uma-secret-password", ADMIN_PASSWORD] {
        assert_eq!(
            found(password),
            Vec::<String>::new(),
            "a plain password is on disk"
        );
    }
    s.stop().await;
}
