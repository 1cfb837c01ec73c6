//! The directory half of SPEC §3's login (SPEC §10): a login that names no local account (or
//! a directory one) is checked against the directory, its groups mapped, its account created
//! or brought in step in the same write as the new session.

use crate::accounts::{audit_entry, default_language};
use crate::app::App;
use crate::auth::ClientMeta;
use crate::login::{audit_alone, open_session, record_failed_login, Login, LoginError, LoginKind};
use crate::model::{login_key, now, Account, AuditEntry, STATUS_ACTIVE};
use crate::store::{LoginTaken, TxError};

use super::account::{self, Derived, GroupCameras};
use super::{grant, Directory, DirectoryError};

/// Seconds a client is told to wait when the directory is unreachable: long enough not to
/// hammer servers that are down, short enough for a person to retry by hand.
const RETRY_AFTER_UNREACHABLE: u64 = 30;

/// A validated login request.
pub struct Request<'a> {
    pub login: &'a str,
    pub password: String,
    pub session_id: Option<&'a str>,
    pub kind: LoginKind,
    pub meta: &'a ClientMeta,
}

impl From<LoginTaken> for LoginError {
    /// A directory person whose login is another account's: the usual credentials answer.
    fn from(_: LoginTaken) -> Self {
        LoginError::BadCredentials
    }
}

/// The lockout counter of a login that has no vmsd account yet: its lowercased login,
/// hashed into the upper half of the id space (account ids are counted from 1 and never
/// get there).
fn unknown_login_key(login: &str) -> u64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, login_key(login).as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(bytes) | (1 << 63)
}

/// SPEC §10's login. `found` is the directory account the login names, if any (a local one
/// never comes here).
pub async fn login(
    app: &App,
    directory: &Directory,
    request: Request<'_>,
    found: Option<Account>,
) -> Result<Login, LoginError> {
    let auth_cfg = &app.config.auth;
    let counter = found
        .as_ref()
        .map_or_else(|| unknown_login_key(request.login), |a| a.id);
    let admission = app
        .throttle
        .admission(counter, auth_cfg.lockout_threshold)
        .map_err(|retry_after| LoginError::LockedOut { retry_after })?;
    let found_id = found.as_ref().map(|a| a.id);
    let entry = match directory
        .authenticate(request.login, &request.password)
        .await
    {
        Ok(entry) => entry,
        Err(DirectoryError::Unavailable(cause)) => {
            // Not the person's failure: the admission is dropped unsettled, nothing counted.
            tracing::error!(cause = %cause, "directory login failed: no directory server answered");
            return Err(LoginError::DirectoryUnavailable {
                retry_after: RETRY_AFTER_UNREACHABLE,
            });
        }
        Err(DirectoryError::Busy) => {
            tracing::warn!("directory login refused: too many directory logins waiting");
            return Err(LoginError::DirectoryUnavailable { retry_after: 1 });
        }
        Err(
            e @ (DirectoryError::EmptyPassword
            | DirectoryError::NotFound
            | DirectoryError::Ambiguous
            | DirectoryError::BadPassword),
        ) => {
            tracing::info!(user_id = found_id, reason = %e, "directory login refused");
            let locked_now =
                admission.settle(false, auth_cfg.lockout_threshold, auth_cfg.lockout_duration);
            record_failed_login(app, found_id, locked_now).await?;
            return Err(LoginError::BadCredentials);
        }
    };
    admission.settle(true, auth_cfg.lockout_threshold, auth_cfg.lockout_duration);
    if entry.disabled {
        return Err(LoginError::Disabled);
    }
    let Some(grant) = grant(&directory.config.maps, &entry.groups) else {
        tracing::info!(dn = %entry.dn, "directory login refused: no [[directory.map]] group");
        audit_alone(
            app,
            audit_entry(app, None, "directory_login_refused", found_id, &["groups"]),
        )
        .await?;
        return Err(LoginError::NotAllowed);
    };
    if !request.kind.admits(grant.user_type) {
        // As for a local account of the other kind: this route does not know it.
        return Err(LoginError::BadCredentials);
    }
    // An admin-set lock or disable sticks (SPEC §10); a sync-set disable is lifted below.
    if let Some(account) = &found {
        let sync_disabled = account.directory.as_ref().is_some_and(|l| l.sync_disabled);
        if account.status != STATUS_ACTIVE && !sync_disabled {
            return Err(LoginError::Disabled);
        }
    }
    let derived = Derived::new(app, &entry, &grant, &mut GroupCameras::default())?;
    let language = default_language(app);
    let created_entry = audit_entry(app, None, "directory_created", None, &[]);
    let updated_entry = audit_entry(app, None, "directory_login", None, &[]);
    let revoked_entry = audit_entry(app, None, "session_revoked", None, &["session"]);
    let at = now();
    let login = open_session(
        app,
        request.meta,
        request.session_id,
        request.kind,
        grant.user_type,
        |tx| {
            let written = account::write::<LoginError>(tx, &derived, &language, at)?;
            // The account may have been disabled by an admin since it was read.
            let sync_disabled = written
                .account
                .directory
                .as_ref()
                .is_some_and(|l| l.sync_disabled);
            if written.account.status != STATUS_ACTIVE && !sync_disabled {
                return Err(TxError::Abort(LoginError::Disabled));
            }
            let id = written.account.id;
            if !written.fields.is_empty() {
                let template = if written.created {
                    &created_entry
                } else {
                    &updated_entry
                };
                tx.audit(&AuditEntry {
                    fields: written.fields.iter().map(|f| (*f).to_owned()).collect(),
                    at,
                    ..template.about(id)
                })?;
            }
            if written.revoked > 0 {
                tx.audit(&revoked_entry.about(id))?;
            }
            Ok(written.account)
        },
    )
    .await?;
    Ok(login)
}
