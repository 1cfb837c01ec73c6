//! What the fuzz targets share: one daemon `App` per fuzzing process, on a throw-away data
//! dir, with cheap argon2 parameters and a few records to find (cameras 1–3, the login
//! `taken`), so that validators which look things up in the store take both branches; and a
//! small runtime for the async parts (response bodies, WebSocket actions).

use std::sync::{Arc, OnceLock};

use vmsd::config::{Argon2Config, Config};
use vmsd::model::{now, Account, Camera};
use vmsd::App;

/// Cameras that exist in the fixture store; other ids do not.
pub const CAMERAS: [u64; 3] = [1, 2, 3];
/// A login some account already holds (case-insensitively).
pub const TAKEN_LOGIN: &str = "taken";

static APP: OnceLock<Arc<App>> = OnceLock::new();
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The shared App. A fixture that cannot be built is a broken harness, not a finding, so it
/// aborts with the reason.
pub fn app() -> &'static Arc<App> {
    APP.get_or_init(|| match build() {
        Ok(app) => app,
        Err(e) => {
            eprintln!("fuzz fixture: {e}");
            std::process::abort();
        }
    })
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RUNTIME
        .get_or_init(
            || match tokio::runtime::Builder::new_current_thread().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("fuzz fixture: no runtime: {e}");
                    std::process::abort();
                }
            },
        )
        .block_on(f)
}

fn build() -> Result<Arc<App>, String> {
    // Kept for the life of the process: the store lives in it.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?.keep();
    let defaults = Config::default();
    let config = Config {
        data_dir: dir,
        argon2: Argon2Config {
            memory_kib: 64,
            iterations: 1,
            ..defaults.argon2.clone()
        },
        ..defaults
    };
    let app = vmsd::daemon::open_app(config, Some("fuzz-admin-password".into()))
        .map_err(|e| e.to_string())?;
    // From JSON: serde fills every field the records default, and a record gaining a field
    // needs no change here.
    let camera = |id: u64| {
        serde_json::from_value::<Camera>(serde_json::json!({
            "id": id, "name": format!("camera {id}"), "type": "embed", "is_enabled": true,
            "is_sound_enabled": false, "created_at": now(), "updated_at": now(),
        }))
    };
    let cameras = CAMERAS
        .iter()
        .map(|id| camera(*id))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    app.store
        .commit_blocking::<_, vmsd::store::LoginTaken>(|tx| {
            for camera in &cameras {
                tx.put_camera(camera)?;
            }
            let account = serde_json::json!({
                "id": tx.next_id("account")?, "user_type": "special", "login": TAKEN_LOGIN,
                "name": "Taken", "password_hash": "", "language": "en", "status": 0,
                "can_update_password": true, "created_at": now(), "updated_at": now(),
            });
            let account: Account = serde_json::from_value(account)
                .map_err(|e| vmsd::store::StoreError::Corrupt(e.to_string()))?;
            tx.put_account(&account)
        })
        .map_err(|e| e.to_string())?;
    Ok(app)
}

/// The body of a response, as bytes.
pub fn body_bytes(response: http_body_util::Full<bytes::Bytes>) -> Vec<u8> {
    use http_body_util::BodyExt;
    match block_on(response.collect()) {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(never) => match never {},
    }
}
