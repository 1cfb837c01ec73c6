//! Sessions and tokens (SPEC §3, issue 2 item 6): X-UUID replacement, the session limit and
//! eviction, session listing and revocation, logouts, the admin password change, 401/403 on
//! the wrong token, token expiry, and hashed storage.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use vmsd::model::UserType;

use crate::auth::*;
use crate::common::{wait_for, Reply, TestServer, ADMIN_PASSWORD};

fn unauthenticated() -> Value {
    json!({"message": "Unauthenticated."})
}

fn forbidden() -> Value {
    json!({"message": "This action is unauthorized."})
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
