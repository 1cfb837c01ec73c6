//! The cameras a client account sees (SPEC §8): `GET /api/v1/cameras/flat-tree`,
//! `GET /api/v1/cameras/{camera}` and `GET /api/v1/cameras/{camera}/streams`, which hands out
//! a stream URL with a fresh stream token. A camera is visible to a `user`, `subuser` or
//! `special` account when assigned to it; administrators use the admin API (403 here).

use serde_json::{json, Value};

use super::admin_common::group_index;
use super::{
    host_and_port, matches_search, ok, paged_search, search_needle, HandlerResult, Request,
};
use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::media_access;
use crate::model::Camera;
use crate::validate::{self, FieldErrors};
use crate::views::{camera_pivot, camera_view};

/// Used for `{host}` when the request's `Host` is missing or not a hostname or IP.
const FALLBACK_HOST: &str = "vms.local";

/// A client (non-admin) caller: 401 without a working token, 403 for an administrator's.
fn client(app: &App, req: &Request) -> Result<Caller, ApiError> {
    let caller = req.caller(app)?;
    if caller.is_admin() {
        return Err(ApiError::Forbidden);
    }
    Ok(caller)
}

/// The camera in the path if it is visible to `caller`, with its pivot order; 404 otherwise
/// (an invisible camera is indistinguishable from a missing one).
fn visible_camera(app: &App, req: &Request, caller: &Caller) -> Result<(Camera, usize), ApiError> {
    let id = req.path_id("camera")?;
    let order = caller
        .account
        .cameras
        .iter()
        .position(|c| *c == id)
        .ok_or(ApiError::NotFound)?;
    let camera = app.store.camera(id)?.ok_or(ApiError::NotFound)?;
    Ok((camera, order))
}

pub fn flat_tree(app: &App, req: &Request) -> HandlerResult {
    let caller = client(app, req)?;
    let needle = search_needle(req);
    let groups = group_index(app)?;
    let account = &caller.account;
    // The account's cameras in id order, each with its position for the pivot's `order`.
    let cameras = account
        .cameras
        .iter()
        .enumerate()
        .filter_map(|(order, id)| {
            app.store
                .camera(*id)
                .map(|found| found.map(|camera| (order, camera)))
                .transpose()
        });
    let body = paged_search(
        req,
        cameras,
        |(_, camera)| matches_search(needle.as_deref(), &[&camera.name]),
        |(order, camera)| {
            let pivot = camera_pivot(account.id, camera, *order);
            Ok(camera_view(camera, &groups, Some(pivot)))
        },
    )?;
    ok(&body)
}

pub fn show(app: &App, req: &Request) -> HandlerResult {
    let caller = client(app, req)?;
    let (camera, order) = visible_camera(app, req, &caller)?;
    let pivot = camera_pivot(caller.account.id, &camera, order);
    ok(&camera_view(&camera, &group_index(app)?, Some(pivot)))
}

/// `type` and `source` of a streams request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quality {
    High,
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Hls,
    Rtsp,
}

fn stream_params(req: &Request) -> Result<(Quality, Source), ApiError> {
    let mut errors = FieldErrors::new();
    let quality = match req.query("type").unwrap_or("high") {
        "high" => Some(Quality::High),
        "low" => Some(Quality::Low),
        _ => {
            errors.add("type", validate::msg_invalid("type"));
            None
        }
    };
    let source = match req.query("source").unwrap_or("hls") {
        "hls" => Some(Source::Hls),
        "rtsp" => Some(Source::Rtsp),
        _ => {
            errors.add("source", validate::msg_invalid("source"));
            None
        }
    };
    match (quality, source) {
        (Some(q), Some(s)) => Ok((q, s)),
        _ => Err(ApiError::Validation(errors)),
    }
}

pub fn streams(app: &App, req: &Request) -> HandlerResult {
    let caller = client(app, req)?;
    let (camera, _) = visible_camera(app, req, &caller)?;
    let (quality, source) = stream_params(req)?;
    let media = &app.config.media;
    let mut path = camera.media_path();
    if quality == Quality::Low {
        path.push_str(&media.low_suffix);
    }
    let token = media_access::issue_token(
        app,
        &caller.session.access_token_id,
        caller.session.ends_at(),
        camera.id,
    )
    .map_err(ApiError::internal)?;
    let host = request_host(&req.headers)
        .or_else(|| app.config.tls.hostnames.first().cloned())
        .unwrap_or_else(|| FALLBACK_HOST.to_owned());
    let template = match source {
        Source::Hls => &media.hls_url,
        Source::Rtsp => &media.rtsp_url,
    };
    let url = stream_url(template, &host, &path, &token);
    ok(&json!({"url": url, "fallback_url": Value::Null, "move_to": Value::Null}))
}

/// The template with its placeholders filled in one pass, so that a value is never read
/// again as a placeholder.
fn stream_url(template: &str, host: &str, path: &str, token: &str) -> String {
    let mut out = String::with_capacity(template.len() + token.len() + path.len());
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (value, len) = if tail.starts_with("{host}") {
            (host, "{host}".len())
        } else if tail.starts_with("{path}") {
            (path, "{path}".len())
        } else if tail.starts_with("{token}") {
            (token, "{token}".len())
        } else {
            ("{", 1)
        };
        out.push_str(value);
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// The host the client used: its `Host` header without the port (lowercased; an IPv6
/// address kept in brackets, as a URL needs it), when `handlers::host_and_port` finds it sane.
fn request_host(headers: &http::HeaderMap) -> Option<String> {
    let header = headers.get(http::header::HOST)?.to_str().ok();
    host_and_port(header).map(|(host, _)| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> Option<String> {
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(value) {
            headers.insert(http::header::HOST, v);
        }
        request_host(&headers)
    }

    #[test]
    fn host_header_without_port_when_it_is_a_hostname_or_ip() {
        assert_eq!(host("vms.local"), Some("vms.local".into()));
        assert_eq!(host("VMS.Local:443"), Some("vms.local".into()));
        assert_eq!(host("192.168.1.10:8443"), Some("192.168.1.10".into()));
        assert_eq!(host("[fe80::1]:443"), Some("[fe80::1]".into()));
        assert_eq!(host("[::1]"), Some("[::1]".into()));
        for bad in [
            "",
            "a b",
            "evil.com/x",
            "evil.com?x",
            "a@b",
            "-a.com",
            "a_b.com",
            "[::1",
            "[zz]:1",
            "host:",
            "host:99999x",
            "a..b",
            "[::1]x",
        ] {
            assert_eq!(host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn templates_fill_each_placeholder_once() {
        assert_eq!(
            stream_url(
                "https://{host}:8888/{path}/index.m3u8?token={token}",
                "h",
                "a/b",
                "T"
            ),
            "https://h:8888/a/b/index.m3u8?token=T"
        );
        assert_eq!(stream_url("{x}{path}{", "h", "{host}", "T"), "{x}{host}{");
    }
}
