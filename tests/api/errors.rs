//! SPEC §2's wire conventions and error shapes (issue 2 item 8): 404, 405 + Allow, malformed
//! and non-object JSON, 415, 413 (declared and chunked), JSON whatever `Accept` says, and the
//! unauthenticated endpoints `/healthz` and `/api/v1/static/basic`.

use serde_json::{json, Value};
use vmsd::model::UserType;

use crate::common::{http_exchange, Reply, TestServer};

#[track_caller]
fn assert_reply(r: &Reply, status: u16, body: &Value) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(&r.body, body);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

fn body_error(message: &str) -> Value {
    json!({"message": "The given data was invalid.", "errors": {"body": [message]}})
}

async fn with_user() -> (TestServer, String) {
    let s = TestServer::start().await;
    s.create_account("wes", "wes-password", UserType::User);
    let token = s.login("wes", "wes-password").await;
    (s, token)
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let (s, token) = with_user().await;
    // `/` is the admin console's page (`console::the_page_and_its_files_are_served...`).
    for path in [
        "/nope",
        "/api/v1/users",
        "/api/v1/users/self/extra",
        "/api/admin/v1/nothing-here",
        "/healthz/x",
    ] {
        let r = s.call("GET", path, Some(&token), None).await;
        assert_reply(&r, 404, &json!({"message": "Not Found."}));
    }
    s.stop().await;
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_is_405_with_allow() {
    let (s, token) = with_user().await;
    for (method, path, allow) in [
        ("DELETE", "/api/v1/users/self", "GET, PUT"),
        ("POST", "/api/v1/users/self", "GET, PUT"),
        ("POST", "/healthz", "GET"),
        ("GET", "/api/v1/token", "POST"),
        ("GET", "/api/v1/sessions/abc", "POST"),
        ("DELETE", "/api/v1/sessions", "GET"),
        ("GET", "/api/admin/v1/users/self/update-password", "PUT"),
    ] {
        let r = s.call(method, path, Some(&token), None).await;
        assert_reply(&r, 405, &json!({"message": "Method Not Allowed."}));
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    // The refused DELETE did not log anyone out.
    assert_eq!(s.self_status(&token).await, 200);
    s.stop().await;
}

#[tokio::test]
async fn malformed_and_non_object_json_is_422_on_body() {
    let (s, token) = with_user().await;
    let auth = format!("Bearer {token}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    for bad in [
        &b"{\"language\": "[..],
        b"{language: 'ru'}",
        b"\xff\xfe",
        b"nul",
    ] {
        let r = s.raw("PUT", "/api/v1/users/self", &headers, bad).await;
        assert_reply(&r, 422, &body_error("The request body must be valid JSON."));
        let r = s.raw("POST", "/api/v1/token", &headers, bad).await;
        assert_reply(&r, 422, &body_error("The request body must be valid JSON."));
    }
    for not_object in [&b"[{\"language\": \"ru\"}]"[..], b"\"ru\"", b"5", b"true"] {
        let r = s
            .raw("PUT", "/api/v1/users/self", &headers, not_object)
            .await;
        assert_reply(
            &r,
            422,
            &body_error("The request body must be a JSON object."),
        );
    }
    assert_eq!(
        s.get("/api/v1/users/self", &token).await.body["language"],
        "en"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_json_by_content_type_is_415() {
    let (s, token) = with_user().await;
    let auth = format!("Bearer {token}");
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ] {
        let r = s
            .raw(
                "PUT",
                "/api/v1/users/self",
                &[("content-type", ct), ("authorization", &auth)],
                &b"{\"language\": \"ru\"}"[..],
            )
            .await;
        assert_reply(&r, 415, &json!({"message": "Unsupported Media Type."}));
    }
    assert_eq!(
        s.get("/api/v1/users/self", &token).await.body["language"],
        "en"
    );
    // JSON with a charset, and +json types, are JSON.
    for ct in [
        "application/json; charset=utf-8",
        "application/vnd.api+json",
    ] {
        let r = s
            .raw(
                "PUT",
                "/api/v1/users/self",
                &[("content-type", ct), ("authorization", &auth)],
                &b"{\"language\": \"ru\"}"[..],
            )
            .await;
        assert_eq!(r.status, 200, "{ct}: {:?}", r.body);
    }
    s.stop().await;
}

async fn raw_exchange(s: &TestServer, request: &[u8]) -> String {
    http_exchange(&mut s.tls().await, request).await
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_413_declared_or_chunked() {
    let s = TestServer::start_with(|c| c.limits.max_body_bytes = 1024).await;
    s.create_account("wes", "wes-password", UserType::User);
    let token = s.login("wes", "wes-password").await;
    let auth = format!("Bearer {token}");
    let big = format!(
        "{{\"language\": \"ru\", \"pad\": \"{}\"}}",
        "x".repeat(2000)
    );
    let r = s
        .raw(
            "PUT",
            "/api/v1/users/self",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            big.clone(),
        )
        .await;
    assert_reply(&r, 413, &json!({"message": "Payload Too Large."}));

    // Without Content-Length (chunked), the limit is enforced while reading.
    let chunk = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let request = format!(
        "PUT /api/v1/users/self HTTP/1.1\r\nhost: vms.local\r\nauthorization: {auth}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{chunk}"
    );
    let answer = raw_exchange(&s, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    assert!(
        answer.ends_with("{\"message\":\"Payload Too Large.\"}"),
        "{answer}"
    );

    // Just under the limit is fine; nothing of the refused bodies was applied before.
    assert_eq!(
        s.get("/api/v1/users/self", &token).await.body["language"],
        "en"
    );
    let fits = format!("{{\"language\": \"ru\", \"pad\": \"{}\"}}", "x".repeat(900));
    let r = s
        .raw(
            "PUT",
            "/api/v1/users/self",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            fits,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["language"], "ru");
    s.stop().await;
}

#[tokio::test]
async fn every_answer_is_json_whatever_accept_says() {
    let (s, token) = with_user().await;
    let auth = format!("Bearer {token}");
    // method, path, headers, body, expected status
    type Case<'a> = (
        &'static str,
        &'static str,
        Vec<(&'static str, &'a str)>,
        &'static [u8],
        u16,
    );
    let cases: Vec<Case> = vec![
        ("GET", "/healthz", vec![], b"", 200),
        (
            "GET",
            "/api/v1/users/self",
            vec![("authorization", &auth)],
            b"",
            200,
        ),
        ("GET", "/api/v1/users/self", vec![], b"", 401),
        ("GET", "/nope", vec![], b"", 404),
        ("DELETE", "/healthz", vec![], b"", 405),
        (
            "PUT",
            "/api/v1/users/self",
            vec![("authorization", &auth), ("content-type", "text/plain")],
            b"x",
            415,
        ),
        (
            "PUT",
            "/api/v1/users/self",
            vec![
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            b"{",
            422,
        ),
        (
            "POST",
            "/api/admin/v1/auth/logout",
            vec![("authorization", &auth)],
            b"",
            403,
        ),
    ];
    for (method, path, mut headers, body, status) in cases {
        headers.push(("accept", "text/html"));
        let r = s.raw(method, path, &headers, body).await;
        assert_eq!(r.status, status, "{method} {path}: {:?}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{method} {path}"
        );
        assert!(r.body.is_object(), "{method} {path}: {:?}", r.raw);
    }
    s.stop().await;
}

#[tokio::test]
async fn healthz_and_static_basic_need_no_token() {
    let s = TestServer::start().await;
    let r = s.raw("GET", "/healthz", &[], &b""[..]).await;
    assert_reply(&r, 200, &json!({"status": "ok"}));
    let r = s.raw("GET", "/api/v1/static/basic", &[], &b""[..]).await;
    assert_reply(
        &r,
        200,
        &json!({
            "available_locales": ["en", "ru"],
            "is_captcha_available": false,
            "is_external_auth_enabled": false,
            "version": env!("CARGO_PKG_VERSION"),
        }),
    );
    // HEAD answers like GET, without a body.
    let r = s.raw("HEAD", "/healthz", &[], &b""[..]).await;
    assert_eq!(r.status, 200);
    assert!(r.raw.is_empty());
    s.stop().await;

    // The locales come from the configuration.
    let s = TestServer::start_with(|c| {
        c.locales.available = vec!["ru".into(), "en".into(), "pt-BR".into()]
    })
    .await;
    let r = s.raw("GET", "/api/v1/static/basic", &[], &b""[..]).await;
    assert_eq!(r.body["available_locales"], json!(["ru", "en", "pt-BR"]));
    s.stop().await;
}

#[tokio::test]
async fn odd_input_gets_a_4xx_never_a_500_and_the_server_keeps_serving() {
    let (s, token) = with_user().await;
    let auth = format!("Bearer {token}");
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("/api/v1/token", nested.clone().into_bytes()),
        ("/api/v1/token", deep_object.clone().into_bytes()),
        (
            "/api/v1/token",
            br#"{"login":"a\u0000b","password":"x"}"#.to_vec(),
        ),
        (
            "/api/v1/token",
            serde_json::to_vec(&json!({"login": "l".repeat(10_000), "password": "p"})).unwrap(),
        ),
        (
            "/api/v1/token",
            br#"{"login":"wes","password":"wes-password","session_id":5}"#.to_vec(),
        ),
        (
            "/api/v1/token",
            br#"{"login":1e400,"password":[]}"#.to_vec(),
        ),
        ("/api/v1/users/self", nested.into_bytes()),
        ("/api/v1/users/self", deep_object.into_bytes()),
        (
            "/api/v1/users/self",
            br#"{"language":{"en":true},"password":["x"],"current_password":{}}"#.to_vec(),
        ),
    ];
    for (path, body) in bodies {
        let method = if path.ends_with("self") {
            "PUT"
        } else {
            "POST"
        };
        let r = s
            .raw(
                method,
                path,
                &[
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                ],
                body,
            )
            .await;
        assert_eq!(r.status, 422, "{path}: {:?}", r.body);
        assert_eq!(r.body["message"], "The given data was invalid.");
    }
    let long = "u".repeat(1000);
    let odd_headers: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("x-uuid", &long),
            ("x-client", &long),
            ("user-agent", &long),
        ],
        vec![("authorization", "Bearer a b c")],
        vec![("hl", &long)],
    ];
    for headers in odd_headers {
        let r = s
            .raw("GET", "/api/v1/users/self?hl=%ff", &headers, &b""[..])
            .await;
        assert_reply(&r, 401, &json!({"message": "Unauthenticated."}));
    }
    // A token that is not even text.
    let answer = raw_exchange(
        &s,
        b"GET /api/v1/users/self HTTP/1.1\r\nhost: vms.local\r\nauthorization: Bearer \xff\xfe\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    assert!(
        answer.ends_with("{\"message\":\"Unauthenticated.\"}"),
        "{answer}"
    );
    for path in [
        "/api/v1/sessions/%00%ff",
        "/api/v1/sessions/..%2F..",
        "/%ff",
    ] {
        let r = s.call("POST", path, Some(&token), None).await;
        assert_reply(&r, 404, &json!({"message": "Not Found."}));
    }
    // Long device, client and agent names are kept short, and the login works.
    let r = s
        .try_login(
            "wes",
            "wes-password",
            &[("x-uuid", &long), ("x-client", &long)],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let token = r.body["access_token"].as_str().unwrap();
    let list = s.get("/api/v1/sessions", token).await;
    let mine = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["is_current"] == true)
        .unwrap()
        .clone();
    assert_eq!(mine["client"].as_str().unwrap().len(), 64);
    assert_eq!(s.raw("GET", "/healthz", &[], &b""[..]).await.status, 200);
    s.stop().await;
}
