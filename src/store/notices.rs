//! Change notices: the domain facts a committed transaction reports to whoever listens (the
//! push server), with no knowledge of how they are told to anyone. `Tx` records them as its
//! writes happen (`remove_session` and friends for session ends, `Tx::notice` for account
//! changes); only the attempt that commits keeps them; they are numbered in commit order
//! under a lock held across the transaction, and handed to the sink after the flush, so a
//! listener hears of a change only once it is on disk, never of an aborted (refused) one, and
//! can put concurrent commits back in commit order by their numbers.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Its own logout.
    Logout,
    /// A new login from the same device (`X-UUID`) replaced it.
    DeviceReplaced,
    /// Revoked from another session of the account.
    Revoked,
    /// Evicted by a login at the session limit (`session_id`).
    Evicted,
    /// Its password changed elsewhere, or was reset offline.
    PasswordChanged,
    /// Its account moved between roles.
    RoleChanged,
    /// Its account was disabled or locked by an admin.
    Deactivated,
    /// Its account was deleted.
    AccountDeleted,
    /// Its TTL ran out, or its account became unusable (past `expired_at`, disabled, gone):
    /// found by the housekeeping sweep.
    Expired,
}

impl SessionEnd {
    /// Whether the session's device is told (SPEC §9's exhaustive list): not for its own
    /// logout, a device replacement, or a role change, which the list does not name.
    pub fn is_announced(self) -> bool {
        match self {
            SessionEnd::Logout | SessionEnd::DeviceReplaced | SessionEnd::RoleChanged => false,
            SessionEnd::Revoked
            | SessionEnd::Evicted
            | SessionEnd::PasswordChanged
            | SessionEnd::Deactivated
            | SessionEnd::AccountDeleted
            | SessionEnd::Expired => true,
        }
    }

    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::Logout => "logout",
            SessionEnd::DeviceReplaced => "device_replaced",
            SessionEnd::Revoked => "revoked",
            SessionEnd::Evicted => "evicted",
            SessionEnd::PasswordChanged => "password_changed",
            SessionEnd::RoleChanged => "role_changed",
            SessionEnd::Deactivated => "deactivated",
            SessionEnd::AccountDeleted => "account_deleted",
            SessionEnd::Expired => "expired",
        }
    }
}

/// One committed change a listener may care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    SessionEnded {
        account_id: u64,
        access_token_id: String,
        end: SessionEnd,
    },
    /// The account's permission set changed.
    PermissionsChanged { account_id: u64 },
    /// Cameras were attached to or detached from the account.
    CamerasChanged {
        account_id: u64,
        attached: Vec<u64>,
        detached: Vec<u64>,
    },
}

/// Who hears of committed changes. `seq` numbers the commits that had notices, from 1 with
/// no gaps, in commit order; calls may arrive out of that order (flushes complete together)
/// and from any thread. A call must not block.
pub trait NoticeSink: Send + Sync {
    fn deliver(&self, seq: u64, notices: Vec<Notice>);
}

/// The store's side: the sink once it is set, and the commit-order counter.
#[derive(Default)]
pub(super) struct Notices {
    sink: OnceLock<Arc<dyn NoticeSink>>,
    /// The last sequence number given out.
    order: Mutex<u64>,
}

impl Notices {
    pub(super) fn set_sink(&self, sink: Arc<dyn NoticeSink>) -> bool {
        self.sink.set(sink).is_ok()
    }

    pub(super) fn order(&self) -> MutexGuard<'_, u64> {
        // A plain counter: a panic elsewhere cannot leave it half-updated.
        self.order.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The committed attempt's notices with their number; empty and unnumbered when there is
    /// nothing to say or nobody to say it to (the CLI).
    pub(super) fn pending(
        &self,
        order: &mut MutexGuard<'_, u64>,
        notices: Vec<Notice>,
    ) -> Pending<'_> {
        match self.sink.get() {
            Some(sink) if !notices.is_empty() => {
                **order += 1;
                Pending {
                    sink: Some(sink.as_ref()),
                    seq: **order,
                    notices,
                }
            }
            _ => Pending {
                sink: None,
                seq: 0,
                notices: Vec::new(),
            },
        }
    }
}

/// Notices waiting for their commit's flush. Every number given out must reach the sink
/// (a listener waits for each in turn), so dropping this without `deliver` — a request whose
/// future is dropped while it waits for the flush — delivers too: the change is committed and
/// every reader already sees it.
pub(super) struct Pending<'a> {
    sink: Option<&'a dyn NoticeSink>,
    seq: u64,
    notices: Vec<Notice>,
}

impl Pending<'_> {
    pub(super) fn deliver(self) {
        // The work is in `Drop`.
    }

    /// The flush failed: the caller answers a server error, so nothing about the change is
    /// announced, but sessions that readers already see as ended still end silently (their
    /// sockets close without a `logout`), and the number is used up.
    pub(super) fn flush_failed(mut self) {
        self.notices
            .retain(|n| matches!(n, Notice::SessionEnded { .. }));
        for n in &mut self.notices {
            if let Notice::SessionEnded { end, .. } = n {
                *end = SessionEnd::Logout;
            }
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            sink.deliver(self.seq, std::mem::take(&mut self.notices));
        }
    }
}
