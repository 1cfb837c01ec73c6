//! Seeds a vmsd store for the benchmark through vmsd's own library: `daemon::open_app` (which
//! creates the admin), store transactions for cameras, accounts, camera assignments (with the
//! reverse index), licence pools and sessions, and vmsd's token and password hashing. Writes
//! the fixture file the load client reads (tokens, logins, temporary users to attach to).
//!
//! ```text
//! seed --config bench.toml --fixture FILE [--password P] [--users 32] [--logins 32] [--specials 4]
//! ```
//! Shape: 10 000 accounts (the admin, `specials` temporary users kept camera-less for the
//! attach scenario, and the rest alternating regular and temporary users), 10 000 cameras,
//! 100 000 camera assignments spread evenly over the seeded accounts, L1–L3 licence pools
//! with the seeded temporary users' usage, one session per benchmarked regular user and one
//! for the admin.

use std::collections::BTreeSet;
use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use vmsd::model::{now, Account, Camera, NewAccount, Session, UserType};
use vmsd::permissions::{license_usage, LicenseLevel, Pool};
use vmsd::store::LoginTaken;

type SeedResult<T> = Result<T, Box<dyn Error>>;

const ACCOUNTS: u64 = 10_000;
const CAMERAS: u64 = 10_000;
const ASSIGNMENTS: u64 = 100_000;
/// Records per transaction: big enough to seed in seconds, small enough for sled's
/// transaction buffers.
const BATCH: u64 = 250;
/// Cameras toggled per attach/detach request (SPEC §4.3's maximum).
const ATTACH_CAMERAS: usize = 500;
/// `analytic-cases-motion-detect` (L1): a temporary user holding it takes one L1 licence per
/// camera, so attach/detach requests also move a pool.
const L1_PERMISSION: u64 = 40;
const POOL_SIZE: u64 = 1_000_000;

/// Deterministic camera choices without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `n` distinct camera ids in 1..=CAMERAS.
    fn cameras(&mut self, n: usize) -> BTreeSet<u64> {
        let mut picked = BTreeSet::new();
        while picked.len() < n {
            picked.insert(self.next() % CAMERAS + 1);
        }
        picked
    }
}

struct Options {
    config: String,
    fixture: String,
    password: String,
    users: usize,
    logins: usize,
    specials: usize,
}

fn options() -> SeedResult<Options> {
    let mut o = Options {
        config: String::new(),
        fixture: String::new(),
        password: "bench-password-1".into(),
        users: 32,
        logins: 32,
        specials: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(key) = args.next() {
        let value = args.next().ok_or_else(|| format!("{key} needs a value"))?;
        match key.as_str() {
            "--config" => o.config = value,
            "--fixture" => o.fixture = value,
            "--password" => o.password = value,
            "--users" => o.users = value.parse()?,
            "--logins" => o.logins = value.parse()?,
            "--specials" => o.specials = value.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if o.config.is_empty() || o.fixture.is_empty() {
        return Err("usage: seed --config FILE --fixture FILE [...]".into());
    }
    Ok(o)
}

fn new_account(id: u64, user_type: UserType, login: String, hash: &str, at: i64) -> Account {
    Account::new(
        id,
        NewAccount {
            user_type,
            name: format!("Bench {login}"),
            login,
            password_hash: hash.to_owned(),
            language: "en".into(),
        },
        at,
    )
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn main() -> SeedResult<()> {
    let o = options()?;
    let config = vmsd::config::load(Path::new(&o.config)).map_err(|e| e.0.join("; "))?;
    let data_dir = config.data_dir.clone();
    let started = Instant::now();
    let app = vmsd::daemon::open_app(config, Some(o.password.clone()))?;
    let at = now();
    // One hash for every seeded account, made with the configured parameters: a login then
    // costs exactly what a real one does.
    let hash = app.hasher.hash_blocking(&o.password)?;

    for start in (0..CAMERAS).step_by(BATCH as usize) {
        app.store.write_blocking(|tx| {
            for i in start..(start + BATCH).min(CAMERAS) {
                let camera = Camera {
                    id: tx.next_id("camera")?,
                    name: format!("camera {i}"),
                    ip: Some(format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)),
                    group_id: None,
                    camera_type: "media_server_v2".into(),
                    is_enabled: true,
                    is_sound_enabled: false,
                    archive_storage_days: None,
                    services_list: Default::default(),
                    media_path: None,
                    created_at: at,
                    updated_at: at,
                };
                tx.put_camera(&camera)?;
            }
            Ok(())
        })?;
    }

    let existing = app.store.account_count() as u64;
    let to_seed = ACCOUNTS.saturating_sub(existing);
    let specials = o.specials as u64;
    let holders = to_seed.saturating_sub(specials).max(1);
    let (per_holder, extra) = (ASSIGNMENTS / holders, ASSIGNMENTS % holders);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut usage = [0u64; 3];
    let mut assignments = 0u64;
    let mut special_ids = Vec::new();
    let mut regular_ids = Vec::new();
    for start in (0..to_seed).step_by(BATCH as usize) {
        let end = (start + BATCH).min(to_seed);
        let mut batch = Vec::new();
        for n in start..end {
            if n < specials {
                let mut a = new_account(
                    0,
                    UserType::Special,
                    format!("bench-special-{n}"),
                    &hash,
                    at,
                );
                a.permissions.insert(L1_PERMISSION);
                batch.push(a);
                continue;
            }
            let h = n - specials;
            let kind = if h.is_multiple_of(2) {
                UserType::User
            } else {
                UserType::Special
            };
            let mut a = new_account(0, kind, format!("seeded-{h}"), &hash, at);
            a.cameras = rng.cameras((per_holder + u64::from(h < extra)) as usize);
            if kind == UserType::Special {
                a.permissions.insert(L1_PERMISSION);
            }
            batch.push(a);
        }
        let ids = app.store.commit_blocking::<_, LoginTaken>(|tx| {
            let mut ids = Vec::with_capacity(batch.len());
            for template in &batch {
                let mut account = template.clone();
                account.id = tx.next_id("account")?;
                for camera in &account.cameras {
                    tx.link_camera(*camera, account.id)?;
                }
                tx.put_account(&account)?;
                ids.push(account.id);
            }
            Ok(ids)
        })?;
        for (account, id) in batch.iter().zip(ids) {
            let u = license_usage(account);
            for (total, add) in usage.iter_mut().zip(u) {
                *total += add;
            }
            assignments += account.cameras.len() as u64;
            match account.user_type {
                UserType::Special if account.cameras.is_empty() => special_ids.push(id),
                UserType::User => regular_ids.push(id),
                _ => {}
            }
        }
    }
    app.store.write_blocking(|tx| {
        for level in LicenseLevel::ALL {
            let pool = Pool {
                all: POOL_SIZE,
                used: usage[level as usize],
            };
            tx.put_pool(level, &pool)?;
        }
        Ok(())
    })?;

    // Sessions as a login would leave them, for the users the load client acts as.
    let admin = app
        .store
        .account_by_login("admin")?
        .ok_or("the admin account is missing")?;
    let session_users: Vec<u64> = regular_ids.iter().copied().take(o.users).collect();
    let login_users: Vec<u64> = regular_ids
        .iter()
        .copied()
        .skip(o.users)
        .take(o.logins)
        .collect();
    if session_users.len() < o.users || login_users.len() < o.logins {
        return Err("not enough regular users for the requested sessions and logins".into());
    }
    let mut tokens = Vec::new();
    for id in std::iter::once(admin.id).chain(session_users.iter().copied()) {
        let (token, hash, access_token_id) = vmsd::auth::new_token()?;
        let session = Session {
            account_id: id,
            access_token_id,
            device: None,
            client: Some("bench".into()),
            user_agent: Some("vmsd-bench".into()),
            ip: Some("127.0.0.1".into()),
            created_at: at,
            expires_at: at + 30 * 86_400,
            last_used: Some(at),
            refresh: None,
        };
        app.store
            .write_blocking(|tx| tx.add_session(&hash, &session))?;
        tokens.push((id, token));
    }

    let mut fixture = String::new();
    let mut tokens = tokens.into_iter();
    if let Some((_, admin_token)) = tokens.next() {
        writeln!(fixture, "admin_token {admin_token}")?;
    }
    for (id, token) in tokens {
        writeln!(fixture, "user {id} {token}")?;
    }
    for id in &login_users {
        let login = app
            .store
            .account(*id)?
            .map(|a| a.login)
            .ok_or("a seeded login vanished")?;
        writeln!(fixture, "login {login} {}", o.password)?;
    }
    // Disjoint camera lists: concurrent attachers (if the run uses several) share no camera.
    let mut pick = Rng(0x9E37_79B9_7F4A_7C15);
    let mut taken = BTreeSet::new();
    for id in &special_ids {
        let mut ids = Vec::with_capacity(ATTACH_CAMERAS);
        while ids.len() < ATTACH_CAMERAS {
            let camera = pick.next() % CAMERAS + 1;
            if taken.insert(camera) {
                ids.push(camera.to_string());
            }
        }
        writeln!(fixture, "special {id} {}", ids.join(","))?;
    }
    std::fs::write(&o.fixture, fixture)?;

    let accounts = app.store.account_count();
    let cameras = app.store.camera_count();
    drop(app);
    println!(
        "seeded {accounts} accounts, {cameras} cameras, {assignments} camera assignments, \
         pools L1/L2/L3 used {}/{}/{} of {POOL_SIZE} in {:.1} s; store {:.1} MiB on disk",
        usage[0],
        usage[1],
        usage[2],
        started.elapsed().as_secs_f64(),
        dir_bytes(&data_dir.join("db")) as f64 / 1_048_576.0
    );
    Ok(())
}
