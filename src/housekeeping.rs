//! Background upkeep: last-use times persisted off the request path, the sweep of sessions
//! that ended (expired, or whose account is gone, disabled or past `expired_at`), the audit
//! log kept within `limits.audit_max_entries`, and idle hashing memory given back.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::model::now;
use crate::shutdown::Shutdown;
use crate::store::{SessionEnd, StoreError};

/// How often housekeeping persists last-use times and sweeps dead sessions.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(30);

/// Background upkeep until shutdown: persist last-use times (lazily, off the request path),
/// remove sessions that expired, or whose account is gone, disabled or past `expired_at`, and
/// keep the audit log within `limits.audit_max_entries`.
pub async fn run(app: Arc<App>, mut shutdown: Shutdown) {
    // The memory of the start-up hash (the first admin's) goes now; the first sweep comes a
    // full interval after start, like every later one.
    app.hasher.release_idle_memory();
    let first = tokio::time::Instant::now() + HOUSEKEEPING_INTERVAL;
    let mut tick = tokio::time::interval_at(first, HOUSEKEEPING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tick.tick() => {}
        }
        pass(&app).await;
    }
    persist_last_used(&app);
}

/// One round of housekeeping: expired sessions, audit entries beyond
/// `limits.audit_max_entries`, idle hashing memory.
pub async fn pass(app: &Arc<App>) {
    let _round = app.housekeeping_round.lock().await;
    let worker = app.clone();
    let keep = app.config.limits.audit_max_entries;
    let done =
        tokio::task::spawn_blocking(move || (sweep(&worker), worker.store.prune_audit(keep))).await;
    match done {
        Ok((swept, pruned)) => {
            match swept {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "removed {n} expired sessions"),
                Err(e) => tracing::error!(error = %e, "session sweep failed"),
            }
            match pruned {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    entries = n,
                    "removed the {n} oldest audit entries (limits.audit_max_entries = {keep})"
                ),
                Err(e) => tracing::error!(error = %e, "audit pruning failed"),
            }
        }
        Err(e) => tracing::error!(error = %e, "housekeeping panicked"),
    }
    app.hasher.release_idle_memory();
}

/// Writes the in-memory last-use times to the store.
pub fn persist_last_used(app: &App) {
    if let Err(e) = app.store.persist_last_used() {
        tracing::warn!(error = %e, "could not persist session last-use times");
    }
}

/// One pass of the session sweep; returns how many sessions went.
pub fn sweep(app: &App) -> Result<usize, StoreError> {
    persist_last_used(app);
    let at = now();
    let mut dead = Vec::new();
    for item in app.store.all_sessions() {
        let (hash, session) = item?;
        // A session with a refresh token lives on until that runs out (SPEC §6).
        let alive = session.ends_at() > at
            && app
                .store
                .account(session.account_id)?
                .is_some_and(|a| a.may_use_tokens(at));
        if !alive {
            dead.push(hash);
        }
    }
    if dead.is_empty() {
        return Ok(0);
    }
    app.store.write_blocking(|tx| {
        let mut n = 0;
        for hash in &dead {
            if tx.remove_session(hash, SessionEnd::Expired)?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    })
}
