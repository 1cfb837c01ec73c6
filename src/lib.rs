//! vmsd — the user and access daemon of an on-prem VMS/NVR appliance.
//!
//! Map of the crate (one file per concern):
//! - `config`   — the TOML configuration, defaults, and all-at-once validation (exit 78).
//! - `tls`      — rustls server config (ring provider), PEM loading, self-signed certificate, SIGHUP reload.
//! - `server`   — the accept loop: TLS handshake, hyper HTTP/1.1 connections, limits, graceful drain.
//! - `router`   — maps method + path to a handler; 404/405.
//! - `handlers` — one file per API area (auth, self, admin, websocket, misc).
//! - `push_protocol` — the Pusher protocol of SPEC §9, pure: frames, channel auth, close codes.
//! - `error`    — `ApiError`, the one mapping from domain errors to status + Laravel body.
//! - `auth`     — tokens, sessions, login rules, lockout and per-IP throttling.
//! - `store`    — everything that touches sled: trees, id counters, transactions, flushes.
//! - `password` — argon2id hashing off the runtime behind a bounded queue.
//! - `validate` — Laravel-style field validation and messages.
//! - `model`    — stored records and the JSON views the API renders.
//! - `systemd`  — sd_notify, watchdog, socket activation.
//! - `logging`  — journald or stderr, never both.
//! - `shutdown` — the shutdown signal shared by the server and background tasks.
//! - `backup`   — `vmsd backup` / `vmsd restore`: the versioned export file.
#![forbid(unsafe_code)]

pub mod auth;
pub mod backup;
pub mod config;
pub mod error;
pub mod handlers;
pub mod logging;
pub mod model;
pub mod password;
pub mod push_protocol;
pub mod router;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod systemd;
pub mod tls;
pub mod validate;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::Config;
use crate::model::{now, Account, NewAccount, UserType};

/// Everything a request needs, built once and shared as `Arc<App>`: no globals.
pub struct App {
    pub config: Config,
    pub store: store::Store,
    pub hasher: password::Hasher,
    pub auth: auth::AuthState,
    pub router: router::Router,
    /// `analytic_license` as last rendered, for the client views.
    pub licences_json: model::RenderedLicences,
    /// Open WebSockets, counted in total and per account (SPEC §6).
    pub sockets: handlers::websocket::Sockets,
    shutting_down: AtomicBool,
}

/// Why the daemon could not start; `main` prints it and picks the exit code.
#[derive(Debug)]
pub enum StartError {
    Store(String),
    Other(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Store(m) | StartError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StartError {}

/// sled's page cache; it counts on-disk bytes, and real memory runs a few times higher.
/// Measured with the seeded bench store (issue 7): 4 MiB saved 6 MiB of peak RSS but cost
/// 20–35 % more CPU per request on every path. sled splits the capacity over 256 LRU shards
/// (sled-0.34.7/src/lru.rs), 32 KiB each at 8 MiB, and smaller shards thrash.
pub const STORE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

impl App {
    /// Opens the store in `config.data_dir`, creating the first admin on an empty store with
    /// `admin_password` (the daemon passes `VMSD_ADMIN_PASSWORD`) or a random one.
    pub fn open(config: Config, admin_password: Option<String>) -> Result<Arc<App>, StartError> {
        let dir = config.data_dir.clone();
        store::create_private_dir(&dir).map_err(|e| {
            StartError::Other(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let store = store::Store::open(&dir, STORE_CACHE_BYTES).map_err(|e| {
            let restore = format!(
                "Restore the last backup with `vmsd restore BACKUP_FILE --force --data-dir {}` \
                 (--force moves the damaged database aside to db.replaced-<time>).",
                dir.display()
            );
            match e {
                // Not damage: advising a restore here would send an operator the wrong way.
                store::StoreError::Locked => StartError::Store(format!(
                    "the database in {} is in use by another process (is vmsd already running?)",
                    dir.display()
                )),
                store::StoreError::Damaged(what) => StartError::Store(format!(
                    "the database in {} is damaged: {what}.\n{restore}",
                    dir.display()
                )),
                other => StartError::Store(format!(
                    "cannot open the database in {}: {other}\nIf the data is damaged: {restore}",
                    dir.display()
                )),
            }
        })?;
        let hasher = password::Hasher::new(&config.argon2).map_err(StartError::Other)?;
        let router = router::Router::new().map_err(StartError::Other)?;
        let app = App {
            config,
            store,
            hasher,
            auth: auth::AuthState::default(),
            router,
            licences_json: model::RenderedLicences::default(),
            sockets: handlers::websocket::Sockets::default(),
            shutting_down: AtomicBool::new(false),
        };
        app.bootstrap_admin(admin_password)?;
        Ok(Arc::new(app))
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// First start on an empty store: the `admin` account, with `VMSD_ADMIN_PASSWORD` or a
    /// random password written once to `<data_dir>/initial-admin-password` (0600).
    fn bootstrap_admin(&self, admin_password: Option<String>) -> Result<(), StartError> {
        if self.store.account_count() > 0 {
            return Ok(());
        }
        let (password, file) = match admin_password {
            Some(p) if !p.is_empty() => (p, None),
            _ => {
                let p = password::random_password();
                let path = self.config.data_dir.join("initial-admin-password");
                write_private(&path, format!("{p}\n").as_bytes()).map_err(|e| {
                    StartError::Other(format!("cannot write {}: {e}", path.display()))
                })?;
                (p, Some(path))
            }
        };
        let hash = self
            .hasher
            .hash_blocking(&password)
            .map_err(StartError::Other)?;
        let at = now();
        let language = self
            .config
            .locales
            .available
            .first()
            .cloned()
            .unwrap_or_else(|| "en".into());
        self.store
            .transaction(|tx| {
                let admin = Account {
                    permissions: model::admin_permissions(),
                    ..Account::new(
                        tx.next_id("account")?,
                        NewAccount {
                            user_type: UserType::Admin,
                            login: "admin".into(),
                            name: "Administrator".into(),
                            password_hash: hash.clone(),
                            language: language.clone(),
                        },
                        at,
                    )
                };
                tx.put_account(&admin, None, "login")
            })
            .map_err(|e| StartError::Store(format!("cannot create the first admin: {e}")))?;
        self.store
            .flush_blocking()
            .map_err(|e| StartError::Store(e.to_string()))?;
        match file {
            Some(path) => tracing::info!(
                path = %path.display(),
                "created the admin account; its initial password is in {}",
                path.display()
            ),
            None => tracing::info!(
                "created the admin account with the password from VMSD_ADMIN_PASSWORD"
            ),
        }
        Ok(())
    }
}

/// Writes a file that only its owner may read, created with that mode (never briefly open).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// `vmsd admin reset-password`: offline, so it refuses while the daemon holds the database.
pub fn reset_password(config: &Config, login: &str, password: &str) -> Result<(), String> {
    let mut errors = error::FieldErrors::new();
    validate::check_new_password(
        &mut errors,
        password,
        Some(password),
        config.auth.password_min_length,
    );
    if !errors.is_empty() {
        return Err(errors.messages("password").join(" "));
    }
    let store = store::Store::open(&config.data_dir, STORE_CACHE_BYTES).map_err(|e| {
        format!(
            "cannot open the database in {} (is vmsd running? stop it first): {e}",
            config.data_dir.display()
        )
    })?;
    let hasher = password::Hasher::new(&config.argon2)?;
    let hash = hasher.hash_blocking(password)?;
    let entry = model::AuditEntry::new(
        store.next_audit_id(),
        None,
        "password_reset",
        "account",
        None,
        &["password"],
    );
    store
        .transaction(|tx| {
            let id = tx
                .account_id_by_login(&validate::login_key(login))?
                .ok_or(error::ApiError::NotFound)?;
            let mut account = tx.account(id)?.ok_or(error::ApiError::NotFound)?;
            let key = validate::login_key(&account.login);
            account.password_hash = hash.clone();
            account.updated_at = now();
            tx.put_account(&account, Some(&key), "login")?;
            tx.revoke_sessions_of(id, None)?;
            tx.audit(&entry.about(id))
        })
        .map_err(|e| match e {
            error::ApiError::NotFound => format!("no account with login {login:?}"),
            other => other.to_string(),
        })?;
    store.flush_blocking().map_err(|e| e.to_string())
}
