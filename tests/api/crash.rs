//! Crash safety (issue 6 item 1, SPEC §7 "Durability"): the real binary, under concurrent
//! writes of every kind — self updates (language and password), temporary-user updates with
//! camera attach/detach and a contended licence pool, licence pool changes, logins and
//! session revocations — is `kill -9`ed at random moments and restarted on the same data dir.
//! After each kill the store is opened directly and must hold every write the daemon
//! acknowledged, each write whole or not at all (a request in flight at the kill may go either
//! way, but only as a whole), and every cross-tree invariant (`invariants::Snapshot`).
//!
//! The moments come from a seeded xorshift: the seed is printed, and `VMSD_CRASH_SEED=N`
//! replays it. CI runs 3 kills after up to 1.5 s of writes; `VMSD_SOAK=1` runs 25 kills after
//! up to 5 s each (`VMSD_SOAK=1 cargo test --test api crash -- --nocapture`).

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tokio_rustls::TlsConnector;
use vmsd::auth::hash_token;
use vmsd::password::Hasher;

use crate::cli::Daemon;
use crate::common::{connector_for, https, Reply};
use crate::invariants::Snapshot;

const ADMIN_PASSWORD: &str = "crash-admin-password";
const USER_PASSWORD: &str = "crash-user-password";
/// The L1 analytics permission: each temporary user holding it takes one L1 licence per camera.
const L1_PERMISSION: u64 = 40;
const CAMERAS: usize = 6;
/// Smaller than 3 users × 6 cameras, so attaches race for the last licences and some get 402.
const L1_POOL: u64 = 8;

/// Cheap hashes; the per-IP login throttle out of the way of the session writers' logins.
const CONFIG: &str = "log = \"warn\"\n[argon2]\nmemory_kib = 256\niterations = 1\n\
                      [auth]\nip_login_limit = 100000\n[limits]\nshutdown_grace = \"2s\"\n";

/// xorshift64*: reproducible random moments without a crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Where the writers send their requests; replaced when the daemon restarts on a new port.
#[derive(Clone)]
struct Client {
    connector: TlsConnector,
    addr: SocketAddr,
}

impl Client {
    fn of(daemon: &Daemon) -> Client {
        Client {
            connector: connector_for(&daemon.data.join("tls/cert.pem")),
            addr: daemon.addr,
        }
    }

    /// One JSON request. `None` once the daemon is gone: the request may or may not have
    /// been applied, and the writer stops.
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Value,
    ) -> Option<Reply> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut all = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            all.push(("authorization", a.as_str()));
        }
        all.extend_from_slice(headers);
        let body = serde_json::to_vec(&body).unwrap();
        let call = https(&self.connector, self.addr, method, path, &all, body);
        tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .ok()
            .flatten()
    }
}

/// One writer's knowledge at a kill: the last state the daemon acknowledged and, if a
/// request was in flight, the whole state it asked for.
#[derive(Debug, Clone)]
struct Known<T> {
    acked: T,
    in_flight: Option<T>,
}

impl<T: PartialEq + Debug + Clone> Known<T> {
    fn new(state: T) -> Known<T> {
        Known {
            acked: state,
            in_flight: None,
        }
    }

    /// What the store holds must be the acknowledged state or, whole, the one in flight;
    /// it becomes the state the next round starts from.
    #[track_caller]
    fn settle(&mut self, found: T, what: &str) {
        let allowed = found == self.acked || self.in_flight.as_ref() == Some(&found);
        assert!(
            allowed,
            "{what}: the store holds {found:?}; acknowledged {:?}, in flight {:?}",
            self.acked, self.in_flight
        );
        self.acked = found;
        self.in_flight = None;
    }
}

/// `PUT /api/v1/users/self`: flips the language, and every fourth time changes the password
/// instead (which keeps this token and revokes the account's others).
struct SelfWriter {
    acks: u64,
    id: u64,
    token: String,
    /// (language, password)
    state: Known<(String, String)>,
}

impl SelfWriter {
    async fn run(mut self, client: Client, mut rng: Rng) -> Self {
        for seq in 0.. {
            let (language, password) = self.state.acked.clone();
            let (next, body) = if rng.below(4) == 0 {
                let new = format!("pw-{}-{seq}-{}", self.id, rng.below(1000));
                let body = json!({"password": new, "password_confirmation": new,
                                  "current_password": password});
                ((language, new), body)
            } else {
                let flipped = if language == "en" { "ru" } else { "en" };
                ((flipped.to_owned(), password), json!({"language": flipped}))
            };
            self.state.in_flight = Some(next.clone());
            let Some(r) = client
                .send("PUT", "/api/v1/users/self", Some(&self.token), &[], body)
                .await
            else {
                return self;
            };
            assert_eq!(r.status, 200, "self update of {}: {:?}", self.id, r.body);
            self.state.acked = next;
            self.state.in_flight = None;
            self.acks += 1;
        }
        self
    }

    async fn check(&mut self, s: &Snapshot, hasher: &Hasher) {
        let account = &s.accounts[&self.id];
        let mut candidates = vec![self.state.acked.1.clone()];
        candidates.extend(self.state.in_flight.iter().map(|p| p.1.clone()));
        let mut password = None;
        for c in candidates {
            if hasher
                .verify(c.clone(), Some(account.password_hash.clone()))
                .await
                .unwrap()
            {
                password = Some(c);
            }
        }
        let password = password.unwrap_or_else(|| {
            panic!(
                "account {}: neither the acknowledged nor the pending password",
                self.id
            )
        });
        self.state.settle(
            (account.language.clone(), password),
            &format!("account {}", self.id),
        );
        let session = s.sessions.get(&hash_token(&self.token));
        assert!(
            session.is_some_and(|x| x.account_id == self.id),
            "account {}: the writer's acknowledged session is gone",
            self.id
        );
    }
}

/// `PUT /api/admin/v1/special-users/{id}`: a new name with a random camera attach/detach,
/// against an L1 pool too small for everyone (402 then changes nothing).
struct SpecialWriter {
    acks: u64,
    id: u64,
    admin: String,
    cameras: Vec<u64>,
    /// (name, cameras)
    state: Known<(String, BTreeSet<u64>)>,
}

impl SpecialWriter {
    async fn run(mut self, client: Client, mut rng: Rng) -> Self {
        for seq in 0.. {
            let (_, current) = self.state.acked.clone();
            let mut attach = Vec::new();
            let mut detach = Vec::new();
            for c in &self.cameras {
                match (current.contains(c), rng.below(3)) {
                    (false, 0) => attach.push(*c),
                    (true, 0) => detach.push(*c),
                    _ => {}
                }
            }
            let name = format!("temp {} #{seq}", self.id);
            let mut cameras = current.clone();
            cameras.retain(|c| !detach.contains(c));
            cameras.extend(&attach);
            let next = (name.clone(), cameras);
            self.state.in_flight = Some(next.clone());
            let body =
                json!({"name": name, "cameras_to_attach": attach, "cameras_to_detach": detach});
            let path = format!("/api/admin/v1/special-users/{}", self.id);
            let Some(r) = client
                .send("PUT", &path, Some(&self.admin), &[], body)
                .await
            else {
                return self;
            };
            match r.status {
                200 => {
                    self.state.acked = next;
                    self.acks += 1;
                }
                402 => {}
                other => panic!("special user {}: {other} {:?}", self.id, r.body),
            }
            self.state.in_flight = None;
        }
        self
    }

    fn check(&mut self, s: &Snapshot) {
        let a = &s.accounts[&self.id];
        let found = (a.name.clone(), a.cameras.clone());
        self.state
            .settle(found, &format!("temporary user {}", self.id));
    }
}

/// `PUT /api/admin/v1/licenses/analytic_l3`: a new pool size each time.
struct PoolWriter {
    acks: u64,
    admin: String,
    state: Known<u64>,
}

impl PoolWriter {
    async fn run(mut self, client: Client, mut rng: Rng) -> Self {
        loop {
            let all = 1 + rng.below(100_000);
            self.state.in_flight = Some(all);
            let body = json!({"all": all});
            let path = "/api/admin/v1/licenses/analytic_l3";
            let Some(r) = client.send("PUT", path, Some(&self.admin), &[], body).await else {
                return self;
            };
            assert_eq!(r.status, 200, "pool: {:?}", r.body);
            self.state.acked = all;
            self.state.in_flight = None;
            self.acks += 1;
        }
    }

    fn check(&mut self, s: &Snapshot) {
        let found = s.pools.get("analytic_l3").map_or(0, |p| p.all);
        self.state.settle(found, "pool analytic_l3");
    }
}

/// Logins from one device (each replaces the device's previous session) and revocations,
/// by logout or by id from a second session.
struct SessionWriter {
    acks: u64,
    id: u64,
    login: String,
    keeper: String,
    /// Acknowledged and not revoked since.
    live: Vec<String>,
    /// Acknowledged as revoked (or replaced by a later acknowledged login).
    revoked: Vec<String>,
    /// A revocation in flight at the kill.
    revoking: Option<String>,
    /// A login in flight at the kill: it may have landed unacknowledged and replaced the
    /// device's session, so a `live` token may then be gone.
    logging_in: bool,
}

impl SessionWriter {
    async fn run(mut self, client: Client) -> Self {
        let device = format!("crash-device-{}", self.id);
        for seq in 0.. {
            let body = json!({"login": self.login, "password": USER_PASSWORD});
            let headers = [("x-uuid", device.as_str()), ("x-client", "crash")];
            self.logging_in = true;
            let Some(r) = client
                .send("POST", "/api/v1/token", None, &headers, body)
                .await
            else {
                return self;
            };
            self.logging_in = false;
            assert_eq!(r.status, 200, "login of {}: {:?}", self.login, r.body);
            let token = r.body["access_token"].as_str().unwrap().to_owned();
            let token_id = r.body["user"]["access_token_id"]
                .as_str()
                .unwrap()
                .to_owned();
            // The login replaced the device's earlier session, if one survived a kill.
            self.revoked.append(&mut self.live);
            // From here its revocation is under way: after a kill it may be there or not.
            self.revoking = Some(token.clone());
            let reply = if seq % 2 == 0 {
                client
                    .send("POST", "/api/v1/logout", Some(&token), &[], json!({}))
                    .await
            } else {
                let path = format!("/api/v1/sessions/{token_id}");
                client
                    .send("POST", &path, Some(&self.keeper), &[], json!({}))
                    .await
            };
            let Some(r) = reply else {
                return self;
            };
            assert_eq!(r.status, 200, "revoke for {}: {:?}", self.login, r.body);
            self.revoking = None;
            self.revoked.push(token);
            self.acks += 2;
        }
        self
    }

    fn check(&mut self, s: &Snapshot) {
        let exists = |t: &str| {
            s.sessions
                .get(&hash_token(t))
                .is_some_and(|x| x.account_id == self.id)
        };
        assert!(
            exists(&self.keeper),
            "account {}: keeper session lost",
            self.id
        );
        let (kept, replaced): (Vec<String>, Vec<String>) = std::mem::take(&mut self.live)
            .into_iter()
            .partition(|t| exists(t));
        assert!(
            replaced.is_empty() || self.logging_in,
            "account {}: an acknowledged login was lost",
            self.id
        );
        // Replaced by the unacknowledged login that landed: gone for good from now on.
        self.live = kept;
        self.revoked.extend(replaced);
        self.logging_in = false;
        for t in &self.revoked {
            assert!(
                !exists(t),
                "account {}: an acknowledged revocation was undone",
                self.id
            );
        }
        if let Some(t) = self.revoking.take() {
            if exists(&t) {
                self.live.push(t);
            } else {
                self.revoked.push(t);
            }
        }
    }
}

fn seed() -> u64 {
    std::env::var("VMSD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            now.as_nanos() as u64
        })
}

async fn created(daemon: &Daemon, token: &str, path: &str, body: Value) -> u64 {
    let r = daemon.call("POST", path, Some(token), Some(body)).await;
    assert_eq!(r.status, 201, "{path}: {:?}", r.body);
    r.body["id"].as_u64().unwrap()
}

/// Logs in at `/api/v1/token` as `login` from device `<login>-<device>`; the token.
async fn login_token(daemon: &Daemon, login: &str, device: &str) -> String {
    let body = serde_json::to_vec(&json!({"login": login, "password": USER_PASSWORD})).unwrap();
    let device = format!("{login}-{device}");
    let headers = [
        ("content-type", "application/json"),
        ("x-uuid", device.as_str()),
    ];
    let cert = daemon.data.join("tls/cert.pem");
    let r = https(
        &connector_for(&cert),
        daemon.addr,
        "POST",
        "/api/v1/token",
        &headers,
        body,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "login {login}: {:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

async fn start(work: &Path, config: &Path, data: &Path) -> Daemon {
    Daemon::spawn(work, config, data, Some(ADMIN_PASSWORD))
        .ready()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_no_acknowledged_write_and_leaves_no_half_change() {
    let soak = std::env::var("VMSD_SOAK").is_ok_and(|v| v == "1");
    let (kills, longest_ms) = if soak { (25, 5000) } else { (3, 1500) };
    let seed = seed();
    println!("crash test: seed {seed} (replay with VMSD_CRASH_SEED={seed}), {kills} kills");
    let mut rng = Rng::new(seed);

    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("crash.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let data = work.path().join("data");
    let mut daemon = start(work.path(), &config, &data).await;
    let admin = daemon.admin_login(ADMIN_PASSWORD).await;
    let admin = admin.body["access_token"].as_str().unwrap().to_owned();

    let mut cameras = Vec::new();
    for i in 0..CAMERAS {
        cameras.push(
            created(
                &daemon,
                &admin,
                "/api/admin/v1/cameras",
                json!({"name": format!("cam {i}")}),
            )
            .await,
        );
    }
    let pool = daemon
        .call(
            "PUT",
            "/api/admin/v1/licenses/analytic_l1",
            Some(&admin),
            Some(json!({"all": L1_POOL})),
        )
        .await;
    assert_eq!(pool.status, 200, "{:?}", pool.body);
    let mut specials = Vec::new();
    for i in 0..3 {
        let login = format!("temp-{i}");
        let body = json!({"name": format!("temp {i}"), "login": login, "password": USER_PASSWORD,
                          "password_confirmation": USER_PASSWORD, "permissions": [L1_PERMISSION]});
        let id = created(&daemon, &admin, "/api/admin/v1/special-users", body).await;
        specials.push(SpecialWriter {
            acks: 0,
            id,
            admin: admin.clone(),
            cameras: cameras.clone(),
            state: Known::new((format!("temp {i}"), BTreeSet::new())),
        });
    }
    let mut selves = Vec::new();
    let mut sessions = Vec::new();
    for i in 0..4 {
        let login = format!("user-{i}");
        let body = json!({"login": login, "password": USER_PASSWORD, "password_confirmation": USER_PASSWORD});
        let id = created(&daemon, &admin, "/api/admin/v1/users", body).await;
        if i < 2 {
            let token = login_token(&daemon, &login, "self").await;
            selves.push(SelfWriter {
                acks: 0,
                id,
                token,
                state: Known::new(("en".to_owned(), USER_PASSWORD.to_owned())),
            });
        } else {
            let keeper = login_token(&daemon, &login, "keeper").await;
            sessions.push(SessionWriter {
                acks: 0,
                id,
                login,
                keeper,
                live: vec![],
                revoked: vec![],
                revoking: None,
                logging_in: false,
            });
        }
    }
    let mut pool = PoolWriter {
        acks: 0,
        admin: admin.clone(),
        state: Known::new(0),
    };
    let hasher = Hasher::new(&vmsd::config::Argon2Config {
        memory_kib: 256,
        iterations: 1,
        ..vmsd::config::Config::default().argon2
    })
    .unwrap();

    for round in 1..=kills {
        let client = Client::of(&daemon);
        let mut self_tasks = Vec::new();
        for w in selves.drain(..) {
            self_tasks.push(tokio::spawn(w.run(client.clone(), Rng::new(rng.next()))));
        }
        let mut special_tasks = Vec::new();
        for w in specials.drain(..) {
            special_tasks.push(tokio::spawn(w.run(client.clone(), Rng::new(rng.next()))));
        }
        let mut session_tasks = Vec::new();
        for w in sessions.drain(..) {
            session_tasks.push(tokio::spawn(w.run(client.clone())));
        }
        let pool_task = tokio::spawn(pool.run(client.clone(), Rng::new(rng.next())));

        let after = Duration::from_millis(100 + rng.below(longest_ms));
        tokio::time::sleep(after).await;
        kill(Pid::from_raw(daemon.child.id() as i32), Signal::SIGKILL).unwrap();
        daemon.exited(Duration::from_secs(5)).await;
        println!("round {round}: killed after {after:?}");

        let bound = Duration::from_secs(20);
        for t in self_tasks {
            selves.push(tokio::time::timeout(bound, t).await.unwrap().unwrap());
        }
        for t in special_tasks {
            specials.push(tokio::time::timeout(bound, t).await.unwrap().unwrap());
        }
        for t in session_tasks {
            sessions.push(tokio::time::timeout(bound, t).await.unwrap().unwrap());
        }
        pool = tokio::time::timeout(bound, pool_task)
            .await
            .unwrap()
            .unwrap();

        {
            let store = vmsd::store::Store::open(&data, 1 << 20).unwrap();
            let snapshot = Snapshot::of(&store);
            snapshot.assert_invariants();
            for w in &mut selves {
                w.check(&snapshot, &hasher).await;
            }
            for w in &mut specials {
                w.check(&snapshot);
            }
            for w in &mut sessions {
                w.check(&snapshot);
            }
            pool.check(&snapshot);
        }
        daemon = start(work.path(), &config, &data).await;
    }
    assert_eq!(daemon.terminate().await.code(), Some(0), "{}", daemon.log());
    // A run in which a kind of write never got through proves nothing about it.
    let acks = [
        ("self updates", selves.iter().map(|w| w.acks).sum::<u64>()),
        (
            "temporary-user updates",
            specials.iter().map(|w| w.acks).sum(),
        ),
        (
            "logins and revocations",
            sessions.iter().map(|w| w.acks).sum(),
        ),
        ("pool changes", pool.acks),
    ];
    println!("acknowledged writes: {acks:?}");
    for (kind, n) in acks {
        assert!(n > 0, "no {kind} were acknowledged in {kills} rounds");
    }
}
