//! Tokens and who is calling (SPEC §3): token generation and hashing, the bearer header,
//! and the check of a token against its session and account on every request, from the
//! store's cache and without a disk write.

use std::net::IpAddr;
use std::sync::Arc;

use crate::app::App;
use crate::model::{now, Account, SessionKey, UserType};
use crate::store::{Authenticated, StoreError, TokenHash};

/// Why a token does not identify a caller.
#[derive(Debug)]
pub enum AuthError {
    /// No, invalid, expired or revoked token, or an account that may not use it any more.
    Unauthenticated,
    Store(StoreError),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Unauthenticated => f.write_str("unauthenticated"),
            AuthError::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Store(e)
    }
}

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

/// The OS gave no randomness: nothing secret can be made.
#[derive(Debug, Clone, Copy)]
pub struct NoRandomness;

impl std::fmt::Display for NoRandomness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the OS gave no randomness")
    }
}

impl std::error::Error for NoRandomness {}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], NoRandomness> {
    let mut bytes = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| NoRandomness)?;
    Ok(bytes)
}

pub fn hash_token(token: &str) -> TokenHash {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A new token (256 random bits, hex) with its stored hash and public 80-hex-char id.
pub fn new_token() -> Result<(String, TokenHash, String), NoRandomness> {
    let token = hex::encode(random_bytes::<32>()?);
    let id = hex::encode(random_bytes::<40>()?);
    Ok((token.clone(), hash_token(&token), id))
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

/// Resolves a token to its caller. Writes nothing to disk.
pub fn authenticate_token(app: &App, token: &str) -> Result<Caller, AuthError> {
    if token.len() > 256 {
        return Err(AuthError::Unauthenticated);
    }
    let hash = hash_token(token);
    let Authenticated { session, account } = app
        .store
        .authenticated(&hash)?
        .ok_or(AuthError::Unauthenticated)?;
    // Checked on every request, cached records or not: expiry needs no write to take effect.
    let at = now();
    if session.expires_at <= at || !account.may_use_tokens(at) {
        return Err(AuthError::Unauthenticated);
    }
    app.store.touch_session(hash, at);
    Ok(Caller {
        account,
        token_hash: hash,
        session,
    })
}

pub fn authenticate(app: &App, headers: &http::HeaderMap) -> Result<Caller, AuthError> {
    let token = bearer(headers).ok_or(AuthError::Unauthenticated)?;
    authenticate_token(app, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_with_an_80_char_public_id() -> Result<(), NoRandomness> {
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
}
