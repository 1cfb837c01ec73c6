//! The ways a stream token stops working (SPEC §8): the moment its session ends (logout,
//! revocation, a password change from another session, expiry), its account stops being
//! active (disabled, locked by an admin, deleted, a temporary user past `expired_at`), or its
//! camera is detached or deleted. An automatic lockout after failed logins does not end it,
//! nor does a DeviceHive session's access token expiring while its refresh token lives (§6).

use serde_json::json;
use vmsd::store::SessionEnd;

use crate::video::{
    assert_allowed, assert_forbidden, assert_unauthenticated, attach, mediamtx_1_12, mediamtx_1_19,
    update_user, Video, PASSWORD,
};

/// A fresh session of `viewer` and its stream token for camera A, checked to work.
async fn working(v: &Video) -> (String, String) {
    let token = v.login().await;
    let stream = v.stream_token(&token, v.cam_a).await;
    assert_allowed(&v.read("site/door", &stream).await, "fresh token");
    (token, stream)
}

#[tokio::test]
async fn the_token_ends_with_its_session() {
    let v = Video::start().await;
    let s = &v.s;

    // Logout.
    let (token, stream) = working(&v).await;
    assert_eq!(
        s.call("POST", "/api/v1/logout", Some(&token), None)
            .await
            .status,
        200
    );
    assert_unauthenticated(&v.read("site/door", &stream).await, "after logout");

    // Revoked from another session.
    let (token, stream) = working(&v).await;
    let other = v.login().await;
    let id = s.get("/api/v1/users/self", &token).await.body["access_token_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .call(
            "POST",
            &format!("/api/v1/sessions/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_unauthenticated(&v.read("site/door", &stream).await, "after revocation");
    // The other session's tokens still work.
    let other_stream = v.stream_token(&other, v.cam_a).await;
    assert_allowed(
        &v.read("site/door", &other_stream).await,
        "the other session",
    );

    // A password change elsewhere ends every other session; the changing one keeps working.
    let (_, stream) = working(&v).await;
    let r = s
        .call(
            "PUT",
            "/api/v1/users/self",
            Some(&other),
            Some(
                json!({"password": "video-password-2", "password_confirmation": "video-password-2",
                        "current_password": PASSWORD}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_unauthenticated(
        &v.read("site/door", &stream).await,
        "after a password change elsewhere",
    );
    assert_allowed(
        &v.read("site/door", &other_stream).await,
        "the changing session",
    );

    // A session past its expiry (as the sweep would find it, before it runs).
    let other_hash = vmsd::auth::hash_token(&other);
    s.app
        .store
        .write_blocking(|tx| {
            let mut session = tx
                .remove_session(&other_hash, SessionEnd::Revoked)?
                .unwrap();
            session.expires_at = vmsd::model::now() - 1;
            tx.add_session(&other_hash, &session)
        })
        .unwrap();
    assert_unauthenticated(&v.read("site/door", &other_stream).await, "expired session");
    v.s.stop().await;
}

#[tokio::test]
async fn the_token_ends_when_the_account_stops_being_active() {
    let v = Video::start().await;
    let s = &v.s;
    for (status, what) in [(2u8, "disabled"), (1, "locked by an admin")] {
        let (_, stream) = working(&v).await;
        s.edit_account(v.user_id, |a| a.status = status);
        assert_unauthenticated(&v.read("site/door", &stream).await, what);
        s.edit_account(v.user_id, |a| a.status = 0);
    }

    // An automatic lockout (failed logins) blocks logins only: open streams keep working.
    let (_, stream) = working(&v).await;
    for _ in 0..6 {
        s.try_login("viewer", "wrong-password", &[]).await;
    }
    assert_eq!(s.try_login("viewer", PASSWORD, &[]).await.status, 429);
    assert_allowed(
        &v.read("site/door", &stream).await,
        "after an automatic lockout",
    );

    // Deleted.
    let r = s
        .call(
            "DELETE",
            &format!("/api/admin/v1/users/{}", v.user_id),
            Some(&v.admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_unauthenticated(&v.read("site/door", &stream).await, "deleted");
    v.s.stop().await;
}

#[tokio::test]
async fn a_temporary_users_token_ends_at_expired_at() {
    let v = Video::start().await;
    let s = &v.s;
    let r = s
        .call(
            "POST",
            "/api/admin/v1/special-users",
            Some(&v.admin),
            Some(
                json!({"name": "guest", "login": "guest", "password": PASSWORD,
                        "password_confirmation": PASSWORD, "cameras_to_attach": [v.cam_a],
                        "expired_at": "2099-01-01 00:00:00"}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let guest_id = r.body["id"].as_u64().unwrap();
    let token = s.login("guest", PASSWORD).await;
    let stream = v.stream_token(&token, v.cam_a).await;
    assert_allowed(&v.read("site/door", &stream).await, "before expiry");
    s.edit_account(guest_id, |a| a.expired_at = Some(vmsd::model::now() - 1));
    assert_unauthenticated(&v.read("site/door", &stream).await, "past expired_at");
    v.s.stop().await;
}

#[tokio::test]
async fn the_token_ends_when_its_camera_is_detached_or_deleted() {
    let v = Video::start().await;
    let s = &v.s;
    let token = v.login().await;
    let a = v.stream_token(&token, v.cam_a).await;
    let b = v.stream_token(&token, v.cam_b).await;
    let cam_b = format!("cam{}", v.cam_b);

    update_user(
        s,
        &v.admin,
        v.user_id,
        json!({"cameras_to_detach": [v.cam_a]}),
    )
    .await;
    assert_forbidden(&v.read("site/door", &a).await, "detached");
    assert_forbidden(
        &s.hook_post(&mediamtx_1_12("read", "site/door", &a, "", ""))
            .await,
        "detached, 1.12",
    );
    // The streams route no longer hands one out either.
    assert_eq!(
        s.get(&format!("/api/v1/cameras/{}/streams", v.cam_a), &token)
            .await
            .status,
        404
    );
    // Attached again, the same token works again: it is bound to session and camera only.
    attach(s, &v.admin, v.user_id, &[v.cam_a]).await;
    assert_allowed(&v.read("site/door", &a).await, "attached again");

    assert_allowed(&v.read(&cam_b, &b).await, "B before delete");
    let r = s
        .call(
            "DELETE",
            &format!("/api/admin/v1/cameras/{}", v.cam_b),
            Some(&v.admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_forbidden(&v.read(&cam_b, &b).await, "deleted camera");
    assert_forbidden(
        &s.hook_post(&mediamtx_1_19("read", &format!("{cam_b}_low"), &b, "", ""))
            .await,
        "deleted camera, low",
    );
    // A token for a camera the account never had names a camera it may not see.
    let c = s
        .app
        .stream_key
        .issue(&vmsd::stream_token::StreamClaims {
            access_token_id: s.get("/api/v1/users/self", &token).await.body["access_token_id"]
                .as_str()
                .unwrap()
                .to_owned(),
            camera_id: v.cam_c,
            expires_at: vmsd::model::now() + 60,
        })
        .unwrap();
    assert_forbidden(
        &v.read(&format!("cam{}", v.cam_c), &c).await,
        "never assigned",
    );
    v.s.stop().await;
}

#[tokio::test]
async fn a_devicehive_sessions_stream_token_follows_the_session_not_its_access_token() {
    let v = Video::start_with(|c| {
        c.auth.client_token_ttl = std::time::Duration::from_secs(1);
        c.auth.refresh_token_ttl = std::time::Duration::from_secs(3600);
    })
    .await;
    let s = &v.s;
    let r = crate::websocket::call(
        &mut crate::websocket::connect(s).await,
        json!({"action": "token", "login": "viewer", "password": PASSWORD}),
    )
    .await;
    let access = r["accessToken"].as_str().unwrap().to_owned();
    let refresh = r["refreshToken"].as_str().unwrap().to_owned();
    let stream = v.stream_token(&access, v.cam_a).await;
    assert_allowed(&v.read("site/door", &stream).await, "fresh token");
    // SPEC §6: the access token expired, the session waits to be refreshed and lives on.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(s.self_status(&access).await, 401);
    assert_allowed(
        &v.read("site/door", &stream).await,
        "access token expired, session alive",
    );
    let r = crate::websocket::call(
        &mut crate::websocket::connect(s).await,
        json!({"action": "token/refresh", "refreshToken": refresh}),
    )
    .await;
    let fresh = r["accessToken"].as_str().unwrap().to_owned();
    assert_allowed(&v.read("site/door", &stream).await, "after the refresh");
    // The session's end ends it.
    assert_eq!(
        s.call("POST", "/api/v1/logout", Some(&fresh), None)
            .await
            .status,
        200
    );
    assert_unauthenticated(&v.read("site/door", &stream).await, "after logout");
    v.s.stop().await;
}
