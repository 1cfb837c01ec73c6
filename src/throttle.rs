//! Login throttling of SPEC §3, in memory: per-account lockout after consecutive failures
//! (it blocks new logins only; open sessions keep working) and per-IP attempt windows, both
//! bounded so that a flood of distinct sources cannot grow memory; the same per-IP window
//! also limits `GET /api/v1/wsurl` (SPEC §9).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bound on remembered IPs and accounts.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    in_flight: u32,
    locked_until: Option<Instant>,
}

/// One admitted password check (see `Throttle::admission`).
pub(crate) struct Admission<'a> {
    state: &'a Throttle,
    account_id: u64,
    settled: bool,
}

impl Admission<'_> {
    /// Records the verdict; true when this failure started a lockout.
    pub(crate) fn settle(mut self, success: bool, threshold: u32, duration: Duration) -> bool {
        self.settled = true;
        self.state
            .settle(self.account_id, success, threshold, duration)
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.state.release(self.account_id);
        }
    }
}

#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<u64, Failures>>,
    ip_attempts: IpWindow,
    /// `GET /api/v1/wsurl` per IP (SPEC §9: 20 per 5 min).
    pub wsurl: IpWindow,
}

fn lock(map: &Mutex<HashMap<u64, Failures>>) -> std::sync::MutexGuard<'_, HashMap<u64, Failures>> {
    // A panic while holding these maps cannot leave them inconsistent in a way that matters
    // (counters only), so a poisoned lock is used as is.
    map.lock().unwrap_or_else(|p| p.into_inner())
}

impl Throttle {
    /// Seconds left of an automatic lockout, if one is active.
    pub fn lockout_remaining(&self, account_id: u64) -> Option<u64> {
        let map = lock(&self.failures);
        let until = map.get(&account_id)?.locked_until?;
        let left = until.checked_duration_since(Instant::now())?;
        Some(left.as_secs().max(1))
    }

    pub fn is_locked_out(&self, account_id: u64) -> bool {
        self.lockout_remaining(account_id).is_some()
    }

    /// An admin set status 0: the automatic lockout lifts and the count restarts.
    pub fn clear_lockout(&self, account_id: u64) {
        lock(&self.failures).remove(&account_id);
    }

    /// Admits one password check for `account_id`, or says how long to wait. Failures plus
    /// checks in flight never exceed the threshold, so concurrent guesses cannot get more
    /// password checks than the configured attempts.
    fn admit(&self, account_id: u64, threshold: u32) -> Result<(), u64> {
        let mut map = lock(&self.failures);
        if map.len() >= MAX_TRACKED && !map.contains_key(&account_id) {
            let now = Instant::now();
            map.retain(|_, f| f.in_flight > 0 || f.locked_until.is_some_and(|u| u > now));
        }
        let entry = map.entry(account_id).or_default();
        if let Some(until) = entry.locked_until {
            match until.checked_duration_since(Instant::now()) {
                Some(left) => return Err(left.as_secs().max(1)),
                None => {
                    // The lock ran out: the count restarts, checks still in flight stay counted.
                    entry.count = 0;
                    entry.locked_until = None;
                }
            }
        }
        if entry.count + entry.in_flight >= threshold {
            return Err(1);
        }
        entry.in_flight += 1;
        Ok(())
    }

    /// `admit` as a guard: a check that ends without a verdict (the hashing queue was full,
    /// the request timed out, the client went away and the future was dropped) gives its
    /// place back instead of holding it forever or counting as a failed login.
    pub(crate) fn admission(&self, account_id: u64, threshold: u32) -> Result<Admission<'_>, u64> {
        self.admit(account_id, threshold)?;
        Ok(Admission {
            state: self,
            account_id,
            settled: false,
        })
    }

    /// Ends an admitted check that reached no verdict.
    fn release(&self, account_id: u64) {
        let mut map = lock(&self.failures);
        if let Some(entry) = map.get_mut(&account_id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if entry.in_flight == 0 && entry.count == 0 && entry.locked_until.is_none() {
                map.remove(&account_id);
            }
        }
    }

    /// Ends an admitted check. Returns true when this failure started a lockout.
    fn settle(&self, account_id: u64, success: bool, threshold: u32, duration: Duration) -> bool {
        let mut map = lock(&self.failures);
        let entry = map.entry(account_id).or_default();
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if success {
            entry.count = 0;
            if entry.in_flight == 0 {
                map.remove(&account_id);
            }
            return false;
        }
        entry.count += 1;
        if entry.count >= threshold && entry.locked_until.is_none() {
            entry.locked_until = Some(Instant::now() + duration);
            return true;
        }
        false
    }

    /// Counts a login attempt from `ip`; Err(seconds) when the window is full.
    pub(crate) fn throttle_ip(&self, ip: IpAddr, limit: u32, window: Duration) -> Result<(), u64> {
        self.ip_attempts.hit(ip, limit, window)
    }
}

/// Requests per IP address in a sliding window (login attempts, `GET /api/v1/wsurl`),
/// bounded to `MAX_TRACKED` addresses.
#[derive(Default)]
pub struct IpWindow {
    hits: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl IpWindow {
    /// Counts a request from `ip`; Err(seconds to wait) when `limit` are already in `window`.
    pub fn hit(&self, ip: IpAddr, limit: u32, window: Duration) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let attempts = map.entry(ip).or_default();
        while attempts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            attempts.pop_front();
        }
        if attempts.len() >= limit as usize {
            let oldest = attempts.front().copied().unwrap_or(now);
            let left = window.saturating_sub(now.duration_since(oldest));
            return Err(left.as_secs().max(1));
        }
        attempts.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_admits_no_more_checks_than_the_threshold() {
        let state = Throttle::default();
        let d = Duration::from_secs(60);
        // Three concurrent checks against a threshold of 3: a fourth is refused while they run.
        for _ in 0..3 {
            assert!(state.admit(1, 3).is_ok());
        }
        assert!(state.admit(1, 3).is_err());
        assert!(!state.settle(1, false, 3, d));
        assert!(!state.settle(1, false, 3, d));
        assert!(state.settle(1, false, 3, d));
        assert!(state.is_locked_out(1));
        assert!(state.lockout_remaining(1).is_some_and(|s| s > 50));
        assert!(state.admit(1, 3).is_err());
        state.clear_lockout(1);
        assert!(state.admit(1, 3).is_ok());
        assert!(!state.settle(1, true, 3, d));
        assert!(!state.is_locked_out(1));
    }

    #[test]
    fn an_admission_dropped_without_a_verdict_counts_nothing() {
        let state = Throttle::default();
        let d = Duration::from_secs(60);
        for _ in 0..5 {
            let admission = state.admission(3, 2);
            assert!(admission.is_ok());
        }
        // Five abandoned checks against a threshold of 2: none is held, none counted.
        assert!(state.admission(3, 2).is_ok_and(|a| !a.settle(false, 2, d)));
        assert!(state.admission(3, 2).is_ok_and(|a| a.settle(false, 2, d)));
        assert!(state.is_locked_out(3));
    }

    #[test]
    fn a_lockout_lifts_by_itself() {
        let state = Throttle::default();
        assert!(state.admit(2, 1).is_ok());
        assert!(state.settle(2, false, 1, Duration::from_millis(20)));
        assert!(state.admit(2, 1).is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(state.admit(2, 1).is_ok());
    }

    #[test]
    fn ip_throttle_counts_attempts_in_a_sliding_window() {
        let state = Throttle::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let w = Duration::from_millis(50);
        assert!(state.throttle_ip(ip, 2, w).is_ok());
        assert!(state.throttle_ip(ip, 2, w).is_ok());
        assert!(state.throttle_ip(ip, 2, w).is_err());
        assert!(state.throttle_ip(other, 2, w).is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(state.throttle_ip(ip, 2, w).is_ok());
    }
}
