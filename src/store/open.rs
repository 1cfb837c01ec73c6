//! Opening the store: a private directory, sled's exclusive lock (waited for briefly), sled's
//! own refusals and panics on damaged files turned into one clear error, the schema version,
//! and the marker that tells a damaged database that opens empty from a first start.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use super::{key_id, Store, StoreError, Trees, SCHEMA_VERSION};
use crate::files::{create_private_dir, write_private};

/// A file beside sled's own in `db/` (sled reads only `conf`, `db`, `blobs/` and `snap.*`),
/// created once the schema version is on disk: from then on, a database that opens empty is
/// damaged, not new.
pub(super) const INITIALIZED_MARKER: &str = "vmsd-initialized";

/// How long an open waits for sled's file lock before reporting `Locked`.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

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
        let trees = Trees::open(&db)?;
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
            tx_trees: trees.transactional(),
            trees,
            path,
            next_audit_id: AtomicU64::new(last_audit + 1),
            flush: Default::default(),
            cache: Default::default(),
            notices: Default::default(),
        })
    }
}

fn mark_initialized(marker: &Path) -> Result<(), StoreError> {
    write_private(marker, format!("schema {SCHEMA_VERSION}\n").as_bytes())?;
    Ok(())
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
pub(super) fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
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
