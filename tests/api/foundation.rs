//! Smoke tests of the foundation: the server answers over TLS, logs a client in, and serves
//! the current user. The full rule-by-rule tests live in their own modules.

use serde_json::json;
use vmsd::model::UserType;

use crate::common::TestServer;

#[tokio::test]
async fn a_client_logs_in_and_changes_its_language() {
    let s = TestServer::start().await;
    s.create_account("alice", "alice-password", UserType::User);
    let token = s.login("alice", "alice-password").await;
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["login"], "alice");
    assert_eq!(me.body["language"], "en");
    let r = s
        .call(
            "PUT",
            "/api/v1/users/self",
            Some(&token),
            Some(json!({"language": "ru"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["language"], "ru");
    assert_eq!(
        s.get("/api/v1/users/self", &token).await.body["language"],
        "ru"
    );
    s.stop().await;
}
