//! Tokens, sessions and the login rules of SPEC §3: token generation and hashing, bearer
//! authentication, per-account lockout and per-IP throttling (in memory: an automatic lockout
//! blocks new logins only), session limits and eviction, and last-use times kept in memory and
//! persisted lazily so that reading a token never writes to disk.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::error::{ApiError, FieldErrors};
use crate::model::{
    now, Account, AuditEntry, Session, SessionKey, UnixTime, UserType, STATUS_DISABLED,
    STATUS_LOCKED,
};
use crate::store::{Authenticated, TokenHash, TxError};
use crate::validate::{self, Input};
use crate::App;

pub const MSG_BAD_CREDENTIALS: &str = "These credentials do not match our records.";
pub const MSG_DISABLED: &str = "This account is disabled.";
pub const MSG_EXPIRED: &str = "This account has expired.";

/// A session counts as online when used within this window (SPEC §3).
const ONLINE_WINDOW_SECS: i64 = 300;
/// Bound on remembered IPs and accounts, so a flood of distinct sources cannot grow memory.
const MAX_TRACKED: usize = 100_000;

/// Where a request comes from, as the session will remember it.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    pub ip: Option<IpAddr>,
    pub device: Option<String>,
    pub client: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientMeta {
    pub fn from_headers(headers: &http::HeaderMap, ip: Option<IpAddr>) -> ClientMeta {
        let header = |name: &str, max: usize| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(max).collect::<String>())
        };
        ClientMeta {
            ip,
            device: header("x-uuid", 128),
            client: header("x-client", 64),
            user_agent: header("user-agent", 512),
        }
    }
}

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
    fn admits(self, t: UserType) -> bool {
        match self {
            LoginKind::Client => t != UserType::Admin,
            LoginKind::Admin => t == UserType::Admin,
            LoginKind::Any => true,
        }
    }
}

/// An authenticated request: the account, and which of its sessions the token is.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Shared with the store's cache of recent callers: never changed in place.
    pub account: Arc<Account>,
    pub token_hash: TokenHash,
    pub session: Arc<SessionKey>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.account.user_type == UserType::Admin
    }
}

/// What a successful login hands back: the token is shown to its owner here only.
pub struct Login {
    pub account: Account,
    pub token: String,
    pub session: Session,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    in_flight: u32,
    locked_until: Option<Instant>,
}

/// One admitted password check (see `AuthState::admission`).
struct Admission<'a> {
    state: &'a AuthState,
    account_id: u64,
    settled: bool,
}

impl Admission<'_> {
    /// Records the verdict; true when this failure started a lockout.
    fn settle(mut self, success: bool, threshold: u32, duration: Duration) -> bool {
        self.settled = true;
        self.state
            .settle(self.account_id, success, threshold, duration)
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.state.release(self.account_id);
        }
    }
}

#[derive(Default)]
pub struct AuthState {
    failures: Mutex<HashMap<u64, Failures>>,
    ip_attempts: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    last_used: Mutex<HashMap<TokenHash, UnixTime>>,
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| ApiError::internal("the OS gave no randomness"))?;
    Ok(bytes)
}

pub fn hash_token(token: &str) -> TokenHash {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A new token (256 random bits, hex) with its stored hash and public 80-hex-char id.
pub fn new_token() -> Result<(String, TokenHash, String), ApiError> {
    let token = hex::encode(random_bytes::<32>()?);
    let id = hex::encode(random_bytes::<40>()?);
    Ok((token.clone(), hash_token(&token), id))
}

fn lock(map: &Mutex<HashMap<u64, Failures>>) -> std::sync::MutexGuard<'_, HashMap<u64, Failures>> {
    // A panic while holding these maps cannot leave them inconsistent in a way that matters
    // (counters only), so a poisoned lock is used as is.
    map.lock().unwrap_or_else(|p| p.into_inner())
}

impl AuthState {
    /// Seconds left of an automatic lockout, if one is active.
    pub fn lockout_remaining(&self, account_id: u64) -> Option<u64> {
        let map = lock(&self.failures);
        let until = map.get(&account_id)?.locked_until?;
        let left = until.checked_duration_since(Instant::now())?;
        Some(left.as_secs().max(1))
    }

    pub fn is_locked_out(&self, account_id: u64) -> bool {
        self.lockout_remaining(account_id).is_some()
    }

    /// An admin set status 0: the automatic lockout lifts and the count restarts.
    pub fn clear_lockout(&self, account_id: u64) {
        lock(&self.failures).remove(&account_id);
    }

    /// Admits one password check for `account_id`, or says how long to wait. Failures plus
    /// checks in flight never exceed the threshold, so concurrent guesses cannot get more
    /// password checks than the configured attempts.
    fn admit(&self, account_id: u64, threshold: u32) -> Result<(), u64> {
        let mut map = lock(&self.failures);
        if map.len() >= MAX_TRACKED && !map.contains_key(&account_id) {
            let now = Instant::now();
            map.retain(|_, f| f.in_flight > 0 || f.locked_until.is_some_and(|u| u > now));
        }
        let entry = map.entry(account_id).or_default();
        if let Some(until) = entry.locked_until {
            match until.checked_duration_since(Instant::now()) {
                Some(left) => return Err(left.as_secs().max(1)),
                None => {
                    // The lock ran out: the count restarts, checks still in flight stay counted.
                    entry.count = 0;
                    entry.locked_until = None;
                }
            }
        }
        if entry.count + entry.in_flight >= threshold {
            return Err(1);
        }
        entry.in_flight += 1;
        Ok(())
    }

    /// `admit` as a guard: a check that ends without a verdict (the hashing queue was full,
    /// the request timed out, the client went away and the future was dropped) gives its
    /// place back instead of holding it forever or counting as a failed login.
    fn admission(&self, account_id: u64, threshold: u32) -> Result<Admission<'_>, u64> {
        self.admit(account_id, threshold)?;
        Ok(Admission {
            state: self,
            account_id,
            settled: false,
        })
    }

    /// Ends an admitted check that reached no verdict.
    fn release(&self, account_id: u64) {
        let mut map = lock(&self.failures);
        if let Some(entry) = map.get_mut(&account_id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if entry.in_flight == 0 && entry.count == 0 && entry.locked_until.is_none() {
                map.remove(&account_id);
            }
        }
    }

    /// Ends an admitted check. Returns true when this failure started a lockout.
    fn settle(&self, account_id: u64, success: bool, threshold: u32, duration: Duration) -> bool {
        let mut map = lock(&self.failures);
        let entry = map.entry(account_id).or_default();
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if success {
            entry.count = 0;
            if entry.in_flight == 0 {
                map.remove(&account_id);
            }
            return false;
        }
        entry.count += 1;
        if entry.count >= threshold && entry.locked_until.is_none() {
            entry.locked_until = Some(Instant::now() + duration);
            return true;
        }
        false
    }

    /// Counts a login attempt from `ip`; Err(seconds) when the window is full.
    fn throttle_ip(&self, ip: IpAddr, limit: u32, window: Duration) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.ip_attempts.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let attempts = map.entry(ip).or_default();
        while attempts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            attempts.pop_front();
        }
        if attempts.len() >= limit as usize {
            let oldest = attempts.front().copied().unwrap_or(now);
            let left = window.saturating_sub(now.duration_since(oldest));
            return Err(left.as_secs().max(1));
        }
        attempts.push_back(now);
        Ok(())
    }

    fn touch(&self, hash: TokenHash, at: UnixTime) {
        let mut map = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(hash, at);
    }

    pub fn last_used(&self, hash: &TokenHash) -> Option<UnixTime> {
        let map = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
        map.get(hash).copied()
    }

    /// Hands the last-use times gathered since the last call to the caller, for persisting.
    pub fn drain_last_used(&self) -> Vec<(TokenHash, UnixTime)> {
        let mut map = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
        map.drain().collect()
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Resolves a token to its caller, or 401. Writes nothing to disk.
pub fn authenticate_token(app: &App, token: &str) -> Result<Caller, ApiError> {
    if token.len() > 256 {
        return Err(ApiError::Unauthenticated);
    }
    let hash = hash_token(token);
    let Authenticated { session, account } = app
        .store
        .authenticated(&hash)?
        .ok_or(ApiError::Unauthenticated)?;
    // Checked on every request, cached records or not: expiry needs no write to take effect.
    let at = now();
    if session.expires_at <= at {
        return Err(ApiError::Unauthenticated);
    }
    if !account.may_use_tokens(at) {
        return Err(ApiError::Unauthenticated);
    }
    app.auth.touch(hash, at);
    Ok(Caller {
        account,
        token_hash: hash,
        session,
    })
}

pub fn authenticate(app: &App, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers).ok_or(ApiError::Unauthenticated)?;
    authenticate_token(app, token)
}

/// The answer for a wrong login or password: the same for both, so logins cannot be probed.
fn bad_credentials() -> ApiError {
    ApiError::field("login", MSG_BAD_CREDENTIALS)
}

fn audit_entry(
    app: &App,
    actor: Option<u64>,
    action: &str,
    target: Option<u64>,
    fields: &[&str],
) -> AuditEntry {
    AuditEntry::new(
        app.store.next_audit_id(),
        actor,
        action,
        "account",
        target,
        fields,
    )
}

/// Writes an audit entry on its own (login failures, lockouts) and makes it durable.
async fn audit_alone(app: &App, entry: AuditEntry) -> Result<(), ApiError> {
    app.store.transaction(|tx| tx.audit(&entry))?;
    app.store.flush().await?;
    Ok(())
}

/// The whole login of SPEC §3 for one route. `body` is the request object.
pub async fn login(
    app: &App,
    body: &Map<String, Value>,
    kind: LoginKind,
    meta: &ClientMeta,
) -> Result<Login, ApiError> {
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
    input.finish()?;
    let (Some(login), Some(password)) = (login, password) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let auth_cfg = &app.config.auth;

    if let Some(ip) = meta.ip {
        if let Err(retry_after) =
            app.auth
                .throttle_ip(ip, auth_cfg.ip_login_limit, auth_cfg.ip_login_window)
        {
            tracing::warn!(%ip, "login throttled for this address");
            return Err(ApiError::TooManyAttempts { retry_after });
        }
    }

    let account = app
        .store
        .account_by_login(&validate::login_key(&login))?
        .filter(|a| kind.admits(a.user_type));
    let Some(account) = account else {
        // Same work and same answer as a wrong password.
        app.hasher.verify(password, None).await?;
        audit_alone(
            app,
            audit_entry(app, None, "login_failed", None, &["login"]),
        )
        .await?;
        return Err(bad_credentials());
    };

    if account.status == STATUS_LOCKED {
        return Err(ApiError::TooManyAttempts {
            retry_after: auth_cfg.lockout_duration.as_secs(),
        });
    }
    let admission = app
        .auth
        .admission(account.id, auth_cfg.lockout_threshold)
        .map_err(|retry_after| ApiError::TooManyAttempts { retry_after })?;
    // A 503 from a full hashing queue drops the admission unsettled: no failure is counted.
    let ok = app
        .hasher
        .verify(password, Some(account.password_hash.clone()))
        .await?;
    let locked_now = admission.settle(ok, auth_cfg.lockout_threshold, auth_cfg.lockout_duration);
    if !ok {
        audit_alone(
            app,
            audit_entry(app, None, "login_failed", Some(account.id), &["password"]),
        )
        .await?;
        if locked_now {
            tracing::warn!(
                user_id = account.id,
                "account {} locked out after failed logins",
                account.id
            );
            audit_alone(
                app,
                audit_entry(app, None, "lockout", Some(account.id), &["status"]),
            )
            .await?;
        }
        return Err(bad_credentials());
    }
    let at = now();
    if account.status == STATUS_DISABLED {
        return Err(ApiError::field("login", MSG_DISABLED));
    }
    if account.is_expired(at) {
        return Err(ApiError::field("login", MSG_EXPIRED));
    }

    let (token, hash, access_token_id) = new_token()?;
    let ttl = match account.user_type {
        UserType::Admin => auth_cfg.admin_token_ttl,
        _ => auth_cfg.client_token_ttl,
    };
    let session = Session {
        account_id: account.id,
        access_token_id,
        device: meta.device.clone(),
        client: meta.client.clone(),
        user_agent: meta.user_agent.clone(),
        ip: meta.ip.map(|ip| ip.to_string()),
        created_at: at,
        expires_at: at.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        last_used: Some(at),
    };
    let limit = auth_cfg.sessions_limit;
    let evict_entry = audit_entry(
        app,
        Some(account.id),
        "session_revoked",
        Some(account.id),
        &["session"],
    );
    let account = app.store.transaction(|tx| {
        let mut account = tx
            .account(session.account_id)?
            .ok_or_else(bad_credentials)?;
        let mut evicted = false;
        // A login from a device that already has a session replaces that session.
        let mut hashes = tx.session_hashes(account.id)?;
        if let Some(device) = &session.device {
            for h in &hashes {
                if let Some(s) = tx.session(h)? {
                    if s.device.as_deref() == Some(device.as_str()) {
                        tx.remove_session(h)?;
                    }
                }
            }
        }
        if let Some(id) = &session_id {
            if let Some(h) = tx.hash_by_token_id(id)? {
                if tx.session(&h)?.is_some_and(|s| s.account_id == account.id) {
                    tx.remove_session(&h)?;
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
            return Err(TxError::Abort(ApiError::SessionLimit {
                sessions: Value::Array(list),
                limit,
            }));
        }
        tx.add_session(&hash, &session)?;
        if evicted {
            tx.audit(&evict_entry)?;
        }
        account.last_login = Some(at);
        tx.put_account(
            &account,
            Some(&validate::login_key(&account.login)),
            "login",
        )?;
        Ok(account)
    })?;
    app.store.flush().await?;
    tracing::info!(user_id = account.id, "user {} logged in", account.id);
    Ok(Login {
        account,
        token,
        session,
    })
}

/// One item of `GET /api/v1/sessions` (and of the 419 answer).
pub fn session_view(
    app: &App,
    hash: &TokenHash,
    s: &Session,
    current: Option<&TokenHash>,
) -> Value {
    let last = [app.auth.last_used(hash), s.last_used]
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
pub async fn logout(app: &App, caller: &Caller) -> Result<(), ApiError> {
    let entry = audit_entry(
        app,
        Some(caller.account.id),
        "logout",
        Some(caller.account.id),
        &["session"],
    );
    app.store.transaction(|tx| {
        tx.remove_session(&caller.token_hash)?;
        tx.audit(&entry)
    })?;
    app.store.flush().await?;
    Ok(())
}

/// Revokes one of the caller's sessions by its public id; 404 when it is not theirs.
pub async fn revoke_session(
    app: &App,
    caller: &Caller,
    access_token_id: &str,
) -> Result<(), ApiError> {
    let entry = audit_entry(
        app,
        Some(caller.account.id),
        "session_revoked",
        Some(caller.account.id),
        &["session"],
    );
    app.store.transaction(|tx| {
        let hash = tx
            .hash_by_token_id(access_token_id)?
            .ok_or(ApiError::NotFound)?;
        match tx.session(&hash)? {
            Some(s) if s.account_id == caller.account.id => {
                tx.remove_session(&hash)?;
                tx.audit(&entry)
            }
            _ => Err(TxError::Abort(ApiError::NotFound)),
        }
    })?;
    app.store.flush().await?;
    Ok(())
}

/// Hashes a new password after checking policy; errors are keyed as the route names them.
pub fn password_errors(app: &App, password: &str, confirmation: Option<&str>) -> FieldErrors {
    let mut errors = FieldErrors::new();
    validate::check_new_password(
        &mut errors,
        password,
        confirmation,
        app.config.auth.password_min_length,
    );
    errors
}

/// How often housekeeping persists last-use times and sweeps dead sessions.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(30);

/// Background upkeep until shutdown: persist last-use times (lazily, off the request path),
/// remove sessions that expired, or whose account is gone, disabled or past `expired_at`, and
/// keep the audit log within `limits.audit_max_entries`.
pub async fn housekeeping(app: std::sync::Arc<App>, mut shutdown: crate::shutdown::Shutdown) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tick.tick() => {}
        }
        housekeeping_pass(&app).await;
    }
    persist_last_used(&app);
}

/// One round of housekeeping: expired sessions, audit entries beyond
/// `limits.audit_max_entries`, idle hashing memory.
pub async fn housekeeping_pass(app: &std::sync::Arc<App>) {
    let worker = app.clone();
    let keep = app.config.limits.audit_max_entries;
    let done =
        tokio::task::spawn_blocking(move || (sweep(&worker), worker.store.prune_audit(keep))).await;
    match done {
        Ok((swept, pruned)) => {
            match swept {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "removed {n} expired sessions"),
                Err(e) => tracing::error!(error = %e, "session sweep failed"),
            }
            match pruned {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    entries = n,
                    "removed the {n} oldest audit entries (limits.audit_max_entries = {keep})"
                ),
                Err(e) => tracing::error!(error = %e, "audit pruning failed"),
            }
        }
        Err(e) => tracing::error!(error = %e, "housekeeping panicked"),
    }
    app.hasher.release_idle_memory();
}

/// Writes the in-memory last-use times to the store.
pub fn persist_last_used(app: &App) {
    let updates = app.auth.drain_last_used();
    if !updates.is_empty() {
        if let Err(e) = app.store.touch_sessions(&updates) {
            tracing::warn!(error = %e, "could not persist session last-use times");
        }
    }
}

/// One pass of the session sweep; returns how many sessions went.
pub fn sweep(app: &App) -> Result<usize, ApiError> {
    persist_last_used(app);
    let at = now();
    let mut dead = Vec::new();
    for item in app.store.all_sessions() {
        let (hash, session) = item?;
        let alive = session.expires_at > at
            && app
                .store
                .account(session.account_id)?
                .is_some_and(|a| a.may_use_tokens(at));
        if !alive {
            dead.push(hash);
        }
    }
    if dead.is_empty() {
        return Ok(0);
    }
    let removed = app.store.transaction(|tx| {
        let mut n = 0;
        for hash in &dead {
            if tx.remove_session(hash)?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    })?;
    app.store.flush_blocking()?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_with_an_80_char_public_id() -> Result<(), ApiError> {
        let (t1, h1, id1) = new_token()?;
        let (t2, _, id2) = new_token()?;
        assert_eq!(t1.len(), 64);
        assert_ne!(t1, t2);
        assert_eq!(id1.len(), 80);
        assert!(id1
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(id1, id2);
        assert_eq!(hash_token(&t1), h1);
        Ok(())
    }

    #[test]
    fn bearer_parsing() {
        let mut h = http::HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            "authorization",
            http::HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            "authorization",
            http::HeaderValue::from_static("bearer  xyz "),
        );
        assert_eq!(bearer(&h), Some("xyz"));
        h.insert("authorization", http::HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert("authorization", http::HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn lockout_admits_no_more_checks_than_the_threshold() {
        let state = AuthState::default();
        let d = Duration::from_secs(60);
        // Three concurrent checks against a threshold of 3: a fourth is refused while they run.
        for _ in 0..3 {
            assert!(state.admit(1, 3).is_ok());
        }
        assert!(state.admit(1, 3).is_err());
        assert!(!state.settle(1, false, 3, d));
        assert!(!state.settle(1, false, 3, d));
        assert!(state.settle(1, false, 3, d));
        assert!(state.is_locked_out(1));
        assert!(state.lockout_remaining(1).is_some_and(|s| s > 50));
        assert!(state.admit(1, 3).is_err());
        state.clear_lockout(1);
        assert!(state.admit(1, 3).is_ok());
        assert!(!state.settle(1, true, 3, d));
        assert!(!state.is_locked_out(1));
    }

    #[test]
    fn an_admission_dropped_without_a_verdict_counts_nothing() {
        let state = AuthState::default();
        let d = Duration::from_secs(60);
        for _ in 0..5 {
            let admission = state.admission(3, 2);
            assert!(admission.is_ok());
        }
        // Five abandoned checks against a threshold of 2: none is held, none counted.
        assert!(state.admission(3, 2).is_ok_and(|a| !a.settle(false, 2, d)));
        assert!(state.admission(3, 2).is_ok_and(|a| a.settle(false, 2, d)));
        assert!(state.is_locked_out(3));
    }

    #[test]
    fn a_lockout_lifts_by_itself() {
        let state = AuthState::default();
        assert!(state.admit(2, 1).is_ok());
        assert!(state.settle(2, false, 1, Duration::from_millis(20)));
        assert!(state.admit(2, 1).is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(state.admit(2, 1).is_ok());
    }

    #[test]
    fn ip_throttle_counts_attempts_in_a_sliding_window() {
        let state = AuthState::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let w = Duration::from_millis(50);
        assert!(state.throttle_ip(ip, 2, w).is_ok());
        assert!(state.throttle_ip(ip, 2, w).is_ok());
        assert!(state.throttle_ip(ip, 2, w).is_err());
        assert!(state.throttle_ip(other, 2, w).is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(state.throttle_ip(ip, 2, w).is_ok());
    }
}
