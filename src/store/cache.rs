//! What the store keeps in memory between writes: the decoded sessions and accounts of recent
//! callers, the licence pools, what the media hook looked up (sessions by public id, cameras
//! by media path), and last-use times of sessions (written back lazily, so that reading a
//! token never writes to disk).
//!
//! Every write bumps a generation (committed or not, before its caller can answer). What is
//! kept decoded is tagged with the generation read before its records were, and used only
//! while the generation is unchanged, so nothing kept outlives a change: a revoked token, a
//! disabled account, a moved licence pool.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{decode, encode, Store, StoreError, TokenHash};
use crate::model::{Account, Session, SessionKey, UnixTime};
use crate::permissions::{LicenseLevel, Pool};

/// At most this many tokens' sessions and accounts are kept decoded, so that a request does
/// not read and decode both records again (half the instructions of a `GET /users/self`,
/// issue 7, callgrind): a few hundred KiB at most; an appliance has a handful of clients.
pub(super) const AUTH_CACHE_ENTRIES: usize = 256;

/// What authenticating a token found: its session and its account, decoded.
#[derive(Clone)]
pub struct Authenticated {
    pub session: Arc<SessionKey>,
    pub account: Arc<Account>,
}

#[derive(Default)]
pub(super) struct Cache {
    generation: AtomicU64,
    /// The three licence pools, tagged: every user view renders them, and three sled reads
    /// per request were 4 % of a `GET /users/self` (issue 7).
    pools: Mutex<Option<(u64, [Pool; 3])>>,
    /// Decoded sessions and accounts of recent callers, tagged.
    authenticated: Mutex<HashMap<TokenHash, (u64, Authenticated)>>,
    /// Last use of each session since the last `persist_last_used`.
    last_used: Mutex<HashMap<TokenHash, UnixTime>>,
    /// The media hook's lookups (SPEC §8), all of one generation.
    media: Mutex<MediaLookups>,
}

/// At most this many media paths (hits and misses) and sessions are kept for the hook; a
/// local client sending endless distinct paths only makes the maps start over.
pub(super) const MEDIA_CACHE_ENTRIES: usize = 1024;

/// What the media hook looked up since the last write: a play request costs no sled read
/// while nothing changed (issue 11: ≥ 20 000 checks/s, p99 ≤ 1 ms).
#[derive(Default)]
pub(super) struct MediaLookups {
    generation: u64,
    /// Media path → the camera it names, or none.
    cameras: HashMap<String, Option<u64>>,
    /// Public session id → its session and account.
    sessions: HashMap<String, Option<Authenticated>>,
}

impl MediaLookups {
    /// The maps, emptied if they hold answers of another generation than `generation`.
    fn at(&mut self, generation: u64) -> &mut MediaLookups {
        if self.generation != generation {
            self.cameras.clear();
            self.sessions.clear();
            self.generation = generation;
        }
        self
    }
}

/// Inserts into a bounded map: starts over when full rather than tracking ages.
fn insert_bounded<V>(map: &mut HashMap<String, V>, key: &str, value: V) {
    if map.len() >= MEDIA_CACHE_ENTRIES {
        map.clear();
    }
    map.insert(key.to_owned(), value);
}

/// A poisoned lock is used as is: these maps hold copies of stored records and times, which
/// a panic elsewhere cannot leave half-changed in a way that matters.
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// After any write: what is kept is read again on its next use.
    pub(super) fn written(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    #[cfg(test)]
    pub(super) fn authenticated_len(&self) -> usize {
        locked(&self.authenticated).len()
    }
}

impl Store {
    /// The session stored under a token hash and its account, from memory when no write
    /// happened since they were read. `None` when either is missing.
    pub fn authenticated(&self, hash: &TokenHash) -> Result<Option<Authenticated>, StoreError> {
        // Read before the records: a write committed after this makes the entry stale at once.
        let generation = self.cache.generation();
        if let Some((tagged, found)) = locked(&self.cache.authenticated).get(hash) {
            if *tagged == generation {
                return Ok(Some(found.clone()));
            }
        }
        // Only what authentication needs of the session (see `SessionKey`).
        let Some(session) =
            Self::get::<SessionKey>(&self.trees.tokenhash_session, "tokenhash_session", hash)?
        else {
            return Ok(None);
        };
        let Some(account) = self.account(session.account_id)? else {
            return Ok(None);
        };
        let found = Authenticated {
            session: Arc::new(session),
            account: Arc::new(account),
        };
        let mut entries = locked(&self.cache.authenticated);
        if entries.len() >= AUTH_CACHE_ENTRIES && !entries.contains_key(hash) {
            // Stale entries first; if all are current, start over rather than track ages.
            entries.retain(|_, (tagged, _)| *tagged == generation);
            if entries.len() >= AUTH_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(*hash, (generation, found.clone()));
        Ok(Some(found))
    }

    /// The session whose public `access_token_id` this is, with its account: what a stream
    /// token names. From memory while nothing was written since it was read.
    pub fn authenticated_by_token_id(
        &self,
        access_token_id: &str,
    ) -> Result<Option<Authenticated>, StoreError> {
        // Read before the records, as in `authenticated`.
        let generation = self.cache.generation();
        if let Some(found) = locked(&self.cache.media)
            .at(generation)
            .sessions
            .get(access_token_id)
        {
            return Ok(found.clone());
        }
        let found = match self.token_hash_by_id(access_token_id)? {
            None => None,
            Some(hash) => self.authenticated(&hash)?,
        };
        let mut media = locked(&self.cache.media);
        // Not kept if a write happened meanwhile (`at` would have moved on, or will).
        if media.generation == generation {
            insert_bounded(&mut media.sessions, access_token_id, found.clone());
        }
        Ok(found)
    }

    /// `camera_id_by_media_path`, from memory while nothing was written since.
    pub fn media_camera(&self, path: &str) -> Result<Option<u64>, StoreError> {
        let generation = self.cache.generation();
        if let Some(found) = locked(&self.cache.media).at(generation).cameras.get(path) {
            return Ok(*found);
        }
        let found = self.camera_id_by_media_path(path)?;
        let mut media = locked(&self.cache.media);
        if media.generation == generation {
            insert_bounded(&mut media.cameras, path, found);
        }
        Ok(found)
    }

    /// The licence pools as last committed; from memory while nothing was written since.
    pub fn pools(&self) -> Result<[Pool; 3], StoreError> {
        let generation = self.cache.generation();
        let mut cached = locked(&self.cache.pools);
        if let Some((tagged, pools)) = *cached {
            if tagged == generation {
                return Ok(pools);
            }
        }
        let pools = self.read_pools()?;
        *cached = Some((generation, pools));
        Ok(pools)
    }

    pub(super) fn read_pools(&self) -> Result<[Pool; 3], StoreError> {
        let mut out = [Pool::default(); 3];
        for level in LicenseLevel::ALL {
            if let Some(p) = Self::get(
                &self.trees.licensetype_pool,
                "licensetype_pool",
                level.type_name().as_bytes(),
            )? {
                out[level as usize] = p;
            }
        }
        Ok(out)
    }

    /// Notes that a session was used at `at`, in memory only.
    pub fn touch_session(&self, hash: TokenHash, at: UnixTime) {
        locked(&self.cache.last_used).insert(hash, at);
    }

    /// The last use noted since the last `persist_last_used`, if any.
    pub fn noted_last_use(&self, hash: &TokenHash) -> Option<UnixTime> {
        locked(&self.cache.last_used).get(hash).copied()
    }

    /// Writes the noted last-use times into their sessions (not flushed: sled's own flusher
    /// or the next commit carries them; they are worth no fsync of their own). Per-key atomic
    /// update, so a session revoked meanwhile is not brought back.
    pub fn persist_last_used(&self) -> Result<(), StoreError> {
        let updates: Vec<(TokenHash, UnixTime)> = locked(&self.cache.last_used).drain().collect();
        for (hash, at) in updates {
            self.trees.tokenhash_session.fetch_and_update(hash, |old| {
                let old = old?;
                match decode::<Session>("tokenhash_session", old) {
                    Ok(mut s) => {
                        s.last_used = Some(s.last_used.map_or(at, |l| l.max(at)));
                        Some(encode(&s))
                    }
                    Err(_) => Some(old.to_vec()),
                }
            })?;
        }
        Ok(())
    }
}
