//! The DeviceHive message envelope and its errors (SPEC §6): the reply shapes, the error
//! codes and texts DeviceHive clients know, and the one mapping from the daemon's typed
//! errors (`LoginError`, `AccountError`, storage) to them.

use serde_json::{json, Map, Value};

use crate::accounts::AccountError;
use crate::login::LoginError;
use crate::store::StoreError;

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
pub const MSG_LAST_ADMIN_DELETE: &str = "The last active administrator cannot be deleted";
pub const MSG_LOGIN_REQUIRED: &str = "Login is required";
pub const MSG_ROLE_REQUIRED: &str = "Role is required";
pub const MSG_DATA_TYPE: &str = "User data must be a JSON object or null";
pub const MSG_INTRO_TYPE: &str = "Field introReviewed must be true or false";
pub const MSG_PASSWORD_FIXED: &str = "This account is not allowed to change its password";
/// SPEC §10: a directory login that no `[[directory.map]]` entry admits.
pub use crate::error::MSG_NOT_ALLOWED;
pub const MSG_SOCKETS_PER_ACCOUNT: &str = "Too many WebSocket connections for this account";
pub const MSG_INTERNAL: &str = "Internal server error";
pub const MSG_SESSION_LIMIT: &str =
    "The number of sessions has reached the limit. End one of them to log in.";

/// SPEC §1: `data` is at most 64 KiB serialized.
pub const MAX_DATA_BYTES: usize = 64 * 1024;

/// The longest password SPEC §1 allows.
pub const MAX_PASSWORD_CHARS: usize = 128;

pub fn msg_not_found(id: impl std::fmt::Display) -> String {
    format!("User with id = {id} not found")
}

pub fn msg_password_length(min: usize) -> String {
    format!("Password can contain only from {min} to {MAX_PASSWORD_CHARS} symbols!")
}

pub fn msg_data_too_big() -> String {
    format!("User data must not be larger than {MAX_DATA_BYTES} bytes")
}

/// An error reply: DeviceHive's HTTP-like `code`, its `error` text, and any extra keys.
#[derive(Debug)]
pub struct Failure {
    pub code: u16,
    pub error: String,
    extra: Map<String, Value>,
}

impl Failure {
    pub fn new(code: u16, error: impl Into<String>) -> Self {
        Failure {
            code,
            error: error.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    pub fn unauthorized() -> Self {
        Failure::new(401, MSG_UNAUTHORIZED)
    }

    pub fn denied() -> Self {
        Failure::new(403, MSG_ACCESS_DENIED)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        internal(e)
    }
}

/// A server error: the cause goes to the log, the client sees DeviceHive's 500 text.
fn internal(cause: impl std::fmt::Display) -> Failure {
    tracing::error!(cause = %cause, "WebSocket action failed with a server error");
    Failure::new(500, MSG_INTERNAL)
}

fn retry(failure: Failure, retry_after: u64) -> Failure {
    failure.with("retryAfter", json!(retry_after.max(1)))
}

/// The socket's answer to a failed `token` login (SPEC §6: §3's rules, DeviceHive's texts).
pub fn login_failure(e: LoginError) -> Failure {
    match e {
        LoginError::Invalid(_) => Failure::new(400, MSG_BAD_LOGIN_REQUEST),
        LoginError::BadCredentials => Failure::new(401, MSG_INVALID_CREDENTIALS),
        LoginError::Disabled | LoginError::Expired => Failure::new(401, MSG_LOCKED_OR_DISABLED),
        LoginError::LockedOut { retry_after } | LoginError::Throttled { retry_after } => {
            retry(Failure::new(429, "Too Many Attempts."), retry_after)
        }
        LoginError::SessionLimit { sessions, limit } => Failure::new(419, MSG_SESSION_LIMIT)
            .with("sessions", Value::Array(sessions))
            .with("sessions_limit", json!(limit)),
        LoginError::Busy => retry(Failure::new(503, "Service Unavailable."), 1),
        LoginError::NotAllowed => Failure::new(401, MSG_NOT_ALLOWED),
        LoginError::DirectoryUnavailable { retry_after } => {
            retry(Failure::new(503, "Service Unavailable."), retry_after)
        }
        LoginError::Internal(cause) => internal(cause),
    }
}

/// The socket's answer to a refused or failed change of account `target_id`.
pub fn account_failure(e: AccountError, target_id: u64) -> Failure {
    match e {
        AccountError::NotFound => Failure::new(404, msg_not_found(target_id)),
        AccountError::LoginTaken => Failure::new(403, MSG_LOGIN_TAKEN),
        AccountError::LastAdmin => Failure::new(403, MSG_LAST_ADMIN),
        AccountError::PasswordFixed => Failure::new(403, MSG_PASSWORD_FIXED),
        // SPEC §10: the directory's fields change only in the directory.
        AccountError::DirectoryManaged => Failure::new(403, MSG_ACCESS_DENIED),
        AccountError::LicenseExceeded => Failure::new(
            402,
            "Exceeded the license limit for the selected analytics case",
        ),
        AccountError::RoleFixed => Failure::new(400, MSG_ROLE_FIXED),
        AccountError::HasSubusers => Failure::new(400, MSG_HAS_SUBUSERS),
        // Camera lists and parents are not part of DeviceHive's user object.
        AccountError::UnknownCamera { .. } | AccountError::InvalidParent => {
            Failure::new(400, "Invalid request parameters")
        }
        AccountError::Busy => retry(Failure::new(503, "Service Unavailable."), 1),
        AccountError::Internal(cause) => internal(cause),
    }
}

/// The socket's answer to a refused or failed `user/delete` of account `target_id`: as any
/// change, but the last active administrator has its own text.
pub fn delete_failure(e: AccountError, target_id: u64) -> Failure {
    match e {
        AccountError::LastAdmin => Failure::new(403, MSG_LAST_ADMIN_DELETE),
        other => account_failure(other, target_id),
    }
}

pub type Outcome = Result<Map<String, Value>, Failure>;

pub fn payload(key: &str, value: Value) -> Map<String, Value> {
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
pub fn render(action: Value, request_id: Value, outcome: Outcome) -> Value {
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
pub fn action_text(action: &Value) -> String {
    match action {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn domain_errors_map_to_devicehive_codes_and_texts() {
        let login = |e| {
            let f = login_failure(e);
            (f.code, f.error)
        };
        assert_eq!(
            login(LoginError::BadCredentials),
            (401, MSG_INVALID_CREDENTIALS.into())
        );
        assert_eq!(
            login(LoginError::Disabled),
            (401, MSG_LOCKED_OR_DISABLED.into())
        );
        assert_eq!(
            login(LoginError::Expired),
            (401, MSG_LOCKED_OR_DISABLED.into())
        );
        assert_eq!(
            login(LoginError::Invalid(crate::validate::FieldErrors::single(
                "login", "x"
            ))),
            (400, MSG_BAD_LOGIN_REQUEST.into())
        );
        assert_eq!(login(LoginError::LockedOut { retry_after: 3 }).0, 429);
        assert_eq!(login(LoginError::Throttled { retry_after: 3 }).0, 429);
        assert_eq!(login(LoginError::Busy).0, 503);
        assert_eq!(login(LoginError::NotAllowed), (401, MSG_NOT_ALLOWED.into()));
        let unavailable = login_failure(LoginError::DirectoryUnavailable { retry_after: 7 });
        assert_eq!(unavailable.code, 503);
        assert_eq!(
            render(json!("token"), Value::Null, Err(unavailable))["retryAfter"],
            7
        );
        assert_eq!(
            login(LoginError::Internal("x".into())),
            (500, MSG_INTERNAL.into())
        );
        let limit = render(
            json!("token"),
            Value::Null,
            Err(login_failure(LoginError::SessionLimit {
                sessions: vec![json!({"id": "a"})],
                limit: 1,
            })),
        );
        assert_eq!(limit["code"], 419);
        assert_eq!(limit["sessions_limit"], 1);
        assert_eq!(limit["sessions"][0]["id"], "a");

        let account = |e| {
            let f = account_failure(e, 7);
            (f.code, f.error)
        };
        assert_eq!(
            account(AccountError::NotFound),
            (404, "User with id = 7 not found".into())
        );
        assert_eq!(
            account(AccountError::LoginTaken),
            (403, MSG_LOGIN_TAKEN.into())
        );
        assert_eq!(
            account(AccountError::LastAdmin),
            (403, MSG_LAST_ADMIN.into())
        );
        assert_eq!(
            account(AccountError::PasswordFixed),
            (403, MSG_PASSWORD_FIXED.into())
        );
        assert_eq!(
            account(AccountError::DirectoryManaged),
            (403, MSG_ACCESS_DENIED.into())
        );
        assert_eq!(account(AccountError::LicenseExceeded).0, 402);
        assert_eq!(
            account(AccountError::RoleFixed),
            (400, MSG_ROLE_FIXED.into())
        );
        assert_eq!(
            account(AccountError::HasSubusers),
            (400, MSG_HAS_SUBUSERS.into())
        );
        assert_eq!(account(AccountError::UnknownCamera { index: 0 }).0, 400);
        assert_eq!(account(AccountError::InvalidParent).0, 400);
        assert_eq!(account(AccountError::Busy).0, 503);
        let deleting = |e| {
            let f = delete_failure(e, 7);
            (f.code, f.error)
        };
        assert_eq!(
            deleting(AccountError::LastAdmin),
            (403, MSG_LAST_ADMIN_DELETE.into())
        );
        assert_eq!(
            deleting(AccountError::NotFound),
            (404, "User with id = 7 not found".into())
        );
        assert_eq!(
            account(AccountError::Internal("x".into())),
            (500, MSG_INTERNAL.into())
        );
    }
}
