//! One socket's actions (SPEC §6): `server/info`, `token`, `token/refresh`, `authenticate`,
//! `user/getCurrent`, `user/get`, `user/list`, `user/insert`, `user/update`,
//! `user/updateCurrent` and `user/delete`. The accounts, sessions, lockouts and audit log are
//! the REST API's own (`login`, `accounts`); a socket's token is checked again before every
//! action that needs one.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use super::list::ListQuery;
use super::patch::{parse_patch, parse_user_id, present, small_int, UserId};
use super::protocol::{
    account_failure, action_text, delete_failure, login_failure, malformed, msg_not_found,
    msg_password_length, payload, render, Failure, Outcome, API_VERSION, MAX_PASSWORD_CHARS,
    MSG_ADMIN_REQUIRED, MSG_INVALID_CREDENTIALS, MSG_LOGIN_REQUIRED, MSG_MALFORMED,
    MSG_ROLE_REQUIRED, MSG_SOCKETS_PER_ACCOUNT, MSG_USER_REQUIRED,
};
use crate::accounts::{self, AccountChange, Actor, NewAccountRequest};
use crate::app::App;
use crate::auth::{self, AuthError, Caller, ClientMeta};
use crate::login::{self, LoginKind};
use crate::model::{Account, UserType, STATUS_ACTIVE};
use crate::sockets::AccountSlot;
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
            Some("token/refresh") => self.refresh(&request).await,
            Some("authenticate") => self.authenticate(&request),
            Some("user/getCurrent") => self.get_current(),
            Some("user/get") => self.get_user(&request),
            Some("user/list") => self.list_users(&request),
            Some("user/insert") => self.insert_user(&request).await,
            Some("user/delete") => self.delete_user(&request).await,
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
        let mut reply = payload("accessToken", json!(login.token));
        if let Some(refresh_token) = login.refresh_token {
            reply.insert("refreshToken".into(), json!(refresh_token));
        }
        Ok(reply)
    }

    /// `token/refresh`: a new access token for the refresh token's session, and the same
    /// refresh token back. Like `token`, it leaves the socket as it was.
    async fn refresh(&self, request: &Map<String, Value>) -> Outcome {
        let refresh_token = token_field(request, "refreshToken")?;
        let refreshed = login::refresh(&self.app, refresh_token)
            .await
            .map_err(login_failure)?;
        tracing::debug!(user_id = refreshed.account_id, "WebSocket token refreshed");
        let mut reply = payload("accessToken", json!(refreshed.token));
        reply.insert("refreshToken".into(), json!(refresh_token));
        Ok(reply)
    }

    fn authenticate(&mut self, request: &Map<String, Value>) -> Outcome {
        let token = token_field(request, "token")?;
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
                    .try_bind(account_id, self.app.config.limits.ws_sockets_per_account);
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

    /// The socket's caller when it is an administrator.
    fn admin(&mut self) -> Result<Caller, Failure> {
        let caller = self.caller()?;
        if caller.is_admin() {
            Ok(caller)
        } else {
            Err(Failure::denied())
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
        let caller = self.admin()?;
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

    /// `user` without the `login`, `role` and `status` that equal the account's displayed
    /// ones; any other value of them → 403.
    fn without_own_values(
        &self,
        user: &Map<String, Value>,
        account: &Account,
    ) -> Result<Map<String, Value>, Failure> {
        let shown = self.view(account);
        let same = |key: &str| -> bool {
            let given = user.get(key);
            match key {
                "login" => given.and_then(Value::as_str).map(str::trim) == shown[key].as_str(),
                _ => small_int(given, u8::MAX, "")
                    .ok()
                    .flatten()
                    .is_some_and(|n| Some(u64::from(n)) == shown[key].as_u64()),
            }
        };
        let mut rest = user.clone();
        for key in ["login", "role", "status"] {
            if present(user, key) {
                if !same(key) {
                    return Err(Failure::new(403, MSG_ADMIN_REQUIRED));
                }
                rest.remove(key);
            }
        }
        Ok(rest)
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
        // A non-admin may send its own login, role and status unchanged (the DeviceHive
        // client's `User.save()` always sends role and status); they are then ignored.
        let own_values;
        let user = if admin {
            user
        } else {
            own_values = self.without_own_values(user, &caller.account)?;
            &own_values
        };
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

    /// `user/list`: DeviceHive's filters, sorting and paging over every account, as
    /// displayed `<DhUser>`s.
    fn list_users(&mut self, request: &Map<String, Value>) -> Outcome {
        self.admin()?;
        let query = ListQuery::parse(request)?;
        // Filtered and sorted on views without `data` (up to 64 KiB an account); only the
        // page is rendered whole.
        let mut users = Vec::new();
        for account in self.app.store.accounts() {
            let mut account = account?;
            let data = account.data.take();
            let key = self.view(&account);
            account.data = data;
            users.push((key, account));
        }
        let page = query.select(users).iter().map(|a| self.view(a)).collect();
        Ok(payload("users", Value::Array(page)))
    }

    /// `user/insert`: a new `admin` (role 0) or `user` (role 1), created and audited like its
    /// REST twins (`POST /api/admin/v1/admins`, `POST /api/admin/v1/users`).
    async fn insert_user(&mut self, request: &Map<String, Value>) -> Outcome {
        let caller = self.admin()?;
        let user = match request.get("user") {
            None | Some(Value::Null) => return Err(Failure::new(400, MSG_USER_REQUIRED)),
            Some(Value::Object(user)) => user,
            Some(_) => return Err(Failure::new(400, MSG_MALFORMED)),
        };
        let min = self
            .app
            .config
            .auth
            .password_min_length
            .min(MAX_PASSWORD_CHARS);
        if !present(user, "login") {
            return Err(Failure::new(400, MSG_LOGIN_REQUIRED));
        }
        let patch = parse_patch(user, min)?;
        let (Some(login), Some(password)) = (patch.login, patch.password) else {
            // An absent or empty password: `parse_patch` checked every other one.
            return Err(Failure::new(400, msg_password_length(min)));
        };
        let user_type = match patch.role {
            Some(0) => UserType::Admin,
            Some(_) => UserType::User,
            None => return Err(Failure::new(400, MSG_ROLE_REQUIRED)),
        };
        let new = NewAccountRequest {
            status: patch.status.unwrap_or(STATUS_ACTIVE),
            data: patch.data.flatten(),
            intro_reviewed: patch.intro_reviewed.unwrap_or(false),
            ..NewAccountRequest::new(user_type, login.clone(), login, password)
        };
        let account = accounts::create(&self.app, Some(caller.account.id), &new)
            .await
            .map_err(|e| account_failure(e, 0))?;
        tracing::info!(
            actor_id = caller.account.id,
            user_id = account.id,
            "account {} created over WebSocket",
            account.id
        );
        Ok(payload("user", self.view(&account)))
    }

    /// `user/delete`: any account, the caller's own included, with the cascade and audit of
    /// the REST deletes; never the last active administrator.
    async fn delete_user(&mut self, request: &Map<String, Value>) -> Outcome {
        let caller = self.admin()?;
        let own = caller.account.id;
        let id = match parse_user_id(request.get("userId"))? {
            UserId::Current => own,
            UserId::Id(id) => id,
            UserId::Negative(n) => return Err(Failure::new(404, msg_not_found(n))),
        };
        accounts::delete(&self.app, Some(own), id, |_| true)
            .await
            .map_err(|e| delete_failure(e, id))?;
        tracing::info!(
            actor_id = own,
            user_id = id,
            "account {id} deleted over WebSocket"
        );
        Ok(Map::new())
    }
}

/// A token field (`authenticate`'s `token`, `token/refresh`'s `refreshToken`): missing or
/// empty → 401 `Unauthorized`, not a string → 401 `Invalid credentials`.
fn token_field<'a>(request: &'a Map<String, Value>, key: &str) -> Result<&'a str, Failure> {
    match request.get(key) {
        None | Some(Value::Null) => Err(Failure::unauthorized()),
        Some(Value::String(s)) if s.trim().is_empty() => Err(Failure::unauthorized()),
        Some(Value::String(s)) => Ok(s.trim()),
        Some(_) => Err(Failure::new(401, MSG_INVALID_CREDENTIALS)),
    }
}
