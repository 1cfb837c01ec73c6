//! The two ceilings vmsd's write and login figures are compared with, measured on the same
//! core the server runs on (`bench/run` pins this program like the server):
//!
//! - `ceiling sled --dir D [--mode group|blocking|tx-group|async] [--tasks 32] [--warmup 1]
//!   [--duration 5] [--value-bytes 400] [--cache-bytes N] [--accounts N]` (`tx-group`: see
//!   `Mode::TxGroup`; `--accounts`: records stored before it starts, as in the seeded store): raw sled with vmsd's store
//!   settings, `tasks` tasks each looping `insert` then a flush (see `Mode`) — the durable
//!   writes per second sled gives at that concurrency, with nothing of vmsd in the way.
//! - `ceiling argon2 --memory-kib M --iterations T --parallelism P [--samples 15]`: the median
//!   time of one argon2id hash with those parameters, from the same crate and profile vmsd
//!   uses. A login is one verification, which costs one hash.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use vmsd_bench_tools::{percentile, summary, Args, BenchResult};

fn main() -> BenchResult<()> {
    let args = Args::from_env();
    match args.positional.first().map(String::as_str) {
        Some("sled") => sled_ceiling(&args),
        Some("argon2") => argon2_ceiling(&args),
        _ => Err("usage: ceiling sled|argon2 ...".into()),
    }
}

/// How the tasks make their writes durable.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// `Tree::flush` on tokio's blocking pool: each task waits for its own flush, and sled
    /// lets concurrent flushes share the log write they all wait for.
    Blocking,
    /// One `flush_async` at a time, covering every write made before it started (the group
    /// commit vmsd's `Store::flush` does), written out here with nothing else of vmsd.
    Group,
    /// As `Group`, with each write the sled transaction vmsd's `PUT /users/self` commits,
    /// made with nothing of vmsd: over the same 14 trees (`VMSD_TREES`), it reads the login
    /// index and the account, rewrites the account (`--value-bytes`), and appends an audit
    /// entry and its per-account index key, the entry's id from an in-memory counter. Each
    /// task rewrites its own account, as each of the load's connections is its own user.
    /// What sled's transactions cost by themselves (each commit seals the log buffer twice,
    /// sled-0.34.7/src/pagecache/mod.rs `pin_log`): issue 12's PUT ceiling.
    TxGroup,
    /// Every task calls `flush_async` itself. sled 0.34.7 deadlocks with more than a few
    /// concurrent callers (see bench/README.md), so `bench/run` does not use it.
    Async,
}

/// Group commit over `flush_async`: tickets and one flush in flight.
#[derive(Default)]
struct GroupCommit {
    tickets: AtomicU64,
    flushed_through: AtomicU64,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    async fn flush(&self, tree: &sled::Tree) -> sled::Result<()> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = self.one_at_a_time.lock().await;
        if self.flushed_through.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let covers = self.tickets.load(Ordering::SeqCst);
        tree.flush_async().await?;
        self.flushed_through.fetch_max(covers, Ordering::SeqCst);
        Ok(())
    }
}

fn sled_ceiling(args: &Args) -> BenchResult<()> {
    let dir = args.required("dir")?;
    let tasks: usize = args.parse_or("tasks", 32)?;
    let warmup = args.seconds_or("warmup", 1.0)?;
    let duration = args.seconds_or("duration", 5.0)?;
    let value_bytes: usize = args.parse_or("value-bytes", 400)?;
    let cache_bytes: u64 = args.parse_or("cache-bytes", 8 * 1024 * 1024)?;
    // vmsd's sled settings (store.rs): explicit flushes, a background flush every second.
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .flush_every_ms(Some(1000))
        .open()?;
    let mode = match args.get("mode").unwrap_or("group") {
        "blocking" => Mode::Blocking,
        "group" => Mode::Group,
        "tx-group" => Mode::TxGroup,
        "async" => Mode::Async,
        other => return Err(format!("unknown --mode {other:?}").into()),
    };
    let tree = db.open_tree("bench")?;
    let vmsd_trees = VMSD_TREES
        .iter()
        .map(|name| db.open_tree(name))
        .collect::<Result<Vec<_>, _>>()?;
    let vmsd_trees = Arc::new(vmsd_trees);
    let next_audit_id = Arc::new(AtomicU64::new(1));
    // tx-group: the store vmsd's PUT runs against holds the seeded accounts (bench/seed: 10 000),
    // and a rewrite lands in a leaf among them, not in a tree of 32 records.
    let accounts: u64 = args.parse_or("accounts", 0)?;
    if matches!(mode, Mode::TxGroup) {
        let record = vec![b'x'; value_bytes];
        for id in 1..=accounts {
            vmsd_trees[1].insert(id.to_be_bytes(), record.as_slice())?;
            vmsd_trees[2].insert(format!("user{id}").as_bytes(), &id.to_be_bytes())?;
        }
        db.flush()?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let group = Arc::new(GroupCommit::default());
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, seconds) = runtime.block_on(async {
        let begin = Instant::now();
        let warm_end = begin + warmup;
        let end = warm_end + duration;
        let mut handles = Vec::new();
        for t in 0..tasks {
            let tree = tree.clone();
            let group = group.clone();
            let vmsd_trees = vmsd_trees.clone();
            let next_audit_id = next_audit_id.clone();
            let latencies = latencies.clone();
            let stop = stop.clone();
            handles.push(tokio::spawn(async move {
                let value = vec![b'x'; value_bytes];
                let mut mine = Vec::new();
                let mut i: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let key = ((t as u64) << 40 | i).to_be_bytes();
                    i += 1;
                    if !matches!(mode, Mode::TxGroup) {
                        tree.insert(key, value.as_slice())?;
                    }
                    match mode {
                        Mode::Blocking => {
                            let tree = tree.clone();
                            tokio::task::spawn_blocking(move || tree.flush())
                                .await
                                .map_err(|e| sled::Error::ReportableBug(e.to_string()))??;
                        }
                        Mode::Group => group.flush(&tree).await?,
                        Mode::TxGroup => {
                            let audit_id = next_audit_id.fetch_add(1, Ordering::Relaxed);
                            // The load's users are the seeded accounts 3, 5, 7, ... (bench/seed).
                            let account = 3 + 2 * t as u64;
                            self_update(&vmsd_trees, account, value.as_slice(), audit_id)?;
                            group.flush(&tree).await?
                        }
                        Mode::Async => {
                            tree.flush_async().await?;
                        }
                    }
                    let done = Instant::now();
                    if done >= warm_end && done < end {
                        let us = done.duration_since(started).as_micros();
                        mine.push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                }
                if let Ok(mut all) = latencies.lock() {
                    all.extend(mine);
                }
                Ok::<_, sled::Error>(())
            }));
        }
        tokio::time::sleep_until(end.into()).await;
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.await??;
        }
        let all = latencies.lock().map(|l| l.len()).unwrap_or(0);
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((all, duration.as_secs_f64()))
    })?;
    let mut sorted = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    sorted.sort_unstable();
    let rate = count as f64 / seconds;
    let p50 = f64::from(percentile(&sorted, 0.5)) / 1000.0;
    let p99 = f64::from(percentile(&sorted, 0.99)) / 1000.0;
    println!(
        "raw sled insert+flush ({mode:?}): {rate:>8.1} ops/s  p50 {p50:.2} ms  p99 {p99:.2} ms  ({tasks} tasks, {value_bytes}-byte values)"
    );
    let key = format!("{mode:?}").to_lowercase();
    summary(&format!("ceiling.sled_{key}.ops"), rate, "ops/s");
    summary(&format!("ceiling.sled_{key}.p50"), p50, "ms");
    summary(&format!("ceiling.sled_{key}.p99"), p99, "ms");
    Ok(())
}

/// vmsd's transactional trees, in its order (`src/store/mod.rs`, `trees!`): every vmsd write's
/// transaction spans all of them, whichever it touches.
const VMSD_TREES: [&str; 14] = [
    "counters",
    "accounts",
    "login_accountid",
    "tokenhash_session",
    "accountid_tokenhashes",
    "tokenid_tokenhash",
    "audit",
    "accountid_auditid",
    "licensetype_pool",
    "cameras",
    "camera_groups",
    "cameraid_accountids",
    "parentid_subuserids",
    "mediapath_cameraid",
];

/// The writes of a `PUT /users/self` that changes one field (the bench's `language`), as vmsd's
/// `accounts::update` and `Tx::{put_account, audit}` make them.
fn self_update(
    trees: &[sled::Tree],
    account: u64,
    record: &[u8],
    audit_id: u64,
) -> sled::Result<()> {
    let account_key = account.to_be_bytes();
    let login_key = format!("user{account}");
    let mut index_key = [0u8; 16];
    index_key[..8].copy_from_slice(&account_key);
    index_key[8..].copy_from_slice(&audit_id.to_be_bytes());
    // About the size of vmsd's audit entry for a self-update (JSON, one changed field).
    let entry = br#"{"id":0,"at":"2026-11-30 00:00:00","actor":123,"action":"user_update_self","target":123,"fields":["language"],"ip":"127.0.0.1"}"#;
    trees
        .transaction(|t| {
            let (accounts, login, audit, audit_index) = (&t[1], &t[2], &t[6], &t[7]);
            if login.get(login_key.as_bytes())?.is_none() {
                login.insert(login_key.as_bytes(), &account_key[..])?;
            }
            let _stored = accounts.get(account_key)?;
            accounts.insert(&account_key[..], record)?;
            audit.insert(&audit_id.to_be_bytes()[..], &entry[..])?;
            audit_index.insert(&index_key[..], &[][..])?;
            Ok::<_, ConflictableTransactionError<()>>(())
        })
        .map_err(|e| sled::Error::ReportableBug(format!("{e:?}")))
}

fn argon2_ceiling(args: &Args) -> BenchResult<()> {
    let memory_kib: u32 = args.parse_or("memory-kib", 19 * 1024)?;
    let iterations: u32 = args.parse_or("iterations", 2)?;
    let parallelism: u32 = args.parse_or("parallelism", 1)?;
    let samples: usize = args.parse_or("samples", 15)?;
    let params = Params::new(memory_kib, iterations, parallelism, None)
        .map_err(|e| format!("argon2 parameters: {e}"))?;
    let blocks = params.block_count();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    // The hash alone: its working memory is allocated once and reused, as vmsd reuses its
    // buffers while logins keep coming. (`hash_password` would allocate and zero 19 MiB per
    // call, a cost vmsd does not pay, and the ceiling would sit below vmsd.)
    let mut memory = vec![Block::default(); blocks];
    let mut out = [0u8; 32];
    let mut times = Vec::with_capacity(samples);
    // One unmeasured hash first: the first touch of the memory costs page faults.
    for round in 0..=samples {
        let started = Instant::now();
        argon
            .hash_password_into_with_memory(
                b"bench password",
                b"bench-salt-bytes",
                &mut out,
                &mut memory,
            )
            .map_err(|e| e.to_string())?;
        if round > 0 {
            times.push(started.elapsed());
        }
    }
    times.sort_unstable();
    let median = times
        .get(times.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    let ms = median.as_secs_f64() * 1000.0;
    println!(
        "argon2id m={memory_kib} KiB t={iterations} p={parallelism}: {ms:.2} ms per hash (median of {samples}), {:.1} hashes/s on one core",
        1000.0 / ms
    );
    summary("ceiling.argon2.hash_ms", ms, "ms");
    Ok(())
}
