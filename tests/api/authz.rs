//! The authorization matrix (issue 6 item 6, SPEC §3): every route of `router::routes()`
//! called with no token, a revoked token, an expired temporary user's token, a disabled
//! account's token, a token of an account an admin locked, a client token and an admin token.
//! Without a working token the answer is 401 with `WWW-Authenticate: Bearer`; a client token
//! on `/api/admin/v1/*` is 403; otherwise the exact status each route answers. Every refused
//! call must leave the store as it was. The revoked, disabled and locked tokens are
//! administrators', so only the token check stands between them and the admin routes.
//!
//! The `match` on `Endpoint` has no wildcard: a new route does not compile until this table
//! says who may call it. The login routes, `/websocket`, `/healthz` and
//! `/api/v1/static/basic` have rules of their own (tested in auth.rs, websocket.rs,
//! errors.rs); here the last two are checked to answer 200 to every caller.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};
use vmsd::model::{now, STATUS_DISABLED, STATUS_LOCKED};
use vmsd::router::{routes, Endpoint};

use crate::common::{Reply, TestServer};
use crate::invariants::Snapshot;

const PASSWORD: &str = "matrix-password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    NoToken,
    Revoked,
    Expired,
    Disabled,
    Locked,
    Client,
    Admin,
}

const CALLERS: [Caller; 7] = [
    Caller::NoToken,
    Caller::Revoked,
    Caller::Expired,
    Caller::Disabled,
    Caller::Locked,
    Caller::Client,
    Caller::Admin,
];

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Public,
    AnyToken,
    AdminOnly,
    /// Client accounts only (SPEC §8's camera routes): an admin token is 403.
    ClientOnly,
}

struct Matrix {
    s: TestServer,
    setup: String,
    revoked: String,
    expired: String,
    disabled: String,
    locked: String,
    seq: AtomicU32,
}

impl Matrix {
    fn next(&self) -> u32 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .s
            .call("POST", path, Some(&self.setup), Some(body))
            .await;
        assert_eq!(r.status, 201, "{path}: {:?}", r.body);
        r.body
    }

    /// A fresh account of `kind` (`users`, `special-users`, `admins`) with the test password.
    async fn account(&self, kind: &str) -> u64 {
        let login = format!("matrix-{kind}-{}", self.next());
        let body = json!({"name": login, "login": login, "password": PASSWORD,
                          "password_confirmation": PASSWORD});
        self.post(&format!("/api/admin/v1/{kind}"), body).await["id"]
            .as_u64()
            .unwrap()
    }

    fn login_of(&self, id: u64) -> String {
        self.s.app.store.account(id).unwrap().unwrap().login
    }

    /// A new session of account `id`: (token, access_token_id).
    async fn session(&self, id: u64, admin: bool) -> (String, String) {
        let login = self.login_of(id);
        let r = if admin {
            self.s.try_admin_login(&login, PASSWORD).await
        } else {
            self.s.try_login(&login, PASSWORD, &[]).await
        };
        assert_eq!(r.status, 200, "login {login}: {:?}", r.body);
        let token = r.body["access_token"].as_str().unwrap().to_owned();
        let id = r.body["user"]["access_token_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (token, id)
    }
}

async fn matrix() -> Matrix {
    let s = TestServer::start_with(|c| {
        c.auth.ip_login_limit = 100_000;
        c.auth.sessions_limit = 1000;
    })
    .await;
    let setup = s.admin_token().await;
    let mut m = Matrix {
        s,
        setup,
        revoked: String::new(),
        expired: String::new(),
        disabled: String::new(),
        locked: String::new(),
        seq: AtomicU32::new(0),
    };
    let admin = m.account("admins").await;
    let (revoked, _) = m.session(admin, true).await;
    let r =
        m.s.call("POST", "/api/admin/v1/auth/logout", Some(&revoked), None)
            .await;
    assert_eq!(r.status, 200);
    m.revoked = revoked;

    let temp = m.account("special-users").await;
    m.expired = m.session(temp, false).await.0;
    m.s.edit_account(temp, |a| a.expired_at = Some(now() - 1));

    let disabled = m.account("admins").await;
    m.disabled = m.session(disabled, true).await.0;
    m.s.edit_account(disabled, |a| a.status = STATUS_DISABLED);

    let locked = m.account("admins").await;
    m.locked = m.session(locked, true).await.0;
    m.s.edit_account(locked, |a| a.status = STATUS_LOCKED);
    m
}

/// One call of a route: the path with its parameter filled, a body, and the status the
/// route answers a caller that may call it.
struct Call {
    path: String,
    body: Option<Value>,
    allowed: u16,
}

/// Who may call the endpoint, and a call of it for `caller` (whose account is
/// `caller_account` when it has a working token). Records a call may change or delete are
/// created fresh for each call.
async fn plan(
    m: &Matrix,
    endpoint: Endpoint,
    pattern: &str,
    caller_account: Option<(u64, bool)>,
) -> (Access, Call) {
    // Every parameter is the last segment of its path.
    let fill = |value: u64| format!("{}{value}", &pattern[..pattern.rfind('/').unwrap_or(0) + 1]);
    let call = |path: String, body: Option<Value>, allowed: u16| Call {
        path,
        body,
        allowed,
    };
    let fixed = |allowed: u16| call(pattern.to_owned(), None, allowed);
    let n = m.next();
    let unique = |what: &str| format!("matrix-{what}-{n}");
    let new_camera = || async {
        m.post("/api/admin/v1/cameras", json!({"name": unique("cam")}))
            .await["id"]
            .as_u64()
            .unwrap()
    };
    let new_group = || async {
        m.post(
            "/api/admin/v1/camera-groups",
            json!({"name": unique("grp")}),
        )
        .await["id"]
            .as_u64()
            .unwrap()
    };
    let credentials = || json!({"login": unique("new"), "name": unique("new"), "password": PASSWORD, "password_confirmation": PASSWORD});
    match endpoint {
        Endpoint::Healthz | Endpoint::StaticBasic => (Access::Public, fixed(200)),
        Endpoint::ClientToken
        | Endpoint::AdminToken
        | Endpoint::WebSocket
        | Endpoint::PusherSocket
        | Endpoint::WsUrl
        | Endpoint::BroadcastingAuth => {
            unreachable!("routes with their own rules are skipped")
        }
        Endpoint::ClientLogout => (Access::AnyToken, fixed(200)),
        Endpoint::Sessions => (Access::AnyToken, fixed(200)),
        Endpoint::SessionRevoke => {
            // Another session of the caller's own account (of a client's when there is none).
            let (account, admin) = match caller_account {
                Some(a) => a,
                None => (m.account("users").await, false),
            };
            let (_, token_id) = m.session(account, admin).await;
            (
                Access::AnyToken,
                call(pattern.replace("{id}", &token_id), None, 200),
            )
        }
        Endpoint::SelfShow => (Access::AnyToken, fixed(200)),
        Endpoint::SelfUpdate => (
            Access::AnyToken,
            call(pattern.to_owned(), Some(json!({"language": "ru"})), 200),
        ),
        Endpoint::AdminLogout => (Access::AdminOnly, fixed(200)),
        Endpoint::AdminUpdatePassword => (
            Access::AdminOnly,
            call(
                pattern.to_owned(),
                Some(
                    json!({"old_password": PASSWORD, "password": PASSWORD, "password_confirmation": PASSWORD}),
                ),
                200,
            ),
        ),
        Endpoint::RegularUserList | Endpoint::SpecialUserList | Endpoint::CameraList => {
            (Access::AdminOnly, fixed(200))
        }
        Endpoint::CameraGroupList | Endpoint::PermissionList | Endpoint::LicenseList => {
            (Access::AdminOnly, fixed(200))
        }
        Endpoint::AdminList | Endpoint::AuditList => (Access::AdminOnly, fixed(200)),
        Endpoint::RegularUserCreate | Endpoint::SpecialUserCreate | Endpoint::AdminCreate => (
            Access::AdminOnly,
            call(pattern.to_owned(), Some(credentials()), 201),
        ),
        Endpoint::RegularUserShow | Endpoint::RegularUserUpdate | Endpoint::RegularUserDelete => {
            let id = m.account("users").await;
            let body =
                (endpoint == Endpoint::RegularUserUpdate).then(|| json!({"permissions": [1]}));
            (Access::AdminOnly, call(fill(id), body, 200))
        }
        Endpoint::SpecialUserShow | Endpoint::SpecialUserUpdate | Endpoint::SpecialUserDelete => {
            let id = m.account("special-users").await;
            let body =
                (endpoint == Endpoint::SpecialUserUpdate).then(|| json!({"ptz_priority": 7}));
            (Access::AdminOnly, call(fill(id), body, 200))
        }
        Endpoint::CameraCreate => (
            Access::AdminOnly,
            call(
                pattern.to_owned(),
                Some(json!({"name": unique("cam")})),
                201,
            ),
        ),
        Endpoint::CameraShow | Endpoint::CameraUpdate | Endpoint::CameraDelete => {
            let id = new_camera().await;
            let body =
                (endpoint == Endpoint::CameraUpdate).then(|| json!({"name": unique("renamed")}));
            (Access::AdminOnly, call(fill(id), body, 200))
        }
        Endpoint::CameraGroupCreate => (
            Access::AdminOnly,
            call(
                pattern.to_owned(),
                Some(json!({"name": unique("grp")})),
                201,
            ),
        ),
        Endpoint::CameraGroupShow | Endpoint::CameraGroupUpdate | Endpoint::CameraGroupDelete => {
            let id = new_group().await;
            let body = (endpoint == Endpoint::CameraGroupUpdate)
                .then(|| json!({"name": unique("renamed")}));
            (Access::AdminOnly, call(fill(id), body, 200))
        }
        Endpoint::LicenseUpdate => (
            Access::AdminOnly,
            call(
                pattern.replace("{type}", "analytic_l2"),
                Some(json!({"all": n + 1})),
                200,
            ),
        ),
        Endpoint::ClientCameraTree => (Access::ClientOnly, fixed(200)),
        Endpoint::ClientCameraShow | Endpoint::ClientCameraStreams => {
            // A camera assigned to the client caller, so that its call is allowed.
            let id = new_camera().await;
            if let Some((account, false)) = caller_account {
                let r =
                    m.s.call(
                        "PUT",
                        &format!("/api/admin/v1/users/{account}"),
                        Some(&m.setup),
                        Some(json!({"cameras_to_attach": [id]})),
                    )
                    .await;
                assert_eq!(r.status, 200, "attach: {:?}", r.body);
            }
            (
                Access::ClientOnly,
                call(pattern.replace("{camera}", &id.to_string()), None, 200),
            )
        }
    }
}

#[track_caller]
fn assert_unauthenticated(r: &Reply, what: &str) {
    assert_eq!(r.status, 401, "{what}: {:?}", r.body);
    assert_eq!(r.body, json!({"message": "Unauthenticated."}), "{what}");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{what}");
}

#[tokio::test]
async fn every_route_answers_each_kind_of_caller_exactly() {
    let m = matrix().await;
    let client_account = m.account("users").await;
    let admin_account = m.account("admins").await;
    let mut calls = 0;
    for (pattern, method, endpoint) in routes() {
        if matches!(
            endpoint,
            Endpoint::ClientToken
                | Endpoint::AdminToken
                | Endpoint::WebSocket
                // SPEC §9's routes: their caller rules are tested in `pushes`.
                | Endpoint::PusherSocket
                | Endpoint::WsUrl
                | Endpoint::BroadcastingAuth
        ) {
            continue;
        }
        for caller in CALLERS {
            // Working tokens are fresh for each call: a logout or password change ends them.
            let (token, account) = match caller {
                Caller::NoToken => (None, None),
                Caller::Revoked => (Some(m.revoked.clone()), None),
                Caller::Expired => (Some(m.expired.clone()), None),
                Caller::Disabled => (Some(m.disabled.clone()), None),
                Caller::Locked => (Some(m.locked.clone()), None),
                Caller::Client => (
                    Some(m.session(client_account, false).await.0),
                    Some((client_account, false)),
                ),
                Caller::Admin => (
                    Some(m.session(admin_account, true).await.0),
                    Some((admin_account, true)),
                ),
            };
            let (access, call) = plan(&m, endpoint, pattern, account).await;
            let what = format!("{caller:?} {method} {}", call.path);
            // The expired caller's session is dead: a housekeeping round may remove it at any
            // moment, which must not fall between the two snapshots.
            let _still = m.s.app.housekeeping_round.lock().await;
            let before = Snapshot::of(&m.s.app.store).stable();
            let r =
                m.s.call(
                    method.as_str(),
                    &call.path,
                    token.as_deref(),
                    call.body.clone(),
                )
                .await;
            let refused = match (access, caller) {
                (Access::Public, _) => false,
                (_, Caller::Client) if access == Access::AdminOnly => {
                    assert_eq!(r.status, 403, "{what}: {:?}", r.body);
                    assert_eq!(
                        r.body,
                        json!({"message": "This action is unauthorized."}),
                        "{what}"
                    );
                    true
                }
                (_, Caller::Admin) if access == Access::ClientOnly => {
                    assert_eq!(r.status, 403, "{what}: {:?}", r.body);
                    assert_eq!(
                        r.body,
                        json!({"message": "This action is unauthorized."}),
                        "{what}"
                    );
                    true
                }
                (_, Caller::Client | Caller::Admin) => false,
                _ => {
                    assert_unauthenticated(&r, &what);
                    true
                }
            };
            if refused {
                let after = Snapshot::of(&m.s.app.store).stable();
                assert!(after == before, "{what}: a refused call changed the store");
            } else {
                assert_eq!(r.status, call.allowed, "{what}: {:?}", r.body);
            }
            calls += 1;
        }
    }
    // Skipped: the two login routes, /websocket, and SPEC §9's wsurl, broadcasting/auth and
    // the three fixed Pusher socket routes (tested in `pushes`).
    let routes_checked = routes().count() - 3 - 5;
    assert_eq!(calls, routes_checked * CALLERS.len());
    println!("{calls} calls over {routes_checked} routes");
    m.s.stop().await;
}
