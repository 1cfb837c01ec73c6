//! One socket's actions (SPEC §6): `server/info`, `token`, `authenticate`, `user/getCurrent`,
//! `user/get`, `user/update` and `user/updateCurrent`. The accounts, sessions, lockouts and
//! audit log are the REST API's own (`login`, `accounts`); a socket's token is checked again
//! before every action that needs one.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use super::patch::{parse_patch, parse_user_id, present, UserId};
use super::protocol::{
    account_failure, action_text, login_failure, malformed, msg_not_found, payload, render,
    Failure, Outcome, API_VERSION, MSG_ADMIN_REQUIRED, MSG_INVALID_CREDENTIALS, MSG_MALFORMED,
    MSG_SOCKETS_PER_ACCOUNT, MSG_USER_REQUIRED,
};
use crate::accounts::{self, AccountChange, Actor};
use crate::app::App;
use crate::auth::{self, AuthError, Caller, ClientMeta};
use crate::login::{self, LoginKind};
use crate::model::Account;
use crate::sockets::{AccountSlot, MAX_SOCKETS_PER_ACCOUNT};
use crate::views::dh_user_view;

/// A socket authenticated as one account: its token (checked again before each action) and
/// its place in that account's socket cap.
struct Bound {
    token: String,
    slot: AccountSlot,
}

/// One socket's state between frames.
pub struct SocketSession {
    app: Arc<App>,
    meta: ClientMeta,
    rest_url: String,
    bound: Option<Bound>,
}

impl SocketSession {
    pub fn new(app: Arc<App>, meta: ClientMeta, rest_url: String) -> SocketSession {
        SocketSession {
            app,
            meta,
            rest_url,
            bound: None,
        }
    }

    /// One text frame in, its reply out. Never fails: every problem is an error reply.
    pub async fn handle(&mut self, text: &str) -> Value {
        let request = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => return malformed(),
        };
        let action = request.get("action").cloned().unwrap_or(Value::Null);
        let request_id = request.get("requestId").cloned().unwrap_or(Value::Null);
        let outcome = match action.as_str() {
            Some("server/info") => Ok(self.server_info()),
            Some("token") => self.token(&request).await,
            Some("authenticate") => self.authenticate(&request),
            Some("user/getCurrent") => self.get_current(),
            Some("user/get") => self.get_user(&request),
            Some("user/update") => self.update_user(&request, request.get("userId")).await,
            Some("user/updateCurrent") => self.update_user(&request, Some(&json!("current"))).await,
            _ => Err(Failure::new(
                400,
                format!("Illegal argument: {}", action_text(&action)),
            )),
        };
        if let Err(f) = &outcome {
            tracing::debug!(
                action = %action_text(&action).chars().take(64).collect::<String>(),
                user_id = self.bound.as_ref().map(|b| b.slot.account_id()),
                code = f.code,
                "WebSocket action refused"
            );
        }
        render(action, request_id, outcome)
    }

    fn server_info(&self) -> Map<String, Value> {
        let timestamp = OffsetDateTime::now_utc()
            .format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
            ))
            .unwrap_or_default();
        payload(
            "info",
            json!({
                "apiVersion": API_VERSION,
                "serverTimestamp": timestamp,
                "restServerUrl": self.rest_url,
                "serverVersion": env!("CARGO_PKG_VERSION"),
            }),
        )
    }

    /// `token`: SPEC §3's login for an account of any type. Like DeviceHive's, it issues a
    /// token and leaves the socket as it was; `authenticate` binds a token to the socket.
    async fn token(&self, request: &Map<String, Value>) -> Outcome {
        let login = login::login(&self.app, request, LoginKind::Any, &self.meta)
            .await
            .map_err(login_failure)?;
        tracing::debug!(user_id = login.account.id, "WebSocket token issued");
        Ok(payload("accessToken", json!(login.token)))
    }

    fn authenticate(&mut self, request: &Map<String, Value>) -> Outcome {
        let token = match request.get("token") {
            None | Some(Value::Null) => return Err(Failure::unauthorized()),
            Some(Value::String(s)) if s.trim().is_empty() => return Err(Failure::unauthorized()),
            Some(Value::String(s)) => s.trim(),
            Some(_) => return Err(Failure::new(401, MSG_INVALID_CREDENTIALS)),
        };
        let caller = match auth::authenticate_token(&self.app, token) {
            Ok(caller) => caller,
            Err(AuthError::Unauthenticated) => {
                return Err(Failure::new(401, MSG_INVALID_CREDENTIALS))
            }
            Err(AuthError::Store(e)) => return Err(e.into()),
        };
        let account_id = caller.account.id;
        let slot = match self.bound.take() {
            Some(b) if b.slot.account_id() == account_id => b.slot,
            previous => {
                let slot = self
                    .app
                    .sockets
                    .try_bind(account_id, MAX_SOCKETS_PER_ACCOUNT);
                match slot {
                    Some(slot) => slot,
                    None => {
                        self.bound = previous;
                        tracing::warn!(user_id = account_id, "WebSocket cap per account reached");
                        return Err(Failure::new(429, MSG_SOCKETS_PER_ACCOUNT));
                    }
                }
            }
        };
        self.bound = Some(Bound {
            token: token.to_owned(),
            slot,
        });
        tracing::debug!(user_id = account_id, "WebSocket authenticated");
        Ok(Map::new())
    }

    /// The socket's caller, checked again now: a token that stopped working (revoked,
    /// expired, account disabled, locked or deleted) ends the socket's authentication.
    fn caller(&mut self) -> Result<Caller, Failure> {
        let Some(bound) = &self.bound else {
            return Err(Failure::unauthorized());
        };
        match auth::authenticate_token(&self.app, &bound.token) {
            Ok(caller) => Ok(caller),
            Err(AuthError::Unauthenticated) => {
                tracing::debug!(
                    user_id = bound.slot.account_id(),
                    "WebSocket token stopped working; socket unauthenticated"
                );
                self.bound = None;
                Err(Failure::unauthorized())
            }
            Err(AuthError::Store(e)) => Err(e.into()),
        }
    }

    fn view(&self, account: &Account) -> Value {
        dh_user_view(account, self.app.throttle.is_locked_out(account.id))
    }

    fn get_current(&mut self) -> Outcome {
        let caller = self.caller()?;
        Ok(payload("current", self.view(&caller.account)))
    }

    fn get_user(&mut self, request: &Map<String, Value>) -> Outcome {
        let caller = self.caller()?;
        if !caller.is_admin() {
            return Err(Failure::denied());
        }
        let id = match parse_user_id(request.get("userId"))? {
            UserId::Current => caller.account.id,
            UserId::Id(id) => id,
            UserId::Negative(n) => return Err(Failure::new(404, msg_not_found(n))),
        };
        let account = self
            .app
            .store
            .account(id)?
            .ok_or_else(|| Failure::new(404, msg_not_found(id)))?;
        Ok(payload("user", self.view(&account)))
    }

    async fn update_user(
        &mut self,
        request: &Map<String, Value>,
        user_id: Option<&Value>,
    ) -> Outcome {
        let caller = self.caller()?;
        let admin = caller.is_admin();
        let own = caller.account.id;
        let target_id = match parse_user_id(user_id)? {
            UserId::Current => own,
            UserId::Id(id) if admin || id == own => id,
            UserId::Negative(n) if admin => return Err(Failure::new(404, msg_not_found(n))),
            UserId::Id(_) | UserId::Negative(_) => return Err(Failure::denied()),
        };
        let user = match request.get("user") {
            None | Some(Value::Null) => return Err(Failure::new(400, MSG_USER_REQUIRED)),
            Some(Value::Object(user)) => user,
            Some(_) => return Err(Failure::new(400, MSG_MALFORMED)),
        };
        if !admin && ["login", "role", "status"].iter().any(|k| present(user, k)) {
            return Err(Failure::new(403, MSG_ADMIN_REQUIRED));
        }
        // DeviceHive answers an unknown id before it looks at the changes.
        let target = self
            .app
            .store
            .account(target_id)?
            .ok_or_else(|| Failure::new(404, msg_not_found(target_id)))?;
        let patch = parse_patch(user, self.app.config.auth.password_min_length)?;
        let change = AccountChange {
            login: patch.login,
            password: patch.password,
            // A role equal to the account's own is no change, whatever its type.
            role: patch.role.filter(|r| *r != target.user_type.role()),
            status: patch.status,
            data: patch.data,
            intro_reviewed: patch.intro_reviewed,
            ..AccountChange::default()
        };
        let applied = accounts::update(
            &self.app,
            Actor::of(&caller),
            "ws_user_update",
            target_id,
            |_| true,
            &change,
        )
        .await
        .map_err(|e| account_failure(e, target_id))?;
        if !applied.fields.is_empty() {
            tracing::info!(
                actor_id = own,
                user_id = target_id,
                fields = ?applied.fields,
                sessions_revoked = applied.revoked,
                "account {target_id} updated over WebSocket"
            );
        }
        Ok(Map::new())
    }
}
