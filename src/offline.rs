//! `vmsd admin reset-password`: the offline recovery of an account's password. It opens the
//! store itself, so it refuses while the daemon holds the database.

use crate::accounts::AccountError;
use crate::app::STORE_CACHE_BYTES;
use crate::config::Config;
use crate::model::{login_key, now, AuditEntry};
use crate::password::Hasher;
use crate::store::{SessionEnd, Store, TxError};
use crate::validate::{self, FieldErrors};

/// Sets `login`'s password to `password`: a password change like any other: the account's sessions end, an audit entry records it.
pub fn reset_password(config: &Config, login: &str, password: &str) -> Result<(), String> {
    let mut errors = FieldErrors::new();
    validate::check_new_password(
        &mut errors,
        password,
        Some(password),
        config.auth.password_min_length,
    );
    if !errors.is_empty() {
        return Err(errors.messages("password").join(" "));
    }
    let store = Store::open(&config.data_dir, STORE_CACHE_BYTES).map_err(|e| {
        format!(
            "cannot open the database in {} (is vmsd running? stop it first): {e}",
            config.data_dir.display()
        )
    })?;
    let hash = Hasher::new(&config.argon2)?.hash_blocking(password)?;
    let entry = AuditEntry::new(
        store.next_audit_id(),
        None,
        "password_reset",
        "account",
        None,
        &["password"],
    );
    let at = now();
    store
        .commit_blocking(|tx| {
            let id = tx
                .account_id_by_login(&login_key(login))?
                .ok_or(TxError::Abort(AccountError::NotFound))?;
            let mut account = tx
                .account(id)?
                .ok_or(TxError::Abort(AccountError::NotFound))?;
            if account.is_directory_managed() {
                return Err(TxError::Abort(AccountError::DirectoryManaged));
            }
            account.password_hash = hash.clone();
            account.updated_at = at;
            tx.rewrite_account(&account)?;
            tx.revoke_sessions_of(id, None, SessionEnd::PasswordChanged)?;
            tx.audit(&entry.about(id))?;
            Ok(())
        })
        .map_err(|e| match AccountError::from(e) {
            AccountError::NotFound => format!("no account with login {login:?}"),
            AccountError::DirectoryManaged => format!(
                "{login:?} is a directory account: its password is changed in the directory"
            ),
            other => other.to_string(),
        })
}
