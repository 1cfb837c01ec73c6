//! The socket registry (`App::sockets`): how many WebSockets are open in total and per
//! account, the RAII slots that keep those counts right however a socket ends, and the
//! keep-alive timing every socket reads when it starts.
//!
//! Upgraded connections leave hyper's connection accounting (the server's connection permit
//! is released once the upgrade is handed over), so this registry is what bounds them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Keep-alive timing of a socket (SPEC §6: ping every 30 s, close after 2 min idle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketTiming {
    pub ping_every: Duration,
    /// A socket from which nothing (no frame, not even a pong) arrived for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for SocketTiming {
    fn default() -> Self {
        SocketTiming {
            ping_every: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Default)]
struct Counts {
    open: usize,
    per_account: HashMap<u64, usize>,
}

#[derive(Default)]
struct Inner {
    counts: Mutex<Counts>,
    timing: Mutex<SocketTiming>,
}

impl Inner {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Plain counters: a panic elsewhere cannot leave them half-updated.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every open WebSocket, counted; the slots share the counts through one `Arc`.
#[derive(Default)]
pub struct Sockets {
    inner: Arc<Inner>,
}

/// One open socket; dropping it frees its place in the total.
pub struct SocketSlot {
    inner: Arc<Inner>,
}

/// One socket authenticated as `account_id`; dropping it frees its place in that account's cap.
pub struct AccountSlot {
    inner: Arc<Inner>,
    account_id: u64,
}

impl AccountSlot {
    pub fn account_id(&self) -> u64 {
        self.account_id
    }
}

impl Sockets {
    /// A place for a new socket, unless `max_total` are open.
    pub fn try_open(&self, max_total: usize) -> Option<SocketSlot> {
        let mut counts = self.inner.counts();
        if counts.open >= max_total {
            return None;
        }
        counts.open += 1;
        Some(SocketSlot {
            inner: self.inner.clone(),
        })
    }

    /// A place among `account_id`'s sockets, unless it already has `max` of them.
    pub fn try_bind(&self, account_id: u64, max: usize) -> Option<AccountSlot> {
        let mut counts = self.inner.counts();
        let n = counts.per_account.entry(account_id).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AccountSlot {
            inner: self.inner.clone(),
            account_id,
        })
    }

    pub fn open_count(&self) -> usize {
        self.inner.counts().open
    }

    pub fn account_count(&self, account_id: u64) -> usize {
        self.inner
            .counts()
            .per_account
            .get(&account_id)
            .copied()
            .unwrap_or(0)
    }

    pub fn timing(&self) -> SocketTiming {
        *self.inner.timing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the timing of sockets opened from now on (embedding and tests; the daemon
    /// keeps SPEC §6's defaults).
    pub fn set_timing(&self, timing: SocketTiming) {
        *self.inner.timing.lock().unwrap_or_else(|p| p.into_inner()) = timing;
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self.inner.counts();
        counts.open = counts.open.saturating_sub(1);
    }
}

impl Drop for AccountSlot {
    fn drop(&mut self) {
        let mut counts = self.inner.counts();
        if let Some(n) = counts.per_account.get_mut(&self.account_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_account.remove(&self.account_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_and_free_themselves() {
        let sockets = Sockets::default();
        let a = sockets.try_open(2);
        let b = sockets.try_open(2);
        assert!(a.is_some() && b.is_some());
        assert!(sockets.try_open(2).is_none());
        drop(a);
        assert_eq!(sockets.open_count(), 1);
        assert!(sockets.try_open(2).is_some());
        assert_eq!(sockets.open_count(), 1);
    }

    #[test]
    fn per_account_caps_are_independent() {
        let sockets = Sockets::default();
        let one = sockets.try_bind(7, 1);
        assert!(one.as_ref().is_some_and(|s| s.account_id() == 7));
        assert!(sockets.try_bind(7, 1).is_none());
        assert!(sockets.try_bind(8, 1).is_some());
        assert_eq!(sockets.account_count(7), 1);
        drop(one);
        assert_eq!(sockets.account_count(7), 0);
        assert!(sockets.try_bind(7, 1).is_some());
    }

    #[test]
    fn timing_defaults_to_the_spec() {
        let sockets = Sockets::default();
        assert_eq!(sockets.timing().ping_every, Duration::from_secs(30));
        assert_eq!(sockets.timing().idle_timeout, Duration::from_secs(120));
    }
}
