//! The only module that touches sled. It owns the trees (one per mapping, named `key_value`),
//! the id counters (kept in a tree because sled's `generate_id` is not carried by export/import),
//! the schema version, multi-tree transactions (`Store::transaction` + `Tx`), and the flush that
//! must precede every 2xx answer to a write.
//!
//! Records are JSON: readable in a backup, and the same encoding the API speaks. Keys that are
//! ids are big-endian u64 so that trees iterate in id order.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{Transactional, Tree};

use crate::error::ApiError;
use crate::model::{Account, AuditEntry, LicenseLevel, Pool, Session, SessionKey};

/// The on-disk layout this build reads and writes. Bump with a migration when it changes.
pub const SCHEMA_VERSION: u64 = 1;

/// Length of a stored token hash (SHA-256).
pub const TOKEN_HASH_LEN: usize = 32;
pub type TokenHash = [u8; TOKEN_HASH_LEN];

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
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Sled(e) => write!(f, "storage error: {e}"),
            StoreError::Corrupt(what) => write!(f, "corrupt record: {what}"),
            StoreError::Schema(what) => write!(f, "schema: {what}"),
            StoreError::Locked => f.write_str("the database is in use by another process"),
            StoreError::Damaged(what) => write!(f, "the database is damaged: {what}"),
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

/// Why a transaction closure stopped: a domain answer (abort, nothing written) or storage.
#[derive(Debug)]
pub enum TxError {
    Abort(ApiError),
    Storage(UnabortableTransactionError),
    Corrupt(String),
}

impl From<UnabortableTransactionError> for TxError {
    fn from(e: UnabortableTransactionError) -> Self {
        TxError::Storage(e)
    }
}

impl From<ApiError> for TxError {
    fn from(e: ApiError) -> Self {
        TxError::Abort(e)
    }
}

pub type TxResult<T> = Result<T, TxError>;

fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
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

fn key_id(key: &[u8]) -> Option<u64> {
    key.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain structs to JSON cannot fail (no maps with non-string keys).
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{tree}: {e}"))
}

/// A file beside sled's own in `db/` (sled reads only `conf`, `db`, `blobs/` and `snap.*`),
/// created once the schema version is on disk: from then on, a database that opens empty is
/// damaged, not new.
const INITIALIZED_MARKER: &str = "vmsd-initialized";

fn mark_initialized(marker: &Path) -> Result<(), StoreError> {
    crate::write_private(marker, format!("schema {SCHEMA_VERSION}\n").as_bytes())?;
    Ok(())
}

/// Creates `dir` (and missing parents) readable by its owner only; an existing one is left
/// as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// What a failed `sled::Config::open` means to an operator.
fn open_error(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked
        }
        sled::Error::Corruption { .. } => StoreError::Damaged(
            "sled found corrupted data (a checksum mismatch or a cut-off file)".into(),
        ),
        sled::Error::Unsupported(what) | sled::Error::ReportableBug(what) => {
            StoreError::Damaged(format!("sled cannot read it ({what})"))
        }
        other => StoreError::Sled(other),
    }
}

/// How long an open waits for sled's file lock before reporting `Locked`.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens sled, waiting up to `LOCK_WAIT` while its lock is held. sled lets go of the lock
/// only when the last of its background threads drops a closed database, a moment after the
/// `Db` itself is dropped, so an open right after a close in the same process (a restore, a
/// restarted in-process server in the tests) could find it still held; seen as a rare
/// `Locked` in a unit test that reopens. Another process holding it (a second daemon) holds
/// it for good and gets `Locked` after the wait.
fn open_waiting_for_lock(config: &sled::Config) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let error = match catch_quietly(|| config.open()) {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(e)) => open_error(e),
            Err(panic) => {
                return Err(StoreError::Damaged(format!(
                    "sled failed while reading it ({panic})"
                )))
            }
        };
        if !matches!(error, StoreError::Locked) || started.elapsed() >= LOCK_WAIT {
            return Err(error);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

thread_local! {
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
static QUIET_HOOK: std::sync::Once = std::sync::Once::new();

/// Runs `f` and turns a panic in it into `Err(message)`, without the panic's message and
/// backtrace on stderr: sled may panic on damaged files, and an operator should then see one
/// clear error naming the fix. The hook is installed once and only silences panics on a
/// thread inside this function, so concurrent opens and other panics are unaffected.
fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET_PANICS.with(|q| q.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(false));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned())
    })
}

fn hashes_of(bytes: &[u8]) -> Vec<TokenHash> {
    bytes
        .chunks_exact(TOKEN_HASH_LEN)
        .filter_map(|c| c.try_into().ok())
        .collect()
}

/// Every tree, by name. Names say what maps to what.
struct Trees {
    meta: Tree,
    counters: Tree,
    accounts: Tree,
    login_accountid: Tree,
    tokenhash_session: Tree,
    accountid_tokenhashes: Tree,
    tokenid_tokenhash: Tree,
    audit: Tree,
    accountid_auditid: Tree,
    licensetype_pool: Tree,
    cameras: Tree,
    camera_groups: Tree,
    cameraid_accountids: Tree,
    parentid_subuserids: Tree,
}

pub struct Store {
    db: sled::Db,
    trees: Trees,
    path: PathBuf,
    /// Audit ids come from memory (seeded from the last stored entry) so that concurrent
    /// writers do not all conflict on one counter key.
    next_audit_id: AtomicU64,
    /// Group commit state of `flush`.
    flush_tickets: AtomicU64,
    flushed_through: AtomicU64,
    flush_lock: tokio::sync::Mutex<()>,
    /// Bumped after every write (committed or not, before its caller can answer). What is
    /// kept decoded in memory (`pools`, `auth_cache`) is tagged with the generation read
    /// before the records were, and used only while the generation is unchanged, so nothing
    /// kept outlives a change: a revoked token, a disabled account, a moved licence pool.
    generation: AtomicU64,
    /// The three licence pools, tagged: every user view renders them, and three sled reads
    /// per request were 4 % of a `GET /users/self` (issue 7).
    pools: std::sync::Mutex<Option<(u64, [Pool; 3])>>,
    /// Decoded sessions and accounts of recent callers, tagged (see `AUTH_CACHE_ENTRIES`).
    auth_cache: std::sync::Mutex<HashMap<TokenHash, (u64, Authenticated)>>,
}

/// What authenticating a token found: its session and its account, decoded.
#[derive(Clone)]
pub struct Authenticated {
    pub session: Arc<SessionKey>,
    pub account: Arc<Account>,
}

/// Audit entries removed per transaction when pruning: small enough that a prune of a large
/// backlog does not hold sled's write lock for long in one go.
const AUDIT_PRUNE_BATCH: usize = 1000;

/// At most this many tokens' sessions and accounts are kept decoded, so that a request does
/// not read and decode both records again (half the instructions of a `GET /users/self`,
/// issue 7, callgrind): a few hundred KiB at most; an appliance has a handful of clients.
const AUTH_CACHE_ENTRIES: usize = 256;

impl Store {
    /// Opens (or creates) the store in `dir/db`. `cache_bytes` bounds sled's page cache.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let path = dir.join("db");
        create_private_dir(dir)?;
        // sled creates its files with the umask's modes (0644 under the usual 022); a 0700
        // directory around them keeps accounts and token hashes from other local users.
        create_private_dir(&path)?;
        if std::fs::metadata(&path)?.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        }
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(cache_bytes)
            // We flush explicitly before every 2xx; the background flusher only adds writes.
            .flush_every_ms(Some(1000));
        let db = open_waiting_for_lock(&config)?;
        let t = |name: &str| db.open_tree(name);
        let trees = Trees {
            meta: t("meta")?,
            counters: t("counters")?,
            accounts: t("accounts")?,
            login_accountid: t("login_accountid")?,
            tokenhash_session: t("tokenhash_session")?,
            accountid_tokenhashes: t("accountid_tokenhashes")?,
            tokenid_tokenhash: t("tokenid_tokenhash")?,
            audit: t("audit")?,
            accountid_auditid: t("accountid_auditid")?,
            licensetype_pool: t("licensetype_pool")?,
            cameras: t("cameras")?,
            camera_groups: t("camera_groups")?,
            cameraid_accountids: t("cameraid_accountids")?,
            parentid_subuserids: t("parentid_subuserids")?,
        };
        let marker = path.join(INITIALIZED_MARKER);
        match trees.meta.get("schema_version")? {
            // sled opens a data file it cannot read a single record of as an empty database;
            // the marker tells that apart from a first start.
            None if marker.exists() => {
                return Err(StoreError::Damaged(format!(
                    "{} held vmsd data, and sled now finds none in it (a garbage or emptied data file)",
                    path.display()
                )));
            }
            None => {
                trees
                    .meta
                    .insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
                mark_initialized(&marker)?;
            }
            Some(v) => {
                let found = key_id(&v).unwrap_or(u64::MAX);
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema(format!(
                        "{} holds schema version {found}; this vmsd reads version {SCHEMA_VERSION}",
                        path.display()
                    )));
                }
                // Databases from before the marker existed, and a first start cut off
                // between the flush above and the marker.
                if !marker.exists() {
                    mark_initialized(&marker)?;
                }
            }
        }
        let last_audit = trees
            .audit
            .last()?
            .and_then(|(k, _)| key_id(&k))
            .unwrap_or(0);
        Ok(Store {
            db,
            trees,
            path,
            next_audit_id: AtomicU64::new(last_audit + 1),
            flush_tickets: AtomicU64::new(0),
            flushed_through: AtomicU64::new(0),
            flush_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            pools: std::sync::Mutex::new(None),
            auth_cache: std::sync::Mutex::new(HashMap::new()),
        })
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// After any write: what is kept in memory is read again on its next use.
    fn written(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn auth_cache(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, (u64, Authenticated)>> {
        self.auth_cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every write so far durable. Call before answering 2xx to a write.
    ///
    /// Group commit: each caller takes a ticket after its write; one flush at a time runs and
    /// covers every ticket issued before it started, so callers that waited behind it return
    /// without flushing again. Concurrent writers share fsyncs instead of queueing one each.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let ticket = self.flush_tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let _one_at_a_time = self.flush_lock.lock().await;
        if self.flushed_through.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let covers = self.flush_tickets.load(Ordering::SeqCst);
        self.db.flush_async().await?;
        self.flushed_through.fetch_max(covers, Ordering::SeqCst);
        Ok(())
    }

    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// A round trip through sled, for `/healthz` and the watchdog.
    pub fn probe(&self) -> Result<(), StoreError> {
        self.trees.meta.get("schema_version")?;
        Ok(())
    }

    pub fn next_audit_id(&self) -> u64 {
        self.next_audit_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `f` as one sled transaction over every tree. `f` may run more than once (sled
    /// retries on conflict), so it must be pure: hash passwords and allocate audit ids before.
    pub fn transaction<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, ApiError> {
        let t = &self.trees;
        let result = (
            &t.counters,
            &t.accounts,
            &t.login_accountid,
            &t.tokenhash_session,
            &t.accountid_tokenhashes,
            &t.tokenid_tokenhash,
            &t.audit,
            &t.accountid_auditid,
            &t.licensetype_pool,
            &t.cameras,
            &t.camera_groups,
            &t.cameraid_accountids,
            &t.parentid_subuserids,
        )
            .transaction(
                |(
                    counters,
                    accounts,
                    login_accountid,
                    tokenhash_session,
                    accountid_tokenhashes,
                    tokenid_tokenhash,
                    audit,
                    accountid_auditid,
                    licensetype_pool,
                    cameras,
                    camera_groups,
                    cameraid_accountids,
                    parentid_subuserids,
                )| {
                    let tx = Tx {
                        counters,
                        accounts,
                        login_accountid,
                        tokenhash_session,
                        accountid_tokenhashes,
                        tokenid_tokenhash,
                        audit,
                        accountid_auditid,
                        licensetype_pool,
                        cameras,
                        camera_groups,
                        cameraid_accountids,
                        parentid_subuserids,
                    };
                    match f(&tx) {
                        Ok(v) => Ok(Ok(v)),
                        Err(TxError::Abort(e)) => Err(ConflictableTransactionError::Abort(Ok(e))),
                        Err(TxError::Corrupt(what)) => {
                            Err(ConflictableTransactionError::Abort(Err(what)))
                        }
                        Err(TxError::Storage(e)) => Err(e.into()),
                    }
                },
            );
        // Whether it committed or not: a spurious bump costs one re-read per cached record.
        self.written();
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e),
            Err(TransactionError::Abort(Ok(e))) => Err(e),
            Err(TransactionError::Abort(Err(what))) => {
                Err(ApiError::internal(StoreError::Corrupt(what)))
            }
            Err(TransactionError::Storage(e)) => Err(ApiError::internal(StoreError::Sled(e))),
        }
    }

    fn get<T: DeserializeOwned>(
        tree: &Tree,
        name: &str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key)? {
            None => Ok(None),
            Some(bytes) => decode(name, &bytes).map(Some).map_err(StoreError::Corrupt),
        }
    }

    pub fn account(&self, id: u64) -> Result<Option<Account>, StoreError> {
        Self::get(&self.trees.accounts, "accounts", &id_key(id))
    }

    pub fn account_by_login(&self, login_key: &str) -> Result<Option<Account>, StoreError> {
        match self.trees.login_accountid.get(login_key.as_bytes())? {
            None => Ok(None),
            Some(id) => match key_id(&id) {
                Some(id) => self.account(id),
                None => Err(StoreError::Corrupt("login_accountid".into())),
            },
        }
    }

    pub fn account_count(&self) -> usize {
        self.trees.accounts.len()
    }

    /// Every account, in id order. For lists and searches over a few thousand records.
    pub fn accounts(&self) -> impl Iterator<Item = Result<Account, StoreError>> + '_ {
        self.trees.accounts.iter().map(|item| {
            let (_, v) = item?;
            decode("accounts", &v).map_err(StoreError::Corrupt)
        })
    }

    pub fn session(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        Self::get(&self.trees.tokenhash_session, "tokenhash_session", hash)
    }

    /// What authentication needs of a session (see `SessionKey`).
    fn session_key(&self, hash: &TokenHash) -> Result<Option<SessionKey>, StoreError> {
        Self::get(&self.trees.tokenhash_session, "tokenhash_session", hash)
    }

    /// The session stored under a token hash and its account, from memory when no
    /// write happened since they were read. `None` when either is missing.
    pub fn authenticated(&self, hash: &TokenHash) -> Result<Option<Authenticated>, StoreError> {
        // Read before the records: a write committed after this makes the entry stale at once.
        let generation = self.generation();
        if let Some((tagged, found)) = self.auth_cache().get(hash) {
            if *tagged == generation {
                return Ok(Some(found.clone()));
            }
        }
        let Some(session) = self.session_key(hash)? else {
            return Ok(None);
        };
        let Some(account) = self.account(session.account_id)? else {
            return Ok(None);
        };
        let found = Authenticated {
            session: Arc::new(session),
            account: Arc::new(account),
        };
        let mut entries = self.auth_cache();
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
            let session = decode("tokenhash_session", &v).map_err(StoreError::Corrupt)?;
            Ok((hash, session))
        })
    }

    /// Persists last-use times kept in memory. Per-key atomic update, so a session revoked
    /// meanwhile is not brought back.
    pub fn touch_sessions(&self, updates: &[(TokenHash, i64)]) -> Result<(), StoreError> {
        for (hash, at) in updates {
            self.trees.tokenhash_session.fetch_and_update(hash, |old| {
                let old = old?;
                match serde_json::from_slice::<Session>(old) {
                    Ok(mut s) => {
                        s.last_used = Some(s.last_used.map_or(*at, |l| l.max(*at)));
                        Some(encode(&s))
                    }
                    Err(_) => Some(old.to_vec()),
                }
            })?;
        }
        Ok(())
    }

    /// The licence pools as last committed; from memory while nothing was written since.
    pub fn pools(&self) -> Result<[Pool; 3], StoreError> {
        let generation = self.generation();
        let mut cached = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((tagged, pools)) = *cached {
            if tagged == generation {
                return Ok(pools);
            }
        }
        let pools = self.read_pools()?;
        *cached = Some((generation, pools));
        Ok(pools)
    }

    fn read_pools(&self) -> Result<[Pool; 3], StoreError> {
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

    /// Removes the oldest audit entries so that no more than `keep` remain: every entry whose
    /// id is `keep` or more below the newest id handed out (ids are sequential; the gaps of
    /// aborted writes only leave fewer). In transactions of at most `AUDIT_PRUNE_BATCH`
    /// entries, each removing entries with their account index keys. Returns how many went.
    pub fn prune_audit(&self, keep: u64) -> Result<usize, ApiError> {
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
                let (key, value) = item.map_err(ApiError::internal)?;
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
            self.transaction(|tx| {
                for (id, account) in &batch {
                    tx.remove_audit(*id, *account)?;
                }
                Ok(())
            })?;
            removed += batch.len();
        }
    }

    pub fn audit_entry(&self, id: u64) -> Result<Option<AuditEntry>, StoreError> {
        Self::get(&self.trees.audit, "audit", &id_key(id))
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
            out.push(decode("audit", &v).map_err(StoreError::Corrupt)?);
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
            if let Some(entry) = k.get(8..).and_then(key_id).map(|id| self.audit_entry(id)) {
                if let Some(e) = entry? {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Raw access for the camera records, which `handlers::admin` defines.
    pub fn camera_raw<T: DeserializeOwned>(&self, id: u64) -> Result<Option<T>, StoreError> {
        Self::get(&self.trees.cameras, "cameras", &id_key(id))
    }

    /// Whether a camera exists, without decoding it: validating a 500-camera list would
    /// otherwise decode 500 records it does not use.
    pub fn camera_exists(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.trees.cameras.contains_key(id_key(id))?)
    }

    pub fn cameras_raw<T: DeserializeOwned>(
        &self,
    ) -> impl Iterator<Item = Result<T, StoreError>> + '_ {
        self.trees.cameras.iter().map(|item| {
            let (_, v) = item?;
            decode("cameras", &v).map_err(StoreError::Corrupt)
        })
    }

    pub fn camera_group_raw<T: DeserializeOwned>(&self, id: u64) -> Result<Option<T>, StoreError> {
        Self::get(&self.trees.camera_groups, "camera_groups", &id_key(id))
    }

    pub fn camera_groups_raw<T: DeserializeOwned>(
        &self,
    ) -> impl Iterator<Item = Result<T, StoreError>> + '_ {
        self.trees.camera_groups.iter().map(|item| {
            let (_, v) = item?;
            decode("camera_groups", &v).map_err(StoreError::Corrupt)
        })
    }

    /// Account ids a camera is assigned to.
    pub fn camera_accounts(&self, camera_id: u64) -> Result<Vec<u64>, StoreError> {
        Ok(self
            .trees
            .cameraid_accountids
            .get(id_key(camera_id))?
            .map(|b| ids_of(&b))
            .unwrap_or_default())
    }
}

/// Backup support: every record of every tree, and loading them into an empty store. The
/// file format around them is `backup`'s; the tree names are the store's.
impl Store {
    fn named_trees(&self) -> [(&'static str, &Tree); 14] {
        let t = &self.trees;
        [
            ("meta", &t.meta),
            ("counters", &t.counters),
            ("accounts", &t.accounts),
            ("login_accountid", &t.login_accountid),
            ("tokenhash_session", &t.tokenhash_session),
            ("accountid_tokenhashes", &t.accountid_tokenhashes),
            ("tokenid_tokenhash", &t.tokenid_tokenhash),
            ("audit", &t.audit),
            ("accountid_auditid", &t.accountid_auditid),
            ("licensetype_pool", &t.licensetype_pool),
            ("cameras", &t.cameras),
            ("camera_groups", &t.camera_groups),
            ("cameraid_accountids", &t.cameraid_accountids),
            ("parentid_subuserids", &t.parentid_subuserids),
        ]
    }

    /// Every (tree, key, value), tree by tree in key order.
    pub fn export_entries(
        &self,
    ) -> impl Iterator<Item = Result<(&'static str, Vec<u8>, Vec<u8>), StoreError>> + '_ {
        self.named_trees().into_iter().flat_map(|(name, tree)| {
            tree.iter().map(move |item| {
                let (k, v) = item?;
                Ok((name, k.to_vec(), v.to_vec()))
            })
        })
    }

    /// True when no account, session, camera or audit entry exists (a fresh store holds
    /// only its schema version).
    pub fn is_empty(&self) -> bool {
        self.named_trees()
            .iter()
            .filter(|(name, _)| *name != "meta")
            .all(|(_, tree)| tree.is_empty())
    }

    /// Writes one exported record back. Only for restoring into an empty store.
    pub fn import_entry(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let target = self
            .named_trees()
            .into_iter()
            .find(|(name, _)| *name == tree)
            .map(|(_, t)| t)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown tree {tree:?} in backup")))?;
        target.insert(key, value)?;
        self.written();
        Ok(())
    }

    /// Re-reads derived in-memory state after a restore.
    pub fn reload_counters(&self) -> Result<(), StoreError> {
        let last_audit = self
            .trees
            .audit
            .last()?
            .and_then(|(k, _)| key_id(&k))
            .unwrap_or(0);
        self.next_audit_id.store(last_audit + 1, Ordering::Relaxed);
        Ok(())
    }
}

/// The trees as seen inside one transaction, with typed accessors.
pub struct Tx<'a> {
    counters: &'a TransactionalTree,
    accounts: &'a TransactionalTree,
    login_accountid: &'a TransactionalTree,
    tokenhash_session: &'a TransactionalTree,
    accountid_tokenhashes: &'a TransactionalTree,
    tokenid_tokenhash: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    accountid_auditid: &'a TransactionalTree,
    licensetype_pool: &'a TransactionalTree,
    cameras: &'a TransactionalTree,
    camera_groups: &'a TransactionalTree,
    cameraid_accountids: &'a TransactionalTree,
    parentid_subuserids: &'a TransactionalTree,
}

impl Tx<'_> {
    fn get<T: DeserializeOwned>(
        tree: &TransactionalTree,
        name: &str,
        key: &[u8],
    ) -> TxResult<Option<T>> {
        match tree.get(key)? {
            None => Ok(None),
            Some(bytes) => decode(name, &bytes).map(Some).map_err(TxError::Corrupt),
        }
    }

    /// Next id of a named sequence; ids are never reused.
    pub fn next_id(&self, sequence: &str) -> TxResult<u64> {
        let current = self
            .counters
            .get(sequence.as_bytes())?
            .and_then(|v| key_id(&v))
            .unwrap_or(0);
        let next = current + 1;
        self.counters
            .insert(sequence.as_bytes(), &next.to_be_bytes())?;
        Ok(next)
    }

    pub fn account(&self, id: u64) -> TxResult<Option<Account>> {
        Self::get(self.accounts, "accounts", &id_key(id))
    }

    pub fn account_id_by_login(&self, login_key: &str) -> TxResult<Option<u64>> {
        Ok(self
            .login_accountid
            .get(login_key.as_bytes())?
            .and_then(|v| key_id(&v)))
    }

    /// Writes an account and keeps the login index in step with it. `previous_login_key` is
    /// the key it was indexed under before (None for a new account). Returns Abort with a 422
    /// on `field` when another account holds the login.
    pub fn put_account(
        &self,
        account: &Account,
        previous_login_key: Option<&str>,
        field: &str,
    ) -> TxResult<()> {
        let key = crate::validate::login_key(&account.login);
        if previous_login_key != Some(key.as_str()) {
            if let Some(owner) = self.account_id_by_login(&key)? {
                if owner != account.id {
                    return Err(TxError::Abort(ApiError::field(
                        field,
                        crate::validate::msg_unique(field),
                    )));
                }
            }
            if let Some(old) = previous_login_key {
                self.login_accountid.remove(old.as_bytes())?;
            }
            self.login_accountid
                .insert(key.as_bytes(), &id_key(account.id))?;
        }
        self.accounts.insert(&id_key(account.id), encode(account))?;
        Ok(())
    }

    /// Removes an account, its login, its sessions and its camera assignments.
    pub fn delete_account(&self, account: &Account) -> TxResult<()> {
        self.revoke_sessions_of(account.id, None)?;
        for camera_id in &account.cameras {
            self.unlink_camera(*camera_id, account.id)?;
        }
        self.login_accountid
            .remove(crate::validate::login_key(&account.login).as_bytes())?;
        self.accounts.remove(&id_key(account.id))?;
        Ok(())
    }

    pub fn session(&self, hash: &TokenHash) -> TxResult<Option<Session>> {
        Self::get(self.tokenhash_session, "tokenhash_session", hash)
    }

    pub fn session_hashes(&self, account_id: u64) -> TxResult<Vec<TokenHash>> {
        Ok(self
            .accountid_tokenhashes
            .get(id_key(account_id))?
            .map(|b| hashes_of(&b))
            .unwrap_or_default())
    }

    fn set_session_hashes(&self, account_id: u64, hashes: &[TokenHash]) -> TxResult<()> {
        if hashes.is_empty() {
            self.accountid_tokenhashes.remove(&id_key(account_id))?;
        } else {
            self.accountid_tokenhashes
                .insert(&id_key(account_id), hashes.concat())?;
        }
        Ok(())
    }

    pub fn hash_by_token_id(&self, access_token_id: &str) -> TxResult<Option<TokenHash>> {
        Ok(self
            .tokenid_tokenhash
            .get(access_token_id.as_bytes())?
            .and_then(|v| v.as_ref().try_into().ok()))
    }

    pub fn add_session(&self, hash: &TokenHash, session: &Session) -> TxResult<()> {
        let mut hashes = self.session_hashes(session.account_id)?;
        hashes.push(*hash);
        self.set_session_hashes(session.account_id, &hashes)?;
        self.tokenid_tokenhash
            .insert(session.access_token_id.as_bytes(), hash.as_slice())?;
        self.tokenhash_session
            .insert(hash.as_slice(), encode(session))?;
        Ok(())
    }

    /// Removes one session; returns it if it existed.
    pub fn remove_session(&self, hash: &TokenHash) -> TxResult<Option<Session>> {
        let Some(session) = self.session(hash)? else {
            return Ok(None);
        };
        let hashes: Vec<TokenHash> = self
            .session_hashes(session.account_id)?
            .into_iter()
            .filter(|h| h != hash)
            .collect();
        self.set_session_hashes(session.account_id, &hashes)?;
        self.tokenid_tokenhash
            .remove(session.access_token_id.as_bytes())?;
        self.tokenhash_session.remove(hash.as_slice())?;
        Ok(Some(session))
    }

    /// Revokes every session of an account but `keep`; returns how many went.
    pub fn revoke_sessions_of(&self, account_id: u64, keep: Option<&TokenHash>) -> TxResult<usize> {
        let mut revoked = 0;
        for hash in self.session_hashes(account_id)? {
            if Some(&hash) != keep && self.remove_session(&hash)?.is_some() {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Appends an audit entry (its id allocated by `Store::next_audit_id` before the
    /// transaction) and indexes it under the target account when there is one.
    /// Removes one audit entry and its account index key.
    pub fn remove_audit(&self, id: u64, account_id: Option<u64>) -> TxResult<()> {
        self.audit.remove(&id_key(id))?;
        if let Some(account) = account_id {
            self.accountid_auditid
                .remove(&account_audit_key(account, id))?;
        }
        Ok(())
    }

    pub fn audit(&self, entry: &AuditEntry) -> TxResult<()> {
        self.audit.insert(&id_key(entry.id), encode(entry))?;
        if let Some(account) = indexed_account(entry) {
            self.accountid_auditid
                .insert(&account_audit_key(account, entry.id), &[])?;
        }
        Ok(())
    }

    pub fn pool(&self, level: LicenseLevel) -> TxResult<Pool> {
        Ok(Self::get(
            self.licensetype_pool,
            "licensetype_pool",
            level.type_name().as_bytes(),
        )?
        .unwrap_or_default())
    }

    pub fn put_pool(&self, level: LicenseLevel, pool: &Pool) -> TxResult<()> {
        self.licensetype_pool
            .insert(level.type_name().as_bytes(), encode(pool))?;
        Ok(())
    }

    pub fn camera_raw<T: DeserializeOwned>(&self, id: u64) -> TxResult<Option<T>> {
        Self::get(self.cameras, "cameras", &id_key(id))
    }

    pub fn camera_exists(&self, id: u64) -> TxResult<bool> {
        Ok(self.cameras.get(id_key(id))?.is_some())
    }

    pub fn put_camera_raw<T: Serialize>(&self, id: u64, camera: &T) -> TxResult<()> {
        self.cameras.insert(&id_key(id), encode(camera))?;
        Ok(())
    }

    pub fn remove_camera_raw(&self, id: u64) -> TxResult<()> {
        self.cameras.remove(&id_key(id))?;
        self.cameraid_accountids.remove(&id_key(id))?;
        Ok(())
    }

    pub fn camera_group_raw<T: DeserializeOwned>(&self, id: u64) -> TxResult<Option<T>> {
        Self::get(self.camera_groups, "camera_groups", &id_key(id))
    }

    pub fn put_camera_group_raw<T: Serialize>(&self, id: u64, group: &T) -> TxResult<()> {
        self.camera_groups.insert(&id_key(id), encode(group))?;
        Ok(())
    }

    pub fn camera_accounts(&self, camera_id: u64) -> TxResult<Vec<u64>> {
        id_set(self.cameraid_accountids, camera_id)
    }

    /// Records in the reverse index that `account_id` has `camera_id`. The account record's
    /// own `cameras` set is the caller's to update (it writes the account anyway).
    pub fn link_camera(&self, camera_id: u64, account_id: u64) -> TxResult<()> {
        add_to_id_set(self.cameraid_accountids, camera_id, account_id)
    }

    pub fn unlink_camera(&self, camera_id: u64, account_id: u64) -> TxResult<()> {
        remove_from_id_set(self.cameraid_accountids, camera_id, account_id)
    }
}

/// An id → set-of-ids record (concatenated big-endian u64s), read and written whole inside a
/// transaction so that concurrent changes to the same set conflict and retry.
fn id_set(tree: &TransactionalTree, id: u64) -> TxResult<Vec<u64>> {
    Ok(tree
        .get(id_key(id))?
        .map(|b| ids_of(&b))
        .unwrap_or_default())
}

fn put_id_set(tree: &TransactionalTree, id: u64, ids: &[u64]) -> TxResult<()> {
    if ids.is_empty() {
        tree.remove(&id_key(id))?;
    } else {
        let bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_be_bytes()).collect();
        tree.insert(&id_key(id), bytes)?;
    }
    Ok(())
}

fn add_to_id_set(tree: &TransactionalTree, id: u64, member: u64) -> TxResult<()> {
    let mut ids = id_set(tree, id)?;
    if !ids.contains(&member) {
        ids.push(member);
        put_id_set(tree, id, &ids)?;
    }
    Ok(())
}

fn remove_from_id_set(tree: &TransactionalTree, id: u64, member: u64) -> TxResult<()> {
    let ids: Vec<u64> = id_set(tree, id)?
        .into_iter()
        .filter(|i| *i != member)
        .collect();
    put_id_set(tree, id, &ids)
}

fn ids_of(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks_exact(8).filter_map(key_id).collect()
}

/// The sub-user index (`parentid_subuserids`: a regular user's id → its sub-users' ids), kept
/// so that deleting a user finds, inside its one transaction, every sub-user, including one
/// created by a concurrent request (a scan outside the transaction could miss it).
impl Store {
    pub fn subuser_ids(&self, parent_id: u64) -> Result<Vec<u64>, StoreError> {
        Ok(self
            .trees
            .parentid_subuserids
            .get(id_key(parent_id))?
            .map(|b| ids_of(&b))
            .unwrap_or_default())
    }

    pub fn camera_count(&self) -> usize {
        self.trees.cameras.len()
    }
}

impl Tx<'_> {
    pub fn subuser_ids(&self, parent_id: u64) -> TxResult<Vec<u64>> {
        id_set(self.parentid_subuserids, parent_id)
    }

    pub fn link_subuser(&self, parent_id: u64, subuser_id: u64) -> TxResult<()> {
        add_to_id_set(self.parentid_subuserids, parent_id, subuser_id)
    }

    pub fn unlink_subuser(&self, parent_id: u64, subuser_id: u64) -> TxResult<()> {
        remove_from_id_set(self.parentid_subuserids, parent_id, subuser_id)
    }

    /// Drops a user's whole sub-user list (the user itself is being deleted).
    pub fn remove_subuser_index(&self, parent_id: u64) -> TxResult<()> {
        self.parentid_subuserids.remove(&id_key(parent_id))?;
        Ok(())
    }

    pub fn remove_camera_group_raw(&self, id: u64) -> TxResult<()> {
        self.camera_groups.remove(&id_key(id))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{UserType, STATUS_ACTIVE};

    fn account(login: &str) -> Account {
        Account {
            id: 0,
            user_type: UserType::User,
            login: login.into(),
            name: login.into(),
            password_hash: "x".into(),
            language: "en".into(),
            status: STATUS_ACTIVE,
            data: None,
            intro_reviewed: false,
            can_update_password: true,
            permissions: Default::default(),
            parent_id: None,
            cameras: Default::default(),
            created_at: 1,
            updated_at: 1,
            last_login: None,
            expired_at: None,
            ptz_priority: None,
            billing_info: None,
        }
    }

    fn create(store: &Store, login: &str) -> Result<Account, ApiError> {
        store.transaction(|tx| {
            let mut a = account(login);
            a.id = tx.next_id("account")?;
            tx.put_account(&a, None, "login")?;
            Ok(a)
        })
    }

    fn session(account_id: u64, token_id: &str) -> Session {
        Session {
            account_id,
            access_token_id: token_id.into(),
            device: None,
            client: None,
            user_agent: None,
            ip: None,
            created_at: 1,
            expires_at: 2,
            last_used: None,
        }
    }

    #[test]
    fn authentication_never_sees_records_older_than_the_last_write(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), 1 << 20)?;
        let a = create(&store, "a")?;
        let hash: TokenHash = [7; 32];
        store.transaction(|tx| tx.add_session(&hash, &session(a.id, "t1")))?;
        let first = store.authenticated(&hash)?.ok_or("no session")?;
        assert_eq!(
            (
                first.account.login.as_str(),
                first.session.access_token_id.as_str()
            ),
            ("a", "t1")
        );
        // Unchanged store: the same decoded records come back.
        let again = store.authenticated(&hash)?.ok_or("no session")?;
        assert!(Arc::ptr_eq(&first.account, &again.account));

        // A change to the account shows on the next call.
        store.transaction(|tx| {
            let mut account = tx
                .account(a.id)?
                .ok_or(TxError::Abort(ApiError::NotFound))?;
            account.status = crate::model::STATUS_DISABLED;
            tx.put_account(&account, Some("a"), "login")
        })?;
        let after = store.authenticated(&hash)?.ok_or("no session")?;
        assert_eq!(after.account.status, crate::model::STATUS_DISABLED);

        // A revoked session is gone on the next call.
        store.transaction(|tx| tx.remove_session(&hash).map(drop))?;
        assert!(store.authenticated(&hash)?.is_none());

        // Many callers: the cache stays bounded and every answer is still right.
        let many = AUTH_CACHE_ENTRIES as u16 + 10;
        let hash_of = |n: u16| -> TokenHash {
            let mut h = [0; 32];
            h[..2].copy_from_slice(&n.to_be_bytes());
            h[31] = 1;
            h
        };
        store.transaction(|tx| {
            for n in 0..many {
                tx.add_session(&hash_of(n), &session(a.id, &format!("t{n}")))?;
            }
            Ok(())
        })?;
        for n in 0..many {
            let found = store.authenticated(&hash_of(n))?.ok_or("no session")?;
            assert_eq!(found.session.access_token_id, format!("t{n}"));
            assert!(store.auth_cache().len() <= AUTH_CACHE_ENTRIES);
        }
        Ok(())
    }

    #[test]
    fn pruning_keeps_the_newest_audit_entries_and_their_index(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), 1 << 20)?;
        let a = create(&store, "a")?;
        // 2 500 entries (more than two prune batches), every other one about account `a`.
        let entries: Vec<AuditEntry> = (0..2500)
            .map(|n| {
                let target = (n % 2 == 0).then_some(a.id);
                AuditEntry::new(store.next_audit_id(), None, "x", "account", target, &[])
            })
            .collect();
        store.transaction(|tx| entries.iter().try_for_each(|e| tx.audit(e)))?;
        assert_eq!(store.prune_audit(5000)?, 0, "under the bound nothing goes");

        assert_eq!(store.prune_audit(300)?, 2200);
        let kept: Vec<u64> = store
            .trees
            .audit
            .iter()
            .keys()
            .filter_map(|k| k.ok().and_then(|k| key_id(&k)))
            .collect();
        let newest: Vec<u64> = entries[2200..].iter().map(|e| e.id).collect();
        assert_eq!(kept, newest);
        // The account index names exactly the kept entries about `a`.
        let indexed: Vec<u64> = store
            .trees
            .accountid_auditid
            .scan_prefix(id_key(a.id))
            .keys()
            .filter_map(|k| k.ok().and_then(|k| key_id(&k[8..])))
            .collect();
        let about_a: Vec<u64> = entries[2200..]
            .iter()
            .filter(|e| e.target_id == Some(a.id))
            .map(|e| e.id)
            .collect();
        assert_eq!(indexed, about_a);
        assert_eq!(store.prune_audit(300)?, 0, "a second pass finds nothing");
        Ok(())
    }

    #[test]
    fn cached_pools_follow_every_commit_and_ignore_aborts() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), 1 << 20)?;
        let before = store.pools()?;
        let l2 = Pool { all: 7, used: 3 };
        store.transaction(|tx| tx.put_pool(LicenseLevel::L2, &l2))?;
        assert_eq!(store.pools()?[LicenseLevel::L2 as usize], l2);
        assert_eq!(store.pools()?, store.read_pools()?);
        // A transaction that writes a pool and then aborts leaves the committed pools.
        let aborted = store.transaction(|tx| {
            tx.put_pool(LicenseLevel::L2, &Pool { all: 1, used: 1 })?;
            Err::<(), _>(TxError::Abort(ApiError::Forbidden))
        });
        assert!(aborted.is_err());
        assert_eq!(store.pools()?[LicenseLevel::L2 as usize], l2);
        assert_eq!(
            store.pools()?[LicenseLevel::L1 as usize],
            before[LicenseLevel::L1 as usize]
        );
        drop(store);
        // And they are what a reopened store reads.
        let store = Store::open(dir.path(), 1 << 20)?;
        assert_eq!(store.pools()?[LicenseLevel::L2 as usize], l2);
        Ok(())
    }

    #[test]
    fn ids_are_never_reused_and_survive_reopen() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        {
            let store = Store::open(dir.path(), 1 << 20)?;
            let a = create(&store, "a")?;
            let b = create(&store, "b")?;
            assert_eq!((a.id, b.id), (1, 2));
            store.transaction(|tx| tx.delete_account(&b))?;
            store.flush_blocking()?;
        }
        let store = Store::open(dir.path(), 1 << 20)?;
        let c = create(&store, "c")?;
        assert_eq!(c.id, 3);
        assert!(store.account(2)?.is_none());
        assert!(store.account_by_login("b")?.is_none());
        Ok(())
    }

    #[test]
    fn login_index_is_case_insensitive_and_unique() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), 1 << 20)?;
        let a = create(&store, "Alice")?;
        assert_eq!(store.account_by_login("alice")?.map(|x| x.id), Some(a.id));
        let dup = create(&store, " ALICE ");
        assert!(
            matches!(dup, Err(ApiError::Validation(e)) if e.messages("login") == ["The login has already been taken."])
        );
        // A rename frees the old login and takes the new one, in one transaction.
        store.transaction(|tx| {
            let mut x = tx.account(a.id)?.ok_or(ApiError::NotFound)?;
            let old = crate::validate::login_key(&x.login);
            x.login = "alicia".into();
            tx.put_account(&x, Some(&old), "login")
        })?;
        assert!(store.account_by_login("alice")?.is_none());
        assert_eq!(
            store
                .account_by_login(&crate::validate::login_key("ALICIA"))?
                .map(|x| x.id),
            Some(a.id)
        );
        Ok(())
    }

    #[test]
    fn aborted_transactions_write_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), 1 << 20)?;
        let r: Result<(), ApiError> = store.transaction(|tx| {
            let mut a = account("ghost");
            a.id = tx.next_id("account")?;
            tx.put_account(&a, None, "login")?;
            Err(TxError::Abort(ApiError::LicenseExceeded))
        });
        assert!(matches!(r, Err(ApiError::LicenseExceeded)));
        assert_eq!(store.account_count(), 0);
        assert!(store.account_by_login("ghost")?.is_none());
        assert_eq!(create(&store, "real")?.id, 1);
        Ok(())
    }

    #[test]
    fn sessions_index_both_ways_and_revoke_keeps_one() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), 1 << 20)?;
        let a = create(&store, "a")?;
        let (h1, h2, h3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        store.transaction(|tx| {
            tx.add_session(&h1, &session(a.id, "t1"))?;
            tx.add_session(&h2, &session(a.id, "t2"))?;
            tx.add_session(&h3, &session(a.id, "t3"))
        })?;
        assert_eq!(store.sessions_of(a.id)?.len(), 3);
        let revoked = store.transaction(|tx| tx.revoke_sessions_of(a.id, Some(&h2)))?;
        assert_eq!(revoked, 2);
        let left = store.sessions_of(a.id)?;
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.access_token_id, "t2");
        assert!(store.session(&h1)?.is_none());
        assert_eq!(store.transaction(|tx| tx.hash_by_token_id("t1"))?, None);
        assert_eq!(store.transaction(|tx| tx.hash_by_token_id("t2"))?, Some(h2));
        // Lazy last-use persistence does not resurrect a revoked session.
        store.touch_sessions(&[(h1, 50), (h2, 60)])?;
        assert!(store.session(&h1)?.is_none());
        assert_eq!(store.session(&h2)?.and_then(|s| s.last_used), Some(60));
        Ok(())
    }

    #[test]
    fn deleting_an_account_removes_sessions_and_camera_links(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), 1 << 20)?;
        let mut a = create(&store, "a")?;
        a.cameras.insert(7);
        store.transaction(|tx| {
            tx.put_account(&a, Some("a"), "login")?;
            tx.link_camera(7, a.id)?;
            tx.add_session(&[9u8; 32], &session(a.id, "t"))
        })?;
        assert_eq!(store.camera_accounts(7)?, vec![a.id]);
        store.transaction(|tx| tx.delete_account(&a))?;
        assert!(store.camera_accounts(7)?.is_empty());
        assert!(store.session(&[9u8; 32])?.is_none());
        assert!(store.sessions_of(a.id)?.is_empty());
        Ok(())
    }

    #[test]
    fn audit_entries_are_indexed_per_account_newest_first() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), 1 << 20)?;
        for i in 0..3 {
            let entry = AuditEntry {
                id: store.next_audit_id(),
                at: i,
                actor_id: None,
                action: format!("a{i}"),
                target_type: "account".into(),
                target_id: Some(5),
                fields: vec![],
            };
            store.transaction(|tx| tx.audit(&entry))?;
        }
        let events = store.account_events(5, 2)?;
        assert_eq!(
            events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["a2", "a1"]
        );
        let (page, total) = store.audit_page(0, 10)?;
        assert_eq!((page.len(), total), (3, 3));
        drop(store);
        let store = Store::open(dir.path(), 1 << 20)?;
        assert_eq!(store.next_audit_id(), 4);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_flushes_cover_every_writer() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = std::sync::Arc::new(Store::open(dir.path(), 1 << 20)?);
        let mut tasks = Vec::new();
        for i in 0..32u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .trees
                    .counters
                    .insert(format!("k{i}"), &i.to_be_bytes())?;
                store.flush().await
            }));
        }
        for t in tasks {
            t.await??;
        }
        let flushed = store.flushed_through.load(Ordering::SeqCst);
        assert_eq!(flushed, 32, "the last flush covers every ticket");
        Ok(())
    }

    #[test]
    fn a_newer_schema_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        {
            let db = sled::open(dir.path().join("db"))?;
            db.open_tree("meta")?
                .insert("schema_version", &99u64.to_be_bytes())?;
            db.flush()?;
        }
        assert!(matches!(
            Store::open(dir.path(), 1 << 20),
            Err(StoreError::Schema(_))
        ));
        Ok(())
    }

    #[test]
    fn a_panic_while_opening_becomes_an_error_with_its_message() {
        let caught = catch_quietly(|| -> u8 { panic!("bad page at 42") });
        assert_eq!(caught, Err("bad page at 42".to_owned()));
        assert_eq!(catch_quietly(|| 7), Ok(7));
    }

    #[test]
    fn a_database_that_held_data_and_opens_empty_is_damaged(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        drop(Store::open(dir.path(), 1 << 20)?);
        assert!(dir.path().join("db").join(INITIALIZED_MARKER).exists());
        // sled reads a data file of garbage as an empty database.
        std::fs::write(dir.path().join("db/db"), vec![0x5a; 4096])?;
        match Store::open(dir.path(), 1 << 20) {
            Err(StoreError::Damaged(what)) => assert!(what.contains("held vmsd data"), "{what}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a damaged database opened as a new one"),
        }
        Ok(())
    }

    #[test]
    fn the_database_directory_is_private() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        drop(Store::open(&data, 1 << 20)?);
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode(&data)?, 0o700);
        assert_eq!(mode(&data.join("db"))?, 0o700);
        // An existing database directory that others can read is closed on the next open.
        std::fs::set_permissions(data.join("db"), std::fs::Permissions::from_mode(0o755))?;
        drop(Store::open(&data, 1 << 20)?);
        assert_eq!(mode(&data.join("db"))?, 0o700);
        Ok(())
    }

    #[test]
    fn a_second_open_is_reported_as_locked() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let _first = Store::open(dir.path(), 1 << 20)?;
        assert!(matches!(
            Store::open(dir.path(), 1 << 20),
            Err(StoreError::Locked)
        ));
        Ok(())
    }
}
