//! Argon2id hashing and verification, off the async runtime and bounded: at most
//! `max_concurrent` hashes run (each takes `memory_kib` of RAM) and at most `queue_limit` wait;
//! beyond that callers get 503 at once instead of queueing without bound.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::Argon2Config;
use crate::error::ApiError;

/// Stored hashes asking for more than this are refused before verifying: a damaged or
/// foreign hash must not make us allocate gigabytes.
const MAX_STORED_MEMORY_KIB: u32 = 256 * 1024;
const MAX_STORED_ITERATIONS: u32 = 16;
const MAX_STORED_PARALLELISM: u32 = 16;

pub struct Hasher {
    params: Params,
    /// Permits to run a hash now.
    running: Arc<Semaphore>,
    /// Permits to be running or waiting: `max_concurrent + queue_limit`.
    admitted: Arc<Semaphore>,
    /// A hash of a random password, verified against when a login is unknown so that the
    /// answer takes as long as for a known login.
    dummy_hash: String,
}

impl Hasher {
    pub fn new(cfg: &Argon2Config) -> Result<Hasher, String> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| format!("argon2 parameters: {e}"))?;
        let dummy_hash = hash_with(&params, &random_password())?;
        Ok(Hasher {
            params,
            running: Arc::new(Semaphore::new(cfg.max_concurrent)),
            admitted: Arc::new(Semaphore::new(cfg.max_concurrent + cfg.queue_limit)),
            dummy_hash,
        })
    }

    /// Runs `work` on the blocking pool once a hashing slot is free. The permits move into
    /// the closure: `spawn_blocking` cannot be cancelled, so a client that disconnects must
    /// not free the slot while its hash still runs.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Unavailable { retry_after: 1 })?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Unavailable { retry_after: 1 })?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(running);
            drop(admitted);
            result
        })
        .await
        .map_err(ApiError::internal)
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.run(move || hash_with(&params, &password))
            .await?
            .map_err(ApiError::internal)
    }

    /// `None` for `stored` verifies against the dummy hash and returns false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self.run(move || verify_with(&password, &stored)).await?;
        Ok(known && ok)
    }

    /// For start-up and offline tools, where there is no runtime to protect.
    pub fn hash_blocking(&self, password: &str) -> Result<String, String> {
        hash_with(&self.params, password)
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String, String> {
    let mut salt_bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt_bytes)
        .map_err(|_| "no randomness for a salt".to_owned())?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies with the parameters stored in the hash, after bounding them.
fn verify_with(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_STORED_MEMORY_KIB
        || params.t_cost() > MAX_STORED_ITERATIONS
        || params.p_cost() > MAX_STORED_PARALLELISM
    {
        tracing::warn!("refused to verify a stored password hash with out-of-bounds parameters");
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// 24 random bytes as hex: the initial admin password and the dummy hash's input.
pub fn random_password() -> String {
    let mut bytes = [0u8; 24];
    // SystemRandom only fails when the OS has no entropy source; a fixed string then would
    // be a known password, so fall back to something that can never be typed.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        return "\u{0}".repeat(64);
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Argon2Config {
        Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 1,
            queue_limit: 1,
        }
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() -> Result<(), Box<dyn std::error::Error>> {
        let h = Hasher::new(&small())?;
        let stored = h.hash("correct horse".into()).await?;
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(
            h.verify("correct horse".into(), Some(stored.clone()))
                .await?
        );
        assert!(!h.verify("wrong horse".into(), Some(stored)).await?);
        assert!(!h.verify("anything".into(), None).await?);
        Ok(())
    }

    #[test]
    fn stored_parameters_are_bounded_and_garbage_fails() {
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(!verify_with("x", huge));
        assert!(!verify_with("x", "not a hash"));
        assert!(!verify_with("x", ""));
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_answers_503_beyond_it(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let h = Arc::new(Hasher::new(&small())?);
        // Occupy the one running slot and the one queue slot by holding their permits.
        let a = h.admitted.clone().try_acquire_many_owned(2)?;
        let r = h.hash("password1".into()).await;
        assert!(matches!(r, Err(ApiError::Unavailable { .. })));
        drop(a);
        assert!(h.hash("password1".into()).await.is_ok());
        Ok(())
    }

    #[test]
    fn random_passwords_differ() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
    }
}
