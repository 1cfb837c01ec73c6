//! Benchmark of issue 3, item 9: attaching and detaching 500 cameras on one temporary user in
//! one request, with 10 000 cameras and 10 000 accounts in the store. Each request goes
//! through the real handler path (`router` → `handlers::dispatch` → validation, the one sled
//! transaction with licence arithmetic, the audit entry, the flush, the rendered answer);
//! only TLS and HTTP framing are left out, as they do not depend on the request's size.
//!
//! Run: `cargo bench --bench attach_cameras` (prints the machine, the date and p50/p99).
//! `VMSD_BENCH_ROUNDS` sets the number of attach+detach rounds (default 100).

use std::collections::BTreeSet;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{json, Map, Value};

use vmsd::auth::ClientMeta;
use vmsd::config::Config;
use vmsd::handlers::{dispatch, Request};
use vmsd::login::LoginKind;
use vmsd::model::{now, Account, Camera, NewAccount, UserType};
use vmsd::permissions::{LicenseLevel, Pool};
use vmsd::store::LoginTaken;
use vmsd::App;

const CAMERAS: u64 = 10_000;
const ACCOUNTS: u64 = 10_000;
/// Cameras each seeded account is assigned: the reverse index then holds ~5 accounts per camera.
const CAMERAS_PER_ACCOUNT: u64 = 5;
const BATCH: u64 = 250;
const PER_REQUEST: usize = 500;
const ADMIN_PASSWORD: &str = "bench-admin-password";
/// `analytic-cases-motion-detect` (L1): the user takes one licence per camera, so every
/// request also moves a pool.
const L1_PERMISSION: u64 = 40;

type BenchResult<T> = Result<T, Box<dyn Error>>;

fn main() -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

/// A small xorshift: deterministic camera choices without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `n` distinct camera ids in 1..=CAMERAS.
    fn cameras(&mut self, n: usize) -> Vec<u64> {
        let mut picked = BTreeSet::new();
        while picked.len() < n {
            picked.insert(self.next() % CAMERAS + 1);
        }
        picked.into_iter().collect()
    }
}

async fn run() -> BenchResult<()> {
    let rounds: usize = std::env::var("VMSD_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    print_machine();

    let dir = tempfile::tempdir()?;
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        log: "warn".into(),
        ..Config::default()
    };
    let app = vmsd::daemon::open_app(config, Some(ADMIN_PASSWORD.into()))?;

    let started = Instant::now();
    let special_id = seed(&app)?;
    app.store.flush().await?;
    println!(
        "seeded {CAMERAS} cameras and {} accounts in {:.1} s",
        app.store.account_count(),
        started.elapsed().as_secs_f64()
    );

    let mut body = Map::new();
    body.insert("login".into(), json!("admin"));
    body.insert("password".into(), json!(ADMIN_PASSWORD));
    let login = vmsd::login::login(&app, &body, LoginKind::Admin, &ClientMeta::default()).await?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", login.token))?;

    let path = format!("/api/admin/v1/special-users/{special_id}");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut attach = Vec::with_capacity(rounds);
    let mut detach = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let cameras = rng.cameras(PER_REQUEST);
        let took = put(&app, &bearer, &path, json!({"cameras_to_attach": cameras})).await?;
        attach.push(took);
        let held = app
            .store
            .account(special_id)?
            .map(|a| a.cameras.len())
            .unwrap_or(0);
        if held != PER_REQUEST {
            return Err(
                format!("round {round}: {held} cameras attached, wanted {PER_REQUEST}").into(),
            );
        }
        let took = put(&app, &bearer, &path, json!({"cameras_to_detach": cameras})).await?;
        detach.push(took);
    }
    let pool = app.store.pools()?[0];
    if pool.used != 0 {
        return Err(format!("L1 pool still has {} used after detaching", pool.used).into());
    }
    report("attach 500 cameras", &mut attach);
    report("detach 500 cameras", &mut detach);
    Ok(())
}

/// One `PUT` through the router and handler; its latency, or an error unless 200.
async fn put(
    app: &Arc<App>,
    bearer: &HeaderValue,
    path: &str,
    body: Value,
) -> BenchResult<Duration> {
    let (endpoint, params) = app.router.route(&Method::PUT, path)?;
    let mut headers = HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, bearer.clone());
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let request = Request {
        method: Method::PUT,
        path: path.to_owned(),
        query: Vec::new(),
        headers,
        body: Bytes::from(serde_json::to_vec(&body)?),
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        params,
    };
    let started = Instant::now();
    let response = dispatch(app, endpoint, request).await?;
    let took = started.elapsed();
    if response.status() != 200 {
        return Err(format!("PUT {path} answered {}", response.status()).into());
    }
    Ok(took)
}

/// Seeds cameras and accounts through the store API (batched transactions) and returns the
/// temporary user the benchmark works on.
fn seed(app: &App) -> BenchResult<u64> {
    let at = now();
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
    app.store.write_blocking(|tx| {
        tx.put_pool(
            LicenseLevel::L1,
            &Pool {
                all: 1_000_000,
                used: 0,
            },
        )
    })?;
    // A hash of the admin's password stands in for every seeded account's: nobody logs in.
    let hash = app
        .store
        .account_by_login("admin")?
        .map(|a| a.password_hash)
        .ok_or("no admin")?;
    let existing = app.store.account_count() as u64;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for start in (existing..ACCOUNTS).step_by(BATCH as usize) {
        let end = (start + BATCH).min(ACCOUNTS);
        let assignments: Vec<Vec<u64>> = (start..end)
            .map(|_| rng.cameras(CAMERAS_PER_ACCOUNT as usize))
            .collect();
        app.store.commit_blocking::<_, LoginTaken>(|tx| {
            for (n, cameras) in (start..end).zip(&assignments) {
                let id = tx.next_id("account")?;
                let account = Account {
                    cameras: cameras.iter().copied().collect(),
                    ..Account::new(
                        id,
                        NewAccount {
                            user_type: if n % 2 == 0 {
                                UserType::User
                            } else {
                                UserType::Special
                            },
                            login: format!("seeded-{n}"),
                            name: format!("Seeded {n}"),
                            password_hash: hash.clone(),
                            language: "en".into(),
                        },
                        at,
                    )
                };
                for camera in cameras {
                    tx.link_camera(*camera, id)?;
                }
                tx.put_account(&account)?;
            }
            Ok(())
        })?;
    }
    let special = app.store.commit_blocking::<_, LoginTaken>(|tx| {
        let id = tx.next_id("account")?;
        let account = Account {
            permissions: [L1_PERMISSION].into(),
            ..Account::new(
                id,
                NewAccount {
                    user_type: UserType::Special,
                    login: "bench-special".into(),
                    name: "Bench".into(),
                    password_hash: hash.clone(),
                    language: "en".into(),
                },
                at,
            )
        };
        tx.put_account(&account)?;
        Ok(id)
    })?;
    Ok(special)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(rank).copied().unwrap_or_default()
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: n={} p50={:.1} ms p99={:.1} ms min={:.1} ms max={:.1} ms",
        samples.len(),
        ms(percentile(samples, 0.50)),
        ms(percentile(samples, 0.99)),
        ms(samples.first().copied().unwrap_or_default()),
        ms(samples.last().copied().unwrap_or_default()),
    );
}

fn print_machine() {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    println!("machine: {cpus} CPUs, {model}");
    println!("date: {date}");
    println!(
        "profile: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
}
