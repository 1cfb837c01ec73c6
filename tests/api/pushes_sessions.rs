//! SPEC §9's session endings, one test each: every reason on the exhaustive list pushes
//! `logout` on `private-token.{access_token_id}` and then closes the socket with 4009; its
//! own logout and an `X-UUID` replacement push nothing but still close with 4009. (The
//! offline `reset-password` runs while the daemon is stopped, so no socket is open to tell;
//! the directory sync's disable is tested in `directory.rs`.)

use std::time::Duration;

use serde_json::{json, Value};
use vmsd::model::{now, UserType};
use vmsd::push_protocol;

use crate::admin_support::{delete, expect, USERS};
use crate::common::TestServer;
use crate::pushes::{
    assert_event, assert_silent, auth, client, current_token_id, next, push_socket, send,
    subscribe, subscribed, Next, Push, CLIENT_PASSWORD,
};
use crate::websocket::{admin_socket, call as dh_call, connect as dh_connect};

/// `logout` on the session's token channel, then the 4009 close; nothing in between.
async fn assert_logout_then_closed(p: &mut Push, token_id: &str) {
    assert_event(
        next(&mut p.ws).await,
        &push_protocol::token_channel(token_id),
        "App\\Events\\TokenPush",
        json!({"subject": "logout", "data": {"type": "logout", "status": "ok", "data": {}}}),
    );
    assert_eq!(next(&mut p.ws).await, Next::Closed(4009));
}

async fn assert_closed_silently(p: &mut Push) {
    assert_eq!(next(&mut p.ws).await, Next::Closed(4009));
}

#[tokio::test]
async fn revoked_from_another_session() {
    let s = TestServer::start().await;
    let (id, token, token_id) = client(&s, "ria").await;
    let (_, other, _) = client(&s, "ria").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    // A socket the session authorized only for the user channel closes too, without logout.
    let mut user_only = push_socket(&s).await;
    subscribe(&s, &mut user_only, &token, &push_protocol::user_channel(id)).await;
    let r = s
        .call(
            "POST",
            &format!("/api/v1/sessions/{token_id}"),
            Some(&other),
            None,
        )
        .await;
    expect(&r, 200);
    assert_logout_then_closed(&mut p, &token_id).await;
    assert_closed_silently(&mut user_only).await;
}

#[tokio::test]
async fn evicted_at_the_session_limit() {
    let s = TestServer::start_with(|c| c.auth.sessions_limit = 1).await;
    let (id, token, token_id) = client(&s, "eve").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    let r = s
        .try_login_body(
            &json!({"login": "eve", "password": CLIENT_PASSWORD, "session_id": token_id}),
            &[],
        )
        .await;
    expect(&r, 200);
    assert_logout_then_closed(&mut p, &token_id).await;
}

#[tokio::test]
async fn ended_by_a_password_change_elsewhere() {
    let s = TestServer::start().await;
    let (id, token, token_id) = client(&s, "pat").await;
    let (_, other, other_id) = client(&s, "pat").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    let mut kept = subscribed(&s, id, &other, &other_id).await;
    let r = s
        .call(
            "PUT",
            "/api/v1/users/self",
            Some(&other),
            Some(
                json!({"password": "pat-new-password", "password_confirmation": "pat-new-password",
                        "current_password": CLIENT_PASSWORD}),
            ),
        )
        .await;
    expect(&r, 200);
    assert_logout_then_closed(&mut p, &token_id).await;
    // The session that changed it stays, and so does its socket.
    send(&mut kept.ws, json!({"event": "pusher:ping"})).await;
    assert_eq!(
        next(&mut kept.ws).await,
        Next::Frame(json!({"event": "pusher:pong", "data": {}}))
    );
}

async fn set_status_over_devicehive(s: &TestServer, id: u64, status: u8) {
    let mut dh = admin_socket(s).await;
    let r = dh_call(
        &mut dh,
        json!({"action": "user/update", "requestId": 1, "userId": id, "user": {"status": status}}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
}

#[tokio::test]
async fn its_account_disabled() {
    let s = TestServer::start().await;
    let (id, token, token_id) = client(&s, "dan").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    set_status_over_devicehive(&s, id, 2).await;
    assert_logout_then_closed(&mut p, &token_id).await;
}

#[tokio::test]
async fn its_account_locked_by_an_admin() {
    let s = TestServer::start().await;
    let (id, token, token_id) = client(&s, "lou").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    set_status_over_devicehive(&s, id, 1).await;
    assert_logout_then_closed(&mut p, &token_id).await;
}

#[tokio::test]
async fn its_account_deleted() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let (id, token, token_id) = client(&s, "del").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    expect(&delete(&s, &admin, &format!("{USERS}/{id}")).await, 200);
    assert_logout_then_closed(&mut p, &token_id).await;
}

#[tokio::test]
async fn its_ttl_ran_out() {
    let s = TestServer::start_with(|c| c.auth.client_token_ttl = Duration::from_secs(3)).await;
    let (id, token, token_id) = client(&s, "tim").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The sweep that removes it is what tells the device (every 30 s in the daemon).
    vmsd::housekeeping::pass(&s.app).await;
    assert_logout_then_closed(&mut p, &token_id).await;
}

#[tokio::test]
async fn its_refresh_token_ran_out() {
    let s = TestServer::start_with(|c| {
        c.auth.client_token_ttl = Duration::from_secs(1);
        c.auth.refresh_token_ttl = Duration::from_secs(3);
    })
    .await;
    let account = s.create_account("rita", CLIENT_PASSWORD, UserType::User);
    let r = dh_call(
        &mut dh_connect(&s).await,
        json!({"action": "token", "login": "rita", "password": CLIENT_PASSWORD}),
    )
    .await;
    let token = r["accessToken"].as_str().unwrap().to_owned();
    let token_id = current_token_id(&s, &token).await;
    let mut p = subscribed(&s, account.id, &token, &token_id).await;
    // Its access token expired, but a session with a refresh token lives on (SPEC §6): the
    // sweep leaves it and the device hears nothing.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    vmsd::housekeeping::pass(&s.app).await;
    assert_silent(&mut p, Duration::from_millis(300)).await;
    // Once the refresh token has run out too, the sweep ends it and tells the device.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    vmsd::housekeeping::pass(&s.app).await;
    assert_logout_then_closed(&mut p, &token_id).await;
}

#[tokio::test]
async fn a_temporary_user_past_expired_at() {
    let s = TestServer::start().await;
    let account = s.create_account("tmp", CLIENT_PASSWORD, UserType::Special);
    let token = s.login("tmp", CLIENT_PASSWORD).await;
    let token_id = current_token_id(&s, &token).await;
    let mut p = subscribed(&s, account.id, &token, &token_id).await;
    s.edit_account(account.id, |a| a.expired_at = Some(now() - 1));
    vmsd::housekeeping::pass(&s.app).await;
    assert_logout_then_closed(&mut p, &token_id).await;
}

#[tokio::test]
async fn its_own_logout_closes_without_an_event() {
    let s = TestServer::start().await;
    let (id, token, token_id) = client(&s, "olga").await;
    let mut p = subscribed(&s, id, &token, &token_id).await;
    expect(
        &s.call("POST", "/api/v1/logout", Some(&token), None).await,
        200,
    );
    assert_closed_silently(&mut p).await;
}

#[tokio::test]
async fn an_x_uuid_replacement_closes_without_an_event() {
    let s = TestServer::start().await;
    let account = s.create_account("xena", CLIENT_PASSWORD, UserType::User);
    let device = [("x-uuid", "device-1")];
    let token = s.try_login("xena", CLIENT_PASSWORD, &device).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_id = current_token_id(&s, &token).await;
    let mut p = subscribed(&s, account.id, &token, &token_id).await;
    let again = s.try_login("xena", CLIENT_PASSWORD, &device).await;
    expect(&again, 200);
    assert_closed_silently(&mut p).await;
}

#[tokio::test]
async fn an_authorization_by_a_session_that_ends_before_subscribing_still_closes() {
    let s = TestServer::start().await;
    let (id, token, _) = client(&s, "ivy").await;
    let mut p = push_socket(&s).await;
    let user = push_protocol::user_channel(id);
    let signed: Value = auth(&s, &token, &p.socket_id, &user).await;
    expect(
        &s.call("POST", "/api/v1/logout", Some(&token), None).await,
        200,
    );
    assert_closed_silently(&mut p).await;
    let _ = signed;
}
