//! The login of SPEC §3 and the session routes around it: login with its failure, lockout,
//! throttling and session-limit rules (`LoginError`), the DeviceHive socket's refresh tokens
//! (SPEC §6: issued by its `token` login, used by `token/refresh`), logout, revoking one's
//! own sessions, and the session list's items.

use serde_json::{json, Map, Value};

use crate::accounts::audit_entry;
use crate::app::App;
use crate::auth::{hash_token, new_token, Caller, ClientMeta, NoRandomness};
use crate::model::{
    login_key, now, Account, AuditEntry, RefreshToken, Session, UnixTime, UserType,
    STATUS_DISABLED, STATUS_LOCKED,
};
use crate::password::HashError;
use crate::store::{SessionEnd, StoreError, TokenHash, Tx, TxError, TxResult};
use crate::validate::{self, FieldErrors, Input};

/// A session counts as online when used within this window (SPEC §3).
const ONLINE_WINDOW_SECS: i64 = 300;

/// Which accounts a login route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// `POST /api/v1/token`: user, subuser, special.
    Client,
    /// `POST /api/admin/v1/auth/token`: admin only.
    Admin,
    /// The WebSocket `token` action: any account.
    Any,
}

impl LoginKind {
    pub(crate) fn admits(self, t: UserType) -> bool {
        match self {
            LoginKind::Client => t != UserType::Admin,
            LoginKind::Admin => t == UserType::Admin,
            LoginKind::Any => true,
        }
    }
}

/// What a successful login hands back: the tokens are shown to their owner here only.
pub struct Login {
    pub account: Account,
    pub token: String,
    /// Only the DeviceHive socket's `token` login (`LoginKind::Any`) issues one.
    pub refresh_token: Option<String>,
    pub session: Session,
}

/// A refresh token's stored form: the lowercase hex of its SHA-256.
fn refresh_hash(refresh_token: &str) -> String {
    hex::encode(hash_token(refresh_token))
}

fn secs(d: std::time::Duration) -> UnixTime {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// How long an access token issued now to an account of this type lives.
fn access_ttl(app: &App, user_type: UserType) -> UnixTime {
    secs(match user_type {
        UserType::Admin => app.config.auth.admin_token_ttl,
        _ => app.config.auth.client_token_ttl,
    })
}

/// Why a login did not open a session. REST (`error.rs`) and the DeviceHive socket each map
/// it in one exhaustive `match`.
#[derive(Debug)]
pub enum LoginError {
    /// The request lacks a login or a password, or has the wrong types.
    Invalid(FieldErrors),
    /// Unknown login or wrong password: the same answer for both.
    BadCredentials,
    Disabled,
    /// A temporary user past its `expired_at`.
    Expired,
    /// Locked out after failed logins, or locked by an admin (status 1).
    LockedOut {
        retry_after: u64,
    },
    /// Too many attempts from this IP address.
    Throttled {
        retry_after: u64,
    },
    /// The account has `sessions_limit` sessions; the client picks one to evict.
    SessionLimit {
        sessions: Vec<Value>,
        limit: usize,
    },
    /// The password hashing queue is full: try again.
    Busy,
    /// A directory login (SPEC §10) whose groups match no `[[directory.map]]` entry.
    NotAllowed,
    /// The directory is unreachable (every URL failed) or its login queue is full: local
    /// logins still work, this one may be tried again after `retry_after` seconds.
    DirectoryUnavailable {
        retry_after: u64,
    },
    /// Storage, hashing or randomness failed: for the log only.
    Internal(String),
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginError::Invalid(_) => f.write_str("invalid login request"),
            LoginError::BadCredentials => f.write_str("wrong login or password"),
            LoginError::Disabled => f.write_str("the account is disabled"),
            LoginError::Expired => f.write_str("the account has expired"),
            LoginError::LockedOut { retry_after } => write!(f, "locked out for {retry_after} s"),
            LoginError::Throttled { retry_after } => write!(f, "throttled for {retry_after} s"),
            LoginError::SessionLimit { limit, .. } => write!(f, "session limit {limit} reached"),
            LoginError::Busy => f.write_str("password hashing queue full"),
            LoginError::NotAllowed => f.write_str("no directory map admits the account"),
            LoginError::DirectoryUnavailable { retry_after } => {
                write!(f, "directory unavailable, retry in {retry_after} s")
            }
            LoginError::Internal(cause) => write!(f, "internal error: {cause}"),
        }
    }
}

impl std::error::Error for LoginError {}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        LoginError::Internal(e.to_string())
    }
}

impl From<TxError<LoginError>> for LoginError {
    fn from(e: TxError<LoginError>) -> Self {
        match e {
            TxError::Abort(e) => e,
            TxError::Store(e) => e.into(),
        }
    }
}

impl From<HashError> for LoginError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => LoginError::Busy,
            HashError::Failed(cause) => LoginError::Internal(cause),
        }
    }
}

impl From<NoRandomness> for LoginError {
    fn from(e: NoRandomness) -> Self {
        LoginError::Internal(e.to_string())
    }
}

/// Writes an audit entry on its own (login failures, lockouts) and makes it durable.
pub(crate) async fn audit_alone(app: &App, entry: AuditEntry) -> Result<(), StoreError> {
    app.store.write(|tx| tx.audit(&entry)).await
}

/// A wrong password (local or directory): audits `login_failed`, and `lockout` when
/// `locked_now` (the admission's settlement said this failure reached the threshold).
pub(crate) async fn record_failed_login(
    app: &App,
    account_id: Option<u64>,
    locked_now: bool,
) -> Result<(), LoginError> {
    audit_alone(
        app,
        audit_entry(app, None, "login_failed", account_id, &["password"]),
    )
    .await?;
    if locked_now {
        tracing::warn!(user_id = account_id, "login locked out after failed logins");
        audit_alone(
            app,
            audit_entry(app, None, "lockout", account_id, &["status"]),
        )
        .await?;
    }
    Ok(())
}

/// The whole login of SPEC §3 for one route. `body` is the request object.
pub async fn login(
    app: &App,
    body: &Map<String, Value>,
    kind: LoginKind,
    meta: &ClientMeta,
) -> Result<Login, LoginError> {
    let mut input = Input::new(body);
    let login = input.required_string("login", 255);
    let password = input.required_string("password", 1024);
    let session_id = match input.raw("session_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "null" || s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            input.error("session_id", validate::msg_string("session_id"));
            None
        }
    };
    input.finish().map_err(LoginError::Invalid)?;
    let (Some(login), Some(password)) = (login, password) else {
        return Err(LoginError::Internal("validated fields missing".into()));
    };
    let auth_cfg = &app.config.auth;

    if let Some(ip) = meta.ip {
        if let Err(retry_after) =
            app.throttle
                .throttle_ip(ip, auth_cfg.ip_login_limit, auth_cfg.ip_login_window)
        {
            tracing::warn!(%ip, "login throttled for this address");
            return Err(LoginError::Throttled { retry_after });
        }
    }

    let found = app.store.account_by_login(&login_key(&login))?;
    // SPEC §10: a login naming a local account is checked locally; any other goes to the
    // directory when one is configured.
    #[cfg(feature = "directory")]
    if let Some(directory) = &app.directory {
        if found.as_ref().is_none_or(Account::is_directory_managed) {
            let request = crate::directory::login::Request {
                login: &login,
                password,
                session_id: session_id.as_deref(),
                kind,
                meta,
            };
            return crate::directory::login::login(app, directory, request, found).await;
        }
    }
    let account = found.filter(|a| kind.admits(a.user_type));
    let Some(account) = account else {
        // Same work and same answer as a wrong password.
        app.hasher.verify(password, None).await?;
        audit_alone(
            app,
            audit_entry(app, None, "login_failed", None, &["login"]),
        )
        .await?;
        return Err(LoginError::BadCredentials);
    };

    if account.status == STATUS_LOCKED {
        return Err(LoginError::LockedOut {
            retry_after: auth_cfg.lockout_duration.as_secs(),
        });
    }
    let admission = app
        .throttle
        .admission(account.id, auth_cfg.lockout_threshold)
        .map_err(|retry_after| LoginError::LockedOut { retry_after })?;
    // Only a password that verified is re-hashed, so the plain text is kept for that case.
    let rehash_with = app
        .hasher
        .needs_rehash(&account.password_hash)
        .then(|| password.clone());
    // A 503 from a full hashing queue drops the admission unsettled: no failure is counted.
    let ok = app
        .hasher
        .verify(password, Some(account.password_hash.clone()))
        .await?;
    let locked_now = admission.settle(ok, auth_cfg.lockout_threshold, auth_cfg.lockout_duration);
    if !ok {
        record_failed_login(app, Some(account.id), locked_now).await?;
        return Err(LoginError::BadCredentials);
    }
    let at = now();
    if account.status == STATUS_DISABLED {
        return Err(LoginError::Disabled);
    }
    if account.is_expired(at) {
        return Err(LoginError::Expired);
    }
    // SPEC §1: a hash made with other parameters is re-hashed with the configured ones, in the
    // same write as the new session. A busy hashing queue only postpones it to a later login.
    let rehashed = match rehash_with {
        Some(password) => match app.hasher.hash(password).await {
            Ok(new_hash) => Some((account.password_hash.clone(), new_hash)),
            Err(e) => {
                tracing::debug!(user_id = account.id, error = %e, "password re-hash postponed");
                None
            }
        },
        None => None,
    };

    let account_id = account.id;
    open_session(
        app,
        meta,
        session_id.as_deref(),
        kind,
        account.user_type,
        |tx| {
            let mut account = tx
                .account(account_id)?
                .ok_or(TxError::Abort(LoginError::BadCredentials))?;
            // Not a password change: no session ends, `updated_at` and the audit log stay.
            // Skipped when the password changed since it was verified.
            if let Some((verified, new_hash)) = &rehashed {
                if account.password_hash == *verified {
                    account.password_hash = new_hash.clone();
                }
            }
            Ok(account)
        },
    )
    .await
}

/// Opens a session (SPEC §3) for the account `prepare` reads, or creates, inside the same
/// transaction: device replacement, eviction by `session_id`, the session limit, and
/// `last_login`. `user_type` picks the token's lifetime; `kind` whether a refresh token comes
/// with it (the DeviceHive socket's login).
pub(crate) async fn open_session(
    app: &App,
    meta: &ClientMeta,
    session_id: Option<&str>,
    kind: LoginKind,
    user_type: UserType,
    prepare: impl Fn(&Tx<'_>) -> TxResult<Account, LoginError>,
) -> Result<Login, LoginError> {
    let auth_cfg = &app.config.auth;
    let at = now();
    let (token, hash, access_token_id) = new_token()?;
    // SPEC §6: the socket's login also hands out a refresh token; REST logins do not.
    let (refresh_token, refresh) = if kind == LoginKind::Any {
        let (refresh_token, refresh_digest, _) = new_token()?;
        let refresh = RefreshToken {
            hash: hex::encode(refresh_digest),
            expires_at: at.saturating_add(secs(auth_cfg.refresh_token_ttl)),
        };
        (Some(refresh_token), Some(refresh))
    } else {
        (None, None)
    };
    // Its account id is set inside the transaction: a directory login may create the account.
    let template = Session {
        account_id: 0,
        access_token_id,
        device: meta.device.clone(),
        client: meta.client.clone(),
        user_agent: meta.user_agent.clone(),
        ip: meta.ip.map(|ip| ip.to_string()),
        created_at: at,
        expires_at: at.saturating_add(access_ttl(app, user_type)),
        last_used: Some(at),
        refresh,
    };
    let limit = auth_cfg.sessions_limit;
    let evict_entry = audit_entry(app, None, "session_revoked", None, &["session"]);
    let (account, session) = app
        .store
        .commit(|tx| {
            let mut account = prepare(tx)?;
            let session = Session {
                account_id: account.id,
                ..template.clone()
            };
            let mut evicted = false;
            // A login from a device that already has a session replaces that session.
            let mut hashes = tx.session_hashes(account.id)?;
            if let Some(device) = &session.device {
                for h in &hashes {
                    if let Some(s) = tx.session(h)? {
                        if s.device.as_deref() == Some(device.as_str()) {
                            tx.remove_session(h, SessionEnd::DeviceReplaced)?;
                        }
                    }
                }
            }
            if let Some(id) = session_id {
                if let Some(h) = tx.hash_by_token_id(id)? {
                    if tx.session(&h)?.is_some_and(|s| s.account_id == account.id) {
                        tx.remove_session(&h, SessionEnd::Evicted)?;
                        evicted = true;
                    }
                }
            }
            hashes = tx.session_hashes(account.id)?;
            if hashes.len() >= limit {
                let mut list = Vec::new();
                for h in &hashes {
                    if let Some(s) = tx.session(h)? {
                        list.push(session_view(app, h, &s, None));
                    }
                }
                return Err(TxError::Abort(LoginError::SessionLimit {
                    sessions: list,
                    limit,
                }));
            }
            tx.add_session(&hash, &session)?;
            if evicted {
                tx.audit(&AuditEntry {
                    actor_id: Some(account.id),
                    ..evict_entry.about(account.id)
                })?;
            }
            account.last_login = Some(at);
            tx.rewrite_account(&account)?;
            Ok((account, session))
        })
        .await?;
    tracing::info!(user_id = account.id, "user {} logged in", account.id);
    Ok(Login {
        account,
        token,
        refresh_token,
        session,
    })
}

/// What `token/refresh` hands back: the session's new access token, shown here only.
pub struct Refreshed {
    pub account_id: u64,
    pub token: String,
}

/// SPEC §6 `token/refresh`: a new access token for the session the refresh token belongs to,
/// expiring the account type's TTL from now; the old access token stops working. The refresh
/// token itself does not change and now runs out `auth.refresh_token_ttl` from now. A bad,
/// revoked or run-out refresh token, or an account that may no longer use tokens, is
/// `BadCredentials`. Not audited: no account changes, like a successful login.
pub async fn refresh(app: &App, refresh_token: &str) -> Result<Refreshed, LoginError> {
    // Longer than any token vmsd issues: not one of them, and not worth hashing.
    if refresh_token.len() > 256 {
        return Err(LoginError::BadCredentials);
    }
    let wanted = refresh_hash(refresh_token);
    let (token, new_hash, _) = new_token()?;
    let at = now();
    let refresh_ttl = secs(app.config.auth.refresh_token_ttl);
    let account_id = app
        .store
        .commit(|tx| {
            let (old_hash, mut session) = tx
                .session_by_refresh(&wanted)?
                .ok_or(TxError::Abort(LoginError::BadCredentials))?;
            let account = tx
                .account(session.account_id)?
                .filter(|a| a.may_use_tokens(at))
                .ok_or(TxError::Abort(LoginError::BadCredentials))?;
            match &mut session.refresh {
                Some(refresh) if refresh.expires_at > at => {
                    refresh.expires_at = at.saturating_add(refresh_ttl);
                }
                _ => return Err(TxError::Abort(LoginError::BadCredentials)),
            }
            session.expires_at = at.saturating_add(access_ttl(app, account.user_type));
            session.last_used = Some(at);
            tx.replace_access_token(&old_hash, &new_hash, &session)?;
            Ok(account.id)
        })
        .await?;
    tracing::info!(
        user_id = account_id,
        "session of user {account_id} refreshed"
    );
    Ok(Refreshed { account_id, token })
}

/// One item of `GET /api/v1/sessions` (and of the 419 answer).
pub fn session_view(
    app: &App,
    hash: &TokenHash,
    s: &Session,
    current: Option<&TokenHash>,
) -> Value {
    let last = [app.store.noted_last_use(hash), s.last_used]
        .into_iter()
        .flatten()
        .max();
    json!({
        "id": s.access_token_id,
        "online": last.is_some_and(|l| now() - l < ONLINE_WINDOW_SECS),
        "last": last,
        "user_agent": s.user_agent,
        "client": s.client,
        "ip": s.ip,
        "is_current": current == Some(hash),
    })
}

/// Revokes the caller's own session (logout).
pub async fn logout(app: &App, caller: &Caller) -> Result<(), StoreError> {
    let entry = audit_entry(
        app,
        Some(caller.account.id),
        "logout",
        Some(caller.account.id),
        &["session"],
    );
    app.store
        .write(|tx| {
            tx.remove_session(&caller.token_hash, SessionEnd::Logout)?;
            tx.audit(&entry)
        })
        .await
}

/// Revokes one of the caller's sessions by its public id. False (nothing written) when no
/// session of the caller has that id.
pub async fn revoke_session(
    app: &App,
    caller: &Caller,
    access_token_id: &str,
) -> Result<bool, StoreError> {
    let entry = audit_entry(
        app,
        Some(caller.account.id),
        "session_revoked",
        Some(caller.account.id),
        &["session"],
    );
    let revoked = app
        .store
        .commit(|tx| {
            let hash = tx.hash_by_token_id(access_token_id)?;
            let theirs = match hash {
                Some(hash) => tx
                    .session(&hash)?
                    .is_some_and(|s| s.account_id == caller.account.id)
                    .then_some(hash),
                None => None,
            };
            let Some(hash) = theirs else {
                // Nothing to write: an abort, so that no flush is waited for.
                return Err(TxError::Abort(()));
            };
            // Revoking one's own current session by its id is a logout by another name.
            let end = if hash == caller.token_hash {
                SessionEnd::Logout
            } else {
                SessionEnd::Revoked
            };
            tx.remove_session(&hash, end)?;
            tx.audit(&entry)?;
            Ok(())
        })
        .await;
    match revoked {
        Ok(()) => Ok(true),
        Err(TxError::Abort(())) => Ok(false),
        Err(TxError::Store(e)) => Err(e),
    }
}
