//! Logins, logouts and session management (SPEC §3): `POST /api/v1/token`,
//! `POST /api/v1/logout`, `GET /api/v1/sessions`, `POST /api/v1/sessions/{id}`,
//! `POST /api/admin/v1/auth/token`, `POST /api/admin/v1/auth/logout`.

use serde_json::{json, Value};

use super::{ok, status_ok, HandlerResult, Request};
use crate::app::App;
use crate::error::ApiError;
use crate::login::{self, LoginKind};
use crate::views::{client_user_view, fmt_resource, special_user_view};

pub async fn client_token(app: &App, req: &Request) -> HandlerResult {
    let body = req.json()?;
    let login = login::login(app, &body, LoginKind::Client, &req.client_meta()).await?;
    let pools = app.store.pools()?;
    let user = client_user_view(
        &login.account,
        Some(&login.session.access_token_id),
        &pools,
        &app.config.license.prefix,
    );
    ok(&json!({"user": user, "access_token": login.token}))
}

pub async fn admin_token(app: &App, req: &Request) -> HandlerResult {
    let body = req.json()?;
    let login = login::login(app, &body, LoginKind::Admin, &req.client_meta()).await?;
    let pools = app.store.pools()?;
    let user = special_user_view(&login.account, Some(&login.session.access_token_id), &pools);
    ok(&json!({
        "user": user,
        "expires_at": fmt_resource(login.session.expires_at),
        "token_type": "Bearer",
        "access_token": login.token,
    }))
}

/// `{"uuid": ...}` may come with the request; the token names the session either way.
pub async fn logout(app: &App, req: &Request) -> HandlerResult {
    let caller = req.caller(app)?;
    login::logout(app, &caller).await?;
    status_ok()
}

pub async fn admin_logout(app: &App, req: &Request) -> HandlerResult {
    let caller = req.admin(app)?;
    login::logout(app, &caller.0).await?;
    status_ok()
}

pub fn list(app: &App, req: &Request) -> HandlerResult {
    let caller = req.caller(app)?;
    let sessions: Vec<Value> = app
        .store
        .sessions_of(caller.account.id)?
        .iter()
        .map(|(hash, s)| login::session_view(app, hash, s, Some(&caller.token_hash)))
        .collect();
    ok(&Value::Array(sessions))
}

pub async fn revoke(app: &App, req: &Request) -> HandlerResult {
    let caller = req.caller(app)?;
    if !login::revoke_session(app, &caller, req.param("id")).await? {
        return Err(ApiError::NotFound);
    }
    status_ok()
}
