//! Video access (SPEC §8) over the real daemon: the shared fixture (a box with cameras and a
//! viewer), and the media hook on its plain-HTTP loopback listener as MediaMTX (≥ 1.12 and
//! ≥ 1.19 bodies), nginx `auth_request` and Flussonic call it. Every hook answer is checked
//! for status, body and `Cache-Control: no-store`.
//! The client routes and `media_path` rules are in `video_client`, the ways a stream token
//! stops working in `video_revocation`.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Reply, TestServer};
use crate::invariants::Snapshot;

pub const PASSWORD: &str = "video-password-1";
/// `archives-show` (SPEC §8: playback needs it).
pub const ARCHIVES_SHOW: u64 = 12;

#[track_caller]
pub fn assert_allowed(r: &Reply, what: &str) {
    assert_eq!(r.status, 200, "{what}: {:?}", r.body);
    assert_eq!(r.body, json!({"status": "ok"}), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
}

#[track_caller]
pub fn assert_unauthenticated(r: &Reply, what: &str) {
    assert_eq!(r.status, 401, "{what}: {:?}", r.body);
    assert_eq!(r.body, json!({"message": "Unauthenticated."}), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
}

#[track_caller]
pub fn assert_forbidden(r: &Reply, what: &str) {
    assert_eq!(r.status, 403, "{what}: {:?}", r.body);
    assert_eq!(
        r.body,
        json!({"message": "This action is unauthorized."}),
        "{what}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
}

/// A MediaMTX 1.12–1.18 body (no `userAgent`; `token` since 1.12.3).
pub fn mediamtx_1_12(action: &str, path: &str, token: &str, password: &str, query: &str) -> Value {
    json!({"ip": "192.168.1.20", "user": "", "password": password, "token": token,
           "action": action, "path": path, "protocol": "hls", "id": null, "query": query})
}

/// A MediaMTX ≥ 1.19 body: adds `userAgent`; `id` is a UUID.
pub fn mediamtx_1_19(action: &str, path: &str, token: &str, password: &str, query: &str) -> Value {
    json!({"ip": "192.168.1.20", "user": "", "password": password, "token": token,
           "action": action, "path": path, "protocol": "webrtc",
           "id": "3f2b8c1e-7a4d-4f0e-9b6a-2d1c5e8f9a70", "query": query,
           "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)"})
}

/// A box with three cameras: A on `site/door`, B on its default path, C unassigned; and a
/// regular user `viewer` with A and B.
pub struct Video {
    pub s: TestServer,
    pub admin: String,
    pub user_id: u64,
    pub cam_a: u64,
    pub cam_b: u64,
    pub cam_c: u64,
}

impl Video {
    pub async fn start() -> Video {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut vmsd::config::Config)) -> Video {
        let s = TestServer::start_with(|c| {
            c.auth.ip_login_limit = 100_000;
            adjust(c);
        })
        .await;
        let admin = s.admin_token().await;
        let cam_a = create_camera(
            &s,
            &admin,
            json!({"name": "Front door", "media_path": "site/door"}),
        )
        .await;
        let cam_b = create_camera(&s, &admin, json!({"name": "Yard"})).await;
        let cam_c = create_camera(&s, &admin, json!({"name": "Office"})).await;
        let user_id = create_user(&s, &admin, "viewer", json!({})).await;
        attach(&s, &admin, user_id, &[cam_a, cam_b]).await;
        Video {
            s,
            admin,
            user_id,
            cam_a,
            cam_b,
            cam_c,
        }
    }

    pub async fn login(&self) -> String {
        self.s.login("viewer", PASSWORD).await
    }

    /// The stream token of `GET /api/v1/cameras/{camera}/streams` for `token`'s session.
    pub async fn stream_token(&self, token: &str, camera: u64) -> String {
        let r = self
            .s
            .get(&format!("/api/v1/cameras/{camera}/streams"), token)
            .await;
        assert_eq!(r.status, 200, "streams: {:?}", r.body);
        token_of(r.body["url"].as_str().unwrap())
    }

    /// MediaMTX ≥ 1.19 asking to read `path` with `stream` in `query`.
    pub async fn read(&self, path: &str, stream: &str) -> Reply {
        self.s
            .hook_post(&mediamtx_1_19(
                "read",
                path,
                "",
                "",
                &format!("token={stream}"),
            ))
            .await
    }
}

pub fn token_of(url: &str) -> String {
    url.split("token=").nth(1).unwrap().to_owned()
}

pub async fn create_camera(s: &TestServer, admin: &str, body: Value) -> u64 {
    let r = s
        .call("POST", "/api/admin/v1/cameras", Some(admin), Some(body))
        .await;
    assert_eq!(r.status, 201, "camera create: {:?}", r.body);
    r.body["id"].as_u64().unwrap()
}

/// A regular user (or, with `parent_id` in `extra`, a sub-user) with `PASSWORD`.
pub async fn create_user(s: &TestServer, admin: &str, login: &str, extra: Value) -> u64 {
    let mut body = json!({"login": login, "name": login, "password": PASSWORD,
                          "password_confirmation": PASSWORD});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = s
        .call("POST", "/api/admin/v1/users", Some(admin), Some(body))
        .await;
    assert_eq!(r.status, 201, "user create: {:?}", r.body);
    r.body["id"].as_u64().unwrap()
}

pub async fn update_user(s: &TestServer, admin: &str, user: u64, body: Value) {
    let r = s
        .call(
            "PUT",
            &format!("/api/admin/v1/users/{user}"),
            Some(admin),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "user update: {:?}", r.body);
}

pub async fn attach(s: &TestServer, admin: &str, user: u64, cameras: &[u64]) {
    update_user(s, admin, user, json!({"cameras_to_attach": cameras})).await;
}

#[tokio::test]
async fn mediamtx_bodies_are_answered_as_spec_8_says() {
    let v = Video::start().await;
    let s = &v.s;
    let token = v.login().await;
    let a = v.stream_token(&token, v.cam_a).await;
    let b = v.stream_token(&token, v.cam_b).await;
    let cam_b = format!("cam{}", v.cam_b);
    let before = Snapshot::of(&s.app.store).stable();

    for shape in [
        mediamtx_1_12 as fn(&str, &str, &str, &str, &str) -> Value,
        mediamtx_1_19,
    ] {
        let post = |body: Value| async move { s.hook_post(&body).await };
        // The token in `query` (HLS, WebRTC), in `token`, in `password` (RTSP, RTMP).
        assert_allowed(
            &post(shape("read", "site/door", "", "", &format!("token={a}"))).await,
            "query",
        );
        assert_allowed(
            &post(shape(
                "read",
                "site/door",
                "",
                "",
                &format!("x=1&token={a}"),
            ))
            .await,
            "query with more",
        );
        assert_allowed(&post(shape("read", "site/door", &a, "", "")).await, "token");
        assert_allowed(
            &post(shape("read", "site/door", "", &a, "")).await,
            "password",
        );
        assert_allowed(
            &post(shape("read", "site/door_low", &a, "", "")).await,
            "low stream",
        );
        assert_allowed(
            &post(shape("read", &cam_b, &b, "", "")).await,
            "default path",
        );
        assert_allowed(
            &post(shape("read", &format!("{cam_b}_low"), &b, "", "")).await,
            "default low",
        );
        // No token at all: 401, so that the media server asks for credentials.
        assert_unauthenticated(
            &post(shape("read", "site/door", "", "", "")).await,
            "no token",
        );
        assert_unauthenticated(
            &post(shape("read", "site/door", "", "", "token=")).await,
            "empty token",
        );
        // Tampered, truncated, extended, garbage, a token of another format.
        let mut tampered = a.clone().into_bytes();
        tampered[60] = if tampered[60] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for (bad, what) in [
            (tampered.as_str(), "tampered"),
            (&a[..118], "truncated"),
            (&a[..60], "half"),
            (&format!("{a}A"), "extended"),
            ("not-a-token", "garbage"),
            (&token, "an API token"),
            (&"A".repeat(5000), "huge"),
        ] {
            assert_unauthenticated(&post(shape("read", "site/door", bad, "", "")).await, what);
        }
        // A token for A does not open B, nor C, nor a path that names no camera.
        assert_forbidden(
            &post(shape("read", &cam_b, &a, "", "")).await,
            "A's token on B",
        );
        assert_forbidden(
            &post(shape("read", &format!("cam{}", v.cam_c), &a, "", "")).await,
            "A's token on C",
        );
        assert_forbidden(
            &post(shape("read", "site", &a, "", "")).await,
            "a prefix of A's path",
        );
        assert_forbidden(
            &post(shape("read", "site/door/../x", &a, "", "")).await,
            "dot segments",
        );
        assert_forbidden(
            &post(shape("read", "nothing", &a, "", "")).await,
            "unknown path",
        );
        // Never allowed, whatever the token.
        for action in ["publish", "api", "metrics", "pprof", "READ", "delete", ""] {
            assert_forbidden(&post(shape(action, "site/door", &a, "", "")).await, action);
            assert_forbidden(&post(shape(action, "", "", "u", "")).await, action);
        }
        // Playback (archive) needs archives-show.
        assert_forbidden(
            &post(shape("playback", "site/door", &a, "", "")).await,
            "playback",
        );
    }
    assert!(
        Snapshot::of(&s.app.store).stable() == before,
        "a hook check wrote to the store"
    );
    update_user(
        s,
        &v.admin,
        v.user_id,
        json!({"permissions": [ARCHIVES_SHOW]}),
    )
    .await;
    let before = Snapshot::of(&s.app.store).stable();
    assert_allowed(
        &s.hook_post(&mediamtx_1_19("playback", "site/door", &a, "", ""))
            .await,
        "playback with archives-show",
    );
    assert_allowed(
        &s.hook_post(&mediamtx_1_12(
            "playback",
            "site/door",
            "",
            "",
            &format!("token={a}"),
        ))
        .await,
        "playback 1.12",
    );

    // Unknown keys are ignored; bodies that are not MediaMTX's are refused.
    let mut extra = mediamtx_1_19("read", "site/door", &a, "", "");
    extra["future"] = json!({"x": [1, 2]});
    assert_allowed(&s.hook_post(&extra).await, "unknown keys");
    for body in [
        &b"{"[..],
        b"[]",
        b"null",
        b"\"read\"",
        b"{\"action\":\"read\",\"token\":\"x\"}",
    ] {
        let r = s
            .hook(
                "POST",
                "/media/auth",
                &[("content-type", "application/json")],
                body.to_vec(),
            )
            .await;
        assert_forbidden(&r, &String::from_utf8_lossy(body));
    }
    // An expired token (signed by the box's key, for this session).
    let session_id = s.get("/api/v1/users/self", &token).await.body["access_token_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let expired = s
        .app
        .stream_key
        .issue(&vmsd::stream_token::StreamClaims {
            access_token_id: session_id,
            camera_id: v.cam_a,
            expires_at: vmsd::model::now() - 1,
        })
        .unwrap();
    assert_unauthenticated(&v.read("site/door", &expired).await, "expired");

    assert!(
        Snapshot::of(&s.app.store).stable() == before,
        "a hook check wrote to the store"
    );
    v.s.stop().await;
}

#[tokio::test]
async fn nginx_and_flussonic_gets_are_answered_as_spec_8_says() {
    let v = Video::start_with(|c| c.media.uri_prefix = "/hls".into()).await;
    let s = &v.s;
    let token = v.login().await;
    let a = v.stream_token(&token, v.cam_a).await;
    let b = v.stream_token(&token, v.cam_b).await;
    let get = |query: String, headers: Vec<(&'static str, String)>| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.hook("GET", &format!("/media/auth{query}"), &headers, "")
            .await
    };
    let original = |uri: String| vec![("x-original-uri", uri)];

    // nginx auth_request: the original URI, with media.uri_prefix stripped.
    assert_allowed(
        &get(
            String::new(),
            original(format!("/hls/site/door/index.m3u8?token={a}")),
        )
        .await,
        "playlist",
    );
    assert_allowed(
        &get(
            String::new(),
            original(format!("/hls/site/door/seg-17.ts?token={a}&x=1")),
        )
        .await,
        "segment",
    );
    assert_allowed(
        &get(
            String::new(),
            original(format!("/hls/site/door_low/index.m3u8?token={a}")),
        )
        .await,
        "low",
    );
    assert_allowed(
        &get(
            String::new(),
            original(format!("/hls/site%2Fdoor/index.m3u8?token={a}")),
        )
        .await,
        "encoded",
    );
    assert_unauthenticated(
        &get(String::new(), original("/hls/site/door/index.m3u8".into())).await,
        "no token",
    );
    assert_unauthenticated(
        &get(
            String::new(),
            original("/hls/site/door/index.m3u8?token=".into()),
        )
        .await,
        "empty token",
    );
    assert_unauthenticated(
        &get(
            String::new(),
            original(format!("/hls/site/door/index.m3u8?token={}", &a[..100])),
        )
        .await,
        "truncated",
    );
    assert_forbidden(
        &get(
            String::new(),
            original(format!("/hls/cam{}/index.m3u8?token={a}", v.cam_b)),
        )
        .await,
        "A's token on B",
    );
    assert_forbidden(
        &get(
            String::new(),
            original(format!("/hls/site/../cam{}/x.ts?token={b}", v.cam_b)),
        )
        .await,
        "dot segments",
    );
    assert_forbidden(
        &get(
            String::new(),
            original(format!("/hlsx/site/door/x.ts?token={a}")),
        )
        .await,
        "outside the prefix",
    );
    assert_forbidden(&get(String::new(), vec![]).await, "no URI, no name");
    // Bearer instead of ?token=, as a player can send it through nginx.
    let bearer = vec![
        (
            "x-original-uri",
            "/hls/site/door/index.m3u8?token=".to_owned(),
        ),
        ("authorization", format!("Bearer {a}")),
    ];
    assert_allowed(&get(String::new(), bearer).await, "bearer");
    let bearer_b = vec![
        ("x-original-uri", "/hls/site/door/index.m3u8".to_owned()),
        ("authorization", format!("Bearer {b}")),
    ];
    assert_forbidden(&get(String::new(), bearer_b).await, "B's bearer on A");

    // Flussonic: name + token (+ ip, proto, ...); DVR is playback.
    let flussonic = |name: &str, token: &str, extra: &str| {
        format!("?name={name}&token={token}&ip=192.168.1.20&proto=hls&request_type=new_session&request_number=1{extra}")
    };
    assert_allowed(
        &get(flussonic("site/door", &a, ""), vec![]).await,
        "flussonic",
    );
    assert_allowed(
        &get(
            flussonic(&format!("cam{}", v.cam_b), &b, "&type=live"),
            vec![],
        )
        .await,
        "flussonic B",
    );
    assert_unauthenticated(
        &get(flussonic("site/door", "", ""), vec![]).await,
        "flussonic no token",
    );
    assert_unauthenticated(
        &get(flussonic("site/door", "forged", ""), vec![]).await,
        "flussonic forged",
    );
    assert_forbidden(
        &get(flussonic("site/door", &b, ""), vec![]).await,
        "flussonic B's token on A",
    );
    assert_forbidden(
        &get(flussonic("site/door", &a, "&type=dvr"), vec![]).await,
        "DVR without archives-show",
    );
    assert_forbidden(
        &get(flussonic("site/door", &a, "&media_request=dvr_hls"), vec![]).await,
        "DVR request",
    );
    update_user(
        s,
        &v.admin,
        v.user_id,
        json!({"permissions": [ARCHIVES_SHOW]}),
    )
    .await;
    assert_allowed(
        &get(flussonic("site/door", &a, "&type=dvr"), vec![]).await,
        "DVR with archives-show",
    );
    // HEAD is a GET.
    let r = s
        .hook(
            "HEAD",
            &format!("/media/auth{}", flussonic("site/door", &a, "")),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    v.s.stop().await;
}

#[tokio::test]
async fn the_hook_listener_is_bounded_and_answers_only_its_path() {
    let v = Video::start_with(|c| {
        c.limits.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let s = &v.s;
    let r = s.hook("GET", "/api/v1/users/self", &[], "").await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({"message": "Not Found."}))
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = s.hook("PUT", "/media/auth", &[], "{}").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    // A body over 64 KiB is refused without being decoded.
    let token = v.login().await;
    let a = v.stream_token(&token, v.cam_a).await;
    let mut big = mediamtx_1_19("read", "site/door", &a, "", "");
    big["padding"] = json!("x".repeat(70 * 1024));
    assert_forbidden(&s.hook_post(&big).await, "large body");
    // The API is not served on the hook, nor the hook on the API listener.
    let r = s
        .call(
            "POST",
            "/media/auth",
            None,
            Some(mediamtx_1_19("read", "site/door", &a, "", "")),
        )
        .await;
    assert_eq!(r.status, 404);
    // A client that sends no head is dropped after header_read_timeout.
    let mut idle = tokio::net::TcpStream::connect(s.hook_addr.unwrap())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("an idle hook connection is closed");
    assert!(n.map_or(true, |n| n == 0 || buf.starts_with(b"HTTP/1.1 408")));
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Keep-alive: many checks on one connection.
    let mut conn = tokio::net::TcpStream::connect(s.hook_addr.unwrap())
        .await
        .unwrap();
    let body = serde_json::to_string(&mediamtx_1_19("read", "site/door", &a, "", "")).unwrap();
    for _ in 0..3 {
        let req = format!(
            "POST /media/auth HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(req.as_bytes()).await.unwrap();
        let n = conn.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    v.s.stop().await;
}

#[tokio::test]
async fn stream_tokens_survive_a_restart_and_the_hook_can_be_disabled() {
    let v = Video::start().await;
    let token = v.login().await;
    let a = v.stream_token(&token, v.cam_a).await;
    let s = v.s.restart().await;
    let r = s
        .hook_post(&mediamtx_1_19("read", "site/door", &a, "", ""))
        .await;
    assert_allowed(&r, "after a restart");
    s.stop().await;

    let off = TestServer::start_with(|c| c.media.hook_listen = None).await;
    assert_eq!(off.hook_addr, None);
    assert_eq!(off.self_status("x").await, 401);
    off.stop().await;
}
