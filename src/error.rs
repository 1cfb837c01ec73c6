//! `ApiError`: every way a request can fail, and the one exhaustive mapping from it to an HTTP
//! status, headers and the Laravel-shaped JSON body that AIPIX clients parse (SPEC §2). The
//! core's typed errors (`StoreError`, `LoginError`, `AccountError`, ...) become `ApiError`
//! here and nowhere else.

use std::fmt;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use crate::accounts::AccountError;
use crate::auth::{AuthError, NoRandomness};
use crate::login::LoginError;
use crate::password::HashError;
use crate::router::RouteError;
use crate::store::{StoreError, TxError};
use crate::validate::{self, FieldErrors};

/// REST's answers to a failed login (SPEC §3).
pub const MSG_BAD_CREDENTIALS: &str = "These credentials do not match our records.";
pub const MSG_DISABLED: &str = "This account is disabled.";
pub const MSG_EXPIRED: &str = "This account has expired.";
/// SPEC §10: a directory login that no `[[directory.map]]` entry admits.
pub const MSG_NOT_ALLOWED: &str = "This account is not allowed on this box.";

/// The body type of every response vmsd writes.
pub type Body = Full<Bytes>;

#[derive(Debug)]
pub enum ApiError {
    /// 401: no, invalid, expired or revoked token, or an account that may not use it any more.
    Unauthenticated,
    /// 402: a change would take more analytics licences than a pool has.
    LicenseExceeded,
    /// 403: authenticated, but not allowed.
    Forbidden,
    /// 404: unknown route or id.
    NotFound,
    /// 405: known path, wrong method; carries the methods the path does take.
    MethodNotAllowed(Vec<http::Method>),
    /// 413: body over `limits.max_body_bytes`.
    PayloadTooLarge,
    /// 415: a body whose Content-Type is not JSON.
    UnsupportedMediaType,
    /// 419: the account already has `sessions_limit` sessions; the client picks one to evict.
    SessionLimit { sessions: Value, limit: usize },
    /// 422: validation, every failing field at once.
    Validation(FieldErrors),
    /// 429: throttled or locked out for `retry_after` seconds.
    TooManyAttempts { retry_after: u64 },
    /// 500: a bug or a storage failure. The cause is logged, never sent.
    Internal(String),
    /// 503: hashing queue full or shutting down.
    Unavailable { retry_after: u64 },
}

impl ApiError {
    pub fn internal(cause: impl fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(FieldErrors::single(field, message))
    }

    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The whole mapping, in one `match` so that adding a variant cannot forget a status or body.
    fn parts(&self) -> (StatusCode, Value, Vec<(header::HeaderName, String)>) {
        match self {
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                json!({"message": "Unauthenticated."}),
                vec![(header::WWW_AUTHENTICATE, "Bearer".to_owned())],
            ),
            ApiError::LicenseExceeded => (
                StatusCode::PAYMENT_REQUIRED,
                json!({"message": "Exceeded the license limit for the selected analytics case"}),
                vec![],
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                json!({"message": "This action is unauthorized."}),
                vec![],
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                json!({"message": "Not Found."}),
                vec![],
            ),
            ApiError::MethodNotAllowed(allowed) => {
                let allow = allowed
                    .iter()
                    .map(http::Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!({"message": "Method Not Allowed."}),
                    vec![(header::ALLOW, allow)],
                )
            }
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"message": "Payload Too Large."}),
                vec![],
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"message": "Unsupported Media Type."}),
                vec![],
            ),
            ApiError::SessionLimit { sessions, limit } => (
                // 419 is Laravel's, not IANA's; `from_u16` accepts any 3-digit code.
                StatusCode::from_u16(419).unwrap_or(StatusCode::CONFLICT),
                json!({
                    "message": "The number of sessions has reached the limit. End one of them to log in.",
                    "sessions": sessions,
                    "sessions_limit": limit,
                }),
                vec![],
            ),
            ApiError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": "The given data was invalid.", "errors": errors.to_json()}),
                vec![],
            ),
            ApiError::TooManyAttempts { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"message": "Too Many Attempts."}),
                vec![(header::RETRY_AFTER, retry_after.max(&1).to_string())],
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "Server Error"}),
                vec![],
            ),
            ApiError::Unavailable { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"message": "Service Unavailable."}),
                vec![(header::RETRY_AFTER, retry_after.max(&1).to_string())],
            ),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(cause = %cause, "request failed with a server error");
        }
        let (status, body, headers) = self.parts();
        let mut response = json_response(status, &body);
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Internal(cause) => write!(f, "internal error: {cause}"),
            other => write!(f, "{}", other.status()),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotFound => ApiError::NotFound,
            RouteError::MethodNotAllowed(allowed) => ApiError::MethodNotAllowed(allowed),
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::Validation(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl<E: Into<ApiError>> From<TxError<E>> for ApiError {
    fn from(e: TxError<E>) -> Self {
        match e {
            TxError::Abort(e) => e.into(),
            TxError::Store(e) => e.into(),
        }
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ApiError::Unavailable { retry_after: 1 },
            HashError::Failed(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<NoRandomness> for ApiError {
    fn from(e: NoRandomness) -> Self {
        ApiError::internal(e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => ApiError::Unauthenticated,
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Invalid(errors) => ApiError::Validation(errors),
            LoginError::BadCredentials => ApiError::field("login", MSG_BAD_CREDENTIALS),
            LoginError::Disabled => ApiError::field("login", MSG_DISABLED),
            LoginError::Expired => ApiError::field("login", MSG_EXPIRED),
            LoginError::LockedOut { retry_after } | LoginError::Throttled { retry_after } => {
                ApiError::TooManyAttempts { retry_after }
            }
            LoginError::SessionLimit { sessions, limit } => ApiError::SessionLimit {
                sessions: Value::Array(sessions),
                limit,
            },
            LoginError::Busy => ApiError::Unavailable { retry_after: 1 },
            LoginError::NotAllowed => ApiError::field("login", MSG_NOT_ALLOWED),
            LoginError::DirectoryUnavailable { retry_after } => {
                ApiError::Unavailable { retry_after }
            }
            LoginError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound => ApiError::NotFound,
            AccountError::LoginTaken => ApiError::field("login", validate::msg_unique("login")),
            AccountError::LastAdmin
            | AccountError::PasswordFixed
            | AccountError::DirectoryManaged => ApiError::Forbidden,
            AccountError::LicenseExceeded => ApiError::LicenseExceeded,
            AccountError::RoleFixed => ApiError::field("role", validate::msg_invalid("role")),
            AccountError::HasSubusers => ApiError::field(
                "role",
                "A user with sub-users cannot become an administrator.",
            ),
            AccountError::UnknownCamera { index } => {
                let key = format!("cameras_to_attach.{index}");
                ApiError::field(&key, validate::msg_invalid(&key))
            }
            AccountError::InvalidParent => {
                ApiError::field("parent_id", validate::msg_invalid("parent_id"))
            }
            AccountError::Busy => ApiError::Unavailable { retry_after: 1 },
            AccountError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// Serialises `body` as the response; every response is JSON, whatever `Accept` says.
pub fn json_response<T: serde::Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // API answers carry account data and tokens: no browser or proxy may keep them.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(e: ApiError) -> (u16, Value, http::HeaderMap) {
        let response = e.into_response();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.map(|b| b.to_bytes());
        let body = serde_json::from_slice(&bytes.unwrap_or_default()).unwrap_or(Value::Null);
        (status, body, headers)
    }

    #[tokio::test]
    async fn every_variant_maps_to_its_status_and_laravel_body() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::Unauthenticated, 401, "Unauthenticated."),
            (
                ApiError::LicenseExceeded,
                402,
                "Exceeded the license limit for the selected analytics case",
            ),
            (ApiError::Forbidden, 403, "This action is unauthorized."),
            (ApiError::NotFound, 404, "Not Found."),
            (
                ApiError::MethodNotAllowed(vec![http::Method::GET]),
                405,
                "Method Not Allowed.",
            ),
            (ApiError::PayloadTooLarge, 413, "Payload Too Large."),
            (
                ApiError::UnsupportedMediaType,
                415,
                "Unsupported Media Type.",
            ),
            (
                ApiError::Validation(FieldErrors::single("login", "x")),
                422,
                "The given data was invalid.",
            ),
            (
                ApiError::TooManyAttempts { retry_after: 30 },
                429,
                "Too Many Attempts.",
            ),
            (
                ApiError::Internal("disk on fire".into()),
                500,
                "Server Error",
            ),
            (
                ApiError::Unavailable { retry_after: 1 },
                503,
                "Service Unavailable.",
            ),
        ];
        for (error, status, message) in cases {
            let (got_status, body, headers) = render(error).await;
            assert_eq!(got_status, status);
            assert_eq!(body["message"], message, "status {status}");
            assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        }
    }

    #[tokio::test]
    async fn headers_that_clients_rely_on_are_set() {
        let (_, _, h) = render(ApiError::Unauthenticated).await;
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
        let (_, _, h) = render(ApiError::TooManyAttempts { retry_after: 42 }).await;
        assert_eq!(h[header::RETRY_AFTER], "42");
        let (_, _, h) = render(ApiError::Unavailable { retry_after: 0 }).await;
        assert_eq!(h[header::RETRY_AFTER], "1");
        let (_, _, h) = render(ApiError::MethodNotAllowed(vec![
            http::Method::GET,
            http::Method::PUT,
        ]))
        .await;
        assert_eq!(h[header::ALLOW], "GET, PUT");
    }

    #[tokio::test]
    async fn server_error_body_never_carries_the_cause() {
        let (_, body, _) = render(ApiError::Internal("secret path /var/x".into())).await;
        assert_eq!(body, json!({"message": "Server Error"}));
    }

    #[tokio::test]
    async fn domain_errors_map_to_their_rest_answers() {
        let login_cases: Vec<(LoginError, u16, Value)> = vec![
            (
                LoginError::Invalid(FieldErrors::single("password", "p")),
                422,
                json!({"password": ["p"]}),
            ),
            (
                LoginError::BadCredentials,
                422,
                json!({"login": [MSG_BAD_CREDENTIALS]}),
            ),
            (LoginError::Disabled, 422, json!({"login": [MSG_DISABLED]})),
            (LoginError::Expired, 422, json!({"login": [MSG_EXPIRED]})),
            (LoginError::LockedOut { retry_after: 5 }, 429, Value::Null),
            (LoginError::Throttled { retry_after: 5 }, 429, Value::Null),
            (
                LoginError::SessionLimit {
                    sessions: vec![],
                    limit: 2,
                },
                419,
                Value::Null,
            ),
            (LoginError::Busy, 503, Value::Null),
            (
                LoginError::NotAllowed,
                422,
                json!({"login": ["This account is not allowed on this box."]}),
            ),
            (
                LoginError::DirectoryUnavailable { retry_after: 5 },
                503,
                Value::Null,
            ),
            (LoginError::Internal("x".into()), 500, Value::Null),
        ];
        for (error, status, errors) in login_cases {
            let what = format!("{error:?}");
            let (got, body, _) = render(error.into()).await;
            assert_eq!(got, status, "{what}");
            assert_eq!(
                body.get("errors").cloned().unwrap_or(Value::Null),
                errors,
                "{what}"
            );
        }
        let account_cases: Vec<(AccountError, u16, Value)> = vec![
            (AccountError::NotFound, 404, Value::Null),
            (
                AccountError::LoginTaken,
                422,
                json!({"login": ["The login has already been taken."]}),
            ),
            (AccountError::LastAdmin, 403, Value::Null),
            (AccountError::LicenseExceeded, 402, Value::Null),
            (
                AccountError::RoleFixed,
                422,
                json!({"role": ["The selected role is invalid."]}),
            ),
            (
                AccountError::HasSubusers,
                422,
                json!({"role": ["A user with sub-users cannot become an administrator."]}),
            ),
            (AccountError::PasswordFixed, 403, Value::Null),
            (AccountError::DirectoryManaged, 403, Value::Null),
            (
                AccountError::UnknownCamera { index: 3 },
                422,
                json!({"cameras_to_attach.3": ["The selected cameras_to_attach.3 is invalid."]}),
            ),
            (
                AccountError::InvalidParent,
                422,
                json!({"parent_id": ["The selected parent id is invalid."]}),
            ),
            (AccountError::Busy, 503, Value::Null),
            (AccountError::Internal("x".into()), 500, Value::Null),
        ];
        for (error, status, errors) in account_cases {
            let what = format!("{error:?}");
            let (got, body, _) = render(error.into()).await;
            assert_eq!(got, status, "{what}");
            assert_eq!(
                body.get("errors").cloned().unwrap_or(Value::Null),
                errors,
                "{what}"
            );
        }
        let (status, body, _) =
            render(TxError::<AccountError>::Store(StoreError::Conflict).into()).await;
        assert_eq!((status, body), (500, json!({"message": "Server Error"})));
        let (status, _, _) = render(AuthError::Unauthenticated.into()).await;
        assert_eq!(status, 401);
        let (status, _, _) = render(HashError::Busy.into()).await;
        assert_eq!(status, 503);
    }

    #[tokio::test]
    async fn validation_and_session_limit_bodies() {
        let mut errors = FieldErrors::new();
        errors.add("password", "a");
        errors.add("password", "b");
        errors.add("language", "c");
        let (_, body, _) = render(ApiError::Validation(errors)).await;
        assert_eq!(
            body["errors"],
            json!({"password": ["a", "b"], "language": ["c"]})
        );
        let (status, body, _) = render(ApiError::SessionLimit {
            sessions: json!([{"id": "x"}]),
            limit: 3,
        })
        .await;
        assert_eq!(status, 419);
        assert_eq!(body["sessions_limit"], 3);
        assert_eq!(body["sessions"][0]["id"], "x");
        assert!(body["message"].is_string());
    }
}
