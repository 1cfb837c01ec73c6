//! Writes: one sled transaction over every tree (`Tx`, with typed accessors), the group flush
//! that makes it durable, and the entry points that always do both (`Store::commit`,
//! `Store::write` and their blocking twins), so a write path cannot answer before its change
//! is on disk.
//!
//! A closure may abort with its caller's own domain error `E` (garage's `TxError<E>`): the
//! store carries it out untouched and never needs to know what it means.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use super::notices::{Notice, Pending, SessionEnd};
use super::{
    account_audit_key, decode_found, encode, hashes_of, id_key, ids_found, indexed_account, key_id,
    Store, StoreError, TokenHash, TxTrees,
};
use crate::model::{login_key, Account, AuditEntry, Camera, CameraGroup, Session};
use crate::permissions::{LicenseLevel, Pool};

/// Why a transaction did not commit: the closure's own answer (nothing was written) or a
/// storage failure.
#[derive(Debug)]
pub enum TxError<E> {
    Abort(E),
    Store(StoreError),
}

pub type TxResult<T, E> = Result<T, TxError<E>>;

/// The abort type of a transaction that never aborts.
pub type Never = std::convert::Infallible;

impl<E: std::fmt::Display> std::fmt::Display for TxError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxError::Abort(e) => write!(f, "aborted: {e}"),
            TxError::Store(e) => e.fmt(f),
        }
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for TxError<E> {}

impl<E> From<StoreError> for TxError<E> {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

impl From<UnabortableTransactionError> for StoreError {
    fn from(e: UnabortableTransactionError) -> Self {
        match e {
            UnabortableTransactionError::Conflict => StoreError::Conflict,
            UnabortableTransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

impl TxError<Never> {
    /// A transaction that cannot abort fails only in storage.
    pub fn into_store(self) -> StoreError {
        match self {
            TxError::Store(e) => e,
            TxError::Abort(never) => match never {},
        }
    }
}

/// `Tx::put_account` found the login held by another account (logins are unique across all
/// accounts, case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginTaken;

impl std::fmt::Display for LoginTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the login is held by another account")
    }
}

/// Group commit state: each writer takes a ticket after its write; one flush at a time runs
/// and covers every ticket issued before it started, so writers that waited behind it return
/// without flushing again. sled 0.34.7 also deadlocks with ~8 concurrent `flush_async` callers.
#[derive(Default)]
pub(super) struct GroupFlush {
    tickets: AtomicU64,
    flushed_through: AtomicU64,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Store {
    /// Runs `f` as one sled transaction over every tree, then waits until the change is on
    /// disk. `f` may run more than once (sled retries on conflict), so it must be pure: hash
    /// passwords and allocate audit ids before. An abort, or a commit that wrote nothing, is
    /// not flushed. The notices the committed attempt recorded go to the notice sink after
    /// the flush (see `notices`).
    pub async fn commit<T, E>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T, E>) -> TxResult<T, E> {
        let (value, wrote, pending) = self.transaction(f)?;
        if wrote {
            if let Err(e) = self.flush().await {
                pending.flush_failed();
                return Err(e.into());
            }
        }
        pending.deliver();
        Ok(value)
    }

    /// `commit` for a change that never aborts.
    pub async fn write<T>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.commit::<T, Never>(|tx| Ok(f(tx)?))
            .await
            .map_err(TxError::into_store)
    }

    /// `commit` off the runtime: the CLI, start-up, housekeeping on the blocking pool.
    pub fn commit_blocking<T, E>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T, E>) -> TxResult<T, E> {
        let (value, wrote, pending) = self.transaction(f)?;
        if wrote {
            if let Err(e) = self.flush_blocking() {
                pending.flush_failed();
                return Err(e.into());
            }
        }
        pending.deliver();
        Ok(value)
    }

    /// `write` off the runtime.
    pub fn write_blocking<T>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.commit_blocking::<T, Never>(|tx| Ok(f(tx)?))
            .map_err(TxError::into_store)
    }

    /// The transaction alone; also says whether it wrote anything, and holds the notices of
    /// the attempt that committed, numbered in commit order.
    fn transaction<T, E>(
        &self,
        f: impl Fn(&Tx<'_>) -> TxResult<T, E>,
    ) -> TxResult<(T, bool, Pending<'_>), E> {
        // Held across the transaction so that the sequence number given to its notices is
        // its place in the commit order. sled 0.34 already runs one transaction at a time
        // (a global lock around the closure and its commit), so this costs no concurrency.
        let mut order = self.notices.order();
        let result = self.tx_trees.as_slice().transaction(|views| {
            let trees = TxTrees::from_views(views).ok_or_else(|| {
                ConflictableTransactionError::Abort(Err(StoreError::Corrupt(
                    "transaction view has fewer trees than declared".into(),
                )))
            })?;
            let tx = Tx {
                t: trees,
                wrote: std::cell::Cell::new(false),
                notices: RefCell::new(Vec::new()),
            };
            match f(&tx) {
                Ok(v) => Ok((v, tx.wrote.get(), tx.notices.take())),
                Err(TxError::Abort(e)) => Err(ConflictableTransactionError::Abort(Ok(e))),
                Err(TxError::Store(StoreError::Conflict)) => {
                    Err(ConflictableTransactionError::Conflict)
                }
                Err(TxError::Store(StoreError::Sled(e))) => {
                    Err(ConflictableTransactionError::Storage(e))
                }
                Err(TxError::Store(other)) => Err(ConflictableTransactionError::Abort(Err(other))),
            }
        });
        // Whether it committed or not: a spurious bump costs one re-read per cached record.
        self.cache.written();
        match result {
            Ok((v, wrote, notices)) => {
                let pending = self.notices.pending(&mut order, notices);
                Ok((v, wrote, pending))
            }
            Err(TransactionError::Abort(Ok(e))) => Err(TxError::Abort(e)),
            Err(TransactionError::Abort(Err(e))) => Err(TxError::Store(e)),
            Err(TransactionError::Storage(e)) => Err(TxError::Store(StoreError::Sled(e))),
        }
    }

    /// Makes every write so far durable (see `GroupFlush`). The `commit` family calls it;
    /// shutdown calls it once more after persisting last-use times.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let state = &self.flush;
        let ticket = state.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let _one_at_a_time = state.one_at_a_time.lock().await;
        if state.flushed_through.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let covers = state.tickets.load(Ordering::SeqCst);
        self.db.flush_async().await?;
        state.flushed_through.fetch_max(covers, Ordering::SeqCst);
        Ok(())
    }

    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    #[cfg(test)]
    pub(super) fn flushed_through(&self) -> u64 {
        self.flush.flushed_through.load(Ordering::SeqCst)
    }
}

/// The trees as seen inside one transaction, with typed accessors. Reads and writes here
/// fail only in storage; domain answers are the caller's `TxError::Abort`.
pub struct Tx<'a> {
    t: TxTrees<'a>,
    /// Whether anything was written: a commit that wrote nothing waits for no flush.
    wrote: std::cell::Cell<bool>,
    /// What this attempt changed that listeners care about; kept only if it commits.
    notices: RefCell<Vec<Notice>>,
}

fn get<T: DeserializeOwned>(
    tree: &TransactionalTree,
    name: &str,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    decode_found(name, tree.get(key)?)
}

impl Tx<'_> {
    fn put(
        &self,
        tree: &TransactionalTree,
        key: impl AsRef<[u8]>,
        value: impl Into<sled::IVec>,
    ) -> Result<(), StoreError> {
        self.wrote.set(true);
        tree.insert(key.as_ref(), value)?;
        Ok(())
    }

    fn del(&self, tree: &TransactionalTree, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        self.wrote.set(true);
        tree.remove(key.as_ref())?;
        Ok(())
    }

    /// Next id of a named sequence; ids are never reused.
    pub fn next_id(&self, sequence: &str) -> Result<u64, StoreError> {
        let counters = self.t.counters;
        let current = counters
            .get(sequence.as_bytes())?
            .and_then(|v| key_id(&v))
            .unwrap_or(0);
        let next = current + 1;
        self.put(counters, sequence.as_bytes(), &next.to_be_bytes())?;
        Ok(next)
    }

    pub fn account(&self, id: u64) -> Result<Option<Account>, StoreError> {
        get(self.t.accounts, "accounts", &id_key(id))
    }

    pub fn account_id_by_login(&self, login_key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .t
            .login_accountid
            .get(login_key.as_bytes())?
            .and_then(|v| key_id(&v)))
    }

    /// The login index key of the stored account, decoding only its login.
    fn stored_login_key(&self, id: u64) -> Result<Option<String>, StoreError> {
        #[derive(serde::Deserialize)]
        struct StoredLogin {
            login: String,
        }
        let stored: Option<StoredLogin> = get(self.t.accounts, "accounts", &id_key(id))?;
        Ok(stored.map(|s| login_key(&s.login)))
    }

    /// The account linked to a directory entry id (SPEC §10).
    pub fn account_id_by_directory_id(&self, id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .t
            .directoryid_accountid
            .get(id.as_bytes())?
            .and_then(|v| key_id(&v)))
    }

    /// Writes an account, new or changed, and keeps the login index in step with it; aborts
    /// with `LoginTaken` when another account holds its login.
    pub fn put_account<E: From<LoginTaken>>(&self, account: &Account) -> TxResult<(), E> {
        let key = login_key(&account.login);
        // The index already naming this account under the login is the common case (any change
        // but a rename): one index read, no decoding of the stored record.
        match self.account_id_by_login(&key)? {
            Some(owner) if owner == account.id => {}
            Some(_) => return Err(TxError::Abort(LoginTaken.into())),
            None => {
                if let Some(old) = self.stored_login_key(account.id)? {
                    self.del(self.t.login_accountid, old.as_bytes())?;
                }
                self.put(self.t.login_accountid, key.as_bytes(), &id_key(account.id))?;
            }
        }
        if let Some(link) = &account.directory {
            self.put(
                self.t.directoryid_accountid,
                link.id.as_bytes(),
                &id_key(account.id),
            )?;
        }
        self.put(self.t.accounts, id_key(account.id), encode(account))?;
        Ok(())
    }

    /// Writes a changed account whose login did not change (a login's `last_login`, a
    /// re-hash); a changed login is refused as a bug rather than left out of the index.
    pub fn rewrite_account(&self, account: &Account) -> Result<(), StoreError> {
        let indexed = self.account_id_by_login(&login_key(&account.login))? == Some(account.id);
        if !indexed && self.stored_login_key(account.id)?.is_some() {
            return Err(StoreError::Corrupt(format!(
                "account {}: rewrite_account cannot change a login",
                account.id
            )));
        }
        self.put(self.t.accounts, id_key(account.id), encode(account))?;
        Ok(())
    }

    /// Removes an account, its login, its sessions and its camera assignments.
    pub fn delete_account(&self, account: &Account) -> Result<(), StoreError> {
        self.revoke_sessions_of(account.id, None, SessionEnd::AccountDeleted)?;
        for camera_id in &account.cameras {
            self.unlink_camera(*camera_id, account.id)?;
        }
        self.del(self.t.login_accountid, login_key(&account.login).as_bytes())?;
        if let Some(link) = &account.directory {
            self.del(self.t.directoryid_accountid, link.id.as_bytes())?;
        }
        self.del(self.t.accounts, id_key(account.id))?;
        Ok(())
    }

    pub fn session(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        get(self.t.tokenhash_session, "tokenhash_session", hash)
    }

    pub fn session_hashes(&self, account_id: u64) -> Result<Vec<TokenHash>, StoreError> {
        Ok(self
            .t
            .accountid_tokenhashes
            .get(id_key(account_id))?
            .map(|b| hashes_of(&b))
            .unwrap_or_default())
    }

    fn set_session_hashes(&self, account_id: u64, hashes: &[TokenHash]) -> Result<(), StoreError> {
        let tree = self.t.accountid_tokenhashes;
        if hashes.is_empty() {
            self.del(tree, id_key(account_id))?;
        } else {
            self.put(tree, id_key(account_id), hashes.concat())?;
        }
        Ok(())
    }

    pub fn hash_by_token_id(&self, access_token_id: &str) -> Result<Option<TokenHash>, StoreError> {
        Ok(self
            .t
            .tokenid_tokenhash
            .get(access_token_id.as_bytes())?
            .and_then(|v| v.as_ref().try_into().ok()))
    }

    pub fn add_session(&self, hash: &TokenHash, session: &Session) -> Result<(), StoreError> {
        let mut hashes = self.session_hashes(session.account_id)?;
        hashes.push(*hash);
        self.set_session_hashes(session.account_id, &hashes)?;
        self.put(
            self.t.tokenid_tokenhash,
            session.access_token_id.as_bytes(),
            hash.as_slice(),
        )?;
        self.put(self.t.tokenhash_session, hash.as_slice(), encode(session))?;
        if let Some(refresh) = &session.refresh {
            self.put(
                self.t.refreshhash_tokenid,
                refresh.hash.as_bytes(),
                session.access_token_id.as_bytes(),
            )?;
        }
        Ok(())
    }

    /// The session a refresh token (by its hash, lowercase hex) belongs to, with the hash of
    /// its current access token.
    pub fn session_by_refresh(
        &self,
        refresh_hash: &str,
    ) -> Result<Option<(TokenHash, Session)>, StoreError> {
        let Some(id) = self.t.refreshhash_tokenid.get(refresh_hash.as_bytes())? else {
            return Ok(None);
        };
        let id = String::from_utf8(id.to_vec())
            .map_err(|_| StoreError::Corrupt("refreshhash_tokenid value".into()))?;
        let Some(hash) = self.hash_by_token_id(&id)? else {
            return Ok(None);
        };
        Ok(self.session(&hash)?.map(|s| (hash, s)))
    }

    /// Gives a session a new access token (SPEC §6 `token/refresh`): the record moves from
    /// `old` to `new` with its public id, refresh token and place in the account's list. The
    /// session does not end, so nobody is told; the old token simply stops resolving.
    pub fn replace_access_token(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        session: &Session,
    ) -> Result<(), StoreError> {
        let hashes: Vec<TokenHash> = self
            .session_hashes(session.account_id)?
            .into_iter()
            .map(|h| if h == *old { *new } else { h })
            .collect();
        self.set_session_hashes(session.account_id, &hashes)?;
        self.put(
            self.t.tokenid_tokenhash,
            session.access_token_id.as_bytes(),
            new.as_slice(),
        )?;
        self.del(self.t.tokenhash_session, old.as_slice())?;
        self.put(self.t.tokenhash_session, new.as_slice(), encode(session))?;
        Ok(())
    }

    /// Removes one session, ended for the reason `end`; returns it if it existed.
    pub fn remove_session(
        &self,
        hash: &TokenHash,
        end: SessionEnd,
    ) -> Result<Option<Session>, StoreError> {
        let Some(session) = self.session(hash)? else {
            return Ok(None);
        };
        let hashes: Vec<TokenHash> = self
            .session_hashes(session.account_id)?
            .into_iter()
            .filter(|h| h != hash)
            .collect();
        self.set_session_hashes(session.account_id, &hashes)?;
        self.del(self.t.tokenid_tokenhash, session.access_token_id.as_bytes())?;
        self.del(self.t.tokenhash_session, hash.as_slice())?;
        if let Some(refresh) = &session.refresh {
            self.del(self.t.refreshhash_tokenid, refresh.hash.as_bytes())?;
        }
        self.notice(Notice::SessionEnded {
            account_id: session.account_id,
            access_token_id: session.access_token_id.clone(),
            end,
        });
        Ok(Some(session))
    }

    /// Revokes every session of an account but `keep`, for the reason `end`; returns how
    /// many went.
    pub fn revoke_sessions_of(
        &self,
        account_id: u64,
        keep: Option<&TokenHash>,
        end: SessionEnd,
    ) -> Result<usize, StoreError> {
        let mut revoked = 0;
        for hash in self.session_hashes(account_id)? {
            if Some(&hash) != keep && self.remove_session(&hash, end)?.is_some() {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Records a change for the notice sink; it is delivered only if this attempt commits,
    /// after the flush. Session ends are recorded by the session methods themselves.
    pub fn notice(&self, notice: Notice) {
        self.notices.borrow_mut().push(notice);
    }

    /// Appends an audit entry (its id allocated by `Store::next_audit_id` before the
    /// transaction) and indexes it under the target account when there is one.
    pub fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.put(self.t.audit, id_key(entry.id), encode(entry))?;
        if let Some(account) = indexed_account(entry) {
            self.put(
                self.t.accountid_auditid,
                account_audit_key(account, entry.id),
                &[],
            )?;
        }
        Ok(())
    }

    /// Removes one audit entry and its account index key.
    pub fn remove_audit(&self, id: u64, account_id: Option<u64>) -> Result<(), StoreError> {
        self.del(self.t.audit, id_key(id))?;
        if let Some(account) = account_id {
            self.del(self.t.accountid_auditid, account_audit_key(account, id))?;
        }
        Ok(())
    }

    pub fn pool(&self, level: LicenseLevel) -> Result<Pool, StoreError> {
        Ok(get(
            self.t.licensetype_pool,
            "licensetype_pool",
            level.type_name().as_bytes(),
        )?
        .unwrap_or_default())
    }

    pub fn put_pool(&self, level: LicenseLevel, pool: &Pool) -> Result<(), StoreError> {
        self.put(
            self.t.licensetype_pool,
            level.type_name().as_bytes(),
            encode(pool),
        )?;
        Ok(())
    }

    pub fn camera(&self, id: u64) -> Result<Option<Camera>, StoreError> {
        get(self.t.cameras, "cameras", &id_key(id))
    }

    pub fn camera_exists(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.t.cameras.get(id_key(id))?.is_some())
    }

    /// Writes a camera, new or changed, and keeps the media path index in step with it. The
    /// caller checks `media_path_owner` first, in the same transaction, and answers a taken
    /// path itself; a path held by another camera here is refused as a bug rather than
    /// taken over.
    pub fn put_camera(&self, camera: &Camera) -> Result<(), StoreError> {
        let previous: Option<Option<String>> = self.stored_media_path(camera.id)?;
        if previous.as_ref() != Some(&camera.media_path) {
            if let Some(path) = &camera.media_path {
                if let Some(owner) = self.media_path_owner(path)? {
                    if owner != camera.id {
                        return Err(StoreError::Corrupt(format!(
                            "camera {}: media path held by camera {owner}",
                            camera.id
                        )));
                    }
                }
            }
            if let Some(Some(old)) = &previous {
                self.del(self.t.mediapath_cameraid, old.as_bytes())?;
            }
            if let Some(path) = &camera.media_path {
                self.put(
                    self.t.mediapath_cameraid,
                    path.as_bytes(),
                    &id_key(camera.id),
                )?;
            }
        }
        self.put(self.t.cameras, id_key(camera.id), encode(camera))?;
        Ok(())
    }

    /// The stored camera's own media path (`Some(None)`: a camera on its default path;
    /// `None`: no such camera), decoding only that field.
    fn stored_media_path(&self, id: u64) -> Result<Option<Option<String>>, StoreError> {
        #[derive(serde::Deserialize)]
        struct StoredMediaPath {
            #[serde(default)]
            media_path: Option<String>,
        }
        let stored: Option<StoredMediaPath> = get(self.t.cameras, "cameras", &id_key(id))?;
        Ok(stored.map(|s| s.media_path))
    }

    /// The camera holding `path` as its own media path (defaults `cam{id}` are not indexed).
    pub fn media_path_owner(&self, path: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .t
            .mediapath_cameraid
            .get(path.as_bytes())?
            .and_then(|v| key_id(&v)))
    }

    /// Removes a camera record, its media path and its reverse index; the accounts' own
    /// `cameras` sets are the caller's to update (it writes those accounts anyway).
    pub fn remove_camera(&self, id: u64) -> Result<(), StoreError> {
        if let Some(Some(path)) = self.stored_media_path(id)? {
            self.del(self.t.mediapath_cameraid, path.as_bytes())?;
        }
        self.del(self.t.cameras, id_key(id))?;
        self.del(self.t.cameraid_accountids, id_key(id))?;
        Ok(())
    }

    pub fn camera_group(&self, id: u64) -> Result<Option<CameraGroup>, StoreError> {
        get(self.t.camera_groups, "camera_groups", &id_key(id))
    }

    pub fn put_camera_group(&self, group: &CameraGroup) -> Result<(), StoreError> {
        self.put(self.t.camera_groups, id_key(group.id), encode(group))?;
        Ok(())
    }

    pub fn remove_camera_group(&self, id: u64) -> Result<(), StoreError> {
        self.del(self.t.camera_groups, id_key(id))?;
        Ok(())
    }

    pub fn camera_accounts(&self, camera_id: u64) -> Result<Vec<u64>, StoreError> {
        id_set(self.t.cameraid_accountids, camera_id)
    }

    /// Records in the reverse index that `account_id` has `camera_id`. The account record's
    /// own `cameras` set is the caller's to update (it writes the account anyway).
    pub fn link_camera(&self, camera_id: u64, account_id: u64) -> Result<(), StoreError> {
        self.add_to_id_set(self.t.cameraid_accountids, camera_id, account_id)
    }

    pub fn unlink_camera(&self, camera_id: u64, account_id: u64) -> Result<(), StoreError> {
        self.remove_from_id_set(self.t.cameraid_accountids, camera_id, account_id)
    }

    pub fn subuser_ids(&self, parent_id: u64) -> Result<Vec<u64>, StoreError> {
        id_set(self.t.parentid_subuserids, parent_id)
    }

    pub fn link_subuser(&self, parent_id: u64, subuser_id: u64) -> Result<(), StoreError> {
        self.add_to_id_set(self.t.parentid_subuserids, parent_id, subuser_id)
    }

    pub fn unlink_subuser(&self, parent_id: u64, subuser_id: u64) -> Result<(), StoreError> {
        self.remove_from_id_set(self.t.parentid_subuserids, parent_id, subuser_id)
    }

    /// Drops a user's whole sub-user list (the user itself is being deleted).
    pub fn remove_subuser_index(&self, parent_id: u64) -> Result<(), StoreError> {
        self.del(self.t.parentid_subuserids, id_key(parent_id))?;
        Ok(())
    }
}

/// An id → set-of-ids record (concatenated big-endian u64s), read and written whole inside a
/// transaction so that concurrent changes to the same set conflict and retry.
fn id_set(tree: &TransactionalTree, id: u64) -> Result<Vec<u64>, StoreError> {
    Ok(ids_found(tree.get(id_key(id))?))
}

impl Tx<'_> {
    fn put_id_set(&self, tree: &TransactionalTree, id: u64, ids: &[u64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            self.del(tree, id_key(id))
        } else {
            let bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_be_bytes()).collect();
            self.put(tree, id_key(id), bytes)
        }
    }

    fn add_to_id_set(
        &self,
        tree: &TransactionalTree,
        id: u64,
        member: u64,
    ) -> Result<(), StoreError> {
        let mut ids = id_set(tree, id)?;
        if !ids.contains(&member) {
            ids.push(member);
            self.put_id_set(tree, id, &ids)?;
        }
        Ok(())
    }

    fn remove_from_id_set(
        &self,
        tree: &TransactionalTree,
        id: u64,
        member: u64,
    ) -> Result<(), StoreError> {
        let ids: Vec<u64> = id_set(tree, id)?
            .into_iter()
            .filter(|i| *i != member)
            .collect();
        self.put_id_set(tree, id, &ids)
    }
}
