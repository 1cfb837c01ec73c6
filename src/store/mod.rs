//! The only module that touches sled; it speaks no HTTP and knows no validation rule. It owns
//! the trees (one per mapping, named `key_value`, listed once in `trees!`), the id counters
//! (kept in a tree because sled's `generate_id` is not carried by export/import), the schema
//! version, and the typed reads of the records.
//!
//! - `open`   — opening: the lock, the damage checks, the schema version.
//! - `tx`     — `Store::commit` and friends (one sled transaction + the group flush that must
//!   precede every 2xx to a write), `Tx` with its typed writes, `TxError<E>`.
//! - `cache`  — what is kept decoded in memory between writes (sessions and accounts of
//!   recent callers, the licence pools) and last-use times persisted lazily.
//! - `notices` — the domain facts a commit reports (`Notice`), delivered after its flush in
//!   commit order to the `NoticeSink` the daemon sets.
//! - `export` — every record of every tree, for `vmsd backup` / `vmsd restore`.
//!
//! Records are JSON: readable in a backup, and the same encoding the API speaks. Keys that are
//! ids are big-endian u64 so that trees iterate in id order.

mod cache;
mod export;
mod notices;
mod open;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::Tree;

use crate::model::{Account, AuditEntry, Camera, CameraGroup, Session};

pub use cache::Authenticated;
pub use notices::{Notice, NoticeSink, SessionEnd};
pub use tx::{LoginTaken, Never, Tx, TxError, TxResult};

/// The on-disk layout this build reads and writes. Bump with a migration when it changes.
pub const SCHEMA_VERSION: u64 = 1;

/// Length of a stored token hash (SHA-256).
pub const TOKEN_HASH_LEN: usize = 32;
pub type TokenHash = [u8; TOKEN_HASH_LEN];

/// A storage failure: the caller answers it as a server error, or names it at start-up.
#[derive(Debug)]
pub enum StoreError {
    /// sled failed (I/O, corruption).
    Sled(sled::Error),
    /// A record that does not decode: a bug or a damaged file.
    Corrupt(String),
    /// The directory holds a newer or unknown schema.
    Schema(String),
    /// Another process holds the database (sled's exclusive lock): vmsd already runs.
    Locked,
    /// The files are damaged: sled refused or panicked reading them, or a database that held
    /// vmsd data opened empty.
    Damaged(String),
    /// Two transactions touched the same keys. sled re-runs the closure that sees it, so it
    /// never leaves `Store::commit`; it is a variant so that `?` inside a closure carries it.
    Conflict,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Sled(e) => write!(f, "storage error: {e}"),
            StoreError::Corrupt(what) => write!(f, "corrupt record: {what}"),
            StoreError::Schema(what) => write!(f, "schema: {what}"),
            StoreError::Locked => f.write_str("the database is in use by another process"),
            StoreError::Damaged(what) => write!(f, "the database is damaged: {what}"),
            StoreError::Conflict => f.write_str("transaction conflict"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Sled(e)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Sled(sled::Error::Io(e))
    }
}

/// Declares every tree once: the `Trees` struct, its opening, the names a backup uses, and
/// the transactional view `Tx` is built from. `meta` (the schema version) and `name_secret`
/// are outside transactions; every other tree is in every transaction.
macro_rules! trees {
    (outside: [$($out:ident),*], inside: [$($name:ident),* $(,)?]) => {
        /// The name of every tree, in the order of a backup file.
        pub const TREE_NAMES: &[&str] = &[$(stringify!($out),)* $(stringify!($name),)*];

        /// Every tree, by name. Names say what maps to what.
        struct Trees {
            $($out: Tree,)*
            $($name: Tree,)*
        }

        impl Trees {
            fn open(db: &sled::Db) -> Result<Trees, sled::Error> {
                Ok(Trees {
                    $($out: db.open_tree(stringify!($out))?,)*
                    $($name: db.open_tree(stringify!($name))?,)*
                })
            }

            /// Every tree with its name, in a fixed order (the order of a backup file).
            fn named(&self) -> Vec<(&'static str, &Tree)> {
                vec![
                    $((stringify!($out), &self.$out),)*
                    $((stringify!($name), &self.$name),)*
                ]
            }

            /// The trees a transaction spans, in the order of `TxTrees::from_views`.
            fn transactional(&self) -> Vec<Tree> {
                vec![$(self.$name.clone(),)*]
            }
        }

        /// The transactional view of each tree, by name (see `tx::Tx`).
        struct TxTrees<'a> {
            $($name: &'a sled::transaction::TransactionalTree,)*
        }

        impl<'a> TxTrees<'a> {
            /// `views` is what sled hands a transaction over `Trees::transactional`.
            fn from_views(views: &'a [sled::transaction::TransactionalTree]) -> Option<Self> {
                let mut views = views.iter();
                Some(TxTrees { $($name: views.next()?,)* })
            }
        }
    };
}

trees! {
    outside: [meta, name_secret],
    inside: [
        counters,
        accounts,
        login_accountid,
        tokenhash_session,
        accountid_tokenhashes,
        tokenid_tokenhash,
        refreshhash_tokenid,
        audit,
        accountid_auditid,
        licensetype_pool,
        cameras,
        camera_groups,
        cameraid_accountids,
        parentid_subuserids,
        mediapath_cameraid,
        directoryid_accountid,
    ]
}

pub struct Store {
    db: sled::Db,
    trees: Trees,
    /// `Trees::transactional`, built once: every write's transaction spans them.
    tx_trees: Vec<Tree>,
    path: PathBuf,
    /// Audit ids come from memory (seeded from the last stored entry) so that concurrent
    /// writers do not all conflict on one counter key.
    next_audit_id: AtomicU64,
    flush: tx::GroupFlush,
    cache: cache::Cache,
    notices: notices::Notices,
}

fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn key_id(key: &[u8]) -> Option<u64> {
    key.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

fn ids_of(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks_exact(8).filter_map(key_id).collect()
}

fn hashes_of(bytes: &[u8]) -> Vec<TokenHash> {
    bytes
        .chunks_exact(TOKEN_HASH_LEN)
        .filter_map(|c| c.try_into().ok())
        .collect()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain structs to JSON cannot fail (no maps with non-string keys).
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{tree}: {e}")))
}

/// A record looked up by key, decoded when found.
fn decode_found<T: DeserializeOwned>(
    tree: &str,
    found: Option<sled::IVec>,
) -> Result<Option<T>, StoreError> {
    found.map(|bytes| decode(tree, &bytes)).transpose()
}

/// The id set stored under `id` (concatenated big-endian u64s), empty when there is none.
fn ids_found(found: Option<sled::IVec>) -> Vec<u64> {
    found.map(|b| ids_of(&b)).unwrap_or_default()
}

/// The account whose `events` list an audit entry, if any.
fn indexed_account(entry: &AuditEntry) -> Option<u64> {
    (entry.target_type == "account")
        .then_some(entry.target_id)
        .flatten()
}

/// `accountid_auditid` key: the account's id, then the audit entry's.
fn account_audit_key(account_id: u64, audit_id: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&id_key(account_id));
    key[8..].copy_from_slice(&id_key(audit_id));
    key
}

/// Audit entries removed per transaction when pruning: small enough that a prune of a large
/// backlog does not hold sled's write lock for long in one go.
const AUDIT_PRUNE_BATCH: usize = 1000;

/// Secrets the daemon generates once and keeps (`name_secret`): carried by backup and
/// restore with everything else, so a restored box keeps issuing and checking the same
/// signatures.
impl Store {
    /// The secret stored under `name`, or `fresh` stored (and flushed) now when there is none.
    /// Two callers racing on a first start both get the one that was stored first.
    pub fn secret_or_insert(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let tree = &self.trees.name_secret;
        if let Some(stored) = tree.get(name)? {
            return Ok(stored.to_vec());
        }
        let won = tree
            .compare_and_swap(name, None as Option<&[u8]>, Some(fresh))?
            .is_ok();
        if won {
            self.db.flush()?;
            self.cache.written();
        }
        tree.get(name)?
            .map(|v| v.to_vec())
            .ok_or_else(|| StoreError::Corrupt(format!("name_secret: {name} vanished")))
    }
}

impl Store {
    /// Sets who hears of committed changes (once; false if one was set already). Commits
    /// before it report to nobody.
    pub fn set_notice_sink(&self, sink: std::sync::Arc<dyn NoticeSink>) -> bool {
        self.notices.set_sink(sink)
    }
}

/// Typed reads outside transactions.
impl Store {
    fn get<T: DeserializeOwned>(
        tree: &Tree,
        name: &str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        decode_found(name, tree.get(key)?)
    }

    /// Every record of a tree, decoded, in key order.
    fn all<'a, T: DeserializeOwned + 'a>(
        tree: &'a Tree,
        name: &'static str,
    ) -> impl Iterator<Item = Result<T, StoreError>> + 'a {
        tree.iter().map(move |item| {
            let (_, v) = item?;
            decode(name, &v)
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A round trip through sled, for `/healthz` and the watchdog.
    pub fn probe(&self) -> Result<(), StoreError> {
        self.trees.meta.get("schema_version")?;
        Ok(())
    }

    pub fn next_audit_id(&self) -> u64 {
        self.next_audit_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn account(&self, id: u64) -> Result<Option<Account>, StoreError> {
        Self::get(&self.trees.accounts, "accounts", &id_key(id))
    }

    /// The account holding a login, by its normalised key (`model::login_key`).
    pub fn account_by_login(&self, login_key: &str) -> Result<Option<Account>, StoreError> {
        match self.trees.login_accountid.get(login_key.as_bytes())? {
            None => Ok(None),
            Some(id) => match key_id(&id) {
                Some(id) => self.account(id),
                None => Err(StoreError::Corrupt("login_accountid".into())),
            },
        }
    }

    /// Walks every account record (sled keeps no count): for tests and small stores.
    pub fn account_count(&self) -> usize {
        self.trees.accounts.len()
    }

    /// Whether any account exists, from the first key alone: start-up asks this, and counting
    /// would read (and cache) every account page of a large store.
    pub fn has_accounts(&self) -> bool {
        !self.trees.accounts.is_empty()
    }

    /// Every account, in id order. For lists and searches over a few thousand records.
    pub fn accounts(&self) -> impl Iterator<Item = Result<Account, StoreError>> + '_ {
        Self::all(&self.trees.accounts, "accounts")
    }

    pub fn session(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        Self::get(&self.trees.tokenhash_session, "tokenhash_session", hash)
    }

    pub fn sessions_of(&self, account_id: u64) -> Result<Vec<(TokenHash, Session)>, StoreError> {
        let hashes = match self.trees.accountid_tokenhashes.get(id_key(account_id))? {
            None => return Ok(Vec::new()),
            Some(bytes) => hashes_of(&bytes),
        };
        let mut out = Vec::with_capacity(hashes.len());
        for h in hashes {
            if let Some(s) = self.session(&h)? {
                out.push((h, s));
            }
        }
        Ok(out)
    }

    /// Every stored session, for the expiry sweep.
    pub fn all_sessions(
        &self,
    ) -> impl Iterator<Item = Result<(TokenHash, Session), StoreError>> + '_ {
        self.trees.tokenhash_session.iter().map(|item| {
            let (k, v) = item?;
            let hash: TokenHash = k
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("tokenhash_session key".into()))?;
            Ok((hash, decode("tokenhash_session", &v)?))
        })
    }

    /// Audit entries newest first, skipping `offset`, at most `limit`; and the total count.
    pub fn audit_page(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<AuditEntry>, usize), StoreError> {
        let total = self.trees.audit.len();
        let mut out = Vec::new();
        for item in self.trees.audit.iter().rev().skip(offset).take(limit) {
            let (_, v) = item?;
            out.push(decode("audit", &v)?);
        }
        Ok((out, total))
    }

    /// The newest `limit` audit entries about one account.
    pub fn account_events(
        &self,
        account_id: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .trees
            .accountid_auditid
            .scan_prefix(id_key(account_id))
            .rev()
            .take(limit)
        {
            let (k, _) = item?;
            let Some(id) = k.get(8..).and_then(key_id) else {
                continue;
            };
            if let Some(entry) = Self::get(&self.trees.audit, "audit", &id_key(id))? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Removes the oldest audit entries so that no more than `keep` remain: every entry whose
    /// id is `keep` or more below the newest id handed out (ids are sequential; the gaps of
    /// aborted writes only leave fewer). In transactions of at most `AUDIT_PRUNE_BATCH`
    /// entries, each removing entries with their account index keys. Returns how many went.
    pub fn prune_audit(&self, keep: u64) -> Result<usize, StoreError> {
        let newest = self.next_audit_id.load(Ordering::Relaxed).saturating_sub(1);
        let Some(last_to_remove) = newest.checked_sub(keep) else {
            return Ok(0);
        };
        let mut removed = 0;
        loop {
            let mut batch: Vec<(u64, Option<u64>)> = Vec::new();
            for item in self
                .trees
                .audit
                .range(..=id_key(last_to_remove))
                .take(AUDIT_PRUNE_BATCH)
            {
                let (key, value) = item?;
                let Some(id) = key_id(&key) else { continue };
                // A record that does not decode still goes (an index key it may have had
                // stays: which account it named is unknown).
                let account = decode::<AuditEntry>("audit", &value)
                    .ok()
                    .and_then(|e| indexed_account(&e));
                batch.push((id, account));
            }
            if batch.is_empty() {
                return Ok(removed);
            }
            self.write_blocking(|tx| {
                for (id, account) in &batch {
                    tx.remove_audit(*id, *account)?;
                }
                Ok(())
            })?;
            removed += batch.len();
        }
    }

    pub fn camera(&self, id: u64) -> Result<Option<Camera>, StoreError> {
        Self::get(&self.trees.cameras, "cameras", &id_key(id))
    }

    /// Whether a camera exists, without decoding it: validating a 500-camera list would
    /// otherwise decode 500 records it does not use.
    pub fn camera_exists(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.trees.cameras.contains_key(id_key(id))?)
    }

    pub fn cameras(&self) -> impl Iterator<Item = Result<Camera, StoreError>> + '_ {
        Self::all(&self.trees.cameras, "cameras")
    }

    pub fn camera_count(&self) -> usize {
        self.trees.cameras.len()
    }

    pub fn camera_group(&self, id: u64) -> Result<Option<CameraGroup>, StoreError> {
        Self::get(&self.trees.camera_groups, "camera_groups", &id_key(id))
    }

    pub fn camera_groups(&self) -> impl Iterator<Item = Result<CameraGroup, StoreError>> + '_ {
        Self::all(&self.trees.camera_groups, "camera_groups")
    }

    /// Account ids a camera is assigned to.
    pub fn camera_accounts(&self, camera_id: u64) -> Result<Vec<u64>, StoreError> {
        Ok(ids_found(
            self.trees.cameraid_accountids.get(id_key(camera_id))?,
        ))
    }

    /// The camera a media path names (SPEC §8): the one holding it as its own `media_path`,
    /// or, for `cam{id}`, camera `id` when it has no path of its own. One or two reads, no
    /// scan. The hook goes through `Store::media_camera`, which keeps the answers in memory
    /// between writes.
    pub fn camera_id_by_media_path(&self, path: &str) -> Result<Option<u64>, StoreError> {
        if let Some(id) = self.trees.mediapath_cameraid.get(path.as_bytes())? {
            return Ok(key_id(&id));
        }
        let Some(id) = crate::model::default_media_path_id(path) else {
            return Ok(None);
        };
        #[derive(serde::Deserialize)]
        struct StoredMediaPath {
            #[serde(default)]
            media_path: Option<String>,
        }
        let stored: Option<StoredMediaPath> =
            Self::get(&self.trees.cameras, "cameras", &id_key(id))?;
        Ok(stored.filter(|s| s.media_path.is_none()).map(|_| id))
    }

    /// The token hash of the session whose public id this is (`tokenid_tokenhash`).
    pub fn token_hash_by_id(&self, access_token_id: &str) -> Result<Option<TokenHash>, StoreError> {
        match self
            .trees
            .tokenid_tokenhash
            .get(access_token_id.as_bytes())?
        {
            None => Ok(None),
            Some(hash) => hash
                .as_ref()
                .try_into()
                .map(Some)
                .map_err(|_| StoreError::Corrupt("tokenid_tokenhash value".into())),
        }
    }

    /// A regular user's sub-users (`parentid_subuserids`), kept so that deleting a user finds,
    /// inside its one transaction, every sub-user, including one created by a concurrent
    /// request (a scan outside the transaction could miss it).
    pub fn subuser_ids(&self, parent_id: u64) -> Result<Vec<u64>, StoreError> {
        Ok(ids_found(
            self.trees.parentid_subuserids.get(id_key(parent_id))?,
        ))
    }
}

#[cfg(test)]
mod tests;
