//! `App`: everything a request needs, built once at start-up and shared as `Arc<App>` (no
//! globals).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::Config;
use crate::files::create_private_dir;
use crate::media_hook::RefusalCounts;
use crate::password::Hasher;
use crate::pushes::Pushes;
use crate::router::Router;
use crate::sockets::Sockets;
use crate::store::{Store, StoreError};
use crate::stream_token::StreamKey;
use crate::throttle::Throttle;
use crate::views::RenderedLicenses;

/// sled's page cache of the offline commands (backup, restore, reset-password), which read
/// little; the daemon's is `store.cache_mib`. sled's cache counts on-disk bytes, and real
/// memory runs a few times higher. Measured with the seeded bench store (issue 7): 4 MiB
/// saved 6 MiB of peak RSS but cost 20–35 % more CPU per request on every path. sled splits
/// the capacity over 256 LRU shards (sled-0.34.7/src/lru.rs), 32 KiB each at 8 MiB, and
/// smaller shards thrash.
pub const STORE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub hasher: Hasher,
    pub throttle: Throttle,
    pub router: Router,
    /// `analytic_license` as last rendered, for the client views.
    pub licenses_json: RenderedLicenses,
    /// Open WebSockets, counted in total and per account (SPEC §6).
    pub sockets: Sockets,
    /// The Pusher sockets and the fan-out of change notices to them (SPEC §9); also the
    /// store's notice sink.
    pub pushes: Arc<Pushes>,
    /// Held from an "another active administrator remains" check to its commit, so that two
    /// changes cannot each demote, disable or delete one of the last two administrators.
    pub admin_changes: tokio::sync::Mutex<()>,
    /// Held by each housekeeping round (`housekeeping::pass`), which removes dead sessions
    /// and old audit entries at any moment; whoever needs the store to stay still between
    /// two reads holds it too (the tests' before/after snapshots of a refused call).
    pub housekeeping_round: tokio::sync::Mutex<()>,
    /// Signs and checks stream tokens (SPEC §8); its secret is generated at first start and
    /// kept in the store, so backups carry it and a restart keeps tokens valid.
    pub stream_key: StreamKey,
    /// The media hook's refusals since start.
    pub media_refusals: RefusalCounts,
    /// Directory logins and the sync (SPEC §10); `None` without `[directory]`.
    #[cfg(feature = "directory")]
    pub directory: Option<Arc<crate::directory::Directory>>,
    shutting_down: AtomicBool,
}

/// The name of the stream token key's secret in the store.
pub const STREAM_KEY_SECRET: &str = "stream_token_key";

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

/// What opening a store means to an operator when it fails.
pub fn describe_open_failure(dir: &std::path::Path, e: &StoreError) -> String {
    let restore = format!(
        "Restore the last backup with `vmsd restore BACKUP_FILE --force --data-dir {}` \
         (--force moves the damaged database aside to db.replaced-<time>).",
        dir.display()
    );
    match e {
        // Not damage: advising a restore here would send an operator the wrong way.
        StoreError::Locked => format!(
            "the database in {} is in use by another process (is vmsd already running?)",
            dir.display()
        ),
        StoreError::Damaged(what) => format!(
            "the database in {} is damaged: {what}.\n{restore}",
            dir.display()
        ),
        other => format!(
            "cannot open the database in {}: {other}\nIf the data is damaged: {restore}",
            dir.display()
        ),
    }
}

/// Name of the generated `push.app_secret` in the store's secrets.
pub const PUSH_APP_SECRET: &str = "push.app_secret";

/// Bytes of a generated `push.app_secret` (SPEC §9: at least 32).
const PUSH_APP_SECRET_BYTES: usize = 32;

/// `push.app_secret` from the configuration, else the one generated at the first start and
/// kept in the store (so backups carry it and restarts keep every signature valid).
fn push_app_secret(config: &Config, store: &Store) -> Result<Vec<u8>, StartError> {
    if let Some(secret) = &config.push.app_secret {
        return Ok(secret.expose().as_bytes().to_vec());
    }
    let mut fresh = [0u8; PUSH_APP_SECRET_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
        .map_err(|_| StartError::Other("the OS gave no randomness for push.app_secret".into()))?;
    store
        .secret_or_insert(PUSH_APP_SECRET, &fresh)
        .map_err(|e| StartError::Store(format!("cannot keep push.app_secret: {e}")))
}

/// The stream token key kept in the store, generated (and stored) on a first start.
fn load_stream_key(store: &Store) -> Result<StreamKey, StartError> {
    let (fresh, _) = StreamKey::generate().map_err(|e| StartError::Other(e.to_string()))?;
    let secret = store
        .secret_or_insert(STREAM_KEY_SECRET, &fresh)
        .map_err(|e| StartError::Store(format!("cannot read the stream token key: {e}")))?;
    StreamKey::from_bytes(&secret).map_err(|e| StartError::Store(e.to_string()))
}

impl App {
    /// Opens the store in `config.data_dir` and builds what requests share. A first start
    /// also needs its first admin: `daemon::open_app` does both.
    pub fn open(config: Config) -> Result<App, StartError> {
        let dir = config.data_dir.clone();
        create_private_dir(&dir).map_err(|e| {
            StartError::Other(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let store = Store::open(&dir, config.store.cache_mib.saturating_mul(1024 * 1024))
            .map_err(|e| StartError::Store(describe_open_failure(&dir, &e)))?;
        let hasher = Hasher::new(&config.argon2).map_err(StartError::Other)?;
        let router = Router::new(&config.push.path).map_err(StartError::Other)?;
        let app_secret = push_app_secret(&config, &store)?;
        let pushes = Arc::new(Pushes::new(
            config.push.app_key.clone(),
            app_secret,
            config.push.max_subscriptions,
        ));
        store.set_notice_sink(pushes.clone());
        let stream_key = load_stream_key(&store)?;
        #[cfg(feature = "directory")]
        let directory = match config.directory.clone() {
            Some(d) => Some(Arc::new(
                crate::directory::Directory::new(d).map_err(StartError::Other)?,
            )),
            None => None,
        };
        let app = App {
            config,
            store,
            hasher,
            throttle: Throttle::default(),
            router,
            licenses_json: RenderedLicenses::default(),
            sockets: Sockets::default(),
            pushes,
            admin_changes: tokio::sync::Mutex::new(()),
            housekeeping_round: tokio::sync::Mutex::new(()),
            stream_key,
            media_refusals: RefusalCounts::default(),
            #[cfg(feature = "directory")]
            directory,
            shutting_down: AtomicBool::new(false),
        };
        Ok(app)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }
}
