//! Temporary (special) users over the admin API (SPEC §4.3, §3; seed 002): create and update
//! validation, listing and deletion, the bounds of camera lists, and the expiry of temporary
//! users.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use vmsd::model::{now, UserType};
use vmsd::views::fmt_resource;

use crate::admin_support::*;
use crate::common::{assert_field_error, TestServer};

fn camera_ids(view: &Value) -> BTreeSet<u64> {
    view["cameras"]
        .as_array()
        .unwrap_or_else(|| panic!("no cameras in {view}"))
        .iter()
        .map(id_of)
        .collect()
}

#[tokio::test]
async fn special_user_create_reports_every_failing_field_and_creates_nothing() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    s.create_account("Taken", PASSWORD, UserType::User);
    let cam = create_camera(&s, &admin, "c", None).await;
    let before = s.app.store.account_count();
    let r = post(
        &s,
        &admin,
        SPECIAL,
        json!({
            "name": "   ", "login": "tAKEN", "password": "short", "password_confirmation": "shorter",
            "permissions": [LAYOUTS_STORE, 777], "cameras_to_attach": [cam, 4242],
            "expired_at": "2001-01-01 00:00:00", "ptz_priority": 0,
        }),
    )
    .await;
    assert_field_error(&r, "name", &["The name field is required."]);
    assert_field_error(&r, "login", &["The login has already been taken."]);
    assert_field_error(
        &r,
        "password",
        &[
            "The password must be at least 8 characters.",
            "The password confirmation does not match.",
        ],
    );
    assert_field_error(
        &r,
        "permissions.1",
        &["The selected permissions.1 is invalid."],
    );
    assert_field_error(
        &r,
        "cameras_to_attach.1",
        &["The selected cameras_to_attach.1 is invalid."],
    );
    assert_field_error(
        &r,
        "expired_at",
        &["The expired at must be a date after now."],
    );
    assert_field_error(
        &r,
        "ptz_priority",
        &["The ptz priority must be between 1 and 100."],
    );
    assert_eq!(r.body["errors"].as_object().unwrap().len(), 7);
    assert_eq!(s.app.store.account_count(), before);
    assert!(s.app.store.camera_accounts(cam).unwrap().is_empty());

    // Every account type shares the login space, case-insensitively and trimmed.
    for login in ["ADMIN", " admin ", "taken"] {
        let r = try_create_special(&s, &admin, login, json!({})).await;
        assert_field_error(&r, "login", &["The login has already been taken."]);
    }

    let created = create_special(
        &s,
        &admin,
        " Contractor ",
        json!({"permissions": [ARCHIVES_SHOW, PACKS_DESTROY_ADMIN], "cameras_to_attach": [cam, cam],
               "expired_at": "2099-05-01", "ptz_priority": "100"}),
    )
    .await;
    assert_eq!(created["login"], "Contractor");
    assert_eq!(created["expired_at"], "2099-05-01 00:00:00");
    assert_eq!(created["ptz_priority"], 100);
    assert_eq!(
        permission_ids(&created),
        BTreeSet::from([ARCHIVES_SHOW, PACKS_DESTROY_ADMIN])
    );
    assert_eq!(stored_cameras(&s, id_of(&created)), BTreeSet::from([cam]));
    assert_eq!(
        s.app.store.camera_accounts(cam).unwrap(),
        vec![id_of(&created)]
    );
    let token = s.login("contractor", PASSWORD).await;
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(expect(&me, 200)["login"], "Contractor");
    s.stop().await;
}

#[tokio::test]
async fn special_user_update_accepts_each_field_of_seed_002_alone_and_all_or_nothing() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    s.create_account("regular", PASSWORD, UserType::User);
    let created = create_special(&s, &admin, "temp", json!({"ptz_priority": 5})).await;
    let id = id_of(&created);
    let path = format!("{SPECIAL}/{id}");

    // ptz_priority: 1–100 or null.
    for (value, message) in [
        (json!(0), "The ptz priority must be between 1 and 100."),
        (json!(101), "The ptz priority must be between 1 and 100."),
        (json!("high"), "The ptz priority must be an integer."),
        (json!(1.5), "The ptz priority must be an integer."),
    ] {
        let r = put(&s, &admin, &path, json!({"ptz_priority": value})).await;
        assert_field_error(&r, "ptz_priority", &[message]);
    }
    assert_eq!(
        expect(
            &put(&s, &admin, &path, json!({"ptz_priority": 1})).await,
            200
        )["ptz_priority"],
        1
    );
    assert_eq!(
        expect(
            &put(&s, &admin, &path, json!({"ptz_priority": 100})).await,
            200
        )["ptz_priority"],
        100
    );
    assert_eq!(
        expect(
            &put(&s, &admin, &path, json!({"ptz_priority": null})).await,
            200
        )["ptz_priority"],
        Value::Null
    );

    // expired_at: three formats, after now, null clears.
    let future = now() + 3600;
    let ymd_his = fmt_resource(future);
    let rfc3339 = ymd_his.replace(' ', "T") + "Z";
    let offset = {
        let shifted = fmt_resource(future + 2 * 3600);
        shifted.replace(' ', "T") + "+02:00"
    };
    for given in [&ymd_his, &rfc3339, &offset] {
        let r = put(&s, &admin, &path, json!({"expired_at": given})).await;
        assert_eq!(expect(&r, 200)["expired_at"], ymd_his.as_str(), "{given}");
    }
    let r = put(&s, &admin, &path, json!({"expired_at": "2099-12-31"})).await;
    assert_eq!(expect(&r, 200)["expired_at"], "2099-12-31 00:00:00");
    for (value, message) in [
        (
            json!(fmt_resource(now() - 60)),
            "The expired at must be a date after now.",
        ),
        (
            json!("2000-01-01"),
            "The expired at must be a date after now.",
        ),
        (json!("tomorrow"), "The expired at is not a valid date."),
        (json!("2099-13-01"), "The expired at is not a valid date."),
        (json!(12345), "The expired at is not a valid date."),
    ] {
        let r = put(&s, &admin, &path, json!({"expired_at": value})).await;
        assert_field_error(&r, "expired_at", &[message]);
    }
    let r = put(&s, &admin, &path, json!({"expired_at": null})).await;
    assert_eq!(expect(&r, 200)["expired_at"], Value::Null);

    // login: unique across every account type, case-insensitively; the own login may change case.
    for taken in ["ADMIN", "Regular"] {
        let r = put(&s, &admin, &path, json!({"login": taken})).await;
        assert_field_error(&r, "login", &["The login has already been taken."]);
    }
    let r = put(&s, &admin, &path, json!({"login": "TEMP"})).await;
    assert_eq!(expect(&r, 200)["login"], "TEMP");
    let r = put(
        &s,
        &admin,
        &path,
        json!({"login": "temp2", "name": "Renamed"}),
    )
    .await;
    assert_eq!(expect(&r, 200)["name"], "Renamed");
    assert!(s.app.store.account_by_login("temp").unwrap().is_none());
    let r = put(&s, &admin, &path, json!({"name": 5})).await;
    assert_field_error(&r, "name", &["The name must be a string."]);
    let r = put(&s, &admin, &path, json!({"name": "x".repeat(256)})).await;
    assert_field_error(
        &r,
        "name",
        &["The name must not be greater than 255 characters."],
    );

    // password: an admin sets it without the old one; the user's sessions end.
    let old_token = s.login("temp2", PASSWORD).await;
    let r = put(
        &s,
        &admin,
        &path,
        json!({"password": "new-password-1", "password_confirmation": "nope"}),
    )
    .await;
    assert_field_error(
        &r,
        "password",
        &["The password confirmation does not match."],
    );
    assert_eq!(s.self_status_of(&old_token).await, 200);
    let r = put(
        &s,
        &admin,
        &path,
        json!({"password": "new-password-1", "password_confirmation": "new-password-1"}),
    )
    .await;
    expect(&r, 200);
    assert_eq!(s.self_status_of(&old_token).await, 401);
    s.login("temp2", "new-password-1").await;

    // permissions: any catalogue id.
    let r = put(
        &s,
        &admin,
        &path,
        json!({"permissions": [PACKS_DESTROY_ADMIN, LAYOUTS_STORE]}),
    )
    .await;
    assert_eq!(
        permission_ids(expect(&r, 200)),
        BTreeSet::from([LAYOUTS_STORE, PACKS_DESTROY_ADMIN])
    );

    // All-or-nothing: one bad field keeps the good ones from applying.
    let before = s.app.store.account(id).unwrap().unwrap();
    let r = put(
        &s,
        &admin,
        &path,
        json!({"name": "Should not stick", "ptz_priority": 50, "permissions": [], "expired_at": "yesterday"}),
    )
    .await;
    assert_field_error(&r, "expired_at", &["The expired at is not a valid date."]);
    assert_eq!(s.app.store.account(id).unwrap().unwrap(), before);

    // Audit: field names only.
    let log = audit_log(&s, &admin).await;
    let updates: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "special_user_updated")
        .collect();
    assert_eq!(updates[0]["fields"], json!(["permissions"]));
    assert_eq!(updates[1]["fields"], json!(["password"]));
    assert_eq!(updates[2]["fields"], json!(["name", "login"]));
    assert!(
        !String::from_utf8_lossy(&s.get("/api/admin/v1/audit?per_page=500", &admin).await.raw)
            .contains("new-password-1")
    );

    // Regular users are not temporary users.
    let regular = s.app.store.account_by_login("regular").unwrap().unwrap();
    assert_eq!(
        put(&s, &admin, &format!("{SPECIAL}/{}", regular.id), json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        put(&s, &admin, &format!("{SPECIAL}/999"), json!({}))
            .await
            .status,
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn special_users_list_show_and_delete() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let group = create_group(&s, &admin, "Cameras", None).await;
    let cam = create_camera(&s, &admin, "Camera 1", Some(group)).await;
    let a = create_special(&s, &admin, "alpha", json!({"cameras_to_attach": [cam]})).await;
    let b = create_special(&s, &admin, "beta", json!({})).await;
    create_user(&s, &admin, "not-special", json!({})).await;

    let r = s.get(SPECIAL, &admin).await;
    let list = expect(&r, 200);
    assert_eq!(list["meta"]["total"], 2);
    let first = &list["data"][0];
    assert_eq!(first["id"], id_of(&a));
    assert_eq!(first["cameras"][0]["id"], cam);
    assert_eq!(first["cameras"][0]["pretty_text"], "Cameras");
    assert_eq!(first["cameras"][0]["is_sensitive"], 0);
    assert_eq!(first["analytic_license"].as_array().unwrap().len(), 3);
    assert_eq!(list["data"][1]["cameras"], json!([]));
    let r = s.get(&format!("{SPECIAL}?search=BET"), &admin).await;
    let found = expect(&r, 200)["data"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], id_of(&b));

    let r = s.get(&format!("{SPECIAL}/{}", id_of(&a)), &admin).await;
    let shown = expect(&r, 200);
    assert_eq!(shown["user_type"], "special");
    assert_eq!(shown["cameras"][0]["pivot"]["user_id"], id_of(&a));
    assert_eq!(shown["cameras"][0]["group"]["name"], "Cameras");
    assert_eq!(shown["analytic_license"][0]["type"], "analytic_l1");

    let token = s.login("alpha", PASSWORD).await;
    let r = delete(&s, &admin, &format!("{SPECIAL}/{}", id_of(&a))).await;
    assert_eq!(expect(&r, 200), &json!({"status": "ok"}));
    assert_eq!(s.self_status_of(&token).await, 401);
    assert!(s.app.store.camera_accounts(cam).unwrap().is_empty());
    assert_eq!(
        s.get(&format!("{SPECIAL}/{}", id_of(&a)), &admin)
            .await
            .status,
        404
    );
    assert_eq!(
        delete(&s, &admin, &format!("{SPECIAL}/{}", id_of(&a)))
            .await
            .status,
        404
    );
    let log = audit_log(&s, &admin).await;
    assert_eq!(log[0]["action"], "special_user_deleted");
    assert_eq!(log[0]["target_id"], id_of(&a));
    s.stop().await;
}

#[tokio::test]
async fn camera_lists_take_500_ids_refuse_501_unknown_ids_and_overlaps() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let ids = seed_cameras(&s, 501);
    let special = create_special(&s, &admin, "bulk", json!({})).await;
    let id = id_of(&special);
    let path = format!("{SPECIAL}/{id}");

    let r = put(&s, &admin, &path, json!({"cameras_to_attach": ids})).await;
    assert_field_error(
        &r,
        "cameras_to_attach",
        &["The cameras to attach must not have more than 500 items."],
    );
    let r = put(&s, &admin, &path, json!({"cameras_to_detach": ids})).await;
    assert_field_error(
        &r,
        "cameras_to_detach",
        &["The cameras to detach must not have more than 500 items."],
    );
    assert!(stored_cameras(&s, id).is_empty());

    let first_500: Vec<u64> = ids[..500].to_vec();
    let r = put(&s, &admin, &path, json!({"cameras_to_attach": first_500})).await;
    expect(&r, 200);
    assert_eq!(stored_cameras(&s, id).len(), 500);
    assert_eq!(s.app.store.camera_accounts(ids[499]).unwrap(), vec![id]);
    let shown = s.get(&format!("{SPECIAL}/{id}"), &admin).await;
    assert_eq!(camera_ids(expect(&shown, 200)).len(), 500);
    assert_eq!(shown.body["cameras"][499]["pivot"]["order"], 499);

    // Unknown ids are keyed by their index; nothing applies.
    let r = put(
        &s,
        &admin,
        &path,
        json!({"cameras_to_attach": [ids[500], 99999, "x"], "cameras_to_detach": [ids[0], 88888]}),
    )
    .await;
    assert_field_error(
        &r,
        "cameras_to_attach.1",
        &["The selected cameras_to_attach.1 is invalid."],
    );
    assert_field_error(
        &r,
        "cameras_to_attach.2",
        &["The cameras_to_attach.2 must be an integer."],
    );
    assert_field_error(
        &r,
        "cameras_to_detach.1",
        &["The selected cameras_to_detach.1 is invalid."],
    );
    assert!(!stored_cameras(&s, id).contains(&ids[500]));
    assert!(stored_cameras(&s, id).contains(&ids[0]));

    // The same id in both lists.
    let r = put(
        &s,
        &admin,
        &path,
        json!({"cameras_to_attach": [ids[500]], "cameras_to_detach": [ids[1], ids[500]]}),
    )
    .await;
    assert_field_error(
        &r,
        "cameras_to_detach.1",
        &["The cameras_to_detach.1 and cameras to attach must be different."],
    );
    assert_eq!(stored_cameras(&s, id).len(), 500);

    // Attaching an attached camera and detaching a detached one change nothing (no audit entry).
    let entries = audit_log(&s, &admin).await.len();
    let r = put(
        &s,
        &admin,
        &path,
        json!({"cameras_to_attach": [ids[0], ids[0]], "cameras_to_detach": [ids[500]]}),
    )
    .await;
    expect(&r, 200);
    assert_eq!(audit_log(&s, &admin).await.len(), entries);

    // Detaching all 500 in one request.
    let r = put(&s, &admin, &path, json!({"cameras_to_detach": first_500})).await;
    expect(&r, 200);
    assert!(stored_cameras(&s, id).is_empty());
    assert!(s.app.store.camera_accounts(ids[0]).unwrap().is_empty());
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Expiry of temporary users (SPEC §4.3, §3)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_expired_temporary_user_cannot_log_in_its_tokens_stop_and_the_sweep_removes_them() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    // Expires three seconds from now, set over the API.
    let expiry = fmt_resource(now() + 3);
    let u = create_special(&s, &admin, "shortlived", json!({"expired_at": expiry})).await;
    let id = id_of(&u);
    let token = s.login("shortlived", PASSWORD).await;
    assert_eq!(s.self_status_of(&token).await, 200);
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(s.self_status_of(&token).await, 401);
    let r = s.try_login_plain_reply("shortlived", PASSWORD).await;
    assert_field_error(&r, "login", &["This account has expired."]);
    // The session still exists until the sweep runs; then it is gone.
    assert_eq!(s.app.store.sessions_of(id).unwrap().len(), 1);
    let removed = vmsd::housekeeping::sweep(&s.app).unwrap();
    assert!(removed >= 1);
    assert!(s.app.store.sessions_of(id).unwrap().is_empty());

    // An admin extends the account: it logs in again.
    let r = put(
        &s,
        &admin,
        &format!("{SPECIAL}/{id}"),
        json!({"expired_at": fmt_resource(now() + 3600)}),
    )
    .await;
    expect(&r, 200);
    let token = s.login("shortlived", PASSWORD).await;
    // Set into the past behind the API's back (as time passing would): 401 at once.
    s.edit_account(id, |a| a.expired_at = Some(now() - 1));
    assert_eq!(s.self_status_of(&token).await, 401);
    assert_eq!(vmsd::housekeeping::sweep(&s.app).unwrap(), 1);
    assert!(s.app.store.sessions_of(id).unwrap().is_empty());
    // Sessions of other accounts survive the sweep.
    let other = create_special(&s, &admin, "longlived", json!({"expired_at": "2099-01-01"})).await;
    let other_token = s.login("longlived", PASSWORD).await;
    assert_eq!(vmsd::housekeeping::sweep(&s.app).unwrap(), 0);
    assert_eq!(s.self_status_of(&other_token).await, 200);
    assert_eq!(s.app.store.sessions_of(id_of(&other)).unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_temporary_users_own_view_follows_admin_changes_at_once() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let cam = create_camera(&s, &admin, "c", None).await;
    let u = create_special(
        &s,
        &admin,
        "viewer",
        json!({"permissions": [ARCHIVES_SHOW]}),
    )
    .await;
    let token = s.login("viewer", PASSWORD).await;
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(
        expect(&me, 200)["permissions"],
        json!([{"id": 12, "name": "archives-show"}])
    );
    let r = put(
        &s,
        &admin,
        &format!("{SPECIAL}/{}", id_of(&u)),
        json!({"permissions": [LAYOUTS_STORE], "cameras_to_attach": [cam]}),
    )
    .await;
    expect(&r, 200);
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(
        expect(&me, 200)["permissions"],
        json!([{"id": 9, "name": "layouts-store"}])
    );
    assert_eq!(stored_cameras(&s, id_of(&u)), BTreeSet::from([cam]));
    s.stop().await;
}

/// SPEC §3 and §4.4: an admin setting a temporary user's password ends that user's sessions
/// and audits the revocation as its own entry beside the change itself.
#[tokio::test]
async fn an_admin_set_password_ends_the_users_sessions_and_audits_the_revocation() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let temp = create_special(&s, &admin, "reset-me", json!({})).await;
    let id = id_of(&temp);
    let token = s.login("reset-me", PASSWORD).await;
    assert_eq!(s.self_status(&token).await, 200);
    let r = put(
        &s,
        &admin,
        &format!("{SPECIAL}/{id}"),
        json!({"password": "another-password-1", "password_confirmation": "another-password-1"}),
    )
    .await;
    expect(&r, 200);
    assert_eq!(
        s.self_status(&token).await,
        401,
        "the old session still works"
    );
    let log = audit_log(&s, &admin).await;
    let about: Vec<(&str, &Value)> = log
        .iter()
        .filter(|e| e["target_id"] == id)
        .map(|e| (e["action"].as_str().unwrap_or_default(), &e["fields"]))
        .collect();
    assert_eq!(
        about[..2],
        [
            ("session_revoked", &json!(["session"])),
            ("special_user_updated", &json!(["password"])),
        ],
        "{about:?}"
    );
    s.stop().await;
}
