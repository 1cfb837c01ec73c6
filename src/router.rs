//! Method + path → `Endpoint`, with matchit doing the path matching. A known path with the
//! wrong method is 405 with `Allow`; an unknown path is 404.

use http::Method;

/// Every route vmsd serves. `handlers::dispatch` maps each to its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    StaticBasic,
    ClientToken,
    ClientLogout,
    Sessions,
    SessionRevoke,
    SelfShow,
    SelfUpdate,
    AdminToken,
    AdminLogout,
    AdminUpdatePassword,
    WebSocket,
    /// The Pusher socket of SPEC §9 (`{prefix}/app/{key}`), upgraded before any body is read.
    PusherSocket,
    WsUrl,
    BroadcastingAuth,
    // Admin API: regular users, temporary users, cameras, groups, permissions, licences,
    // administrators, audit (SPEC §4.2–§4.4).
    RegularUserList,
    RegularUserCreate,
    RegularUserShow,
    RegularUserUpdate,
    RegularUserDelete,
    SpecialUserList,
    SpecialUserCreate,
    SpecialUserShow,
    SpecialUserUpdate,
    SpecialUserDelete,
    CameraList,
    CameraCreate,
    CameraShow,
    CameraUpdate,
    CameraDelete,
    CameraGroupList,
    CameraGroupCreate,
    CameraGroupShow,
    CameraGroupUpdate,
    CameraGroupDelete,
    PermissionList,
    LicenseList,
    LicenseUpdate,
    AdminList,
    AdminCreate,
    AuditList,
    // Client cameras and stream URLs (SPEC §8).
    ClientCameraTree,
    ClientCameraShow,
    ClientCameraStreams,
}

const ROUTES: &[(&str, &[(Method, Endpoint)])] = &[
    ("/healthz", &[(Method::GET, Endpoint::Healthz)]),
    (
        "/api/v1/static/basic",
        &[(Method::GET, Endpoint::StaticBasic)],
    ),
    ("/api/v1/token", &[(Method::POST, Endpoint::ClientToken)]),
    ("/api/v1/logout", &[(Method::POST, Endpoint::ClientLogout)]),
    ("/api/v1/sessions", &[(Method::GET, Endpoint::Sessions)]),
    (
        "/api/v1/sessions/{id}",
        &[(Method::POST, Endpoint::SessionRevoke)],
    ),
    (
        "/api/v1/users/self",
        &[
            (Method::GET, Endpoint::SelfShow),
            (Method::PUT, Endpoint::SelfUpdate),
        ],
    ),
    (
        "/api/admin/v1/auth/token",
        &[(Method::POST, Endpoint::AdminToken)],
    ),
    (
        "/api/admin/v1/auth/logout",
        &[(Method::POST, Endpoint::AdminLogout)],
    ),
    (
        "/api/admin/v1/users/self/update-password",
        &[(Method::PUT, Endpoint::AdminUpdatePassword)],
    ),
    ("/websocket", &[(Method::GET, Endpoint::WebSocket)]),
    ("/api/v1/wsurl", &[(Method::GET, Endpoint::WsUrl)]),
    (
        "/api/v1/broadcasting/auth",
        &[(Method::POST, Endpoint::BroadcastingAuth)],
    ),
    // The prefixes every AIPIX client may use (push1st serves /pusher and /app; AIPIX's
    // ingress forwards /ws too); `push.path` adds its own in `Router::new`.
    (
        "/pusher/app/{key}",
        &[(Method::GET, Endpoint::PusherSocket)],
    ),
    ("/ws/app/{key}", &[(Method::GET, Endpoint::PusherSocket)]),
    ("/app/{key}", &[(Method::GET, Endpoint::PusherSocket)]),
    (
        "/api/admin/v1/users",
        &[
            (Method::GET, Endpoint::RegularUserList),
            (Method::POST, Endpoint::RegularUserCreate),
        ],
    ),
    (
        "/api/admin/v1/users/{user}",
        &[
            (Method::GET, Endpoint::RegularUserShow),
            (Method::PUT, Endpoint::RegularUserUpdate),
            (Method::DELETE, Endpoint::RegularUserDelete),
        ],
    ),
    (
        "/api/admin/v1/special-users",
        &[
            (Method::GET, Endpoint::SpecialUserList),
            (Method::POST, Endpoint::SpecialUserCreate),
        ],
    ),
    (
        "/api/admin/v1/special-users/{user}",
        &[
            (Method::GET, Endpoint::SpecialUserShow),
            (Method::PUT, Endpoint::SpecialUserUpdate),
            (Method::DELETE, Endpoint::SpecialUserDelete),
        ],
    ),
    (
        "/api/admin/v1/cameras",
        &[
            (Method::GET, Endpoint::CameraList),
            (Method::POST, Endpoint::CameraCreate),
        ],
    ),
    (
        "/api/admin/v1/cameras/{camera}",
        &[
            (Method::GET, Endpoint::CameraShow),
            (Method::PUT, Endpoint::CameraUpdate),
            (Method::DELETE, Endpoint::CameraDelete),
        ],
    ),
    (
        "/api/admin/v1/camera-groups",
        &[
            (Method::GET, Endpoint::CameraGroupList),
            (Method::POST, Endpoint::CameraGroupCreate),
        ],
    ),
    (
        "/api/admin/v1/camera-groups/{group}",
        &[
            (Method::GET, Endpoint::CameraGroupShow),
            (Method::PUT, Endpoint::CameraGroupUpdate),
            (Method::DELETE, Endpoint::CameraGroupDelete),
        ],
    ),
    (
        "/api/admin/v1/permissions",
        &[(Method::GET, Endpoint::PermissionList)],
    ),
    (
        "/api/admin/v1/licenses",
        &[(Method::GET, Endpoint::LicenseList)],
    ),
    (
        "/api/admin/v1/licenses/{type}",
        &[(Method::PUT, Endpoint::LicenseUpdate)],
    ),
    (
        "/api/admin/v1/admins",
        &[
            (Method::GET, Endpoint::AdminList),
            (Method::POST, Endpoint::AdminCreate),
        ],
    ),
    ("/api/admin/v1/audit", &[(Method::GET, Endpoint::AuditList)]),
    (
        "/api/v1/cameras/flat-tree",
        &[(Method::GET, Endpoint::ClientCameraTree)],
    ),
    (
        "/api/v1/cameras/{camera}",
        &[(Method::GET, Endpoint::ClientCameraShow)],
    ),
    (
        "/api/v1/cameras/{camera}/streams",
        &[(Method::GET, Endpoint::ClientCameraStreams)],
    ),
];

/// Every route as (path pattern, method, endpoint), in declaration order: for tests that
/// must cover every route, such as the authorization matrix.
pub fn routes() -> impl Iterator<Item = (&'static str, Method, Endpoint)> {
    ROUTES
        .iter()
        .flat_map(|(path, methods)| methods.iter().map(move |(m, e)| (*path, m.clone(), *e)))
}

/// Why a request matched no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    /// Known path, wrong method: the methods the path does take.
    MethodNotAllowed(Vec<Method>),
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteError::NotFound => f.write_str("no such route"),
            RouteError::MethodNotAllowed(_) => f.write_str("method not allowed on this route"),
        }
    }
}

impl std::error::Error for RouteError {}

pub struct Router {
    paths: matchit::Router<&'static [(Method, Endpoint)]>,
}

/// Path parameters of a matched route, by name.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The Pusher socket's route under `push.path`.
const PUSHER_SOCKET: &[(Method, Endpoint)] = &[(Method::GET, Endpoint::PusherSocket)];

impl Router {
    /// Every route of `ROUTES`, and the Pusher socket under `push_path` (`push.path`) when it
    /// is not one of the fixed prefixes.
    pub fn new(push_path: &str) -> Result<Router, String> {
        let mut paths = matchit::Router::new();
        for (path, methods) in ROUTES {
            paths
                .insert(*path, *methods)
                .map_err(|e| format!("route {path}: {e}"))?;
        }
        let pusher = format!("{push_path}/app/{{key}}");
        // `server::serve` hands console paths to the console before routing: a socket there
        // would never be reached (check-config refuses such a `push.path` too).
        if crate::console::is_console_path(&pusher) {
            return Err(format!(
                "push.path {push_path:?} lies under the admin console's /console"
            ));
        }
        if !ROUTES.iter().any(|(path, _)| *path == pusher) {
            paths.insert(pusher.clone(), PUSHER_SOCKET).map_err(|e| {
                format!("push.path {push_path:?} clashes with another route ({pusher}: {e})")
            })?;
        }
        Ok(Router { paths })
    }

    pub fn route(&self, method: &Method, path: &str) -> Result<(Endpoint, Params), RouteError> {
        // Laravel ignores one trailing slash; so do we.
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        let matched = self.paths.at(path).map_err(|_| RouteError::NotFound)?;
        let params = Params(
            matched
                .params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        );
        let methods = *matched.value;
        // HEAD is answered like GET would be, as every HTTP server does.
        let wanted = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        match methods.iter().find(|(m, _)| m == wanted) {
            Some((_, endpoint)) => Ok((*endpoint, params)),
            None => Err(RouteError::MethodNotAllowed(
                methods.iter().map(|(m, _)| m.clone()).collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_route_lies_under_the_console() {
        // `server::serve` answers console paths before routing.
        for (path, _) in ROUTES {
            assert!(!crate::console::is_console_path(path), "{path}");
        }
        assert!(Router::new("/console").is_err());
        assert!(Router::new("/console/ws").is_err());
        assert!(Router::new("/consoles").is_ok());
    }

    #[test]
    fn routes_methods_and_params() -> Result<(), String> {
        let r = Router::new("/pusher")?;
        assert!(matches!(
            r.route(&Method::GET, "/api/v1/users/self"),
            Ok((Endpoint::SelfShow, _))
        ));
        assert!(matches!(
            r.route(&Method::PUT, "/api/v1/users/self/"),
            Ok((Endpoint::SelfUpdate, _))
        ));
        let (e, p) = r
            .route(&Method::POST, "/api/v1/sessions/abc")
            .map_err(|e| e.to_string())?;
        assert_eq!(e, Endpoint::SessionRevoke);
        assert_eq!(p.get("id"), Some("abc"));
        match r.route(&Method::DELETE, "/api/v1/users/self") {
            Err(RouteError::MethodNotAllowed(m)) => assert_eq!(m, vec![Method::GET, Method::PUT]),
            other => return Err(format!("{other:?}")),
        }
        assert!(matches!(
            r.route(&Method::GET, "/nope"),
            Err(RouteError::NotFound)
        ));
        assert!(matches!(
            r.route(&Method::GET, "/"),
            Err(RouteError::NotFound)
        ));
        Ok(())
    }

    #[test]
    fn admin_routes_keep_the_static_update_password_path_apart() -> Result<(), String> {
        let r = Router::new("/pusher")?;
        let (e, p) = r
            .route(&Method::GET, "/api/admin/v1/users/5")
            .map_err(|e| e.to_string())?;
        assert_eq!((e, p.get("user")), (Endpoint::RegularUserShow, Some("5")));
        assert!(matches!(
            r.route(&Method::PUT, "/api/admin/v1/users/self/update-password"),
            Ok((Endpoint::AdminUpdatePassword, _))
        ));
        let (e, p) = r
            .route(&Method::PUT, "/api/admin/v1/licenses/analytic_l2")
            .map_err(|e| e.to_string())?;
        assert_eq!(
            (e, p.get("type")),
            (Endpoint::LicenseUpdate, Some("analytic_l2"))
        );
        match r.route(&Method::PATCH, "/api/admin/v1/special-users/3") {
            Err(RouteError::MethodNotAllowed(m)) => {
                assert_eq!(m, vec![Method::GET, Method::PUT, Method::DELETE])
            }
            other => return Err(format!("{other:?}")),
        }
        Ok(())
    }

    #[test]
    fn the_pusher_socket_follows_push_path_and_the_fixed_prefixes() -> Result<(), String> {
        let r = Router::new("/realtime/v2")?;
        for path in [
            "/realtime/v2/app/key",
            "/pusher/app/key",
            "/ws/app/key",
            "/app/key",
        ] {
            let (e, p) = r.route(&Method::GET, path).map_err(|e| e.to_string())?;
            assert_eq!(
                (e, p.get("key")),
                (Endpoint::PusherSocket, Some("key")),
                "{path}"
            );
        }
        assert!(Router::new("").is_ok());
        assert!(Router::new("/pusher").is_ok());
        Ok(())
    }
}
