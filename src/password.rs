//! Argon2id hashing and verification, off the async runtime and bounded: at most
//! `max_concurrent` hashes run (each takes `memory_kib` of RAM) and at most `queue_limit` wait;
//! beyond that callers get 503 at once instead of queueing without bound.
//!
//! argon2's working memory is managed here rather than by the crate (issue 7, RSS budget):
//! each block of `memory_kib` is its own memory mapping, so dropping it gives the RAM back to
//! the kernel, and up to `max_concurrent` of them are kept between hashes while logins keep
//! coming, then released by `release_idle_memory` once hashing has been idle for a while.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::Argon2Config;
use crate::gate::Gate;

/// Stored hashes asking for more than this are refused before verifying: a damaged or
/// foreign hash must not make us allocate gigabytes.
const MAX_STORED_MEMORY_KIB: u32 = 256 * 1024;
const MAX_STORED_ITERATIONS: u32 = 16;
const MAX_STORED_PARALLELISM: u32 = 16;

/// Length of the hash output vmsd writes (argon2's default).
const OUTPUT_LEN: usize = 32;

/// Above glibc's largest dynamic mmap threshold (32 MiB on 64-bit targets, less on 32-bit).
/// An allocation this big always gets a mapping of its own, unmapped again when freed. A
/// smaller one (argon2's default 19 MiB) would, after the first free, raise glibc's
/// thresholds and then live in the heap, resident for good, and keep the rest of the heap
/// from being trimmed as well.
const OWN_MAPPING_BYTES: usize = 33 * 1024 * 1024;

/// argon2 working memory of `blocks` blocks. Only those blocks are touched: the rest of the
/// reservation is address space, not RAM.
fn scratch(blocks: usize) -> Vec<Block> {
    let mut memory = Vec::with_capacity(blocks.max(OWN_MAPPING_BYTES / Block::SIZE));
    memory.resize(blocks, Block::default());
    memory
}

/// Working memory kept between hashes: never more buffers than hashes ran at once (at most
/// `max_concurrent`), whichever thread of the blocking pool runs them. (Left to the allocator,
/// each of those threads would keep its own copy in its own arena.)
#[derive(Default)]
struct Buffers {
    free: Mutex<Vec<Vec<Block>>>,
    /// Set by every request's hash; `release_idle_memory` frees the buffers when it finds it
    /// unset.
    used: AtomicBool,
}

impl Buffers {
    fn take(&self, blocks: usize) -> Vec<Block> {
        let kept = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match kept {
            Some(mut memory) => {
                if memory.len() < blocks {
                    memory.resize(blocks, Block::default());
                }
                memory
            }
            None => scratch(blocks),
        }
    }

    fn give(&self, memory: Vec<Block>, keep_at_most: usize) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < keep_at_most {
            free.push(memory);
        }
    }
}

/// Why a hash or a verification did not run to its end.
#[derive(Debug)]
pub enum HashError {
    /// Every hashing slot is taken and the queue is full, or the daemon is stopping: try again.
    Busy,
    /// The hash could not be computed (no randomness, a task that panicked): a bug or an OS
    /// failure, for the log only.
    Failed(String),
}

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HashError::Busy => f.write_str("password hashing queue full"),
            HashError::Failed(cause) => write!(f, "password hashing failed: {cause}"),
        }
    }
}

impl std::error::Error for HashError {}

pub struct Hasher {
    params: Params,
    max_concurrent: usize,
    /// Hashes at once (`max_concurrent`) and waiting (`queue_limit`).
    gate: Gate,
    /// A well-formed hash with the configured parameters that no password matches, verified
    /// against when a login is unknown so that the answer takes as long as for a known login.
    dummy_hash: String,
    buffers: Arc<Buffers>,
}

impl Hasher {
    pub fn new(cfg: &Argon2Config) -> Result<Hasher, String> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| format!("argon2 parameters: {e}"))?;
        let dummy_hash = unmatchable_hash(&params)?;
        Ok(Hasher {
            params,
            max_concurrent: cfg.max_concurrent,
            gate: Gate::new(cfg.max_concurrent, cfg.queue_limit),
            dummy_hash,
            buffers: Arc::new(Buffers::default()),
        })
    }

    /// Runs `work` on the blocking pool once a hashing slot is free, with pooled working
    /// memory. The permits move into the closure: `spawn_blocking` cannot be cancelled, so a
    /// client that disconnects must not free the slot while its hash still runs.
    async fn run<T: Send + 'static>(
        &self,
        blocks: usize,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let pass = self.gate.enter().await.map_err(|_| HashError::Busy)?;
        let buffers = self.buffers.clone();
        buffers.used.store(true, Ordering::Relaxed);
        let keep = self.max_concurrent;
        tokio::task::spawn_blocking(move || {
            let mut memory = buffers.take(blocks);
            let result = work(&mut memory);
            buffers.give(memory, keep);
            drop(pass);
            result
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let params = self.params.clone();
        self.run(params.block_count(), move |memory| {
            hash_with(&params, &password, memory)
        })
        .await?
        .map_err(HashError::Failed)
    }

    /// `None` for `stored` verifies against the dummy hash and returns false.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self
            .run(self.params.block_count(), move |memory| {
                verify_with(&password, &stored, memory)
            })
            .await?;
        Ok(known && ok)
    }

    /// Whether `stored` was made other than the configured way (algorithm, version, memory,
    /// iterations, lanes, output length): the next successful login re-hashes it (SPEC §1).
    /// A hash that does not parse is not re-hashed: it cannot have verified.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        parsed.algorithm != Algorithm::Argon2id.ident()
            || parsed.version != Some(Version::V0x13.into())
            || params.m_cost() != self.params.m_cost()
            || params.t_cost() != self.params.t_cost()
            || params.p_cost() != self.params.p_cost()
            || parsed.hash.is_none_or(|h| h.len() != OUTPUT_LEN)
    }

    /// For start-up and offline tools, where there is no runtime to protect. It does not
    /// count as use: the first `release_idle_memory` (the housekeeping task runs one right
    /// after start-up) frees its buffer.
    pub fn hash_blocking(&self, password: &str) -> Result<String, String> {
        let mut memory = self.buffers.take(self.params.block_count());
        let result = hash_with(&self.params, password, &mut memory);
        self.buffers.give(memory, self.max_concurrent);
        result
    }

    /// Gives the kept working memory back unless a hash ran since the previous call; the
    /// housekeeping task calls it periodically, so an idle daemon holds none.
    pub fn release_idle_memory(&self) {
        if !self.buffers.used.swap(false, Ordering::Relaxed) {
            self.buffers
                .free
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "no randomness for a salt".to_owned())?;
    Ok(bytes)
}

/// argon2id over `password` into a PHC string, exactly as `argon2`'s `PasswordHasher` writes
/// it, but in `memory`.
fn hash_with(params: &Params, password: &str, memory: &mut [Block]) -> Result<String, String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| e.to_string())?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(password.as_bytes(), &salt_bytes(&salt)?, &mut out, memory)
        .map_err(|e| e.to_string())?;
    phc_string(params, &salt, &out)
}

fn salt_bytes(salt: &SaltString) -> Result<Vec<u8>, String> {
    let mut buf = [0u8; 64];
    salt.as_salt()
        .decode_b64(&mut buf)
        .map(<[u8]>::to_vec)
        .map_err(|e| e.to_string())
}

fn phc_string(params: &Params, salt: &SaltString, out: &[u8]) -> Result<String, String> {
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params
            .try_into()
            .map_err(|e: argon2::password_hash::Error| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// A hash in the configured format whose output is random bytes rather than a hash of
/// anything: verifying against it costs a full hash and never succeeds, and making it costs
/// nothing at start-up.
fn unmatchable_hash(params: &Params) -> Result<String, String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| e.to_string())?;
    phc_string(params, &salt, &random_bytes::<OUTPUT_LEN>()?)
}

/// Verifies with the parameters stored in the hash, after bounding them.
fn verify_with(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
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
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let argon = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    });
    // Output's equality is constant-time.
    computed.is_ok_and(|c| c == expected)
}

/// 24 random bytes as hex: the initial admin password.
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

    #[test]
    fn only_hashes_made_otherwise_need_a_rehash() -> Result<(), Box<dyn std::error::Error>> {
        let h = Hasher::new(&small())?;
        assert!(!h.needs_rehash(&h.hash_blocking("pw")?));
        let other = Hasher::new(&Argon2Config {
            iterations: 2,
            ..small()
        })?;
        assert!(h.needs_rehash(&other.hash_blocking("pw")?));
        let more_memory = Hasher::new(&Argon2Config {
            memory_kib: 128,
            ..small()
        })?;
        assert!(h.needs_rehash(&more_memory.hash_blocking("pw")?));
        assert!(
            !h.needs_rehash("not a hash"),
            "what cannot verify is not re-hashed"
        );
        Ok(())
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
        let mut memory = vec![Block::default(); 64];
        assert!(!verify_with("x", huge, &mut memory));
        assert!(!verify_with("x", "not a hash", &mut memory));
        assert!(!verify_with("x", "", &mut memory));
    }

    #[test]
    fn hashes_agree_with_the_argon2_crate_both_ways() -> Result<(), Box<dyn std::error::Error>> {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let params = Params::new(64, 1, 1, None).map_err(|e| e.to_string())?;
        let mut memory = vec![Block::default(); params.block_count()];
        let ours = hash_with(&params, "pass word", &mut memory)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        assert!(argon2
            .verify_password(
                b"pass word",
                &PasswordHash::new(&ours).map_err(|e| e.to_string())?
            )
            .is_ok());
        let salt = SaltString::encode_b64(b"0123456789abcdef").map_err(|e| e.to_string())?;
        let theirs = argon2
            .hash_password(b"pass word", &salt)
            .map_err(|e| e.to_string())?
            .to_string();
        assert!(verify_with("pass word", &theirs, &mut memory));
        assert!(!verify_with("pass wort", &theirs, &mut memory));
        // Made under larger parameters than the pool's buffers: verified in memory of its own.
        let bigger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(256, 2, 1, None).map_err(|e| e.to_string())?,
        )
        .hash_password(b"pass word", &salt)
        .map_err(|e| e.to_string())?
        .to_string();
        assert!(verify_with("pass word", &bigger, &mut memory));
        Ok(())
    }

    #[test]
    fn the_pool_never_holds_more_buffers_than_ran_at_once() -> Result<(), String> {
        let h = Hasher::new(&small())?;
        for _ in 0..10 {
            h.hash_blocking("password1")?;
        }
        let free = h.buffers.free.lock().map(|f| f.len()).unwrap_or(0);
        assert_eq!(free, 1);
        Ok(())
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_answers_503_beyond_it(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let h = Arc::new(Hasher::new(&small())?);
        // Occupy the one running place, and the one queue place with a waiter.
        let running = h.gate.enter().await.map_err(|_| "gate full")?;
        let waiter = tokio::spawn({
            let h = h.clone();
            async move { h.gate.enter().await.is_ok() }
        });
        tokio::task::yield_now().await;
        let r = h.hash("password1".into()).await;
        assert!(matches!(r, Err(HashError::Busy)));
        drop(running);
        assert!(waiter.await?);
        assert!(h.hash("password1".into()).await.is_ok());
        Ok(())
    }

    #[tokio::test]
    async fn the_dummy_hash_has_the_configured_cost_and_matches_nothing(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let h = Hasher::new(&small())?;
        assert!(h.dummy_hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let mut memory = Vec::new();
        assert!(!verify_with("", &h.dummy_hash, &mut memory));
        assert!(!h.verify("anything".into(), None).await?);
        Ok(())
    }

    #[tokio::test]
    async fn working_memory_is_kept_while_used_and_released_when_idle(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let h = Hasher::new(&small())?;
        h.hash("password1".into()).await?;
        let kept = || h.buffers.free.lock().map(|v| v.len()).unwrap_or(0);
        assert_eq!(kept(), 1);
        // The first sweep after use keeps it; a sweep with no hash in between frees it.
        h.release_idle_memory();
        assert_eq!(kept(), 1);
        h.release_idle_memory();
        assert_eq!(kept(), 0);
        Ok(())
    }

    #[test]
    fn random_passwords_differ() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
    }
}
