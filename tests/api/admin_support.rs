//! Helpers shared by the admin API tests (`seed_shapes`, `regular_users`, `special_users`,
//! `licenses`, `cameras`, `admin_misc`): the admin routes, catalogue ids used by the tests,
//! request and assertion shorthands, and records created over the API or put straight into the
//! store.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use vmsd::model::{now, Camera};

use crate::common::{Reply, TestServer};

pub(crate) const USERS: &str = "/api/admin/v1/users";
pub(crate) const SPECIAL: &str = "/api/admin/v1/special-users";
pub(crate) const CAMERAS: &str = "/api/admin/v1/cameras";
pub(crate) const GROUPS: &str = "/api/admin/v1/camera-groups";
pub(crate) const LICENSES: &str = "/api/admin/v1/licenses";

/// Permission ids of the catalogue used below.
pub(crate) const LAYOUTS_STORE: u64 = 9;
pub(crate) const ARCHIVES_SHOW: u64 = 12;
pub(crate) const PACKS_DESTROY_ADMIN: u64 = 103;

pub(crate) const PASSWORD: &str = "user-password-1";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

pub(crate) async fn post(s: &TestServer, token: &str, path: &str, body: Value) -> Reply {
    s.call("POST", path, Some(token), Some(body)).await
}

pub(crate) async fn put(s: &TestServer, token: &str, path: &str, body: Value) -> Reply {
    s.call("PUT", path, Some(token), Some(body)).await
}

pub(crate) async fn delete(s: &TestServer, token: &str, path: &str) -> Reply {
    s.call("DELETE", path, Some(token), None).await
}

#[track_caller]
pub(crate) fn expect(reply: &Reply, status: u16) -> &Value {
    assert_eq!(
        reply.status,
        status,
        "{}",
        String::from_utf8_lossy(&reply.raw)
    );
    &reply.body
}

pub(crate) fn id_of(v: &Value) -> u64 {
    v["id"].as_u64().unwrap_or_else(|| panic!("no id in {v}"))
}

pub(crate) async fn create_group(
    s: &TestServer,
    token: &str,
    name: &str,
    parent: Option<u64>,
) -> u64 {
    let r = post(s, token, GROUPS, json!({"name": name, "parent_id": parent})).await;
    id_of(expect(&r, 201))
}

pub(crate) async fn create_camera(
    s: &TestServer,
    token: &str,
    name: &str,
    group: Option<u64>,
) -> u64 {
    let r = post(
        s,
        token,
        CAMERAS,
        json!({"name": name, "ip": "192.168.204.13", "group_id": group}),
    )
    .await;
    id_of(expect(&r, 201))
}

/// `n` cameras put straight into the store (the API path of cameras is tested on its own;
/// hundreds of creates over HTTPS would only slow the suite).
pub(crate) fn seed_cameras(s: &TestServer, n: usize) -> Vec<u64> {
    let at = now();
    let ids = s
        .app
        .store
        .write_blocking(|tx| {
            let mut ids = Vec::with_capacity(n);
            for i in 0..n {
                let camera = Camera {
                    id: tx.next_id("camera")?,
                    name: format!("seeded {i}"),
                    ip: None,
                    group_id: None,
                    camera_type: "media_server_v2".into(),
                    is_enabled: true,
                    is_sound_enabled: false,
                    archive_storage_days: None,
                    services_list: Default::default(),
                    media_path: None,
                    created_at: at,
                    updated_at: at,
                };
                tx.put_camera(&camera)?;
                ids.push(camera.id);
            }
            Ok(ids)
        })
        .unwrap();
    ids
}

pub(crate) async fn create_user(s: &TestServer, token: &str, login: &str, extra: Value) -> Value {
    let mut body = json!({"login": login, "password": PASSWORD, "password_confirmation": PASSWORD});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let r = post(s, token, USERS, body).await;
    expect(&r, 201).clone()
}

pub(crate) async fn create_special(
    s: &TestServer,
    token: &str,
    login: &str,
    extra: Value,
) -> Value {
    let r = try_create_special(s, token, login, extra).await;
    expect(&r, 201).clone()
}

pub(crate) async fn try_create_special(
    s: &TestServer,
    token: &str,
    login: &str,
    extra: Value,
) -> Reply {
    let mut body = json!({
        "name": format!("{login} name"), "login": login,
        "password": PASSWORD, "password_confirmation": PASSWORD,
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    post(s, token, SPECIAL, body).await
}

pub(crate) fn permission_ids(view: &Value) -> BTreeSet<u64> {
    view["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

pub(crate) fn stored_cameras(s: &TestServer, account_id: u64) -> BTreeSet<u64> {
    s.app.store.account(account_id).unwrap().unwrap().cameras
}

/// The audit log, newest first (first page of 500).
pub(crate) async fn audit_log(s: &TestServer, token: &str) -> Vec<Value> {
    let r = s.get("/api/admin/v1/audit?per_page=500", token).await;
    expect(&r, 200)["data"].as_array().unwrap().clone()
}

impl TestServer {
    /// The status `GET /api/v1/users/self` answers with `token`.
    pub(crate) async fn self_status_of(&self, token: &str) -> u16 {
        self.get("/api/v1/users/self", token).await.status
    }

    pub(crate) async fn try_login_plain_reply(&self, login: &str, password: &str) -> Reply {
        self.call(
            "POST",
            "/api/v1/token",
            None,
            Some(json!({"login": login, "password": password})),
        )
        .await
    }
}
