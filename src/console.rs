//! The built-in admin console (issue 13): a single page of plain HTML, CSS and JavaScript
//! modules from `src/console/`, embedded in the binary and served over the API's own TLS
//! listener at `/` and `/console/...`. It only calls the admin API vmsd already has, so
//! this module owns nothing but the files, their caching validators and the headers that
//! keep a browser strict about them; the API's routes never come here.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

use crate::error::{ApiError, Body};

/// One embedded file.
pub struct Asset {
    /// Its URL path.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// A strong validator: the FNV-1a hash of `bytes`, quoted, computed at compile time.
    etag: [u8; ETAG_LEN],
}

const ETAG_LEN: usize = 18;

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($file:literal, $type:expr) => {
        Asset {
            path: concat!("/console/", $file),
            content_type: $type,
            bytes: include_bytes!(concat!("console/", $file)),
            etag: etag(include_bytes!(concat!("console/", $file))),
        }
    };
}

/// Every file of the console. The page is also what `/` and unknown `/console/...` paths
/// answer, so that a reload on a view's URL lands on the page that draws it.
pub const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("i18n.js", JS),
    asset!("accounts.js", JS),
    asset!("cameras.js", JS),
    asset!("system.js", JS),
    asset!("ui.js", JS),
];

/// The console's size budget (issue 13): everything it ships, raw.
pub const BUDGET_BYTES: usize = 60 * 1024;

/// No inline script or style at all (every API value is inserted as text, and this is the
/// second line of defence should one ever not be); the API on the same origin is all the
/// page may talk to, and no one may frame it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; \
     base-uri 'none'; frame-ancestors 'none'";

/// FNV-1a, 64 bits: a content hash a `const fn` can compute, so the validators cost nothing
/// at run time. It only has to change when the file does; nobody forges our own files.
const fn etag(bytes: &[u8]) -> [u8; ETAG_LEN] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    let digits = b"0123456789abcdef";
    let mut out = [b'"'; ETAG_LEN];
    let mut n = 0;
    while n < 16 {
        out[1 + n] = digits[((hash >> (60 - 4 * n)) & 0xf) as usize];
        n += 1;
    }
    out
}

/// Whether `path` belongs to the console rather than the API.
pub fn is_console_path(path: &str) -> bool {
    path == "/" || path == "/console" || path.starts_with("/console/")
}

/// The asset a console path names; the page for every other one.
fn asset_for(path: &str) -> &'static Asset {
    ASSETS.iter().find(|a| a.path == path).unwrap_or(&ASSETS[0])
}

/// The answer to a request for a console path (`is_console_path`): the file, a 304 when the
/// browser's copy is current, or 405 for anything but GET and HEAD.
pub fn respond(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::MethodNotAllowed(vec![Method::GET, Method::HEAD]));
    }
    let asset = asset_for(path);
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == asset.etag);
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Bytes::new())
    } else {
        (StatusCode::OK, Bytes::from_static(asset.bytes))
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    if !fresh {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
    }
    if let Ok(etag) = HeaderValue::from_bytes(&asset.etag) {
        h.insert(header::ETAG, etag);
    }
    // Revalidated on every load: an upgraded daemon serves its own console at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_fits_its_budget() {
        let total: usize = ASSETS.iter().map(|a| a.bytes.len()).sum();
        assert!(
            total <= BUDGET_BYTES,
            "the console is {total} bytes raw, over its {BUDGET_BYTES}-byte budget"
        );
        assert!(total > 10 * 1024, "{total}: the assets look empty");
    }

    #[test]
    fn every_asset_is_listed_once_and_every_module_import_is_served() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(ASSETS[..i].iter().all(|b| b.path != a.path), "{}", a.path);
            let text = std::str::from_utf8(a.bytes).unwrap_or_default();
            // Every `from './x.js'` and `<script src>`/`<link href>` names an embedded file.
            for quote in ["'./", "\"/console/"] {
                for piece in text.split(quote).skip(1) {
                    let Some(end) = piece.find(['\'', '"']) else {
                        continue;
                    };
                    let name = piece[..end].trim_start_matches("/console/");
                    if name.ends_with(".js") || name.ends_with(".css") {
                        let path = format!("/console/{name}");
                        assert!(
                            ASSETS.iter().any(|b| b.path == path),
                            "{} refers to {path}, which is not embedded",
                            a.path
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn etags_are_quoted_hex_and_follow_the_content() {
        let a = etag(b"console");
        assert_eq!(a[0], b'"');
        assert_eq!(a[ETAG_LEN - 1], b'"');
        assert!(a[1..ETAG_LEN - 1].iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, etag(b"consolE"));
        // FNV-1a of the empty input is its offset basis.
        assert_eq!(&etag(b""), b"\"cbf29ce484222325\"");
    }

    #[test]
    fn console_paths_and_the_fallback_to_the_page() {
        assert!(is_console_path("/"));
        assert!(is_console_path("/console"));
        assert!(is_console_path("/console/users/5"));
        assert!(!is_console_path("/consoles"));
        assert!(!is_console_path("/api/admin/v1/users"));
        assert_eq!(asset_for("/console/app.js").content_type, JS);
        assert_eq!(
            asset_for("/console/no/such/view").path,
            "/console/index.html"
        );
        assert_eq!(asset_for("/").path, "/console/index.html");
    }

    #[test]
    fn a_matching_validator_is_a_304_without_a_body() {
        let asset = asset_for("/console/app.css");
        let mut headers = HeaderMap::new();
        let tag = String::from_utf8_lossy(&asset.etag).into_owned();
        for (value, fresh) in [
            (tag.clone(), true),
            (format!("W/{tag}, \"other\""), true),
            ("\"other\"".to_owned(), false),
            ("*".to_owned(), true),
        ] {
            headers.insert(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("")),
            );
            let status = respond(&Method::GET, asset.path, &headers)
                .map(|r| r.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let want = if fresh {
                StatusCode::NOT_MODIFIED
            } else {
                StatusCode::OK
            };
            assert_eq!(status, want, "{value}");
        }
        assert!(matches!(
            respond(&Method::POST, "/", &HeaderMap::new()),
            Err(ApiError::MethodNotAllowed(_))
        ));
    }
}
