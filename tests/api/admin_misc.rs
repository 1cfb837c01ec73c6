//! The rest of the admin API (SPEC §4.4, §3): the permission catalogue, administrators, the
//! audit log and its housekeeping bound, and access checks on admin routes.

use serde_json::{json, Value};

use crate::admin_support::*;
use crate::common::{assert_field_error, Reply, TestServer};
use crate::seed_shapes::{assert_shape, seed_response};

impl TestServer {
    /// `POST /api/v1/token`; the status only.
    async fn try_login_plain(&self, login: &str, password: &str) -> u16 {
        self.try_login_plain_reply(login, password).await.status
    }

    /// `POST /api/admin/v1/auth/token`; the whole reply.
    async fn try_admin_login_body(&self, login: &str, password: &str) -> Reply {
        self.call(
            "POST",
            "/api/admin/v1/auth/token",
            None,
            Some(json!({"login": login, "password": password})),
        )
        .await
    }
}

#[tokio::test]
async fn the_permission_catalogue_lists_client_and_admin_permissions() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let r = s.get("/api/admin/v1/permissions", &admin).await;
    let list = expect(&r, 200).as_array().unwrap().clone();
    assert_eq!(list.len(), vmsd::permissions::PERMISSIONS.len());
    let by_name = |name: &str| list.iter().find(|p| p["name"] == name).cloned().unwrap();
    assert_eq!(
        by_name("layouts-store"),
        json!({"id": 9, "name": "layouts-store", "display_name": "Creating Layout", "group": "Layouts", "user_type": "user"})
    );
    assert_eq!(by_name("packs-destroy")["user_type"], "admin");
    for case in [
        "analytic-cases-motion-detect",
        "analytic-cases-line-intersection",
        "analytic-cases-smoke-fire",
        "analytic-cases-loud-sound",
        "analytic-cases-camera-obstacle",
        "analytic-cases-person-counting",
        "analytic-cases-visitor-counting",
        "analytic-cases-face",
        "analytic-cases-license-plate",
        "analytic-cases-container-number-recognition",
    ] {
        assert_eq!(by_name(case)["user_type"], "user");
    }
    s.stop().await;
}

#[tokio::test]
async fn admins_are_listed_and_created_and_the_new_admin_can_log_in() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let r = post(
        &s,
        &admin,
        "/api/admin/v1/admins",
        json!({"login": "second", "name": "Second Admin", "password": "admin-password-2", "password_confirmation": "admin-password-2"}),
    )
    .await;
    let created = expect(&r, 201).clone();
    assert_eq!(created["login"], "second");
    assert_eq!(created["access_token_id"], Value::Null);
    assert!(permission_ids(&created).contains(&PACKS_DESTROY_ADMIN));
    if let Some(seed) = seed_response("002_") {
        assert_shape(&seed, &created, "admin");
    }
    let r = post(
        &s,
        &admin,
        "/api/admin/v1/admins",
        json!({"login": "Second", "password": "x", "password_confirmation": "x"}),
    )
    .await;
    assert_field_error(&r, "login", &["The login has already been taken."]);
    assert_field_error(
        &r,
        "password",
        &["The password must be at least 8 characters."],
    );

    let r = s.try_admin_login_body("second", "admin-password-2").await;
    let token = expect(&r, 200)["access_token"].as_str().unwrap().to_owned();
    let r = s.get("/api/admin/v1/admins", &token).await;
    let list = expect(&r, 200);
    assert_eq!(list["meta"]["total"], 2);
    assert_eq!(list["data"][0]["login"], "admin");
    assert_eq!(list["data"][1]["id"], created["id"]);
    assert_eq!(list["data"][1]["access_token_id"], Value::Null);
    let r = s.get("/api/admin/v1/admins?search=SECOND", &token).await;
    assert_eq!(expect(&r, 200)["meta"]["total"], 1);
    // Admins are not clients.
    assert_eq!(s.try_login_plain("second", "admin-password-2").await, 422);
    s.stop().await;
}

#[tokio::test]
async fn the_audit_log_pages_newest_first_and_never_holds_secrets() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let admin_id = s.app.store.account_by_login("admin").unwrap().unwrap().id;
    let user = create_user(
        &s,
        &admin,
        "audited",
        json!({"permissions": [LAYOUTS_STORE]}),
    )
    .await;
    let special = create_special(&s, &admin, "audited-temp", json!({})).await;
    let cam = create_camera(&s, &admin, "c", None).await;
    let r = s.get("/api/admin/v1/audit?per_page=2", &admin).await;
    let page = expect(&r, 200);
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["action"], "camera_created");
    assert_eq!(data[0]["target_type"], "camera");
    assert_eq!(data[0]["target_id"], cam);
    assert_eq!(data[0]["actor_id"], admin_id);
    assert_eq!(data[0]["fields"], json!(["name", "ip", "group_id"]));
    assert_eq!(data[1]["action"], "special_user_created");
    assert_eq!(data[1]["target_id"], id_of(&special));
    assert_eq!(data[1]["fields"], json!(["name", "login", "password"]));
    assert!(data[0]["at"].as_str().is_some_and(|t| t.len() == 19));
    assert!(data[0]["id"].as_u64() > data[1]["id"].as_u64());
    let total = page["meta"]["total"].as_u64().unwrap();
    let r = s.get("/api/admin/v1/audit?per_page=2&page=2", &admin).await;
    let second = expect(&r, 200);
    assert_eq!(second["data"][0]["action"], "user_created");
    assert_eq!(second["data"][0]["target_id"], id_of(&user));
    assert_eq!(
        second["data"][0]["fields"],
        json!(["login", "name", "password", "permissions"])
    );
    assert_eq!(second["meta"]["total"], total);
    let everything = s.get("/api/admin/v1/audit?per_page=500", &admin).await;
    let text = String::from_utf8_lossy(&everything.raw);
    assert!(
        !text.contains(PASSWORD) && !text.contains("argon2"),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test]
async fn admin_routes_need_an_admin_token_and_unknown_ids_are_404() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    create_user(&s, &admin, "client", json!({})).await;
    let client = s.login("client", PASSWORD).await;
    let routes = [
        ("GET", USERS.to_owned()),
        ("POST", USERS.to_owned()),
        ("GET", format!("{USERS}/2")),
        ("PUT", format!("{USERS}/2")),
        ("DELETE", format!("{USERS}/2")),
        ("GET", SPECIAL.to_owned()),
        ("POST", SPECIAL.to_owned()),
        ("PUT", format!("{SPECIAL}/2")),
        ("GET", CAMERAS.to_owned()),
        ("POST", CAMERAS.to_owned()),
        ("DELETE", format!("{CAMERAS}/1")),
        ("GET", GROUPS.to_owned()),
        ("POST", GROUPS.to_owned()),
        ("GET", "/api/admin/v1/permissions".to_owned()),
        ("GET", LICENSES.to_owned()),
        ("PUT", format!("{LICENSES}/analytic_l1")),
        ("GET", "/api/admin/v1/admins".to_owned()),
        ("POST", "/api/admin/v1/admins".to_owned()),
        ("GET", "/api/admin/v1/audit".to_owned()),
    ];
    for (method, path) in &routes {
        let r = s.call(method, path, Some(&client), Some(json!({}))).await;
        assert_eq!(r.status, 403, "{method} {path}");
        assert_eq!(r.body, json!({"message": "This action is unauthorized."}));
        let r = s.call(method, path, None, Some(json!({}))).await;
        assert_eq!(r.status, 401, "{method} {path}");
    }
    // The client's account is unchanged by the refused PUT/DELETE.
    assert_eq!(s.self_status_of(&client).await, 200);
    for path in [
        format!("{SPECIAL}/999"),
        format!("{CAMERAS}/999"),
        format!("{CAMERAS}/x"),
        format!("{GROUPS}/999"),
        format!("{USERS}/-1"),
    ] {
        for method in ["GET", "PUT", "DELETE"] {
            let r = s.call(method, &path, Some(&admin), Some(json!({}))).await;
            assert_eq!(r.status, 404, "{method} {path}");
            assert_eq!(r.body, json!({"message": "Not Found."}));
        }
    }
    let r = s.call("PATCH", SPECIAL, Some(&admin), None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, POST");
    s.stop().await;
}

/// `limits.audit_max_entries`: housekeeping removes the oldest entries beyond the bound, from
/// the log and from each account's `events`, and every index stays consistent.
#[tokio::test]
async fn housekeeping_keeps_the_audit_log_within_its_bound() {
    let s = TestServer::start_with(|c| c.limits.audit_max_entries = 100).await;
    let admin = s.admin_token().await;
    let user = create_user(&s, &admin, "chatty", json!({})).await;
    let user_id = id_of(&user);
    let token = s.login("chatty", PASSWORD).await;
    for n in 0..130 {
        let language = if n % 2 == 0 { "ru" } else { "en" };
        let r = put(
            &s,
            &token,
            "/api/v1/users/self",
            json!({"language": language}),
        )
        .await;
        expect(&r, 200);
    }
    let before = s.get("/api/admin/v1/audit?per_page=1", &admin).await;
    let before = expect(&before, 200).clone();
    assert!(before["meta"]["total"].as_u64().unwrap() > 130);
    let newest_before = before["data"][0]["id"].as_u64().unwrap();

    vmsd::housekeeping::pass(&s.app).await;

    let r = s.get("/api/admin/v1/audit?per_page=500", &admin).await;
    let page = expect(&r, 200);
    assert_eq!(page["meta"]["total"], 100);
    let ids: Vec<u64> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    // The newest 100, newest first.
    assert_eq!(
        ids,
        (newest_before - 99..=newest_before)
            .rev()
            .collect::<Vec<_>>()
    );
    // The account's events are the kept entries about it.
    let r = s.get(&format!("{USERS}/{user_id}"), &admin).await;
    let events = expect(&r, 200)["events"].as_array().unwrap().clone();
    assert!(!events.is_empty());
    assert!(events
        .iter()
        .all(|e| e["id"].as_u64().unwrap() > newest_before - 100));
    crate::invariants::Snapshot::of(&s.app.store).assert_invariants();
    // A new change is still logged, and a second pass keeps the bound.
    expect(
        &put(&s, &token, "/api/v1/users/self", json!({"language": "ru"})).await,
        200,
    );
    vmsd::housekeeping::pass(&s.app).await;
    let r = s.get("/api/admin/v1/audit?per_page=1", &admin).await;
    let page = expect(&r, 200);
    assert_eq!(page["meta"]["total"], 100);
    assert_eq!(page["data"][0]["action"], "self_update");
}
