//! What a socket's actions do (SPEC §6): the reply envelopes, `server/info`, `token`,
//! `authenticate`, `user/getCurrent`, `user/get`, `user/update` and `user/updateCurrent`, with
//! DeviceHive's error codes and texts. The accounts, sessions, lockouts and audit log are the
//! REST API's own; a socket's token is checked again before every action that needs one.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use super::registry::{AccountSlot, MAX_SOCKETS_PER_ACCOUNT};
use crate::auth::{self, Caller, ClientMeta, LoginKind};
use crate::error::{ApiError, FieldErrors};
use crate::model::{
    self, dh_user_view, now, Account, AuditEntry, UserType, STATUS_ACTIVE, STATUS_DISABLED,
    STATUS_LOCKED,
};
use crate::store::TxError;
use crate::validate;
use crate::App;

/// The DeviceHive API version whose WebSocket protocol this speaks.
pub const API_VERSION: &str = "3.5.0";

pub const MSG_MALFORMED: &str = "Malformed Json received.";
pub const MSG_UNAUTHORIZED: &str = "Unauthorized";
pub const MSG_INVALID_CREDENTIALS: &str = "Invalid credentials";
pub const MSG_LOCKED_OR_DISABLED: &str = "User is locked or disabled";
pub const MSG_BAD_LOGIN_REQUEST: &str = "Invalid or empty authorization request parameters";
pub const MSG_ADMIN_REQUIRED: &str = "Admin permissions required for this action";
pub const MSG_ACCESS_DENIED: &str = "Access is denied";
pub const MSG_LOGIN_TAKEN: &str = "User with such login already exists. Please, select another one";
pub const MSG_USER_REQUIRED: &str = "User is required";
pub const MSG_USER_ID: &str = "User id is wrong or empty";
pub const MSG_LOGIN_INVALID: &str =
    "Field login cannot be empty. The length of login should not be more than 128 symbols.";
pub const MSG_ROLE_INVALID: &str = "User role must be 0 (administrator) or 1 (client)";
pub const MSG_STATUS_INVALID: &str =
    "User status must be 0 (active), 1 (locked out) or 2 (disabled)";
pub const MSG_ROLE_FIXED: &str =
    "Only administrator and regular user accounts can change role; sub-users and temporary users cannot";
pub const MSG_HAS_SUBUSERS: &str = "A user with sub-users cannot become an administrator";
pub const MSG_LAST_ADMIN: &str =
    "The last active administrator cannot be disabled, locked or demoted";
pub const MSG_DATA_TYPE: &str = "User data must be a JSON object or null";
pub const MSG_INTRO_TYPE: &str = "Field introReviewed must be true or false";
pub const MSG_PASSWORD_FIXED: &str = "This account is not allowed to change its password";
pub const MSG_SOCKETS_PER_ACCOUNT: &str = "Too many WebSocket connections for this account";
pub const MSG_INTERNAL: &str = "Internal server error";

/// SPEC §1: `data` is at most 64 KiB serialized.
pub const MAX_DATA_BYTES: usize = 64 * 1024;

/// The longest password SPEC §1 allows.
const MAX_PASSWORD_CHARS: usize = 128;

fn msg_not_found(id: impl std::fmt::Display) -> String {
    format!("User with id = {id} not found")
}

fn msg_password_length(min: usize) -> String {
    format!("Password can contain only from {min} to {MAX_PASSWORD_CHARS} symbols!")
}

fn msg_data_too_big() -> String {
    format!("User data must not be larger than {MAX_DATA_BYTES} bytes")
}

/// An error reply: DeviceHive's HTTP-like `code`, its `error` text, and any extra keys.
#[derive(Debug)]
pub struct Failure {
    code: u16,
    error: String,
    extra: Map<String, Value>,
}

impl Failure {
    fn new(code: u16, error: impl Into<String>) -> Self {
        Failure {
            code,
            error: error.into(),
            extra: Map::new(),
        }
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    fn unauthorized() -> Self {
        Failure::new(401, MSG_UNAUTHORIZED)
    }

    fn denied() -> Self {
        Failure::new(403, MSG_ACCESS_DENIED)
    }
}

/// The one mapping from the daemon's errors to socket errors, for what no action renames.
impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unauthenticated => Failure::unauthorized(),
            ApiError::Forbidden => Failure::denied(),
            ApiError::NotFound => Failure::new(404, "Not found"),
            ApiError::LicenseExceeded => Failure::new(
                402,
                "Exceeded the license limit for the selected analytics case",
            ),
            ApiError::TooManyAttempts { retry_after } => Failure::new(429, "Too Many Attempts.")
                .with("retryAfter", json!(retry_after.max(1))),
            ApiError::Unavailable { retry_after } => Failure::new(503, "Service Unavailable.")
                .with("retryAfter", json!(retry_after.max(1))),
            ApiError::SessionLimit { sessions, limit } => Failure::new(
                419,
                "The number of sessions has reached the limit. End one of them to log in.",
            )
            .with("sessions", sessions)
            .with("sessions_limit", json!(limit)),
            ApiError::Internal(cause) => {
                tracing::error!(cause = %cause, "WebSocket action failed with a server error");
                Failure::new(500, MSG_INTERNAL)
            }
            ApiError::Validation(_)
            | ApiError::MethodNotAllowed(_)
            | ApiError::PayloadTooLarge
            | ApiError::UnsupportedMediaType => Failure::new(400, "Invalid request parameters"),
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::from(ApiError::from(e))
    }
}

type Outcome = Result<Map<String, Value>, Failure>;

fn payload(key: &str, value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    map
}

/// The reply to a frame that is not a JSON object: there is no action or requestId to echo.
pub fn malformed() -> Value {
    json!({"code": 400, "status": "error", "error": MSG_MALFORMED})
}

/// `{"action","requestId","status":"success",...payload}` or
/// `{"action","requestId","status":"error","code","error",...extra}`.
fn render(action: Value, request_id: Value, outcome: Outcome) -> Value {
    let mut reply = Map::new();
    reply.insert("action".into(), action);
    reply.insert("requestId".into(), request_id);
    let (status, rest) = match outcome {
        Ok(payload) => ("success", payload),
        Err(f) => {
            reply.insert("code".into(), json!(f.code));
            reply.insert("error".into(), json!(f.error));
            ("error", f.extra)
        }
    };
    reply.insert("status".into(), json!(status));
    for (k, v) in rest {
        reply.entry(k).or_insert(v);
    }
    Value::Object(reply)
}

/// How an action name reads inside `Illegal argument: ...`.
fn action_text(action: &Value) -> String {
    match action {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Which account a `userId` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserId {
    Current,
    Id(u64),
    /// A negative id: no account has it, but the 404 text repeats it.
    Negative(i64),
}

fn parse_user_id(value: Option<&Value>) -> Result<UserId, Failure> {
    let bad = || Failure::new(400, MSG_USER_ID);
    match value {
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("current") => Ok(UserId::Current),
        Some(v @ (Value::Number(_) | Value::String(_))) => {
            if let Some(id) = validate::parse_id(v) {
                return Ok(UserId::Id(id));
            }
            let negative = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            negative
                .filter(|n| *n < 0)
                .map(UserId::Negative)
                .ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// The changes a `user` object asks for, validated.
#[derive(Debug, Default, Clone, PartialEq)]
struct Patch {
    login: Option<String>,
    role: Option<u8>,
    status: Option<u8>,
    password: Option<String>,
    /// `Some(None)` clears the data.
    data: Option<Option<Value>>,
    intro_reviewed: Option<bool>,
}

/// Present and not `null`: DeviceHive treats a `null` field as not sent.
fn present(user: &Map<String, Value>, key: &str) -> bool {
    user.get(key).is_some_and(|v| !v.is_null())
}

fn small_int(value: Option<&Value>, max: u8, message: &str) -> Result<Option<u8>, Failure> {
    let parsed = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match parsed.and_then(|n| u8::try_from(n).ok()) {
        Some(n) if n <= max => Ok(Some(n)),
        _ => Err(Failure::new(400, message)),
    }
}

fn parse_patch(user: &Map<String, Value>, min_password: usize) -> Result<Patch, Failure> {
    let login = match user.get("login") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let mut errors = FieldErrors::new();
            validate::check_login(&mut errors, "login", s);
            if !errors.is_empty() {
                return Err(Failure::new(400, MSG_LOGIN_INVALID));
            }
            Some(s.trim().to_owned())
        }
        Some(_) => return Err(Failure::new(400, MSG_LOGIN_INVALID)),
    };
    let min = min_password.min(MAX_PASSWORD_CHARS);
    let password = match user.get("password") {
        None | Some(Value::Null) => None,
        // DeviceHive ignores an empty password rather than refusing it.
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min || n > MAX_PASSWORD_CHARS {
                return Err(Failure::new(400, msg_password_length(min)));
            }
            Some(s.clone())
        }
        Some(_) => return Err(Failure::new(400, msg_password_length(min))),
    };
    let role = small_int(user.get("role"), 1, MSG_ROLE_INVALID)?;
    let status = small_int(user.get("status"), 2, MSG_STATUS_INVALID)?;
    let data = match user.get("data") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v @ Value::Object(_)) => {
            let size = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
            if size > MAX_DATA_BYTES {
                return Err(Failure::new(400, msg_data_too_big()));
            }
            Some(Some(v.clone()))
        }
        Some(_) => return Err(Failure::new(400, MSG_DATA_TYPE)),
    };
    let intro_reviewed = match user.get("introReviewed") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(Failure::new(400, MSG_INTRO_TYPE)),
    };
    Ok(Patch {
        login,
        role,
        status,
        password,
        data,
        intro_reviewed,
    })
}

/// The decoding half of `user/update` on its own, without a socket or a store: the frame's
/// `userId` and `user` object, checked as `Session::update_user` checks them. Err is the
/// error reply's code and text. An entry point for `fuzz/fuzz_targets/ws_frame.rs`.
pub fn decode_user_update(
    request: &Map<String, Value>,
    min_password: usize,
) -> Result<(), (u16, String)> {
    let fail = |f: Failure| (f.code, f.error);
    parse_user_id(request.get("userId")).map_err(fail)?;
    match request.get("user") {
        Some(Value::Object(user)) => parse_patch(user, min_password).map(drop).map_err(fail),
        None | Some(Value::Null) => Err((400, MSG_USER_REQUIRED.to_owned())),
        Some(_) => Err((400, MSG_MALFORMED.to_owned())),
    }
}

/// What a committed `user/update` changed, for the log.
struct Applied {
    fields: Vec<String>,
    revoked: usize,
}

/// The `user/update` transaction: re-reads the account, applies `patch`, revokes what the
/// change ends, audits it. Returns `None` when nothing would change (nothing is written).
#[allow(clippy::too_many_arguments)]
fn apply_patch(
    app: &App,
    caller: &Caller,
    target_id: u64,
    patch: &Patch,
    password_hash: Option<&str>,
    clears_lockout: bool,
    audit_ids: (u64, u64),
) -> Result<Option<Applied>, ApiError> {
    let at = now();
    let update_entry = AuditEntry {
        at,
        ..AuditEntry::new(
            audit_ids.0,
            Some(caller.account.id),
            "ws_user_update",
            "account",
            Some(target_id),
            &[],
        )
    };
    let revoke_entry = AuditEntry {
        id: audit_ids.1,
        action: "session_revoked".into(),
        fields: vec!["session".into()],
        ..update_entry.clone()
    };
    app.store.transaction(|tx| {
        let mut account = tx.account(target_id)?.ok_or(ApiError::NotFound)?;
        let old_key = validate::login_key(&account.login);
        let mut fields: Vec<&'static str> = Vec::new();
        if let Some(login) = &patch.login {
            if *login != account.login {
                account.login = login.clone();
                fields.push("login");
            }
        }
        let mut role_changed = false;
        if let Some(role) = patch.role {
            if role != account.user_type.role() {
                match account.user_type {
                    UserType::Admin => {
                        account.user_type = UserType::User;
                        account.permissions.clear();
                    }
                    UserType::User => {
                        account.user_type = UserType::Admin;
                        account.permissions = model::admin_permissions();
                    }
                    UserType::Subuser | UserType::Special => {
                        return Err(TxError::Abort(ApiError::field("role", MSG_ROLE_FIXED)));
                    }
                }
                role_changed = true;
                fields.extend(["user_type", "permissions"]);
            }
        }
        if let Some(status) = patch.status {
            if status != account.status {
                account.status = status;
                fields.push("status");
            } else if clears_lockout {
                fields.push("status");
            }
        }
        if let Some(hash) = password_hash {
            account.password_hash = hash.to_owned();
            fields.push("password");
        }
        if let Some(data) = &patch.data {
            if *data != account.data {
                account.data = data.clone();
                fields.push("data");
            }
        }
        if let Some(intro) = patch.intro_reviewed {
            if intro != account.intro_reviewed {
                account.intro_reviewed = intro;
                fields.push("intro_reviewed");
            }
        }
        if fields.is_empty() {
            return Ok(None);
        }
        let disables = matches!(patch.status, Some(STATUS_LOCKED | STATUS_DISABLED));
        let mut revoked = 0;
        if disables || role_changed || password_hash.is_some() {
            // A new password or role ends the other sessions; the caller's own one stays
            // unless the account itself is being locked or disabled.
            let keep = (!disables && target_id == caller.account.id).then_some(&caller.token_hash);
            revoked = tx.revoke_sessions_of(target_id, keep)?;
        }
        account.updated_at = at;
        tx.put_account(&account, Some(&old_key), "login")?;
        let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        tx.audit(&AuditEntry {
            fields: fields.clone(),
            ..update_entry.clone()
        })?;
        if revoked > 0 {
            tx.audit(&revoke_entry)?;
        }
        Ok(Some(Applied { fields, revoked }))
    })
}

/// A socket authenticated as one account: its token (checked again before each action) and
/// its place in that account's socket cap.
struct Bound {
    token: String,
    slot: AccountSlot,
}

/// One socket's state between frames.
pub struct Session {
    app: Arc<App>,
    meta: ClientMeta,
    rest_url: String,
    bound: Option<Bound>,
}

impl Session {
    pub fn new(app: Arc<App>, meta: ClientMeta, rest_url: String) -> Session {
        Session {
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
        match auth::login(&self.app, request, LoginKind::Any, &self.meta).await {
            Ok(login) => {
                tracing::debug!(user_id = login.account.id, "WebSocket token issued");
                Ok(payload("accessToken", json!(login.token)))
            }
            Err(ApiError::Validation(errors)) => {
                let login = errors.messages("login");
                let has = |m: &str| login.iter().any(|x| x == m);
                if has(auth::MSG_BAD_CREDENTIALS) {
                    Err(Failure::new(401, MSG_INVALID_CREDENTIALS))
                } else if has(auth::MSG_DISABLED) || has(auth::MSG_EXPIRED) {
                    Err(Failure::new(401, MSG_LOCKED_OR_DISABLED))
                } else {
                    Err(Failure::new(400, MSG_BAD_LOGIN_REQUEST))
                }
            }
            Err(e) => Err(e.into()),
        }
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
            Err(ApiError::Unauthenticated) => {
                return Err(Failure::new(401, MSG_INVALID_CREDENTIALS))
            }
            Err(e) => return Err(e.into()),
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
            Err(ApiError::Unauthenticated) => {
                tracing::debug!(
                    user_id = bound.slot.account_id(),
                    "WebSocket token stopped working; socket unauthenticated"
                );
                self.bound = None;
                Err(Failure::unauthorized())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn view(&self, account: &Account) -> Value {
        dh_user_view(account, self.app.auth.is_locked_out(account.id))
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
        let not_found = || Failure::new(404, msg_not_found(target_id));
        // DeviceHive answers an unknown id before it looks at the changes.
        if self.app.store.account(target_id)?.is_none() {
            return Err(not_found());
        }
        let patch = parse_patch(user, self.app.config.auth.password_min_length)?;
        let app = self.app.clone();
        let _serialised = if patch.role.is_some() || patch.status.is_some() {
            Some(app.sockets.role_changes().lock().await)
        } else {
            None
        };
        let target = self.app.store.account(target_id)?.ok_or_else(not_found)?;
        if patch.password.is_some() && !admin && !caller.account.can_update_password {
            return Err(Failure::new(403, MSG_PASSWORD_FIXED));
        }
        self.check_role_and_status(&target, &patch)?;
        if let Some(login) = &patch.login {
            let holder = self
                .app
                .store
                .account_by_login(&validate::login_key(login))?;
            if holder.is_some_and(|a| a.id != target_id) {
                return Err(Failure::new(403, MSG_LOGIN_TAKEN));
            }
        }
        let password_hash = match &patch.password {
            Some(p) => Some(self.app.hasher.hash(p.clone()).await?),
            None => None,
        };
        let clears_lockout =
            patch.status == Some(STATUS_ACTIVE) && self.app.auth.is_locked_out(target_id);
        let audit_ids = (
            self.app.store.next_audit_id(),
            self.app.store.next_audit_id(),
        );
        let applied = apply_patch(
            &self.app,
            &caller,
            target_id,
            &patch,
            password_hash.as_deref(),
            clears_lockout,
            audit_ids,
        )
        .map_err(|e| match e {
            ApiError::NotFound => not_found(),
            ApiError::Validation(errors) if errors.has("role") => Failure::new(400, MSG_ROLE_FIXED),
            ApiError::Validation(errors) if errors.has("login") => {
                Failure::new(403, MSG_LOGIN_TAKEN)
            }
            other => other.into(),
        })?;
        if let Some(applied) = &applied {
            self.app.store.flush().await?;
            tracing::info!(
                actor_id = own,
                user_id = target_id,
                fields = ?applied.fields,
                sessions_revoked = applied.revoked,
                "account {target_id} updated over WebSocket"
            );
        }
        if patch.status == Some(STATUS_ACTIVE) {
            self.app.auth.clear_lockout(target_id);
        }
        Ok(Map::new())
    }

    /// The rules a role or status change must keep: only admin and user accounts move between
    /// roles, a user with sub-users stays a user, and one active administrator always remains.
    fn check_role_and_status(&self, target: &Account, patch: &Patch) -> Result<(), Failure> {
        let role_changes = patch.role.is_some_and(|r| r != target.user_type.role());
        if role_changes {
            match target.user_type {
                UserType::Admin => {}
                UserType::User => {
                    for account in self.app.store.accounts() {
                        if account?.parent_id == Some(target.id) {
                            return Err(Failure::new(400, MSG_HAS_SUBUSERS));
                        }
                    }
                }
                UserType::Subuser | UserType::Special => {
                    return Err(Failure::new(400, MSG_ROLE_FIXED))
                }
            }
        }
        let leaves_admins = target.user_type == UserType::Admin
            && target.status == STATUS_ACTIVE
            && (role_changes || matches!(patch.status, Some(STATUS_LOCKED | STATUS_DISABLED)));
        if leaves_admins {
            let mut another = false;
            for account in self.app.store.accounts() {
                let a = account?;
                if a.id != target.id && a.user_type == UserType::Admin && a.status == STATUS_ACTIVE
                {
                    another = true;
                    break;
                }
            }
            if !another {
                return Err(Failure::new(403, MSG_LAST_ADMIN));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn replies_echo_action_and_request_id() {
        let ok = render(
            json!("server/info"),
            json!({"k": [1]}),
            Ok(payload("x", json!(1))),
        );
        assert_eq!(
            ok,
            json!({"action": "server/info", "requestId": {"k": [1]}, "status": "success", "x": 1})
        );
        let err = render(
            json!("user/get"),
            Value::Null,
            Err(Failure::new(404, "User with id = 9 not found")),
        );
        assert_eq!(
            err,
            json!({"action": "user/get", "requestId": null, "status": "error", "code": 404,
                   "error": "User with id = 9 not found"})
        );
        // A payload cannot overwrite the envelope.
        let sneaky = render(json!("a"), json!(1), Ok(payload("status", json!("error"))));
        assert_eq!(sneaky["status"], "success");
    }

    #[test]
    fn user_ids_as_devicehive_and_php_clients_send_them() {
        assert_eq!(parse_user_id(Some(&json!(5))).ok(), Some(UserId::Id(5)));
        assert_eq!(parse_user_id(Some(&json!("5"))).ok(), Some(UserId::Id(5)));
        assert_eq!(
            parse_user_id(Some(&json!("current"))).ok(),
            Some(UserId::Current)
        );
        assert_eq!(
            parse_user_id(Some(&json!(-1))).ok(),
            Some(UserId::Negative(-1))
        );
        for bad in [json!(null), json!("x"), json!(1.5), json!([1]), json!(true)] {
            assert_eq!(
                parse_user_id(Some(&bad)).err().map(|f| f.error),
                Some(MSG_USER_ID.to_owned()),
                "{bad}"
            );
        }
        assert!(parse_user_id(None).is_err());
    }

    #[test]
    fn patch_rules() {
        let p = parse_patch(
            &obj(
                json!({"login": "  bob ", "role": "1", "status": 2, "password": "12345678",
                        "data": null, "introReviewed": true}),
            ),
            8,
        );
        assert_eq!(
            p.ok(),
            Some(Patch {
                login: Some("bob".into()),
                role: Some(1),
                status: Some(2),
                password: Some("12345678".into()),
                data: Some(None),
                intro_reviewed: Some(true),
            })
        );
        let err = |v: Value| parse_patch(&obj(v), 8).err().map(|f| (f.code, f.error));
        assert_eq!(
            err(json!({"password": "short"})),
            Some((
                400,
                "Password can contain only from 8 to 128 symbols!".into()
            ))
        );
        assert_eq!(
            err(json!({"password": "x".repeat(129)})),
            Some((
                400,
                "Password can contain only from 8 to 128 symbols!".into()
            ))
        );
        assert_eq!(
            err(json!({"role": 2})),
            Some((400, MSG_ROLE_INVALID.into()))
        );
        assert_eq!(
            err(json!({"role": -1})),
            Some((400, MSG_ROLE_INVALID.into()))
        );
        assert_eq!(
            err(json!({"status": 3})),
            Some((400, MSG_STATUS_INVALID.into()))
        );
        assert_eq!(err(json!({"data": [1]})), Some((400, MSG_DATA_TYPE.into())));
        assert_eq!(
            err(json!({"login": " "})),
            Some((400, MSG_LOGIN_INVALID.into()))
        );
        assert_eq!(
            err(json!({"introReviewed": "yes"})),
            Some((400, MSG_INTRO_TYPE.into()))
        );
        let big = json!({"data": {"k": "x".repeat(MAX_DATA_BYTES)}});
        assert_eq!(err(big), Some((400, msg_data_too_big())));
        // Omitted data is kept; an empty password is ignored, as DeviceHive does.
        assert_eq!(
            parse_patch(&obj(json!({"password": ""})), 8).ok(),
            Some(Patch::default())
        );
    }
}
