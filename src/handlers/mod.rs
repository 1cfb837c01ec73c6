//! The API's handlers, one file per area, and what they share: the parsed `Request`, caller
//! checks (`Request::caller`, `Request::admin`), the paginator envelope, and `dispatch`, which
//! maps a routed `Endpoint` to its handler.

pub mod admin_common;
mod admin_misc;
mod admin_users;
mod camera_groups;
mod cameras;
mod client_cameras;
mod current_user;
mod misc;
pub(crate) mod pusher;
pub(crate) mod pushes;
mod sessions;
mod special_users;
pub mod websocket;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::auth::{self, Caller};
use crate::error::{json_response, ApiError, Body};
use crate::router::{Endpoint, Params};
use crate::validate;
use crate::App;

pub type Response = http::Response<Body>;
pub type HandlerResult = Result<Response, ApiError>;

/// A request whose body has been read (within the size and time limits) and routed.
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
    pub params: Params,
}

/// An authenticated caller whose account is an administrator (`/api/admin/v1/*`).
pub struct AdminCaller(pub Caller);

impl Request {
    /// The body as a JSON object; empty, `null` and `{}` are all "no changes".
    pub fn json(&self) -> Result<Map<String, Value>, ApiError> {
        Ok(validate::parse_body(&self.body)?)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).unwrap_or_default()
    }

    pub fn caller(&self, app: &App) -> Result<Caller, ApiError> {
        Ok(auth::authenticate(app, &self.headers)?)
    }

    /// The numeric id in path segment `name`, or 404.
    pub fn path_id(&self, name: &str) -> Result<u64, ApiError> {
        validate::path_id(self.param(name)).ok_or(ApiError::NotFound)
    }

    /// 401 without a working token, 403 with a token that is not an admin's.
    pub fn admin(&self, app: &App) -> Result<AdminCaller, ApiError> {
        let caller = self.caller(app)?;
        if caller.is_admin() {
            Ok(AdminCaller(caller))
        } else {
            Err(ApiError::Forbidden)
        }
    }

    pub fn client_meta(&self) -> auth::ClientMeta {
        auth::ClientMeta::from_headers(&self.headers, Some(self.peer.ip()))
    }

    /// `https://<Host><path>`, the base of the paginator's links.
    pub fn url_base(&self) -> String {
        let host = sane_host(&self.headers).unwrap_or("vms.local");
        format!("https://{host}{}", self.path)
    }
}

/// The `Host` header when it is safe to echo into a URL (see `host_and_port`).
pub fn sane_host(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?.trim();
    host_and_port(Some(host)).map(|_| host)
}

/// The host (a host name, an IPv4 address or a bracketed IPv6 address, without the port) and
/// the port (443 when absent) of a `Host` header; `None` when either is not sane, so that
/// nothing a client sends can put a path, a query or another authority into a URL vmsd hands
/// out (paginator links, `restServerUrl`, stream URLs, `ws_url`).
pub fn host_and_port(header: Option<&str>) -> Option<(&str, u16)> {
    let header = header?.trim();
    let (host, port) = if let Some(rest) = header.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        let port = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':')?)
        };
        (&header[..inside.len() + 2], port)
    } else {
        match header.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (header, None),
        }
    };
    let port = match port {
        None => 443,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok().filter(|p| *p != 0)?
        }
        Some(_) => return None,
    };
    let valid =
        host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() || is_hostname(host);
    valid.then_some((host, port))
}

/// RFC 1123 host name: dot-separated labels of 1–63 letters, digits and inner hyphens, at
/// most 253 characters; one trailing dot is allowed.
fn is_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub fn ok<T: serde::Serialize + ?Sized>(body: &T) -> HandlerResult {
    Ok(json_response(StatusCode::OK, body))
}

pub fn created(body: &Value) -> HandlerResult {
    Ok(json_response(StatusCode::CREATED, body))
}

pub fn status_ok() -> HandlerResult {
    ok(&json!({"status": "ok"}))
}

/// Page and per-page of a list request (SPEC §2: per_page default 25, max 500).
pub fn page_params(req: &Request) -> (usize, usize) {
    let page = req
        .query("page")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let per_page = req
        .query("per_page")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(25)
        .min(500);
    (page, per_page)
}

/// `search` as a lowercase needle, if the request has a non-empty one.
pub fn search_needle(req: &Request) -> Option<String> {
    req.query("search")
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
}

/// One page of the records `keep` selects, rendered, and how many were selected in all: the
/// paged search every list route shares (page and per_page from the query).
pub fn paged_search<T, E>(
    req: &Request,
    records: impl Iterator<Item = Result<T, E>>,
    keep: impl Fn(&T) -> bool,
    render: impl Fn(&T) -> Result<Value, ApiError>,
) -> Result<Value, ApiError>
where
    ApiError: From<E>,
{
    let (page, per_page) = page_params(req);
    let skip = (page - 1).saturating_mul(per_page);
    let mut total = 0;
    let mut items = Vec::new();
    for record in records {
        let record = record?;
        if !keep(&record) {
            continue;
        }
        if total >= skip && items.len() < per_page {
            items.push(render(&record)?);
        }
        total += 1;
    }
    Ok(paginated(req, items, total, page, per_page))
}

/// Whether a record matches `search`: a case-insensitive substring of any of `fields`.
pub fn matches_search(needle: Option<&str>, fields: &[&str]) -> bool {
    needle.is_none_or(|n| fields.iter().any(|f| f.to_lowercase().contains(n)))
}

/// Laravel's paginator envelope around one page of `data`, `total` items in all.
pub fn paginated(
    req: &Request,
    data: Vec<Value>,
    total: usize,
    page: usize,
    per_page: usize,
) -> Value {
    let base = req.url_base();
    let last_page = total.div_ceil(per_page).max(1);
    let url = |p: usize| format!("{base}?per_page={per_page}&page={p}");
    let from = (page - 1) * per_page + 1;
    let count = data.len();
    let mut links = vec![json!({
        "url": (page > 1).then(|| url(page - 1)),
        "label": "pagination.previous",
        "active": false,
    })];
    for p in 1..=last_page {
        links.push(json!({"url": url(p), "label": p.to_string(), "active": p == page}));
    }
    links.push(json!({
        "url": (page < last_page).then(|| url(page + 1)),
        "label": "pagination.next",
        "active": false,
    }));
    json!({
        "data": data,
        "links": {
            "first": url(1),
            "last": url(last_page),
            "prev": (page > 1).then(|| url(page - 1)),
            "next": (page < last_page).then(|| url(page + 1)),
        },
        "meta": {
            "current_page": page,
            "from": (count > 0).then_some(from),
            "last_page": last_page,
            "links": links,
            "path": base,
            "per_page": per_page,
            "to": (count > 0).then_some(from + count - 1),
            "total": total,
        }
    })
}

/// Runs the handler of a routed request. The socket endpoints never reach here: the server
/// hands their upgrades to `handlers::websocket` and `handlers::pusher` before reading a body.
pub async fn dispatch(app: &App, endpoint: Endpoint, req: Request) -> HandlerResult {
    match endpoint {
        Endpoint::Healthz => misc::healthz(app).await,
        Endpoint::StaticBasic => misc::static_basic(app),
        Endpoint::ClientToken => sessions::client_token(app, &req).await,
        Endpoint::ClientLogout => sessions::logout(app, &req).await,
        Endpoint::Sessions => sessions::list(app, &req),
        Endpoint::SessionRevoke => sessions::revoke(app, &req).await,
        Endpoint::SelfShow => current_user::show(app, &req),
        Endpoint::SelfUpdate => current_user::update(app, &req).await,
        Endpoint::AdminToken => sessions::admin_token(app, &req).await,
        Endpoint::AdminLogout => sessions::admin_logout(app, &req).await,
        Endpoint::AdminUpdatePassword => current_user::admin_update_password(app, &req).await,
        Endpoint::WebSocket | Endpoint::PusherSocket => Err(ApiError::NotFound),
        Endpoint::WsUrl => pushes::wsurl(app, &req),
        Endpoint::BroadcastingAuth => pushes::broadcasting_auth(app, &req),
        Endpoint::RegularUserList => admin_users::list(app, &req),
        Endpoint::RegularUserCreate => admin_users::create(app, &req).await,
        Endpoint::RegularUserShow => admin_users::show(app, &req),
        Endpoint::RegularUserUpdate => admin_users::update(app, &req).await,
        Endpoint::RegularUserDelete => admin_users::delete(app, &req).await,
        Endpoint::SpecialUserList => special_users::list(app, &req),
        Endpoint::SpecialUserCreate => special_users::create(app, &req).await,
        Endpoint::SpecialUserShow => special_users::show(app, &req),
        Endpoint::SpecialUserUpdate => special_users::update(app, &req).await,
        Endpoint::SpecialUserDelete => special_users::delete(app, &req).await,
        Endpoint::CameraList => cameras::list(app, &req),
        Endpoint::CameraCreate => cameras::create(app, &req).await,
        Endpoint::CameraShow => cameras::show(app, &req),
        Endpoint::CameraUpdate => cameras::update(app, &req).await,
        Endpoint::CameraDelete => cameras::delete(app, &req).await,
        Endpoint::CameraGroupList => camera_groups::list_groups(app, &req),
        Endpoint::CameraGroupCreate => camera_groups::create_group(app, &req).await,
        Endpoint::CameraGroupShow => camera_groups::show_group(app, &req),
        Endpoint::CameraGroupUpdate => camera_groups::update_group(app, &req).await,
        Endpoint::CameraGroupDelete => camera_groups::delete_group(app, &req).await,
        Endpoint::PermissionList => admin_misc::permissions(app, &req),
        Endpoint::LicenseList => admin_misc::licenses(app, &req),
        Endpoint::LicenseUpdate => admin_misc::update_license(app, &req).await,
        Endpoint::AdminList => admin_misc::admins(app, &req),
        Endpoint::AdminCreate => admin_misc::create_admin(app, &req).await,
        Endpoint::AuditList => admin_misc::audit(app, &req),
        Endpoint::ClientCameraTree => client_cameras::flat_tree(app, &req),
        Endpoint::ClientCameraShow => client_cameras::show(app, &req),
        Endpoint::ClientCameraStreams => client_cameras::streams(app, &req),
    }
}
