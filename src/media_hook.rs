//! Decoding of a media server's authorization request (SPEC §8) into what vmsd must decide: the
//! stream path, the stream token and the action; and the matching of a path to a camera.
//!
//! Pure functions: nothing here reads the store or decides. The hook handler answers from
//! what they return:
//! - a `HookDecodeError` → 403 (the request names no camera vmsd could allow);
//! - a `HookCheck` without a token → 401, so that MediaMTX and nginx prompt for credentials;
//! - otherwise the token and the camera decide (SPEC §8's 200 / 401 / 403).
//!
//! Tokens are never part of a `Debug` or `Display` output of this module. The refusal counters
//! (`RefusalCounts`, SPEC §8: "refusals counted") live here too, so that `App` holds them
//! without depending on the module that decides.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

/// Largest MediaMTX body decoded. MediaMTX's own bodies are a few hundred bytes; the bound
/// keeps a hostile local client from making the hook parse megabytes.
pub const MAX_HOOK_BODY_BYTES: usize = 64 * 1024;

/// Longest stream path matched to a camera.
pub const MAX_MEDIA_PATH_BYTES: usize = 1024;

/// Most '/'-separated segments of a matched path: camera matching tries each prefix with up
/// to two lookups, so this bounds the work one hook request causes.
const MAX_PATH_SEGMENTS: usize = 16;

/// A refused action's name is kept for the debug log; this bounds what a caller can put there.
const MAX_ACTION_NAME_CHARS: usize = 32;

/// What the media server wants to do with the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaAction {
    /// Live view.
    Read,
    /// Archive; needs the permission `archives-show` besides the camera.
    Playback,
    /// Anything vmsd never allows (publish, api, metrics, pprof, unknown): 403. The name as
    /// sent, cut to 32 characters, for the debug log.
    Refused(String),
}

/// One decoded authorization request.
#[derive(Clone, PartialEq, Eq)]
pub struct HookCheck {
    /// The stream path to match with `match_camera`; empty only when `action` is `Refused`.
    pub path: String,
    /// The stream token; `None` when the request carried none (→ 401).
    pub token: Option<String>,
    pub action: MediaAction,
}

impl fmt::Debug for HookCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a credential: a `debug!(?check)` must not leak it.
        f.debug_struct("HookCheck")
            .field("path", &self.path)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("action", &self.action)
            .finish()
    }
}

/// Why a request could not be decoded; the hook answers 403 to each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookDecodeError {
    /// A MediaMTX body over `MAX_HOOK_BODY_BYTES`.
    BodyTooLarge,
    /// A MediaMTX body that is not a JSON object of the expected shape; says where, never
    /// what (the body may hold a password).
    BadJson(String),
    /// `X-Original-URI` that is not visible ASCII, or whose path is badly percent-encoded or
    /// not UTF-8 once decoded.
    BadUri,
    /// No stream path: a GET without `X-Original-URI` or `name`, an URI that is only the
    /// prefix, or a `read`/`playback` body without `path`.
    NoPath,
}

impl fmt::Display for HookDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookDecodeError::BodyTooLarge => write!(
                f,
                "authorization body larger than {MAX_HOOK_BODY_BYTES} bytes"
            ),
            HookDecodeError::BadJson(why) => write!(f, "authorization body is not valid: {why}"),
            HookDecodeError::BadUri => f.write_str("X-Original-URI is not a valid request URI"),
            HookDecodeError::NoPath => f.write_str("the request names no stream path"),
        }
    }
}

impl std::error::Error for HookDecodeError {}

/// The fields of MediaMTX's body that matter here. Its other fields (`ip`, `user`, `protocol`,
/// `id`, `userAgent`, and any later addition) are ignored, whatever their type; each of these
/// may be absent or null.
#[derive(Deserialize)]
struct MediamtxBody {
    token: Option<String>,
    password: Option<String>,
    query: Option<String>,
    action: Option<String>,
    path: Option<String>,
}

/// `POST /media/auth` from MediaMTX's external HTTP authentication (`authMethod: http`).
///
/// The token is `token`, else `password` (RTSP/RTMP clients put it there), else the `token`
/// parameter of `query`: for HLS and WebRTC, MediaMTX leaves a `?token=` of the URL only in
/// `query`.
pub fn from_mediamtx(body: &[u8]) -> Result<HookCheck, HookDecodeError> {
    if body.len() > MAX_HOOK_BODY_BYTES {
        return Err(HookDecodeError::BodyTooLarge);
    }
    let parsed: MediamtxBody = serde_json::from_slice(body).map_err(|e| {
        HookDecodeError::BadJson(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let action = match parsed.action.as_deref() {
        Some("read") => MediaAction::Read,
        Some("playback") => MediaAction::Playback,
        other => MediaAction::Refused(action_name(other.unwrap_or(""))),
    };
    let path = parsed.path.unwrap_or_default();
    // A refused action needs no path (api/metrics/pprof have none); it is answered 403 anyway.
    if path.is_empty() && !matches!(action, MediaAction::Refused(_)) {
        return Err(HookDecodeError::NoPath);
    }
    let token = non_empty(parsed.token)
        .or_else(|| non_empty(parsed.password))
        .or_else(|| {
            parsed
                .query
                .as_deref()
                .and_then(|q| query_param(q, "token"))
        });
    Ok(HookCheck {
        path,
        token,
        action,
    })
}

/// `GET /media/auth`, in the two shapes SPEC §8 knows:
/// - nginx `auth_request`: `X-Original-URI` holds the original request URI; its path, percent-
///   decoded, with `uri_prefix` and then one leading "/" stripped, is the stream path, and its
///   `token` query parameter the token. `uri_prefix` is stripped only at a segment boundary
///   ("/hls" strips "/hls/cam1", not "/hlsx/cam1"), and only when the path starts with it.
/// - Flussonic's auth backend: the query parameters `name` (the stream) and `token`. A DVR
///   request is `Playback`: `media_request` or `type` starting with "dvr", or a
///   `media_request` naming a timeshift (Flussonic's `hls_timeshift_playlist-…` reads the
///   archive too).
///
/// In both, `Authorization: Bearer <token>` supplies the token when the query has none. Any
/// other GET check is `Read`.
pub fn from_get(
    headers: &http::HeaderMap,
    query: Option<&str>,
    uri_prefix: &str,
) -> Result<HookCheck, HookDecodeError> {
    let query = query.unwrap_or("");
    let (path, token, action) = if let Some(uri) = headers.get("x-original-uri") {
        let uri = uri.to_str().map_err(|_| HookDecodeError::BadUri)?;
        let (raw_path, raw_query) = uri.split_once('?').unwrap_or((uri, ""));
        let decoded = percent_decode(raw_path).ok_or(HookDecodeError::BadUri)?;
        let path = strip_uri_prefix(&decoded, uri_prefix).to_owned();
        (path, query_param(raw_query, "token"), MediaAction::Read)
    } else if let Some(name) = query_param(query, "name") {
        let dvr = |key: &str| query_param(query, key).is_some_and(|v| v.starts_with("dvr"));
        let timeshift =
            query_param(query, "media_request").is_some_and(|v| v.contains("timeshift"));
        let action = if dvr("media_request") || dvr("type") || timeshift {
            MediaAction::Playback
        } else {
            MediaAction::Read
        };
        (name, query_param(query, "token"), action)
    } else {
        return Err(HookDecodeError::NoPath);
    };
    if path.is_empty() {
        return Err(HookDecodeError::NoPath);
    }
    let token = token.or_else(|| bearer_token(headers));
    Ok(HookCheck {
        path,
        token,
        action,
    })
}

/// The camera a stream path names (SPEC §8): the one whose `media_path` the path equals or
/// equals followed by "/..." (HLS asks for "cam1/index.m3u8"), else the one whose
/// `media_path` + `low_suffix` does; the longest match wins. `lookup` maps an exact
/// `media_path` to its camera.
///
/// Prefixes are tried from the longest, each first as a `media_path` and then as one with the
/// low suffix, so the most specific camera wins even across the two forms: with cameras "a"
/// and "a/b", "a/b_low/index.m3u8" is "a/b"'s low stream, never "a"'s subpath. (§4.4 refuses
/// a `media_path` ending with the suffix, so the two forms never compete at one length.)
///
/// A path with a "." or ".." segment matches nothing: nginx would serve another file than the
/// one its raw `X-Original-URI` seems to name ("a/../b" is "b").
pub fn match_camera(
    path: &str,
    low_suffix: &str,
    lookup: impl Fn(&str) -> Option<u64>,
) -> Option<u64> {
    if path.is_empty() || path.len() > MAX_MEDIA_PATH_BYTES {
        return None;
    }
    let mut segments = 0;
    for segment in path.split('/') {
        segments += 1;
        if segments > MAX_PATH_SEGMENTS || segment == "." || segment == ".." {
            return None;
        }
    }
    let ends = std::iter::once(path.len()).chain(path.rmatch_indices('/').map(|(at, _)| at));
    for end in ends {
        let Some(candidate) = path.get(..end).filter(|c| !c.is_empty()) else {
            continue;
        };
        if let Some(camera) = lookup(candidate) {
            return Some(camera);
        }
        if low_suffix.is_empty() {
            continue;
        }
        if let Some(base) = candidate.strip_suffix(low_suffix).filter(|b| !b.is_empty()) {
            if let Some(camera) = lookup(base) {
                return Some(camera);
            }
        }
    }
    None
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// The first non-empty value of `key` in a URL query string, percent-decoded. A leading '?'
/// is tolerated.
fn query_param(query: &str, key: &str) -> Option<String> {
    let query = query.strip_prefix('?').unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

/// `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_token(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// The path part of a request URI, percent-decoded as a path ('+' stays '+'); `None` for a
/// '%' not followed by two hex digits or bytes that are not UTF-8 once decoded.
fn percent_decode(raw: &str) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let high = hex_digit(bytes.next()?)?;
            let low = hex_digit(bytes.next()?)?;
            out.push((high << 4) | low);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `path` without `prefix` (at a segment boundary) and then one leading '/'.
fn strip_uri_prefix<'a>(path: &'a str, prefix: &str) -> &'a str {
    let rest = match path.strip_prefix(prefix) {
        Some(rest)
            if !prefix.is_empty()
                && (prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/')) =>
        {
            rest
        }
        _ => path,
    };
    rest.strip_prefix('/').unwrap_or(rest)
}

/// A refused action's name for the log, cut to a bounded length.
fn action_name(action: &str) -> String {
    action.chars().take(MAX_ACTION_NAME_CHARS).collect()
}

/// Refusals since start, by answer (SPEC §8: "refusals counted"); logged at shutdown.
#[derive(Debug, Default)]
pub struct RefusalCounts {
    pub unauthenticated: AtomicU64,
    pub forbidden: AtomicU64,
}

impl RefusalCounts {
    pub fn count_unauthenticated(&self) {
        self.unauthenticated.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_forbidden(&self) {
        self.forbidden.fetch_add(1, Ordering::Relaxed);
    }

    /// (401s, 403s) so far.
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.unauthenticated.load(Ordering::Relaxed),
            self.forbidden.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    /// MediaMTX 1.12 to 1.18 (`token` added in 1.12.3, `userAgent` only from 1.19): an HLS read
    /// whose token is only in `query`.
    const MEDIAMTX_1_12_BODY: &str = r#"{"ip":"192.168.1.20","user":"","password":"","token":"","action":"read","path":"cam1","protocol":"hls","id":null,"query":"token=AQAAtok-_en&x=1"}"#;

    /// MediaMTX 1.19 and later, as `internal/auth/manager.go` marshals it: adds `userAgent`.
    const MEDIAMTX_1_19_BODY: &str = r#"{"ip":"192.168.1.20","user":"","password":"","token":"","action":"read","path":"cam1","protocol":"hls","id":"3f2b8c1e-7a4d-4f0e-9b6a-2d1c5e8f9a70","query":"token=AQAAtok-_en&x=1","userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)"}"#;

    fn mediamtx(json: &str) -> HookCheck {
        from_mediamtx(json.as_bytes()).unwrap()
    }

    fn check(path: &str, token: Option<&str>, action: MediaAction) -> HookCheck {
        HookCheck {
            path: path.to_owned(),
            token: token.map(str::to_owned),
            action,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn mediamtx_bodies_of_both_generations_decode() {
        let expected = check("cam1", Some("AQAAtok-_en"), MediaAction::Read);
        assert_eq!(mediamtx(MEDIAMTX_1_12_BODY), expected);
        assert_eq!(mediamtx(MEDIAMTX_1_19_BODY), expected);
    }

    #[test]
    fn mediamtx_token_order() {
        let body = |token: &str, password: &str, query: &str| {
            format!(
                r#"{{"action":"read","path":"cam1","token":{token},"password":{password},"query":{query}}}"#
            )
        };
        let token_of = |b: String| mediamtx(&b).token;
        assert_eq!(
            token_of(body(r#""t1""#, r#""p1""#, r#""token=q1""#)),
            Some("t1".into())
        );
        assert_eq!(
            token_of(body(r#""""#, r#""p1""#, r#""token=q1""#)),
            Some("p1".into())
        );
        assert_eq!(
            token_of(body("null", r#""""#, r#""a=1&token=q%2D1&token=q2""#)),
            Some("q-1".into())
        );
        assert_eq!(
            token_of(body("null", "null", r#""?token=&token=q2""#)),
            Some("q2".into())
        );
        assert_eq!(token_of(body(r#""""#, r#""""#, r#""""#)), None);
        assert_eq!(token_of(body("null", "null", "null")), None);
        assert_eq!(token_of(r#"{"action":"read","path":"cam1"}"#.into()), None);
    }

    #[test]
    fn mediamtx_actions() {
        let action = |a: &str| mediamtx(&format!(r#"{{"action":{a},"path":"cam1"}}"#)).action;
        assert_eq!(action(r#""read""#), MediaAction::Read);
        assert_eq!(action(r#""playback""#), MediaAction::Playback);
        for refused in ["publish", "api", "metrics", "pprof", "READ", "", "read "] {
            assert_eq!(
                action(&format!("{refused:?}")),
                MediaAction::Refused(refused.to_owned())
            );
        }
        assert_eq!(action("null"), MediaAction::Refused(String::new()));
        let long = "x".repeat(10_000);
        assert_eq!(
            action(&format!("{long:?}")),
            MediaAction::Refused("x".repeat(32))
        );
        // api/metrics/pprof come without a path; they decode (and are refused by the caller).
        let api = mediamtx(
            r#"{"ip":"127.0.0.1","user":"u","password":"p","token":"","action":"api","path":"","protocol":"","id":null,"query":""}"#,
        );
        assert_eq!(api.action, MediaAction::Refused("api".into()));
        assert_eq!(api.path, "");
    }

    #[test]
    fn mediamtx_read_without_path_is_no_path() {
        for body in [
            r#"{"action":"read","token":"t"}"#,
            r#"{"action":"playback","path":"","token":"t"}"#,
            r#"{"action":"read","path":null}"#,
        ] {
            assert_eq!(
                from_mediamtx(body.as_bytes()),
                Err(HookDecodeError::NoPath),
                "{body}"
            );
        }
    }

    #[test]
    fn mediamtx_hostile_bodies_are_errors() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"\"read\"",
            b"{",
            b"{\"action\":\"read\",\"path\":\"cam1\"",
            b"{\"path\":5,\"action\":\"read\"}",
            b"{\"token\":[\"a\"],\"action\":\"read\",\"path\":\"c\"}",
            b"{\"action\":\"read\",\"path\":\"a\",\"path\":\"b\"}",
            b"\xff\xfe{}",
        ] {
            match from_mediamtx(body) {
                Err(HookDecodeError::BadJson(why)) => {
                    assert!(!why.contains('"'), "{why}");
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        let huge = format!(
            r#"{{"action":"read","path":"cam1","userAgent":"{}"}}"#,
            "x".repeat(MAX_HOOK_BODY_BYTES)
        );
        assert_eq!(
            from_mediamtx(huge.as_bytes()),
            Err(HookDecodeError::BodyTooLarge)
        );
        let deep = "[".repeat(50_000);
        assert!(from_mediamtx(deep.as_bytes()).is_err());
        // Unknown keys of any type are ignored.
        let extra = mediamtx(
            r#"{"action":"read","path":"cam1","token":"t","ip":5,"id":{"x":[1]},"future":true}"#,
        );
        assert_eq!(extra, check("cam1", Some("t"), MediaAction::Read));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let shown = format!("{:?}", mediamtx(MEDIAMTX_1_19_BODY));
        assert!(!shown.contains("AQAAtok"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let bad = from_mediamtx(br#"{"token":"secret-tok","action":5}"#).unwrap_err();
        assert!(!bad.to_string().contains("secret-tok"), "{bad}");
    }

    #[test]
    fn nginx_original_uri() {
        let h = headers(&[("x-original-uri", "/cam1/index.m3u8?token=abc&x=1")]);
        assert_eq!(
            from_get(&h, None, "").unwrap(),
            check("cam1/index.m3u8", Some("abc"), MediaAction::Read)
        );
        // The subrequest's own query is not the client's: only X-Original-URI counts.
        let h = headers(&[("x-original-uri", "/cam1/seg12.mp4")]);
        assert_eq!(
            from_get(&h, Some("token=other&name=cam9"), "").unwrap(),
            check("cam1/seg12.mp4", None, MediaAction::Read)
        );
    }

    #[test]
    fn nginx_uri_prefix_and_decoding() {
        let get = |uri: &str, prefix: &str| {
            from_get(&headers(&[("x-original-uri", uri)]), None, prefix).map(|c| c.path)
        };
        assert_eq!(
            get("/hls/cam1/index.m3u8", "/hls").unwrap(),
            "cam1/index.m3u8"
        );
        assert_eq!(
            get("/hls/cam1/index.m3u8", "/hls/").unwrap(),
            "cam1/index.m3u8"
        );
        assert_eq!(get("/hls/cam1", "/").unwrap(), "hls/cam1");
        // Not at a boundary, or not under the prefix: only the leading '/' goes.
        assert_eq!(get("/hlsx/cam1", "/hls").unwrap(), "hlsx/cam1");
        assert_eq!(get("/other/cam1", "/hls").unwrap(), "other/cam1");
        // Exactly one leading '/' is stripped.
        assert_eq!(get("//cam1", "").unwrap(), "/cam1");
        assert_eq!(get("/hls//cam1", "/hls").unwrap(), "/cam1");
        // Percent-decoding of the path: '+' is literal in a path.
        assert_eq!(
            get("/site%20A/cam%2B1%2findex.m3u8", "").unwrap(),
            "site A/cam+1/index.m3u8"
        );
        assert_eq!(get("/caf%C3%A9/x", "").unwrap(), "café/x");
        assert_eq!(get("/a+b", "").unwrap(), "a+b");
        for bad in ["/cam%", "/cam%2", "/cam%zz/x", "/%ff%fe"] {
            assert_eq!(get(bad, ""), Err(HookDecodeError::BadUri), "{bad}");
        }
        for empty in ["/", "", "/hls", "/hls/", "?token=abc"] {
            assert_eq!(get(empty, "/hls"), Err(HookDecodeError::NoPath), "{empty}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-original-uri",
            HeaderValue::from_bytes(b"/caf\xc3\xa9").unwrap(),
        );
        assert_eq!(from_get(&h, None, ""), Err(HookDecodeError::BadUri));
    }

    #[test]
    fn flussonic_query() {
        let q = "name=cam1&proto=hls&ip=10.0.0.7&request_type=new_session&request_number=0\
                 &session_id=6a1f&token=tok1&qs=token%3Dtok1&type=hls\
                 &media_request=hls_live-hls_mbr_playlist";
        assert_eq!(
            from_get(&HeaderMap::new(), Some(q), "/ignored").unwrap(),
            check("cam1", Some("tok1"), MediaAction::Read)
        );
        let action = |q: &str| from_get(&HeaderMap::new(), Some(q), "").unwrap().action;
        for dvr in [
            "name=c&media_request=dvr_session-hls_mbr_playlist-1362504585-3600",
            "name=c&media_request=dvr_handler-mp4-1362504585-3600",
            "name=c&type=dvr",
            "name=c&type=dvr_hls&media_request=",
            "name=c&media_request=hls_timeshift_playlist-hls_timeshift_abs-1362504585",
        ] {
            assert_eq!(action(dvr), MediaAction::Playback, "{dvr}");
        }
        for live in [
            "name=c",
            "name=c&type=hls",
            "name=c&media_request=mpegts_handler-request",
            "name=c&type=xdvr",
        ] {
            assert_eq!(action(live), MediaAction::Read, "{live}");
        }
        // Stream names are form-decoded.
        let c = from_get(&HeaderMap::new(), Some("name=site%2Fcam+1&token=t"), "").unwrap();
        assert_eq!(c.path, "site/cam 1");
    }

    #[test]
    fn bearer_token_when_the_query_has_none() {
        let bearer = [("authorization", "Bearer tokB")];
        let h = headers(&[bearer[0], ("x-original-uri", "/cam1/index.m3u8")]);
        assert_eq!(from_get(&h, None, "").unwrap().token, Some("tokB".into()));
        let h = headers(&[bearer[0], ("x-original-uri", "/cam1/index.m3u8?token=tokQ")]);
        assert_eq!(from_get(&h, None, "").unwrap().token, Some("tokQ".into()));
        let h = headers(&bearer);
        assert_eq!(
            from_get(&h, Some("name=cam1"), "").unwrap().token,
            Some("tokB".into())
        );
        assert_eq!(
            from_get(&h, Some("name=cam1&token="), "").unwrap().token,
            Some("tokB".into())
        );
        let token_with = |auth: &str| {
            from_get(&headers(&[("authorization", auth)]), Some("name=cam1"), "")
                .unwrap()
                .token
        };
        assert_eq!(token_with("bearer  tokC "), Some("tokC".into()));
        assert_eq!(token_with("Basic dXNlcjpwYXNz"), None);
        assert_eq!(token_with("Bearer"), None);
        assert_eq!(token_with("Bearer "), None);
    }

    #[test]
    fn get_without_path_is_no_path() {
        assert_eq!(
            from_get(&HeaderMap::new(), None, ""),
            Err(HookDecodeError::NoPath)
        );
        assert_eq!(
            from_get(
                &headers(&[("authorization", "Bearer t")]),
                Some("token=t&name="),
                ""
            ),
            Err(HookDecodeError::NoPath)
        );
    }

    fn cameras(path: &str) -> Option<u64> {
        match path {
            "cam1" => Some(1),
            "a" => Some(10),
            "a/b" => Some(11),
            "site/x" => Some(20),
            _ => None,
        }
    }

    #[test]
    fn camera_matching() {
        let m = |path: &str| match_camera(path, "_low", cameras);
        assert_eq!(m("cam1"), Some(1));
        assert_eq!(m("cam1/index.m3u8"), Some(1));
        assert_eq!(m("cam1/segment12.mp4"), Some(1));
        assert_eq!(m("cam1/"), Some(1));
        assert_eq!(m("cam1_low"), Some(1));
        assert_eq!(m("cam1_low/index.m3u8"), Some(1));
        assert_eq!(m("cam1_low/sub/segment1.mp4"), Some(1));
        assert_eq!(m("a"), Some(10));
        assert_eq!(m("a/c/index.m3u8"), Some(10));
        assert_eq!(m("a/b"), Some(11));
        assert_eq!(m("a/b/index.m3u8"), Some(11));
        assert_eq!(m("a/b_low/index.m3u8"), Some(11));
        assert_eq!(m("a_low/b"), Some(10));
        assert_eq!(m("site/x/1.ts"), Some(20));
        for none in [
            "",
            "cam2",
            "cam1x",
            "cam1_lo",
            "cam1_low_low",
            "_low",
            "/cam1",
            "site",
            "x/cam1",
            "cam",
        ] {
            assert_eq!(m(none), None, "{none:?}");
        }
    }

    #[test]
    fn camera_matching_refuses_dot_segments_and_bounds() {
        let m = |path: &str| match_camera(path, "_low", cameras);
        for dots in [
            "..",
            ".",
            "cam1/..",
            "cam1/../a",
            "a/b/../../cam1",
            "cam1/./index.m3u8",
            "../cam1",
        ] {
            assert_eq!(m(dots), None, "{dots:?}");
        }
        // Other dots are ordinary characters.
        assert_eq!(m("cam1/...m3u8"), Some(1));
        let deep = format!("cam1{}", "/s".repeat(15));
        assert_eq!(m(&deep), Some(1));
        assert_eq!(m(&format!("{deep}/s")), None);
        let long = format!("cam1/{}", "x".repeat(MAX_MEDIA_PATH_BYTES - 5));
        assert_eq!(m(&long), Some(1));
        assert_eq!(m(&format!("{long}x")), None);
        assert_eq!(m(&"/".repeat(5000)), None);
    }

    #[test]
    fn camera_matching_lookups_are_bounded() {
        let calls = std::cell::Cell::new(0);
        let path = format!("x{}", "/y".repeat(15));
        let found = match_camera(&path, "_low", |_| {
            calls.set(calls.get() + 1);
            None
        });
        assert_eq!(found, None);
        assert!(calls.get() <= 2 * MAX_PATH_SEGMENTS, "{}", calls.get());
        // Without a suffix, one lookup per prefix.
        calls.set(0);
        assert_eq!(
            match_camera("a/b/c", "", |p| {
                calls.set(calls.get() + 1);
                (p == "a").then_some(7)
            }),
            Some(7)
        );
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn decoded_paths_match_cameras_end_to_end() {
        let camera_of = |uri: &str| {
            let c = from_get(&headers(&[("x-original-uri", uri)]), None, "/hls").ok()?;
            match_camera(&c.path, "_low", cameras)
        };
        assert_eq!(camera_of("/hls/cam1/index.m3u8?token=t"), Some(1));
        assert_eq!(camera_of("/hls/cam1_low/index.m3u8?token=t"), Some(1));
        assert_eq!(camera_of("/hls/a/%2e%2e/cam1/index.m3u8"), None);
        assert_eq!(camera_of("/hls/a%2F..%2Fcam1/index.m3u8"), None);
        assert_eq!(camera_of("/hls/a/b%2Fseg.ts"), Some(11));
    }
}
