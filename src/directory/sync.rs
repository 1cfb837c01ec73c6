//! The background sync of directory accounts (SPEC §10, `sync_interval`): every directory
//! account re-read by its id; one whose entry is gone, disabled (AD `userAccountControl`) or
//! in no mapped group any more is disabled and its sessions end (the §9 `logout` push and
//! §8's stream tokens follow from the store's change notices, as for an admin's disable);
//! changed groups update permissions and cameras (with their pushes). A sync whose searches
//! find none of the accounts disables nobody: a broken filter or an empty replica must not
//! lock everyone out.

use std::sync::Arc;

use crate::accounts::{audit_entry, default_language};
use crate::app::App;
use crate::model::{now, AuditEntry};
use crate::shutdown::Shutdown;
use crate::store::{LoginTaken, StoreError, TxError};

use super::account::{self, Derived, GroupCameras};
use super::{grant, Directory, DirectoryError, Entry};

/// What one sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Directory accounts looked at.
    pub accounts: usize,
    /// Accounts whose fields changed (re-enabled ones included).
    pub updated: usize,
    /// Accounts disabled by this sync.
    pub disabled: usize,
}

/// Why a sync changed nothing.
#[derive(Debug)]
pub enum SyncError {
    Directory(DirectoryError),
    /// The searches found none of the accounts: nobody is disabled.
    NothingFound {
        accounts: usize,
    },
    Store(StoreError),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::Directory(e) => write!(f, "{e}"),
            SyncError::NothingFound { accounts } => write!(
                f,
                "the directory found none of the {accounts} directory accounts (a broken \
                 filter or an empty replica?): nobody was disabled"
            ),
            SyncError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        SyncError::Store(e)
    }
}

/// Why the sync disables an account: for the log.
fn disable_reason(entry: Option<&Entry>) -> &'static str {
    match entry {
        None => "its directory entry is gone",
        Some(e) if e.disabled => "it is disabled in the directory",
        Some(_) => "it is in no [[directory.map]] group any more",
    }
}

/// The sync every `sync_interval` until shutdown (not started when it is zero).
pub async fn run(app: Arc<App>, directory: Arc<Directory>, mut shutdown: Shutdown) {
    let every = directory.config.sync_interval;
    let first = tokio::time::Instant::now() + every;
    let mut tick = tokio::time::interval_at(first, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tick.tick() => {}
        }
        match sync(&app, &directory).await {
            Ok(r) => tracing::info!(
                accounts = r.accounts,
                updated = r.updated,
                disabled = r.disabled,
                "directory sync done"
            ),
            Err(e) => tracing::error!(error = %e, "directory sync changed nothing"),
        }
    }
}

/// One sync of every directory account.
pub async fn sync(app: &App, directory: &Directory) -> Result<Report, SyncError> {
    let mut linked = Vec::new();
    for account in app.store.accounts() {
        let account = account?;
        if let Some(link) = &account.directory {
            linked.push((account.id, link.id.clone()));
        }
    }
    let mut report = Report {
        accounts: linked.len(),
        ..Report::default()
    };
    if linked.is_empty() {
        return Ok(report);
    }
    let ids: Vec<String> = linked.iter().map(|(_, id)| id.clone()).collect();
    let entries = directory
        .entries_by_id(&ids)
        .await
        .map_err(SyncError::Directory)?;
    if entries.iter().all(Option::is_none) {
        return Err(SyncError::NothingFound {
            accounts: linked.len(),
        });
    }
    let language = default_language(app);
    let mut group_cameras = GroupCameras::default();
    for ((id, _), entry) in linked.iter().zip(&entries) {
        let granted = entry
            .as_ref()
            .filter(|e| !e.disabled)
            .and_then(|e| grant(&directory.config.maps, &e.groups).map(|g| (e, g)));
        let at = now();
        match granted {
            None => {
                let entry_disabled =
                    audit_entry(app, None, "directory_sync", Some(*id), &["status"]);
                let revoked_entry =
                    audit_entry(app, None, "session_revoked", Some(*id), &["session"]);
                let written = app
                    .store
                    .commit(|tx| {
                        let written = account::disable::<std::convert::Infallible>(tx, *id, at)?;
                        // Nothing written (already disabled): `commit` then skips the flush.
                        if let Some(w) = &written {
                            tx.audit(&AuditEntry {
                                at,
                                ..entry_disabled.clone()
                            })?;
                            if w.revoked > 0 {
                                tx.audit(&revoked_entry)?;
                            }
                        }
                        Ok(written)
                    })
                    .await;
                match written {
                    Ok(Some(w)) => {
                        report.disabled += 1;
                        tracing::warn!(
                            user_id = *id,
                            sessions = w.revoked,
                            "directory sync disabled account {id}: {}",
                            disable_reason(entry.as_ref())
                        );
                    }
                    Ok(None) => {}
                    Err(TxError::Store(e)) => return Err(e.into()),
                    Err(TxError::Abort(never)) => match never {},
                }
            }
            Some((entry, grant)) => {
                let mut derived = Derived::new(app, entry, &grant, &mut group_cameras)?;
                let update_entry = audit_entry(app, None, "directory_sync", Some(*id), &[]);
                let revoked_entry =
                    audit_entry(app, None, "session_revoked", Some(*id), &["session"]);
                let mut written = None;
                for attempt in 0..2 {
                    let result = app
                        .store
                        .commit(|tx| {
                            let written =
                                account::write::<LoginTaken>(tx, &derived, &language, at)?;
                            if written.fields.is_empty() {
                                return Ok(written);
                            }
                            tx.audit(&AuditEntry {
                                fields: written.fields.iter().map(|f| (*f).to_owned()).collect(),
                                at,
                                ..update_entry.clone()
                            })?;
                            if written.revoked > 0 {
                                tx.audit(&revoked_entry)?;
                            }
                            Ok(written)
                        })
                        .await;
                    match result {
                        Ok(w) => {
                            written = Some(w);
                            break;
                        }
                        // A new login that another account holds: the old login stays.
                        Err(TxError::Abort(LoginTaken)) if attempt == 0 => {
                            let old = app.store.account(*id)?.map(|a| a.login);
                            tracing::warn!(
                                user_id = *id,
                                "directory sync: the new login of account {id} is another account's; it keeps its login"
                            );
                            match old {
                                Some(old) => derived.login = old,
                                None => break,
                            }
                        }
                        Err(TxError::Abort(LoginTaken)) => break,
                        Err(TxError::Store(e)) => return Err(e.into()),
                    }
                }
                if written.is_some_and(|w| !w.fields.is_empty()) {
                    report.updated += 1;
                }
            }
        }
    }
    Ok(report)
}
