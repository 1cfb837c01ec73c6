//! Regular users and sub-users over the admin API (SPEC §4.2): creation, listing, client-side
//! permissions, and deletion with its sub-users, sessions and assignments.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::admin_support::*;
use crate::common::{assert_field_error, TestServer};

#[tokio::test]
async fn regular_users_are_created_listed_shown_and_sub_users_need_a_user_parent() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let user = create_user(&s, &admin, "Customer", json!({"name": "A Customer"})).await;
    let user_id = id_of(&user);
    assert_eq!(user["user_type"], "user");
    assert_eq!(user["name"], "A Customer");
    assert_eq!(user["billing_info"], Value::Null);
    // The new user logs in with its password.
    s.login("customer", PASSWORD).await;

    let special = create_special(&s, &admin, "temp", json!({})).await;
    for bad_parent in [json!(id_of(&special)), json!(9999), json!("x")] {
        let r = post(
            &s,
            &admin,
            USERS,
            json!({"login": "sub", "password": PASSWORD, "password_confirmation": PASSWORD, "parent_id": bad_parent}),
        )
        .await;
        assert_field_error(&r, "parent_id", &["The selected parent id is invalid."]);
    }
    let sub = create_user(&s, &admin, "sub", json!({"parent_id": user_id.to_string()})).await;
    assert_eq!(sub["user_type"], "subuser");
    // A sub-user cannot parent another.
    let r = post(
        &s,
        &admin,
        USERS,
        json!({"login": "subsub", "password": PASSWORD, "password_confirmation": PASSWORD, "parent_id": id_of(&sub)}),
    )
    .await;
    assert_field_error(&r, "parent_id", &["The selected parent id is invalid."]);

    // Everything wrong at once, nothing created.
    let before = s.app.store.account_count();
    let r = post(
        &s,
        &admin,
        USERS,
        json!({"login": "CUSTOMER", "password": "short", "password_confirmation": "other",
               "permissions": [PACKS_DESTROY_ADMIN], "can_update_password": "maybe", "billing_info": 5}),
    )
    .await;
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
        "permissions.0",
        &["The selected permissions.0 is invalid."],
    );
    assert_field_error(
        &r,
        "can_update_password",
        &["The can update password must be true or false."],
    );
    assert_field_error(&r, "billing_info", &["The billing info must be an object."]);
    let r = post(&s, &admin, USERS, json!({})).await;
    assert_field_error(&r, "login", &["The login field is required."]);
    assert_field_error(&r, "password", &["The password field is required."]);
    assert_eq!(s.app.store.account_count(), before);

    // The list holds regular users and sub-users only, with parent ids and where each comes
    // from (SPEC §10: `source`); search is on login/name.
    let r = s.get(USERS, &admin).await;
    let list = expect(&r, 200);
    let items = list["data"].as_array().unwrap();
    assert_eq!(list["meta"]["total"], 2);
    assert_eq!(
        items[0],
        json!({"id": user_id, "name": "A Customer", "login": "Customer",
               "created_at": user["created_at"], "user_type": "user", "parent_id": null,
               "source": "local"})
    );
    assert_eq!(items[1]["parent_id"], user_id);
    let r = s.get(&format!("{USERS}?search=a%20CUST"), &admin).await;
    let found = expect(&r, 200)["data"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], user_id);
    let r = s.get(&format!("{USERS}?per_page=1&page=2"), &admin).await;
    let page = expect(&r, 200);
    assert_eq!(page["data"][0]["id"], id_of(&sub));
    assert_eq!(page["meta"]["last_page"], 2);

    // Only user/subuser are shown here; anything else, or no such id, is 404.
    for path in [
        format!("{USERS}/{}", id_of(&special)),
        format!("{USERS}/1"),
        format!("{USERS}/424242"),
        format!("{USERS}/abc"),
    ] {
        let r = s.get(&path, &admin).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body, json!({"message": "Not Found."}));
    }
    let shown = s.get(&format!("{USERS}/{}", id_of(&sub)), &admin).await;
    assert_eq!(expect(&shown, 200)["user_type"], "subuser");
    s.stop().await;
}

#[tokio::test]
async fn regular_user_permissions_are_client_side_only_and_the_user_sees_them_at_once() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let user = create_user(
        &s,
        &admin,
        "client",
        json!({"permissions": [ARCHIVES_SHOW]}),
    )
    .await;
    let id = id_of(&user);
    let token = s.login("client", PASSWORD).await;
    let path = format!("{USERS}/{id}");

    for (body, key) in [
        (
            json!({"permissions": [LAYOUTS_STORE, PACKS_DESTROY_ADMIN]}),
            "permissions.1",
        ),
        (json!({"permissions": [9999]}), "permissions.0"),
    ] {
        let r = put(&s, &admin, &path, body).await;
        assert_field_error(&r, key, &[&format!("The selected {key} is invalid.")]);
    }
    let r = put(&s, &admin, &path, json!({"permissions": ["x"]})).await;
    assert_field_error(
        &r,
        "permissions.0",
        &["The permissions.0 must be an integer."],
    );
    let r = put(&s, &admin, &path, json!({"permissions": "9"})).await;
    assert_field_error(&r, "permissions", &["The permissions must be an array."]);
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(
        expect(&me, 200)["permissions"],
        json!([{"id": 12, "name": "archives-show"}])
    );

    let r = put(
        &s,
        &admin,
        &path,
        json!({"permissions": [LAYOUTS_STORE, "30"]}),
    )
    .await;
    assert_eq!(permission_ids(expect(&r, 200)), BTreeSet::from([9, 30]));
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(
        expect(&me, 200)["permissions"],
        json!([{"id": 9, "name": "layouts-store"}, {"id": 30, "name": "analytic"}])
    );
    // An empty list takes every permission away.
    let r = put(&s, &admin, &path, json!({"permissions": []})).await;
    assert_eq!(expect(&r, 200)["permissions"], json!([]));
    assert_eq!(
        s.get("/api/v1/users/self", &token).await.body["permissions"],
        json!([])
    );
    // `{}` and null change nothing and write no audit entry.
    let entries = audit_log(&s, &admin).await.len();
    expect(&put(&s, &admin, &path, json!({})).await, 200);
    expect(&s.call("PUT", &path, Some(&admin), None).await, 200);
    assert_eq!(audit_log(&s, &admin).await.len(), entries);
    s.stop().await;
}

#[tokio::test]
async fn deleting_a_user_removes_its_sub_users_sessions_and_assignments_at_once() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let cam = create_camera(&s, &admin, "door", None).await;
    let user = create_user(&s, &admin, "parent", json!({})).await;
    let uid = id_of(&user);
    let sub1 = id_of(&create_user(&s, &admin, "kid1", json!({"parent_id": uid})).await);
    let sub2 = id_of(&create_user(&s, &admin, "kid2", json!({"parent_id": uid})).await);
    let other = id_of(&create_user(&s, &admin, "other", json!({})).await);
    for id in [uid, sub1, other] {
        let r = put(
            &s,
            &admin,
            &format!("{USERS}/{id}"),
            json!({"cameras_to_attach": [cam]}),
        )
        .await;
        expect(&r, 200);
    }
    assert_eq!(
        s.app.store.camera_accounts(cam).unwrap(),
        vec![uid, sub1, other]
    );
    let parent_token = s.login("parent", PASSWORD).await;
    let kid_token = s.login("kid1", PASSWORD).await;
    let other_token = s.login("other", PASSWORD).await;
    let shown = s.get(&format!("{USERS}/{uid}"), &admin).await;
    let subs: Vec<u64> = expect(&shown, 200)["subusers"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(subs, vec![sub1, sub2]);

    let r = delete(&s, &admin, &format!("{USERS}/{uid}")).await;
    assert_eq!(expect(&r, 200), &json!({"status": "ok"}));
    for id in [uid, sub1, sub2] {
        assert!(s.app.store.account(id).unwrap().is_none());
        assert!(s.app.store.sessions_of(id).unwrap().is_empty());
        assert_eq!(s.get(&format!("{USERS}/{id}"), &admin).await.status, 404);
    }
    assert_eq!(s.self_status_of(&parent_token).await, 401);
    assert_eq!(s.self_status_of(&kid_token).await, 401);
    assert_eq!(s.self_status_of(&other_token).await, 200);
    assert_eq!(s.app.store.camera_accounts(cam).unwrap(), vec![other]);
    // The logins are free again.
    create_user(&s, &admin, "KID1", json!({})).await;
    let log = audit_log(&s, &admin).await;
    let deleted: BTreeSet<u64> = log
        .iter()
        .filter(|e| e["action"] == "user_deleted")
        .map(|e| e["target_id"].as_u64().unwrap())
        .collect();
    assert_eq!(deleted, BTreeSet::from([uid, sub1, sub2]));
    assert_eq!(
        delete(&s, &admin, &format!("{USERS}/{uid}")).await.status,
        404
    );

    // Deleting a sub-user takes it off its parent's list.
    let p = id_of(&create_user(&s, &admin, "p2", json!({})).await);
    let k = id_of(&create_user(&s, &admin, "k2", json!({"parent_id": p})).await);
    expect(&delete(&s, &admin, &format!("{USERS}/{k}")).await, 200);
    let shown = s.get(&format!("{USERS}/{p}"), &admin).await;
    assert_eq!(expect(&shown, 200)["subusers"], json!([]));
    s.stop().await;
}
