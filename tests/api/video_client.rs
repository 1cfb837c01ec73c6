//! The client side of video access (SPEC §8, §4.4): the camera routes a client account sees,
//! the stream URLs they hand out (issuing writes nothing), and the camera `media_path` rules.
//! The hook's answers are in `video`, the ways a stream token ends in `video_revocation`.

use serde_json::{json, Value};

use crate::common::{assert_field_error, Reply};
use crate::invariants::Snapshot;
use crate::video::{
    assert_allowed, assert_forbidden, attach, create_user, token_of, Video, PASSWORD,
};

#[tokio::test]
async fn client_camera_routes_show_only_assigned_cameras() {
    let v = Video::start().await;
    let (s, admin) = (&v.s, &v.admin);
    let token = v.login().await;

    let tree = s.get("/api/v1/cameras/flat-tree", &token).await;
    assert_eq!(tree.status, 200, "{:?}", tree.body);
    let ids: Vec<u64> = tree.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![v.cam_a, v.cam_b]);
    assert_eq!(tree.body["meta"]["total"], 2);
    let first = &tree.body["data"][0];
    assert_eq!(first["media_path"], "site/door");
    assert_eq!(first["pivot"]["user_id"], v.user_id);
    assert_eq!(first["pivot"]["camera_id"], v.cam_a);
    assert_eq!(first["name"], "Front door");
    assert!(first.get("group").is_some() && first.get("services_list").is_some());

    let found = s.get("/api/v1/cameras/flat-tree?search=YAR", &token).await;
    assert_eq!(found.body["meta"]["total"], 1);
    assert_eq!(found.body["data"][0]["id"], v.cam_b);
    let paged = s
        .get("/api/v1/cameras/flat-tree?per_page=1&page=2", &token)
        .await;
    assert_eq!(paged.body["data"][0]["id"], v.cam_b);
    assert_eq!(paged.body["meta"]["last_page"], 2);

    let shown = s.get(&format!("/api/v1/cameras/{}", v.cam_b), &token).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["media_path"], format!("cam{}", v.cam_b));
    assert_eq!(shown.body["pivot"]["order"], 1);
    for hidden in [
        format!("/api/v1/cameras/{}", v.cam_c),
        format!("/api/v1/cameras/{}/streams", v.cam_c),
        "/api/v1/cameras/999999".to_owned(),
        "/api/v1/cameras/999999/streams".to_owned(),
        "/api/v1/cameras/abc".to_owned(),
    ] {
        let r = s.get(&hidden, &token).await;
        assert_eq!(
            (r.status, &r.body),
            (404, &json!({"message": "Not Found."})),
            "{hidden}"
        );
    }

    // Administrators use the admin API.
    for path in [
        "/api/v1/cameras/flat-tree".to_owned(),
        format!("/api/v1/cameras/{}", v.cam_a),
        format!("/api/v1/cameras/{}/streams", v.cam_a),
    ] {
        let r = s.get(&path, admin).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.body, json!({"message": "This action is unauthorized."}));
        let r = s.call("GET", &path, None, None).await;
        assert_eq!(r.status, 401, "{path}");
    }

    // Sub-users and temporary users see what is assigned to them, not their parent's.
    let sub = create_user(s, admin, "sub", json!({"parent_id": v.user_id})).await;
    attach(s, admin, sub, &[v.cam_c]).await;
    let sub_token = s.login("sub", PASSWORD).await;
    let r = s.get("/api/v1/cameras/flat-tree", &sub_token).await;
    assert_eq!(r.body["meta"]["total"], 1);
    assert_eq!(r.body["data"][0]["id"], v.cam_c);
    let special = s
        .call(
            "POST",
            "/api/admin/v1/special-users",
            Some(admin),
            Some(
                json!({"name": "guest", "login": "guest", "password": PASSWORD,
                        "password_confirmation": PASSWORD, "cameras_to_attach": [v.cam_b]}),
            ),
        )
        .await;
    assert_eq!(special.status, 201, "{:?}", special.body);
    let guest = s.login("guest", PASSWORD).await;
    let r = s.get("/api/v1/cameras/flat-tree", &guest).await;
    assert_eq!(r.body["data"][0]["id"], v.cam_b);
    assert_eq!(r.body["meta"]["total"], 1);
    assert_eq!(
        s.get(&format!("/api/v1/cameras/{}", v.cam_a), &guest)
            .await
            .status,
        404
    );
    v.s.stop().await;
}

#[tokio::test]
async fn stream_urls_follow_the_templates_and_issuing_writes_nothing() {
    let v = Video::start().await;
    let s = &v.s;
    let token = v.login().await;
    let before = Snapshot::of(&s.app.store).stable();

    let r = s
        .get(&format!("/api/v1/cameras/{}/streams", v.cam_a), &token)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["fallback_url"], Value::Null);
    assert_eq!(r.body["move_to"], Value::Null);
    let url = r.body["url"].as_str().unwrap();
    let stream = token_of(url);
    assert_eq!(
        url,
        format!("https://vms.local:8888/site/door/index.m3u8?token={stream}")
    );
    assert_eq!(stream.len(), 119);
    assert!(stream
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));

    let get = |query: &'static str, host: &'static str| {
        let path = format!("/api/v1/cameras/{}/streams{query}", v.cam_b);
        let auth = format!("Bearer {token}");
        async move {
            s.raw(
                "GET",
                &path,
                &[("authorization", &auth), ("host", host)],
                "",
            )
            .await
        }
    };
    let cam_b = format!("cam{}", v.cam_b);
    let url_of = |r: &Reply| r.body["url"].as_str().unwrap().to_owned();
    let r = get("?type=low&source=rtsp", "192.168.1.10:443").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        url_of(&r),
        format!(
            "rtsp://192.168.1.10:8554/{cam_b}_low?token={}",
            token_of(&url_of(&r))
        )
    );
    let r = get("?type=high&source=hls", "[fe80::1]:443").await;
    assert!(url_of(&r).starts_with(&format!("https://[fe80::1]:8888/{cam_b}/index.m3u8?token=")));
    // A Host that is not a hostname or IP is not echoed: tls.hostnames[0] instead.
    let r = get("", "evil_host").await;
    assert!(
        url_of(&r).starts_with(&format!("https://vms.local:8888/{cam_b}/")),
        "{r:?}"
    );

    let r = get("?type=medium&source=dash", "vms.local").await;
    assert_field_error(&r, "type", &["The selected type is invalid."]);
    assert_field_error(&r, "source", &["The selected source is invalid."]);

    // Issuing tokens wrote nothing; the hook's checks write nothing either.
    let stream_b = v.stream_token(&token, v.cam_b).await;
    assert_allowed(&v.read(&cam_b, &stream_b).await, "B");
    assert_allowed(&v.read("site/door", &stream).await, "A");
    assert!(
        Snapshot::of(&s.app.store).stable() == before,
        "a stream URL or a hook check wrote to the store"
    );
    v.s.stop().await;
}

#[tokio::test]
async fn media_paths_are_validated_unique_and_rendered() {
    let v = Video::start().await;
    let (s, admin) = (&v.s, &v.admin);
    let create = |body: Value| async move {
        s.call("POST", "/api/admin/v1/cameras", Some(admin), Some(body))
            .await
    };
    let taken = ["The media path has already been taken."];
    assert_field_error(
        &create(json!({"name": "x", "media_path": "site/door"})).await,
        "media_path",
        &taken,
    );
    // Another camera's default path is taken too.
    let other_default = format!("cam{}", v.cam_b);
    assert_field_error(
        &create(json!({"name": "x", "media_path": other_default})).await,
        "media_path",
        &taken,
    );
    assert_field_error(
        &create(json!({"name": "x", "media_path": "door_low"})).await,
        "media_path",
        &["The media path must not end with _low."],
    );
    for bad in ["/a", "a/", "a/../b", "a b", "a?token=x", "a//b"] {
        assert_field_error(
            &create(json!({"name": "x", "media_path": bad})).await,
            "media_path",
            &["The media path format is invalid."],
        );
    }
    assert_field_error(
        &create(json!({"name": "x", "media_path": ""})).await,
        "media_path",
        &["The media path field is required."],
    );
    assert_field_error(
        &create(json!({"name": "x", "media_path": "a".repeat(129)})).await,
        "media_path",
        &["The media path must not be greater than 128 characters."],
    );
    assert_field_error(
        &create(json!({"name": "x", "media_path": 5})).await,
        "media_path",
        &["The media path must be a string."],
    );

    // Renamed: the new path opens the camera, the old one names nothing; null is the default.
    let token = v.login().await;
    let stream = v.stream_token(&token, v.cam_a).await;
    let update = |body: Value| async move {
        s.call(
            "PUT",
            &format!("/api/admin/v1/cameras/{}", v.cam_a),
            Some(admin),
            Some(body),
        )
        .await
    };
    let r = update(json!({"media_path": "site/gate"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["media_path"], "site/gate");
    assert_allowed(&v.read("site/gate", &stream).await, "new path");
    assert_forbidden(&v.read("site/door", &stream).await, "old path");
    // The old path is free again.
    let c = create(json!({"name": "reuse", "media_path": "site/door"})).await;
    assert_eq!(c.status, 201, "{:?}", c.body);
    let r = update(json!({"media_path": null})).await;
    assert_eq!(r.body["media_path"], format!("cam{}", v.cam_a));
    assert_allowed(
        &v.read(&format!("cam{}", v.cam_a), &stream).await,
        "default path",
    );
    let shown = s
        .get(&format!("/api/admin/v1/cameras/{}", v.cam_b), admin)
        .await;
    assert_eq!(shown.body["media_path"], format!("cam{}", v.cam_b));
    // Its own default given explicitly is the default.
    let r = update(json!({"media_path": format!("cam{}", v.cam_a)})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A deleted camera's path is free.
    let r = s
        .call(
            "DELETE",
            &format!("/api/admin/v1/cameras/{}", c.body["id"]),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        create(json!({"name": "again", "media_path": "site/door"}))
            .await
            .status,
        201
    );
    v.s.stop().await;
}
