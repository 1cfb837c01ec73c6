//! The user actions of the WebSocket API (SPEC §6, seed 003): `user/getCurrent`, `user/get`,
//! `user/update` and `user/updateCurrent` with every field, validation error and audit entry,
//! and the side effects shared with REST (one end-to-end test mixes both APIs).

use serde_json::{json, Value};
use vmsd::model::UserType;
use vmsd::views::fmt_resource;

use crate::common::TestServer;
use crate::websocket::*;

async fn update(ws: &mut Ws, user_id: Value, user: Value) -> Value {
    call(
        ws,
        json!({"action": "user/update", "requestId": 7, "userId": user_id, "user": user}),
    )
    .await
}

async fn update_current(ws: &mut Ws, user: Value) -> Value {
    call(
        ws,
        json!({"action": "user/updateCurrent", "requestId": 9, "user": user}),
    )
    .await
}

async fn get_user(ws: &mut Ws, id: Value) -> Value {
    call(
        ws,
        json!({"action": "user/get", "requestId": 2, "userId": id}),
    )
    .await
}

/// `<DhUser>` of a stored account, as the socket must render it.
fn dh_user(s: &TestServer, id: u64, status: u8) -> Value {
    let a = s.app.store.account(id).unwrap().unwrap();
    json!({
        "id": a.id,
        "login": a.login,
        "role": if a.user_type == UserType::Admin { 0 } else { 1 },
        "status": status,
        "lastLogin": a.last_login.map(fmt_resource),
        "data": a.data,
        "introReviewed": a.intro_reviewed,
        "allDeviceTypesAvailable": true,
    })
}

#[tokio::test]
async fn get_current_renders_the_devicehive_user() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let mut ws = socket_with(&s, &token).await;
    let r = get_current(&mut ws).await;
    let a = s.app.store.account(alice.id).unwrap().unwrap();
    assert!(a.last_login.is_some());
    assert_eq!(
        r,
        json!({"action": "user/getCurrent", "requestId": 1, "status": "success",
               "current": {"id": alice.id, "login": "alice", "role": 1, "status": 0,
                           "lastLogin": fmt_resource(a.last_login.unwrap()),
                           "data": null, "introReviewed": false,
                           "allDeviceTypesAvailable": true}})
    );
    s.stop().await;
}

#[tokio::test]
async fn user_get_is_for_administrators() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let alice_token = s.login("alice", "alice-password").await;
    let mut user_ws = socket_with(&s, &alice_token).await;
    assert_eq!(
        get_user(&mut user_ws, json!(alice.id)).await,
        error("user/get", json!(2), 403, "Access is denied")
    );

    let mut ws = admin_socket(&s).await;
    let expected = json!({"action": "user/get", "requestId": 2, "status": "success",
                          "user": dh_user(&s, alice.id, 0)});
    assert_eq!(get_user(&mut ws, json!(alice.id)).await, expected);
    assert_eq!(
        get_user(&mut ws, json!(alice.id.to_string())).await,
        expected
    );
    let me = get_user(&mut ws, json!("current")).await;
    assert_eq!(me["user"]["login"], "admin");
    assert_eq!(me["user"]["role"], 0);
    assert_eq!(
        get_user(&mut ws, json!(999999)).await,
        error("user/get", json!(2), 404, "User with id = 999999 not found")
    );
    assert_eq!(
        get_user(&mut ws, Value::Null).await,
        error("user/get", json!(2), 400, "User id is wrong or empty")
    );
    s.stop().await;
}

#[tokio::test]
async fn an_admin_updates_every_field_and_it_is_audited_by_name_only() {
    let s = TestServer::start().await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    let bob_token = s.login("bob", "bob-password").await;
    let mut ws = admin_socket(&s).await;
    let r = update(
        &mut ws,
        json!(bob.id),
        json!({"login": "  robert ", "password": "new-bob-password", "status": 0,
               "role": 1, "data": {"secret-value": "s3cr3t"}, "introReviewed": true}),
    )
    .await;
    assert_eq!(r, success("user/update", json!(7)));

    let r = get_user(&mut ws, json!(bob.id)).await;
    assert_eq!(
        r["user"],
        json!({"id": bob.id, "login": "robert", "role": 1, "status": 0,
               "lastLogin": r["user"]["lastLogin"], "data": {"secret-value": "s3cr3t"},
               "introReviewed": true, "allDeviceTypesAvailable": true})
    );
    // New login and password at REST; the old ones fail; bob's session was revoked.
    assert_eq!(s.try_login("bob", "bob-password", &[]).await.status, 422);
    assert_eq!(s.try_login("robert", "bob-password", &[]).await.status, 422);
    s.login("robert", "new-bob-password").await;
    assert_eq!(s.self_status(&bob_token).await, 401);

    let entries = events(&s, bob.id);
    let entry = entries
        .iter()
        .find(|e| e.action == "ws_user_update")
        .unwrap();
    assert_eq!(
        entry.fields,
        ["login", "password", "data", "intro_reviewed"]
    );
    assert_eq!(entry.actor_id, Some(1));
    assert!(entries.iter().any(|e| e.action == "session_revoked"));
    for e in &entries {
        let text = serde_json::to_string(&vmsd::views::audit_entry_view(e)).unwrap();
        for secret in ["new-bob-password", "s3cr3t", "$argon2"] {
            assert!(!text.contains(secret), "audit leaks {secret}: {text}");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn a_client_changes_only_its_own_password_data_and_intro() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let other = s.create_account("other", "other-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let mut ws = socket_with(&s, &token).await;

    // Seed 003's client examples.
    let r = update_current(
        &mut ws,
        json!({"password": "devicehive", "data": {"theme": "dark"}}),
    )
    .await;
    assert_eq!(r, success("user/updateCurrent", json!(9)));
    // Its own login, role and status, unchanged, are ignored (the DeviceHive client's
    // `User.save()` always sends role and status); the rest of the frame applies.
    let r = update_current(
        &mut ws,
        json!({"login": " alice ", "role": 1, "status": "0", "data": {"theme": "light"}}),
    )
    .await;
    assert_eq!(r, success("user/updateCurrent", json!(9)));
    assert_eq!(
        s.app.store.account(alice.id).unwrap().unwrap().data,
        Some(json!({"theme": "light"}))
    );
    let r = update_current(&mut ws, json!({"data": {"theme": "dark"}})).await;
    assert_eq!(r, success("user/updateCurrent", json!(9)));
    // A different one is refused, and nothing of the frame applies.
    for user in [
        json!({"role": 0}),
        json!({"login": "alice2"}),
        json!({"login": "Alice"}),
        json!({"status": 2}),
        json!({"status": 1, "data": {}}),
        json!({"role": 7}),
        json!({"role": 1, "status": 0, "login": "alice2", "data": {}}),
    ] {
        assert_eq!(
            update_current(&mut ws, user).await,
            error(
                "user/updateCurrent",
                json!(9),
                403,
                "Admin permissions required for this action"
            )
        );
    }
    for target in [
        json!(other.id),
        json!(other.id.to_string()),
        json!(999999),
        json!(-1),
    ] {
        assert_eq!(
            update(&mut ws, target, json!({"data": {}})).await,
            error("user/update", json!(7), 403, "Access is denied")
        );
    }
    assert_eq!(
        update(&mut ws, json!(other.id), json!({"status": 2})).await["error"],
        "Access is denied"
    );
    // Its own id works in every spelling; `null` for a field means "not sent".
    for target in [
        json!(alice.id),
        json!(alice.id.to_string()),
        json!("current"),
    ] {
        assert_eq!(
            update(
                &mut ws,
                target,
                json!({"introReviewed": true, "login": null})
            )
            .await,
            success("user/update", json!(7))
        );
    }
    let me = get_current(&mut ws).await;
    assert_eq!(me["current"]["introReviewed"], true);
    assert_eq!(me["current"]["data"], json!({"theme": "dark"}));
    assert_eq!(me["current"]["login"], "alice");
    s.login("alice", "devicehive").await;
    let untouched = s.app.store.account(other.id).unwrap().unwrap();
    assert_eq!((untouched.data, untouched.status), (None, 0));

    // An account that may not change its password cannot do it here either.
    s.edit_account(alice.id, |a| a.can_update_password = false);
    assert_eq!(
        update_current(&mut ws, json!({"password": "another-password"})).await,
        error(
            "user/updateCurrent",
            json!(9),
            403,
            "This account is not allowed to change its password"
        )
    );
    s.stop().await;
}

#[tokio::test]
async fn data_is_kept_when_omitted_cleared_by_null_and_must_be_a_small_object() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let mut ws = socket_with(&s, &token).await;
    let data = |s: &TestServer| s.app.store.account(alice.id).unwrap().unwrap().data;

    update_current(&mut ws, json!({"data": {"k": "v"}})).await;
    assert_eq!(data(&s), Some(json!({"k": "v"})));
    assert_eq!(
        update_current(&mut ws, json!({"introReviewed": true})).await["status"],
        "success"
    );
    assert_eq!(data(&s), Some(json!({"k": "v"})), "omitted data is kept");
    for bad in [json!([1, 2]), json!("text"), json!(5), json!(true)] {
        assert_eq!(
            update_current(&mut ws, json!({"data": bad})).await,
            error(
                "user/updateCurrent",
                json!(9),
                400,
                "User data must be a JSON object or null"
            )
        );
    }
    // 64 KiB serialized is the limit: `{"k":"…"}` is 8 bytes around the string.
    let fits = json!({"k": "x".repeat(64 * 1024 - 8)});
    assert_eq!(serde_json::to_vec(&fits).unwrap().len(), 64 * 1024);
    assert_eq!(
        update_current(&mut ws, json!({"data": fits})).await["status"],
        "success"
    );
    let over = json!({"k": "x".repeat(64 * 1024 - 7)});
    assert_eq!(
        update_current(&mut ws, json!({"data": over})).await,
        error(
            "user/updateCurrent",
            json!(9),
            400,
            "User data must not be larger than 65536 bytes"
        )
    );
    assert_eq!(data(&s), Some(fits));
    assert_eq!(
        update_current(&mut ws, json!({"data": null})).await["status"],
        "success"
    );
    assert_eq!(data(&s), None);
    assert_eq!(get_current(&mut ws).await["current"]["data"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn update_validation_errors_change_nothing() {
    let s = TestServer::start().await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    s.create_account("Alice", "alice-password", UserType::User);
    let mut ws = admin_socket(&s).await;
    let before = s.app.store.account(bob.id).unwrap().unwrap();
    let cases = [
        (
            json!({"login": "ALICE", "data": {"x": 1}}),
            403,
            "User with such login already exists. Please, select another one",
        ),
        (
            json!({"password": "short", "data": {"x": 1}}),
            400,
            "Password can contain only from 8 to 128 symbols!",
        ),
        (
            json!({"password": "p".repeat(129)}),
            400,
            "Password can contain only from 8 to 128 symbols!",
        ),
        (
            json!({"role": 2, "data": {"x": 1}}),
            400,
            "User role must be 0 (administrator) or 1 (client)",
        ),
        (
            json!({"role": "admin"}),
            400,
            "User role must be 0 (administrator) or 1 (client)",
        ),
        (
            json!({"status": 3, "data": {"x": 1}}),
            400,
            "User status must be 0 (active), 1 (locked out) or 2 (disabled)",
        ),
        (
            json!({"status": -1}),
            400,
            "User status must be 0 (active), 1 (locked out) or 2 (disabled)",
        ),
        (
            json!({"login": ""}),
            400,
            "Field login cannot be empty. The length of login should not be more than 128 symbols.",
        ),
        (
            json!({"login": "l".repeat(129)}),
            400,
            "Field login cannot be empty. The length of login should not be more than 128 symbols.",
        ),
        (
            json!({"introReviewed": "yes"}),
            400,
            "Field introReviewed must be true or false",
        ),
    ];
    for (user, code, text) in cases {
        assert_eq!(
            update(&mut ws, json!(bob.id), user.clone()).await,
            error("user/update", json!(7), code, text),
            "{user}"
        );
    }
    let r = call(
        &mut ws,
        json!({"action": "user/update", "requestId": 7, "userId": bob.id}),
    )
    .await;
    assert_eq!(r, error("user/update", json!(7), 400, "User is required"));
    let r = call(
        &mut ws,
        json!({"action": "user/update", "requestId": 7, "userId": bob.id, "user": [1]}),
    )
    .await;
    assert_eq!(
        r,
        error("user/update", json!(7), 400, "Malformed Json received.")
    );
    let r = call(
        &mut ws,
        json!({"action": "user/update", "requestId": 7, "user": {"data": {}}}),
    )
    .await;
    assert_eq!(
        r,
        error("user/update", json!(7), 400, "User id is wrong or empty")
    );
    assert_eq!(s.app.store.account(bob.id).unwrap().unwrap(), before);
    // Renaming to its own login in another case is not a duplicate.
    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"login": "BOB"})).await["status"],
        "success"
    );
    assert_eq!(s.app.store.account(bob.id).unwrap().unwrap().login, "BOB");
    s.stop().await;
}

#[tokio::test]
async fn password_length_follows_the_configured_minimum() {
    let s = TestServer::start_with(|c| c.auth.password_min_length = 10).await;
    let mut ws = admin_socket(&s).await;
    let r = update_current(&mut ws, json!({"password": "nine-char"})).await;
    assert_eq!(
        r,
        error(
            "user/updateCurrent",
            json!(9),
            400,
            "Password can contain only from 10 to 128 symbols!"
        )
    );
    assert_eq!(
        update_current(&mut ws, json!({"password": "ten-chars!"})).await["status"],
        "success"
    );
    s.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_404_with_devicehive_text() {
    let s = TestServer::start().await;
    let mut ws = admin_socket(&s).await;
    // Seed 003's own example.
    let r = call(
        &mut ws,
        json!({"action": "user/update", "requestId": 8, "userId": 999999,
               "user": {"data": {"userdata": 123}}}),
    )
    .await;
    assert_eq!(
        r,
        error(
            "user/update",
            json!(8),
            404,
            "User with id = 999999 not found"
        )
    );
    assert_eq!(
        update(&mut ws, json!(-1), json!({"data": {}})).await,
        error("user/update", json!(7), 404, "User with id = -1 not found")
    );
    assert_eq!(
        update(&mut ws, json!("42"), json!({"data": {}})).await,
        error("user/update", json!(7), 404, "User with id = 42 not found")
    );
    s.stop().await;
}

#[tokio::test]
async fn role_moves_accounts_between_admin_and_user_only() {
    let s = TestServer::start().await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    let sub = s.create_account("sub", "sub-password", UserType::Subuser);
    let temp = s.create_account("temp", "temp-password", UserType::Special);
    let bob_token = s.login("bob", "bob-password").await;
    let mut ws = admin_socket(&s).await;

    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"role": 0})).await,
        success("user/update", json!(7))
    );
    let promoted = s.app.store.account(bob.id).unwrap().unwrap();
    assert_eq!(promoted.user_type, UserType::Admin);
    assert_eq!(get_user(&mut ws, json!(bob.id)).await["user"]["role"], 0);
    // A new role ends the old sessions; the admin login now admits bob.
    assert_eq!(s.self_status(&bob_token).await, 401);
    assert_eq!(s.try_admin_login("bob", "bob-password").await.status, 200);
    assert_eq!(s.try_login("bob", "bob-password", &[]).await.status, 422);

    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"role": 1})).await["status"],
        "success"
    );
    let demoted = s.app.store.account(bob.id).unwrap().unwrap();
    assert_eq!(demoted.user_type, UserType::User);
    assert!(demoted.permissions.is_empty());
    s.login("bob", "bob-password").await;

    for id in [sub.id, temp.id] {
        assert_eq!(
            update(&mut ws, json!(id), json!({"role": 0})).await,
            error(
                "user/update",
                json!(7),
                400,
                "Only administrator and regular user accounts can change role; sub-users and temporary users cannot"
            )
        );
        // Their current role is not a change.
        assert_eq!(
            update(&mut ws, json!(id), json!({"role": 1})).await["status"],
            "success"
        );
    }

    // A user with sub-users stays a user.
    s.edit_account(sub.id, |a| a.parent_id = Some(bob.id));
    // Indexed under its parent as the admin API's create does.
    s.app
        .store
        .write_blocking(|tx| tx.link_subuser(bob.id, sub.id))
        .unwrap();
    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"role": 0})).await,
        error(
            "user/update",
            json!(7),
            400,
            "A user with sub-users cannot become an administrator"
        )
    );
    s.stop().await;
}

#[tokio::test]
async fn the_last_active_administrator_cannot_lock_itself_out() {
    let s = TestServer::start().await;
    let mut ws = admin_socket(&s).await;
    for user in [
        json!({"status": 2}),
        json!({"status": 1}),
        json!({"role": 1}),
    ] {
        assert_eq!(
            update_current(&mut ws, user).await,
            error(
                "user/updateCurrent",
                json!(9),
                403,
                "The last active administrator cannot be disabled, locked or demoted"
            )
        );
    }
    // With a second administrator it is allowed, and the socket's own session ends with it.
    s.create_account("admin2", "admin2-password", UserType::Admin);
    assert_eq!(
        update_current(&mut ws, json!({"status": 2})).await,
        success("user/updateCurrent", json!(9))
    );
    assert_eq!(
        get_current(&mut ws).await,
        error("user/getCurrent", json!(1), 401, "Unauthorized")
    );
    s.stop().await;
}

#[tokio::test]
async fn status_locks_disables_and_unlocks_like_rest() {
    let s = TestServer::start().await;
    let bob = s.create_account("bob", "bob-password", UserType::User);
    let mut ws = admin_socket(&s).await;

    // Seed 003's admin example, with the data it carries.
    let token = s.login("bob", "bob-password").await;
    let r = call(
        &mut ws,
        json!({"action": "user/update", "requestId": 7, "userId": bob.id,
               "user": {"status": 2, "data": {"k": "v"}}}),
    )
    .await;
    assert_eq!(r, success("user/update", json!(7)));
    assert_eq!(s.self_status(&token).await, 401);
    let disabled = s.try_login("bob", "bob-password", &[]).await;
    crate::common::assert_field_error(&disabled, "login", &["This account is disabled."]);
    assert_eq!(get_user(&mut ws, json!(bob.id)).await["user"]["status"], 2);

    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"status": 1})).await["status"],
        "success"
    );
    assert_eq!(s.try_login("bob", "bob-password", &[]).await.status, 429);
    assert_eq!(get_user(&mut ws, json!(bob.id)).await["user"]["status"], 1);

    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"status": 0})).await["status"],
        "success"
    );
    let token = s.login("bob", "bob-password").await;
    assert_eq!(s.self_status(&token).await, 200);

    // An automatic lockout shows as status 1 and an admin's status 0 lifts it.
    for _ in 0..5 {
        s.try_login("bob", "wrong-password", &[]).await;
    }
    assert_eq!(s.try_login("bob", "bob-password", &[]).await.status, 429);
    assert_eq!(
        get_user(&mut ws, json!(bob.id)).await["user"],
        dh_user(&s, bob.id, 1)
    );
    assert_eq!(s.app.store.account(bob.id).unwrap().unwrap().status, 0);
    // Sessions open before the lockout keep working (SPEC §3).
    assert_eq!(s.self_status(&token).await, 200);
    assert_eq!(
        update(&mut ws, json!(bob.id), json!({"status": 0})).await["status"],
        "success"
    );
    assert_eq!(get_user(&mut ws, json!(bob.id)).await["user"]["status"], 0);
    s.login("bob", "bob-password").await;
    let unlock = events(&s, bob.id)
        .into_iter()
        .find(|e| e.action == "ws_user_update")
        .unwrap();
    assert_eq!(unlock.fields, ["status"]);
    s.stop().await;
}

#[tokio::test]
async fn end_to_end_socket_and_rest_act_on_the_same_accounts() {
    let s = TestServer::start().await;
    let alice = s.create_account("alice", "alice-password", UserType::User);

    // Socket → REST: a password change over the socket.
    let rest_1 = s.login("alice", "alice-password").await;
    let rest_2 = s.login("alice", "alice-password").await;
    let mut ws = connect(&s).await;
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 1, "login": "alice", "password": "alice-password"}),
    )
    .await;
    let ws_token = r["accessToken"].as_str().unwrap().to_owned();
    call(
        &mut ws,
        json!({"action": "authenticate", "requestId": 2, "token": ws_token}),
    )
    .await;
    assert_eq!(
        update_current(&mut ws, json!({"password": "changed-over-ws"})).await,
        success("user/updateCurrent", json!(9))
    );
    assert_eq!(s.self_status(&rest_1).await, 401);
    assert_eq!(s.self_status(&rest_2).await, 401);
    assert_eq!(
        s.self_status(&ws_token).await,
        200,
        "the socket's own session stays"
    );
    assert_eq!(get_current(&mut ws).await["status"], "success");
    crate::common::assert_field_error(
        &s.try_login("alice", "alice-password", &[]).await,
        "login",
        &["These credentials do not match our records."],
    );
    let rest_3 = s.login("alice", "changed-over-ws").await;
    let me = s.get("/api/v1/users/self", &rest_3).await;
    assert_eq!(me.body["id"], alice.id);

    // REST → socket: a password change at REST revokes the socket's session.
    let r = s
        .call(
            "PUT",
            "/api/v1/users/self",
            Some(&rest_3),
            Some(
                json!({"password": "changed-at-rest", "password_confirmation": "changed-at-rest",
                        "current_password": "changed-over-ws"}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        get_current(&mut ws).await,
        error("user/getCurrent", json!(1), 401, "Unauthorized")
    );
    // The socket's token action sees the REST password.
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 3, "login": "alice", "password": "changed-at-rest"}),
    )
    .await;
    assert_eq!(r["status"], "success");

    // An admin disabling alice over one socket: her REST token and her other socket get 401.
    let rest_4 = s.login("alice", "changed-at-rest").await;
    let mut alice_ws = socket_with(&s, &rest_4).await;
    let mut admin_ws = admin_socket(&s).await;
    let before = get_user(&mut admin_ws, json!(alice.id)).await;
    assert_eq!(before["user"]["status"], 0);
    assert_eq!(
        update(&mut admin_ws, json!(alice.id), json!({"status": 2})).await,
        success("user/update", json!(7))
    );
    assert_eq!(s.self_status(&rest_4).await, 401);
    assert_eq!(
        get_current(&mut alice_ws).await,
        error("user/getCurrent", json!(1), 401, "Unauthorized")
    );
    // And REST's view agrees with the socket's: the admin API no longer logs her in.
    crate::common::assert_field_error(
        &s.try_login("alice", "changed-at-rest", &[]).await,
        "login",
        &["This account is disabled."],
    );
    assert_eq!(
        get_user(&mut admin_ws, json!(alice.id)).await["user"],
        dh_user(&s, alice.id, 2)
    );
    s.stop().await;
}
