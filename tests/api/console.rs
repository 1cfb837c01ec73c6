//! The built-in admin console (issue 13): what the daemon serves at `/` and `/console/...`
//! (types, validators, the security headers, the fallback to the page, API routes
//! untouched), `Cache-Control: no-store` on API answers, and the whole console in a real
//! browser: Debian's Chromium driven headless by Selenium (`tests/clients/console_browser.py`)
//! against the daemon, trusting exactly its self-signed certificate.
//!
//! Chromium, chromedriver and Selenium are required: without them the browser test fails,
//! unless `VMSD_SKIP_CHROMIUM=1` (`.ci/run` installs `chromium`, `chromium-driver` and
//! `tests/clients/requirements-browser.txt`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::Command;

use crate::common::{clients_dir, skip_requested, Reply, TestServer, ADMIN_PASSWORD};

const PAGE_TYPE: &str = "text/html; charset=utf-8";

/// Every header the console's answers must carry, whatever the file.
#[track_caller]
fn assert_console_headers(r: &Reply, what: &str) {
    let csp = r.header("content-security-policy").unwrap_or_default();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "img-src 'self' data:",
    ] {
        assert!(
            csp.split(';').any(|d| d.trim() == directive),
            "{what}: CSP {csp:?} lacks {directive:?}"
        );
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(
        r.header("cross-origin-opener-policy"),
        Some("same-origin"),
        "{what}"
    );
    // Revalidated on every load (the ETag makes that a 304): an upgrade shows at once.
    assert_eq!(r.header("cache-control"), Some("no-cache"), "{what}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    let etag = r.header("etag").unwrap_or_default();
    assert!(
        etag.len() == 18 && etag.starts_with('"') && etag.ends_with('"'),
        "{what}: ETag {etag:?}"
    );
}

async fn fetch(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> Reply {
    s.raw("GET", path, headers, "").await
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_types_validators_and_security_headers() {
    let s = TestServer::start().await;

    let page = fetch(&s, "/", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some(PAGE_TYPE));
    assert_console_headers(&page, "/");
    let html = String::from_utf8(page.raw.to_vec()).unwrap();
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains(r#"<script type="module" src="/console/app.js"></script>"#));
    // No inline script or style for the CSP to have to allow.
    assert!(
        !html.contains("<style") && !html.contains(" style="),
        "{html}"
    );
    assert_eq!(html.matches("<script").count(), 1, "{html}");

    // Every file the page and its modules load, with its type; the total is in budget.
    let mut total = 0;
    for (path, kind) in [
        ("/console/app.css", "text/css; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/api.js", "text/javascript; charset=utf-8"),
        ("/console/dom.js", "text/javascript; charset=utf-8"),
        ("/console/i18n.js", "text/javascript; charset=utf-8"),
        ("/console/ui.js", "text/javascript; charset=utf-8"),
        ("/console/accounts.js", "text/javascript; charset=utf-8"),
        ("/console/cameras.js", "text/javascript; charset=utf-8"),
        ("/console/system.js", "text/javascript; charset=utf-8"),
    ] {
        let r = fetch(&s, path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(kind), "{path}");
        assert_console_headers(&r, path);
        assert_ne!(r.header("etag"), page.header("etag"), "{path}");
        let text = String::from_utf8(r.raw.to_vec()).unwrap();
        assert!(!text.contains("innerHTML"), "{path} uses innerHTML");
        if path == "/console/api.js" {
            // The token lives in sessionStorage only: not in localStorage, not in a cookie.
            assert!(text.contains("sessionStorage.setItem(KEY"), "{path}");
            assert!(
                !text.contains("localStorage") && !text.contains("cookie"),
                "{path}"
            );
        }
        total += r.raw.len();
    }
    total += page.raw.len();
    assert!(total <= vmsd::console::BUDGET_BYTES, "{total} bytes");

    // The validator: a matching If-None-Match is a 304 without a body, still with headers.
    let etag = page.header("etag").unwrap().to_owned();
    let again = fetch(&s, "/", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.raw.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_console_headers(&again, "304");
    let stale = fetch(&s, "/", &[("if-none-match", "\"0000000000000000\"")]).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.raw, page.raw);

    // A view's URL (a reload, a bookmark) and any unknown console path get the page.
    for path in [
        "/console",
        "/console/",
        "/console/users/5",
        "/console/special/new?x=1",
        "/console/no/such/view",
    ] {
        let r = fetch(&s, path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(PAGE_TYPE), "{path}");
        assert_eq!(r.raw, page.raw, "{path}");
        assert_console_headers(&r, path);
    }

    // HEAD: the headers without the body; other methods: the API's JSON 405.
    let head = s.raw("HEAD", "/console/app.js", &[], "").await;
    assert_eq!(head.status, 200);
    assert!(head.raw.is_empty());
    assert_eq!(
        head.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let post = s.call("POST", "/", None, Some(json!({}))).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.body, json!({"message": "Method Not Allowed."}));
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    // The API is untouched: its routes, its 404s, and paths that only look like the console.
    let r = s.get("/api/admin/v1/users", "not-a-token").await;
    assert_eq!(r.status, 401);
    for path in ["/consoles", "/api/v1/console", "/index.html", "/app.js"] {
        let r = fetch(&s, path, &[]).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body, json!({"message": "Not Found."}), "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
    }
    assert_eq!(
        fetch(&s, "/healthz", &[]).await.body,
        json!({"status": "ok"})
    );
    s.stop().await;
}

#[tokio::test]
async fn api_answers_are_never_stored_by_a_browser_or_proxy() {
    let s = TestServer::start().await;
    let login = s.try_admin_login("admin", ADMIN_PASSWORD).await;
    assert_eq!(login.status, 200);
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let answers = [
        ("login", login),
        ("list", s.get("/api/admin/v1/users", &token).await),
        ("self", s.get("/api/v1/users/self", &token).await),
        ("401", s.get("/api/admin/v1/users", "nope").await),
        ("404", s.get("/api/admin/v1/nope", &token).await),
        ("422", s.try_admin_login("admin", "wrong-password").await),
        (
            "static",
            s.call("GET", "/api/v1/static/basic", None, None).await,
        ),
    ];
    for (what, r) in answers {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
    }
    s.stop().await;
}

/// Whether Chromium, its driver and Selenium are installed; a failed test when they are
/// not, unless skipping was asked for.
async fn browser_available() -> bool {
    let missing: Vec<&str> = [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
    ]
    .into_iter()
    .filter(|(path, _)| !Path::new(path).exists())
    .map(|(_, package)| package)
    .collect();
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if missing.is_empty() && selenium {
        return true;
    }
    assert!(
        skip_requested("VMSD_SKIP_CHROMIUM"),
        "the console's browser test needs Debian's chromium and chromium-driver (missing: \
         {missing:?}) and Selenium (installed: {selenium}): run .ci/run, which installs them \
         (apt-get install chromium chromium-driver; pip install -r \
         tests/clients/requirements-browser.txt), or set VMSD_SKIP_CHROMIUM=1"
    );
    eprintln!("skipping the browser test: not installed and VMSD_SKIP_CHROMIUM=1");
    false
}

/// What the browser flow reports, step by step, in order.
const STEPS: &[&str] = &[
    "login_form",
    "login_422",
    "logged_in",
    "cameras_created",
    "refused_402",
    "pool_set",
    "special_created",
    "special_edited",
    "special_listed",
    "audit_read",
    "russian",
    "camera_deleted",
    "unauthenticated_401",
    "session_limit_419",
    "group_assigned",
    "regular_users",
    "admin_created",
    "password_changed",
    "logged_out",
    "login_429",
    "console_clean",
    "done",
];

#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    if !browser_available().await {
        return;
    }
    // One session per account: logging in again while the first is open shows the 419.
    let s = TestServer::start_with(|c| c.auth.sessions_limit = 1).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    // `localhost`: a name the generated certificate covers, as `vms.local` would be.
    let base = format!("https://localhost:{}", s.addr.port());
    let child = Command::new("python3")
        .arg(clients_dir().join("console_browser.py"))
        .arg(&base)
        .arg(s.dir.path().join("tls/cert.pem"))
        .arg(ADMIN_PASSWORD)
        .arg(&shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 starts");
    let out = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("the browser flow finished within 240 s")
        .expect("the browser flow's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let report = || {
        format!(
            "stdout:\n{stdout}\nstderr:\n{}\nscreenshots: {}",
            String::from_utf8_lossy(&out.stderr),
            shots.display()
        )
    };
    assert!(
        out.status.success(),
        "the browser flow failed\n{}",
        report()
    );
    let steps: Vec<&str> = lines.iter().filter_map(|l| l["step"].as_str()).collect();
    assert_eq!(steps, STEPS, "{}", report());
    let step = |name: &str| {
        lines
            .iter()
            .find(|l| l["step"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert!(step("refused_402")["text"]
        .as_str()
        .unwrap()
        .contains("Not enough analytics licences"));

    // What the browser did is what the store now holds.
    let admin = {
        // The flow ended by locking `admin` out; a second administrator reads the result.
        s.create_account(
            "auditor",
            "auditor-password-1",
            vmsd::model::UserType::Admin,
        );
        let r = s.try_admin_login("auditor", "auditor-password-1").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    };
    let locked = s.try_admin_login("admin", ADMIN_PASSWORD).await;
    assert_eq!(locked.status, 429, "{:?}", locked.body);

    let guard_id = step("special_created")["id"].as_u64().unwrap();
    let cams: Vec<u64> = step("special_created")["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let guard = s
        .get(&format!("/api/admin/v1/special-users/{guard_id}"), &admin)
        .await;
    assert_eq!(guard.status, 200);
    assert_eq!(guard.body["name"], "Guard <img src=x onerror=alert(1)>");
    assert_eq!(guard.body["login"], "guard");
    assert_eq!(guard.body["ptz_priority"], 20);
    assert!(guard.body["expired_at"]
        .as_str()
        .unwrap()
        .ends_with(" 12:00:00"));
    let perms: Vec<&str> = guard.body["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(perms, ["analytic-cases-motion-detect"]);
    let attached: Vec<u64> = guard.body["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(attached, [cams[0]]);
    let pools = s.get("/api/admin/v1/licenses", &admin).await;
    assert_eq!(
        (
            &pools.body[0]["all"],
            &pools.body[0]["used"],
            &pools.body[0]["free"]
        ),
        (&json!(5), &json!(1), &json!(4))
    );
    // The camera deleted in the browser is gone; the other stays.
    assert_eq!(
        s.get(&format!("/api/admin/v1/cameras/{}", cams[1]), &admin)
            .await
            .status,
        404
    );
    assert_eq!(
        s.get(&format!("/api/admin/v1/cameras/{}", cams[0]), &admin)
            .await
            .body["name"],
        "Gate"
    );
    // The regular user, its sub-user, the group and the second administrator.
    let users = s.get("/api/admin/v1/users?search=", &admin).await;
    let find = |login: &str| {
        users.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["login"] == login)
            .cloned()
            .unwrap_or_else(|| panic!("no {login} in {:?}", users.body))
    };
    let (alice, bob) = (find("alice"), find("bob"));
    assert_eq!(bob["user_type"], "subuser");
    assert_eq!(bob["parent_id"], alice["id"]);
    let alice = s
        .get(&format!("/api/admin/v1/users/{}", alice["id"]), &admin)
        .await;
    assert_eq!(alice.body["name"], "Alice");
    assert_eq!(alice.body["permissions"][0]["name"], "ptz");
    assert_eq!(alice.body["permissions"].as_array().unwrap().len(), 1);
    assert_eq!(alice.body["cameras"][0]["id"], cams[0]);
    assert_eq!(alice.body["cameras"][0]["group"]["name"], "Hall");
    assert_eq!(alice.body["subusers"][0]["login"], "bob");
    let admins = s.get("/api/admin/v1/admins?search=second", &admin).await;
    assert_eq!(admins.body["meta"]["total"], 1);

    // The browser read the newest audit entry: the update it made.
    let audit_row = step("audit_read")["entry"].clone();
    assert_eq!(audit_row[3], "special_user_updated");
    assert_eq!(audit_row[4], format!("account #{guard_id}"));

    // The main screens, for the README (docs/console/ holds small copies).
    for name in ["login", "special-402", "special-user", "audit", "audit-ru"] {
        let png = std::fs::read(shots.join(format!("{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}");
    }
    s.stop().await;
}
