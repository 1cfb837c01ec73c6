//! SPEC §6's additions for the official DeviceHive client (issue 18), rule by rule with a raw
//! socket: refresh tokens (`token`, `token/refresh`: a new access token, the old one ends,
//! no rotation, run-out after `auth.refresh_token_ttl` since the last use, stored only as a
//! hash), `user/list`, `user/insert`, `user/delete`, and the session rules of the socket's
//! `token` login (`X-UUID` on the upgrade request, `session_id`, 419). The library itself runs
//! in `devicehive_client`.

use std::time::Duration;

use http::HeaderValue;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use vmsd::model::UserType;

use crate::admin_support::{post, USERS};
use crate::common::TestServer;
use crate::websocket::*;

/// A socket whose upgrade request carried `x-uuid: device`.
async fn connect_from(s: &TestServer, device: &'static str) -> Ws {
    let mut req = "wss://localhost/websocket".into_client_request().unwrap();
    req.headers_mut()
        .insert("x-uuid", HeaderValue::from_static(device));
    let (ws, response) = tokio_tungstenite::client_async(req, s.tls().await)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    ws
}

async fn token(ws: &mut Ws, login: &str, password: &str) -> Value {
    call(
        ws,
        json!({"action": "token", "requestId": 1, "login": login, "password": password}),
    )
    .await
}

/// A socket `token` login: (access token, refresh token).
async fn tokens(s: &TestServer, login: &str, password: &str) -> (String, String) {
    let r = token(&mut connect(s).await, login, password).await;
    assert_eq!(r["status"], "success", "{r}");
    (
        r["accessToken"].as_str().unwrap().to_owned(),
        r["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(s: &TestServer, refresh_token: Value) -> Value {
    call(
        &mut connect(s).await,
        json!({"action": "token/refresh", "requestId": "r", "refreshToken": refresh_token}),
    )
    .await
}

/// The session's public id, as the session list shows it to its own token.
async fn session_id(s: &TestServer, token: &str) -> String {
    crate::pushes::current_token_id(s, token).await
}

#[tokio::test]
async fn refresh_gives_the_session_a_new_access_token_and_keeps_the_refresh_token() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let mut ws = connect_from(&s, "phone").await;
    let r = token(&mut ws, "alice", "alice-password").await;
    let first = r["accessToken"].as_str().unwrap().to_owned();
    let refresh_token = r["refreshToken"].as_str().unwrap().to_owned();
    let id = session_id(&s, &first).await;
    let before = s.app.store.sessions_of(alice.id).unwrap();
    assert_eq!(before.len(), 1);

    let refreshed_from = vmsd::model::now();
    let r = refresh(&s, json!(refresh_token)).await;
    let refreshed_by = vmsd::model::now();
    let second = r["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        r,
        json!({"action": "token/refresh", "requestId": "r", "status": "success",
               "accessToken": second, "refreshToken": refresh_token})
    );
    assert_ne!(second, first);
    // The old access token stopped working; the new one is the same session.
    assert_eq!(s.self_status(&first).await, 401);
    assert_eq!(s.self_status(&second).await, 200);
    assert_eq!(session_id(&s, &second).await, id);
    let after = s.app.store.sessions_of(alice.id).unwrap();
    assert_eq!(after.len(), 1);
    let (old, new) = (&before[0].1, &after[0].1);
    assert_eq!(
        (&new.access_token_id, &new.device, new.created_at),
        (
            &old.access_token_id,
            &Some("phone".to_owned()),
            old.created_at
        )
    );
    // The new access token lives a client's `client_token_ttl` from the refresh.
    let ttl = i64::try_from(s.app.config.auth.client_token_ttl.as_secs()).unwrap();
    assert!(
        (refreshed_from + ttl..=refreshed_by + ttl).contains(&new.expires_at),
        "{} not within {}..={}",
        new.expires_at,
        refreshed_from + ttl,
        refreshed_by + ttl
    );
    // A socket bound to the old token loses its authentication; the new one authenticates.
    let mut bound = socket_with(&s, &second).await;
    // The refresh token does not rotate: it works again, and ends `second` in turn.
    let r = refresh(&s, json!(refresh_token)).await;
    let third = r["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(r["refreshToken"], json!(refresh_token));
    assert_eq!(get_current(&mut bound).await["code"], 401);
    assert_eq!(s.self_status(&second).await, 401);
    assert_eq!(s.self_status(&third).await, 200);

    // Neither token is stored, only their hashes.
    for (tree, key, value) in s.app.store.export_entries().map(Result::unwrap) {
        for secret in [&refresh_token, &third] {
            let bytes = secret.as_bytes();
            assert!(
                !key.windows(bytes.len()).any(|w| w == bytes)
                    && !value.windows(bytes.len()).any(|w| w == bytes),
                "a token is stored in the clear in {tree}"
            );
        }
    }

    crate::invariants::Snapshot::of(&s.app.store).assert_invariants();

    // Bad, missing and mistyped refresh tokens.
    let invalid = error("token/refresh", json!("r"), 401, "Invalid credentials");
    assert_eq!(refresh(&s, json!("0".repeat(64))).await, invalid);
    assert_eq!(refresh(&s, json!(third)).await, invalid);
    assert_eq!(refresh(&s, json!(12)).await, invalid);
    let unauthorized = error("token/refresh", json!("r"), 401, "Unauthorized");
    assert_eq!(refresh(&s, json!("")).await, unauthorized);
    assert_eq!(refresh(&s, Value::Null).await, unauthorized);

    // A revoked session's refresh token is dead too.
    let r = s.call("POST", "/api/v1/logout", Some(&third), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(refresh(&s, json!(refresh_token)).await, invalid);
    assert!(s.app.store.sessions_of(alice.id).unwrap().is_empty());
    let snapshot = crate::invariants::Snapshot::of(&s.app.store);
    snapshot.assert_invariants();
    assert!(snapshot.refresh_ids.is_empty());

    // REST logins issue none.
    let r = s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("refreshToken").is_none() && r.body.get("refresh_token").is_none());
    let sessions = s.app.store.sessions_of(alice.id).unwrap();
    assert!(sessions.iter().all(|(_, s)| s.refresh.is_none()));
    s.stop().await;
}

#[tokio::test]
async fn the_refresh_token_outlives_the_access_token_until_its_ttl_after_its_last_use() {
    let s = TestServer::start_with(|c| {
        c.auth.client_token_ttl = Duration::from_secs(1);
        c.auth.refresh_token_ttl = Duration::from_secs(4);
    })
    .await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    let (access, refresh_token) = tokens(&s, "bob", "bob-password").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The access token expired; the session waits to be refreshed, even through a sweep.
    assert_eq!(s.self_status(&access).await, 401);
    vmsd::housekeeping::pass(&s.app).await;
    assert_eq!(s.app.store.sessions_of(bob.id).unwrap().len(), 1);
    let r = refresh(&s, json!(refresh_token)).await;
    assert_eq!(r["status"], "success", "{r}");
    let fresh = r["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(s.self_status(&fresh).await, 200);
    // Over 4 s after the login, past its first TTL: the refresh above restarted the clock.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = refresh(&s, json!(refresh_token)).await;
    assert_eq!(r["status"], "success", "{r}");
    // Unused for more than its TTL, it has run out; the sweep then ends the session.
    tokio::time::sleep(Duration::from_millis(5100)).await;
    assert_eq!(
        refresh(&s, json!(refresh_token)).await,
        error("token/refresh", json!("r"), 401, "Invalid credentials")
    );
    vmsd::housekeeping::pass(&s.app).await;
    assert!(s.app.store.sessions_of(bob.id).unwrap().is_empty());
    let snapshot = crate::invariants::Snapshot::of(&s.app.store);
    snapshot.assert_invariants();
    assert!(snapshot.refresh_ids.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn refresh_sessions_survive_backup_and_restore() {
    let s = TestServer::start().await;
    s.create_account("carl", "carl-password", UserType::User);
    let (_, refresh_token) = tokens(&s, "carl", "carl-password").await;
    let file = tempfile::tempdir().unwrap();
    let file = file.path().join("vmsd.backup");
    let dir = s.stop().await;
    // The socket tasks of the stopped daemon may hold the store a moment longer.
    let mut tries = 0;
    while let Err(e) = vmsd::backup::backup(dir.path(), &file) {
        tries += 1;
        assert!(tries < 100, "backup: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(dir);
    let fresh = tempfile::tempdir().unwrap();
    vmsd::backup::restore(fresh.path(), &file, false).unwrap();
    let cfg = crate::common::test_config(fresh.path());
    let s = TestServer::start_in(fresh, cfg).await;
    let r = refresh(&s, json!(refresh_token)).await;
    assert_eq!(r["status"], "success", "{r}");
    let access = r["accessToken"].as_str().unwrap();
    assert_eq!(s.self_status(access).await, 200);
    s.stop().await;
}

#[tokio::test]
async fn socket_logins_keep_one_session_per_device_and_answer_419_at_the_limit() {
    let s = TestServer::start_with(|c| c.auth.sessions_limit = 2).await;
    let dora = s.create_account("dora", "dora-password", UserType::User);
    // X-UUID on the upgrade request: a second login from the device replaces its session.
    let first = token(
        &mut connect_from(&s, "tablet").await,
        "dora",
        "dora-password",
    )
    .await;
    let first = first["accessToken"].as_str().unwrap().to_owned();
    let again = token(
        &mut connect_from(&s, "tablet").await,
        "dora",
        "dora-password",
    )
    .await;
    let again = again["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(s.self_status(&first).await, 401);
    assert_eq!(s.self_status(&again).await, 200);
    assert_eq!(s.app.store.sessions_of(dora.id).unwrap().len(), 1);

    // At the limit: 419 with the sessions to pick from; session_id evicts one.
    let rest = s.login("dora", "dora-password").await;
    let mut ws = connect(&s).await;
    let r = token(&mut ws, "dora", "dora-password").await;
    assert_eq!(
        (&r["status"], &r["code"], &r["sessions_limit"]),
        (&json!("error"), &json!(419), &json!(2)),
        "{r}"
    );
    assert_eq!(
        r["error"],
        "The number of sessions has reached the limit. End one of them to log in."
    );
    let listed: Vec<&str> = r["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    let evict = session_id(&s, &rest).await;
    assert!(listed.contains(&evict.as_str()), "{listed:?}");
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 2, "login": "dora", "password": "dora-password",
               "session_id": evict}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(s.self_status(&rest).await, 401);
    assert_eq!(s.self_status(&again).await, 200);
    s.stop().await;
}

async fn list(ws: &mut Ws, query: Value) -> Value {
    let mut frame = json!({"action": "user/list", "requestId": 3});
    for (k, v) in query.as_object().unwrap() {
        frame[k] = v.clone();
    }
    call(ws, frame).await
}

fn logins(r: &Value) -> Vec<&str> {
    r["users"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|u| u["login"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn user_list_filters_sorts_and_pages_the_displayed_users() {
    let s = TestServer::start().await;
    let erin = s.create_account("erin", "erin-password", UserType::User);
    s.create_account("frank", "frank-password", UserType::Subuser);
    s.create_account("gina", "gina-password", UserType::Special);
    s.create_account("admin2", "admin2-password", UserType::Admin);
    s.edit_account(erin.id, |a| a.status = 2);
    // Locked out after failed logins: shown (and filtered) as status 1.
    for _ in 0..5 {
        s.try_login("frank", "wrong-password", &[]).await;
    }
    let mut ws = admin_socket(&s).await;
    let r = list(&mut ws, json!({})).await;
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(logins(&r), ["admin", "erin", "frank", "gina", "admin2"]);
    let first = &r["users"][0];
    assert_eq!(first["allDeviceTypesAvailable"], true);
    assert_eq!(first["role"], 0);
    assert_eq!(
        logins(&list(&mut ws, json!({"role": 0})).await),
        ["admin", "admin2"]
    );
    assert_eq!(
        logins(&list(&mut ws, json!({"status": 1})).await),
        ["frank"]
    );
    assert_eq!(
        logins(&list(&mut ws, json!({"status": "2"})).await),
        ["erin"]
    );
    assert_eq!(
        logins(&list(&mut ws, json!({"role": 1, "status": 0})).await),
        ["gina"]
    );
    assert_eq!(
        logins(
            &list(
                &mut ws,
                json!({"loginPattern": "%n%", "sortField": "login"})
            )
            .await
        ),
        ["admin", "admin2", "erin", "frank", "gina"]
    );
    assert_eq!(
        logins(&list(&mut ws, json!({"loginPattern": "_r%"})).await),
        ["erin", "frank"]
    );
    assert_eq!(
        logins(&list(&mut ws, json!({"login": "gina"})).await),
        ["gina"]
    );
    assert!(logins(&list(&mut ws, json!({"login": "GINA"})).await).is_empty());
    assert_eq!(
        logins(&list(&mut ws, json!({"sortField": "status", "sortOrder": "DESC"})).await),
        ["erin", "frank", "admin2", "gina", "admin"]
    );
    assert_eq!(
        logins(
            &list(
                &mut ws,
                json!({"sortField": "login", "sortOrder": "ASC", "take": 2, "skip": 1})
            )
            .await
        ),
        ["admin2", "erin"]
    );
    assert_eq!(logins(&list(&mut ws, json!({"take": 5000})).await).len(), 5);
    assert_eq!(
        list(&mut ws, json!({"sortField": "password"})).await,
        error("user/list", json!(3), 400, "Illegal argument: password")
    );
    assert_eq!(
        list(&mut ws, json!({"sortOrder": "sideways"})).await,
        error("user/list", json!(3), 400, "Illegal argument: sideways")
    );
    let token = s.login("gina", "gina-password").await;
    let mut user = socket_with(&s, &token).await;
    assert_eq!(
        list(&mut user, json!({})).await,
        error("user/list", json!(3), 403, "Access is denied")
    );
    assert_eq!(
        list(&mut connect(&s).await, json!({})).await,
        error("user/list", json!(3), 401, "Unauthorized")
    );
    s.stop().await;
}

async fn insert(ws: &mut Ws, user: Value) -> Value {
    call(
        ws,
        json!({"action": "user/insert", "requestId": 4, "user": user}),
    )
    .await
}

#[tokio::test]
async fn user_insert_creates_admins_and_users_like_rest() {
    let s = TestServer::start().await;
    let admin_id = s.app.store.account_by_login("admin").unwrap().unwrap().id;
    let mut ws = admin_socket(&s).await;
    let bad = |text: &str| error("user/insert", json!(4), 400, text);
    assert_eq!(
        insert(&mut ws, json!({"role": 1, "password": "hank-password"})).await,
        bad("Login is required")
    );
    assert_eq!(
        insert(&mut ws, json!({"login": "hank", "role": 1})).await,
        bad("Password can contain only from 8 to 128 symbols!")
    );
    assert_eq!(
        insert(
            &mut ws,
            json!({"login": "hank", "role": 1, "password": "short"})
        )
        .await,
        bad("Password can contain only from 8 to 128 symbols!")
    );
    assert_eq!(
        insert(
            &mut ws,
            json!({"login": "hank", "password": "hank-password"})
        )
        .await,
        bad("Role is required")
    );
    assert_eq!(
        insert(
            &mut ws,
            json!({"login": "hank", "password": "hank-password", "role": 3})
        )
        .await,
        bad("User role must be 0 (administrator) or 1 (client)")
    );
    assert_eq!(
        call(&mut ws, json!({"action": "user/insert", "requestId": 4})).await,
        bad("User is required")
    );
    assert!(s.app.store.account_by_login("hank").unwrap().is_none());

    // role 1: a regular user, who logs in at REST.
    let r = insert(
        &mut ws,
        json!({"login": "hank", "role": 1, "status": 0, "password": "hank-password",
               "data": {"floor": 2}, "allDeviceTypesAvailable": true}),
    )
    .await;
    let hank = s.app.store.account_by_login("hank").unwrap().unwrap();
    assert_eq!(
        r,
        json!({"action": "user/insert", "requestId": 4, "status": "success",
               "user": {"id": hank.id, "login": "hank", "role": 1, "status": 0,
                        "lastLogin": null, "data": {"floor": 2}, "introReviewed": false,
                        "allDeviceTypesAvailable": true}})
    );
    assert_eq!(hank.user_type, UserType::User);
    s.login("hank", "hank-password").await;
    // role 0, disabled, intro reviewed: a disabled administrator.
    let r = insert(
        &mut ws,
        json!({"login": "ida", "role": 0, "status": 2, "password": "ida-password",
               "introReviewed": true}),
    )
    .await;
    assert_eq!(
        (
            &r["user"]["role"],
            &r["user"]["status"],
            &r["user"]["introReviewed"]
        ),
        (&json!(0), &json!(2), &json!(true)),
        "{r}"
    );
    let ida = s.app.store.account_by_login("ida").unwrap().unwrap();
    assert_eq!(ida.user_type, UserType::Admin);
    crate::common::assert_field_error(
        &s.try_admin_login("ida", "ida-password").await,
        "login",
        &["This account is disabled."],
    );
    // Logins are unique, case-insensitively.
    assert_eq!(
        insert(
            &mut ws,
            json!({"login": "HANK", "role": 1, "password": "hank-password"})
        )
        .await,
        error(
            "user/insert",
            json!(4),
            403,
            "User with such login already exists. Please, select another one"
        )
    );
    // Audited like REST's creations, by the admin, naming fields only.
    let hank_events = events(&s, hank.id);
    assert_eq!(hank_events.len(), 1);
    assert_eq!(
        (hank_events[0].action.as_str(), hank_events[0].actor_id),
        ("user_created", Some(admin_id))
    );
    assert_eq!(hank_events[0].fields, ["login", "name", "password", "data"]);
    let ida_events = events(&s, ida.id);
    assert_eq!(ida_events[0].action, "admin_created");
    assert_eq!(
        ida_events[0].fields,
        ["login", "name", "password", "status", "intro_reviewed"]
    );
    // Only administrators insert.
    let token = s.login("hank", "hank-password").await;
    let mut user = socket_with(&s, &token).await;
    assert_eq!(
        insert(
            &mut user,
            json!({"login": "joe", "role": 0, "password": "joe-password"})
        )
        .await,
        error("user/insert", json!(4), 403, "Access is denied")
    );
    assert!(s.app.store.account_by_login("joe").unwrap().is_none());
    s.stop().await;
}

async fn delete_user(ws: &mut Ws, id: Value) -> Value {
    call(
        ws,
        json!({"action": "user/delete", "requestId": 5, "userId": id}),
    )
    .await
}

#[tokio::test]
async fn user_delete_cascades_like_rest_and_protects_the_last_active_admin() {
    let s = TestServer::start().await;
    let admin_id = s.app.store.account_by_login("admin").unwrap().unwrap().id;
    let admin_rest = s.admin_token().await;
    let mut ws = admin_socket(&s).await;
    // The only administrator cannot delete itself.
    assert_eq!(
        delete_user(&mut ws, json!("current")).await,
        error(
            "user/delete",
            json!(5),
            403,
            "The last active administrator cannot be deleted"
        )
    );
    // Refused: the admin and its sessions are untouched.
    assert!(s.app.store.account(admin_id).unwrap().is_some());
    assert_eq!(s.self_status(&admin_rest).await, 200);
    assert_eq!(get_current(&mut ws).await["status"], "success");
    assert_eq!(
        delete_user(&mut ws, json!("x")).await["code"],
        400,
        "a userId that is no id"
    );
    assert_eq!(
        delete_user(&mut ws, json!(999)).await,
        error("user/delete", json!(5), 404, "User with id = 999 not found")
    );
    assert_eq!(
        delete_user(&mut ws, json!(-3)).await,
        error("user/delete", json!(5), 404, "User with id = -3 not found")
    );

    // A regular user with a sub-user: both go, with their sessions, each audited.
    let parent = s.create_account("kim", "kim-password", UserType::User);
    let r = post(
        &s,
        &admin_rest,
        USERS,
        json!({"login": "kid", "password": "kid-password", "password_confirmation": "kid-password",
               "parent_id": parent.id}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let kid_id = r.body["id"].as_u64().unwrap();
    let kim_token = s.login("kim", "kim-password").await;
    let mut kim_ws = socket_with(&s, &kim_token).await;
    assert_eq!(
        delete_user(&mut kim_ws, json!(kid_id)).await,
        error("user/delete", json!(5), 403, "Access is denied")
    );
    assert!(s.app.store.account(kid_id).unwrap().is_some());
    assert_eq!(s.self_status(&kim_token).await, 200);
    assert_eq!(
        delete_user(&mut ws, json!(parent.id.to_string())).await,
        success("user/delete", json!(5))
    );
    assert!(s.app.store.account(parent.id).unwrap().is_none());
    assert!(s.app.store.account(kid_id).unwrap().is_none());
    assert_eq!(s.self_status(&kim_token).await, 401);
    assert_eq!(get_current(&mut kim_ws).await["code"], 401);
    let r = s
        .get(&format!("/api/admin/v1/users/{kid_id}"), &admin_rest)
        .await;
    assert_eq!(r.status, 404);
    for (id, action) in [(parent.id, "user_deleted"), (kid_id, "user_deleted")] {
        let e = &events(&s, id)[0];
        assert_eq!((e.action.as_str(), e.actor_id), (action, Some(admin_id)));
    }

    // Any type: a temporary user, another admin, then the caller itself once another
    // active admin remains.
    let temp = s.create_account("tim", "tim-password", UserType::Special);
    assert_eq!(
        delete_user(&mut ws, json!(temp.id)).await,
        success("user/delete", json!(5))
    );
    assert_eq!(events(&s, temp.id)[0].action, "special_user_deleted");
    let other = s.create_account("root2", "root2-password", UserType::Admin);
    assert_eq!(
        delete_user(&mut ws, json!("current")).await,
        success("user/delete", json!(5))
    );
    assert!(s.app.store.account(admin_id).unwrap().is_none());
    assert_eq!(events(&s, admin_id)[0].action, "admin_deleted");
    assert_eq!(get_current(&mut ws).await["code"], 401);
    // Now root2 is the last active administrator.
    let r = token(&mut connect(&s).await, "root2", "root2-password").await;
    let mut root = socket_with(&s, r["accessToken"].as_str().unwrap()).await;
    assert_eq!(
        delete_user(&mut root, json!(other.id)).await,
        error(
            "user/delete",
            json!(5),
            403,
            "The last active administrator cannot be deleted"
        )
    );
    assert!(s.app.store.account(other.id).unwrap().is_some());
    assert_eq!(get_current(&mut root).await["status"], "success");
    s.stop().await;
}
