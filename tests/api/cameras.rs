//! Cameras and camera groups over the admin API (SPEC §4.4): validation, listing, updates,
//! deletion everywhere, and the group tree where only empty groups are deleted.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::admin_support::*;
use crate::common::{assert_field_error, TestServer};
use crate::seed_shapes::{assert_shape, seed_response};

#[tokio::test]
async fn cameras_are_created_validated_listed_updated_and_deleted_everywhere() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let region = create_group(&s, &admin, "Region", None).await;
    let g1 = create_group(&s, &admin, "North", Some(region)).await;
    let g2 = create_group(&s, &admin, "South", None).await;

    let r = post(
        &s,
        &admin,
        CAMERAS,
        json!({"name": "Gate", "ip": "10.0.0.5", "group_id": g1, "type": "onvif", "is_enabled": false,
               "is_sound_enabled": true, "archive_storage_days": 7, "services_list": {"ptz": true}}),
    )
    .await;
    let cam = expect(&r, 201).clone();
    let cam_id = id_of(&cam);
    assert_eq!(cam["status"], "inactive");
    assert_eq!(cam["type"], "onvif");
    assert_eq!(cam["is_enabled"], 0);
    assert_eq!(cam["is_sound_enabled"], true);
    assert_eq!(cam["archive_storage_days"], 7);
    assert_eq!(cam["is_archive_recording"], true);
    assert_eq!(
        cam["services_list"],
        json!({"motion_detect": false, "ptz": true})
    );
    assert_eq!(cam["group"]["cameras_count"], 1);
    assert_eq!(cam["top_group_id"], region);
    assert!(cam.get("pivot").is_none());
    if let Some(seed) = seed_response("001_") {
        let mut seed_camera = seed["cameras"][0].clone();
        seed_camera.as_object_mut().unwrap().remove("pivot");
        assert_shape(&seed_camera, &cam, "camera");
    }
    let plain = create_camera(&s, &admin, "Yard", None).await;
    let r = s.get(&format!("{CAMERAS}/{plain}"), &admin).await;
    let shown = expect(&r, 200);
    assert_eq!(shown["type"], "media_server_v2");
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["group"], Value::Null);
    assert_eq!(shown["top_group_id"], Value::Null);

    let r = post(
        &s,
        &admin,
        CAMERAS,
        json!({"ip": 5, "group_id": 999, "is_enabled": "yes", "archive_storage_days": 0,
               "services_list": {"ptz": "on"}, "type": ""}),
    )
    .await;
    assert_field_error(&r, "name", &["The name field is required."]);
    assert_field_error(&r, "ip", &["The ip must be a string."]);
    assert_field_error(&r, "group_id", &["The selected group id is invalid."]);
    assert_field_error(&r, "is_enabled", &["The is enabled must be true or false."]);
    assert_field_error(
        &r,
        "archive_storage_days",
        &["The archive storage days must be between 1 and 3650."],
    );
    assert_field_error(
        &r,
        "services_list.ptz",
        &["The services_list.ptz must be true or false."],
    );
    assert_field_error(&r, "type", &["The type field is required."]);
    assert_eq!(s.app.store.camera_count(), 2);

    // List, search, pages.
    let r = s.get(CAMERAS, &admin).await;
    assert_eq!(expect(&r, 200)["meta"]["total"], 2);
    let r = s.get(&format!("{CAMERAS}?search=10.0.0"), &admin).await;
    assert_eq!(expect(&r, 200)["data"][0]["id"], cam_id);
    let r = s.get(&format!("{CAMERAS}?search=yARD"), &admin).await;
    assert_eq!(expect(&r, 200)["data"][0]["id"], plain);
    let r = s.get(&format!("{CAMERAS}?per_page=1&page=2"), &admin).await;
    assert_eq!(expect(&r, 200)["data"][0]["id"], plain);

    // Update: moving groups keeps the counts; null clears.
    let r = put(
        &s,
        &admin,
        &format!("{CAMERAS}/{cam_id}"),
        json!({"group_id": g2, "name": "Gate 2", "ip": null}),
    )
    .await;
    let updated = expect(&r, 200);
    assert_eq!(updated["name"], "Gate 2");
    assert_eq!(updated["ip"], Value::Null);
    assert_eq!(updated["group"]["id"], g2);
    assert_eq!(updated["group"]["cameras_count"], 1);
    assert_eq!(
        s.get(&format!("{GROUPS}/{g1}"), &admin).await.body["cameras_count"],
        0
    );
    let r = put(
        &s,
        &admin,
        &format!("{CAMERAS}/{cam_id}"),
        json!({"group_id": 777}),
    )
    .await;
    assert_field_error(&r, "group_id", &["The selected group id is invalid."]);
    let log = audit_log(&s, &admin).await;
    assert_eq!(log[0]["action"], "camera_updated");
    assert_eq!(log[0]["fields"], json!(["name", "ip", "group_id"]));

    // Delete detaches from every account (regular, sub-user, temporary) in one go.
    let user = id_of(&create_user(&s, &admin, "u", json!({})).await);
    let sub = id_of(&create_user(&s, &admin, "su", json!({"parent_id": user})).await);
    let special = id_of(
        &create_special(
            &s,
            &admin,
            "sp",
            json!({"cameras_to_attach": [cam_id, plain]}),
        )
        .await,
    );
    for id in [user, sub] {
        expect(
            &put(
                &s,
                &admin,
                &format!("{USERS}/{id}"),
                json!({"cameras_to_attach": [cam_id]}),
            )
            .await,
            200,
        );
    }
    let token = s.login("sp", PASSWORD).await;
    let r = delete(&s, &admin, &format!("{CAMERAS}/{cam_id}")).await;
    assert_eq!(expect(&r, 200), &json!({"status": "ok"}));
    for id in [user, sub, special] {
        assert!(!stored_cameras(&s, id).contains(&cam_id), "account {id}");
    }
    assert_eq!(stored_cameras(&s, special), BTreeSet::from([plain]));
    let r = s.get(&format!("{USERS}/{user}"), &admin).await;
    assert_eq!(expect(&r, 200)["cameras"], json!([]));
    assert!(s.app.store.camera_accounts(cam_id).unwrap().is_empty());
    assert_eq!(
        s.get(&format!("{CAMERAS}/{cam_id}"), &admin).await.status,
        404
    );
    assert_eq!(
        delete(&s, &admin, &format!("{CAMERAS}/{cam_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        s.get(&format!("{GROUPS}/{g2}"), &admin).await.body["cameras_count"],
        0
    );
    // The temporary user's session is untouched.
    assert_eq!(s.self_status_of(&token).await, 200);
    // Attaching the deleted camera is now a validation error.
    let r = put(
        &s,
        &admin,
        &format!("{USERS}/{user}"),
        json!({"cameras_to_attach": [cam_id]}),
    )
    .await;
    assert_field_error(
        &r,
        "cameras_to_attach.0",
        &["The selected cameras_to_attach.0 is invalid."],
    );
    s.stop().await;
}

#[tokio::test]
async fn camera_groups_form_a_tree_and_only_empty_groups_are_deleted() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let top = create_group(&s, &admin, "Test cameras", None).await;
    let mid = create_group(&s, &admin, "manual cameras", Some(top)).await;
    let leaf = create_group(&s, &admin, "stand", Some(mid)).await;
    let r = s.get(&format!("{GROUPS}/{leaf}"), &admin).await;
    let view = expect(&r, 200);
    assert_eq!(view["depth"], 2);
    assert_eq!(view["top_group_id"], top);
    assert_eq!(view["full_pretty"], "Test cameras, manual cameras, stand");
    assert_eq!(view["type"], "cameras");
    assert!(view["created_at"].as_str().unwrap().ends_with(".000000Z"));
    if let Some(seed) = seed_response("001_") {
        assert_shape(&seed["cameras"][0]["group"], view, "group");
    }

    let r = post(&s, &admin, GROUPS, json!({"name": "", "parent_id": 999})).await;
    assert_field_error(&r, "name", &["The name field is required."]);
    assert_field_error(&r, "parent_id", &["The selected parent id is invalid."]);
    // No cycles: a group cannot move under itself or its descendants.
    for parent in [top, leaf] {
        let r = put(
            &s,
            &admin,
            &format!("{GROUPS}/{top}"),
            json!({"parent_id": parent}),
        )
        .await;
        assert_field_error(&r, "parent_id", &["The selected parent id is invalid."]);
    }

    // Only empty groups go.
    let cam = create_camera(&s, &admin, "c", Some(leaf)).await;
    for (group, _) in [(mid, "has a child"), (leaf, "has a camera")] {
        let r = delete(&s, &admin, &format!("{GROUPS}/{group}")).await;
        assert_field_error(
            &r,
            "group",
            &["The group must have no cameras and no sub-groups to be deleted."],
        );
    }
    expect(
        &put(
            &s,
            &admin,
            &format!("{CAMERAS}/{cam}"),
            json!({"group_id": null}),
        )
        .await,
        200,
    );
    expect(&delete(&s, &admin, &format!("{GROUPS}/{leaf}")).await, 200);
    expect(&delete(&s, &admin, &format!("{GROUPS}/{mid}")).await, 200);
    // Moving to the top and renaming.
    let other = create_group(&s, &admin, "other", Some(top)).await;
    let r = put(
        &s,
        &admin,
        &format!("{GROUPS}/{other}"),
        json!({"parent_id": null, "name": "Other"}),
    )
    .await;
    let moved = expect(&r, 200);
    assert_eq!(moved["parent_id"], Value::Null);
    assert_eq!(moved["depth"], 0);
    assert_eq!(moved["full_pretty"], "Other");
    expect(&delete(&s, &admin, &format!("{GROUPS}/{top}")).await, 200);
    let r = s.get(&format!("{GROUPS}?search=oth"), &admin).await;
    let list = expect(&r, 200);
    assert_eq!(list["meta"]["total"], 1);
    assert_eq!(list["data"][0]["id"], other);
    assert_eq!(s.get(&format!("{GROUPS}/{top}"), &admin).await.status, 404);
    s.stop().await;
}
