//! The push hub of SPEC §9: every live Pusher socket with its channels and the sessions that
//! authorized them, and the fan-out of the store's change notices to them as Pusher events.
//!
//! The store hands over each commit's `Notice`s after its flush, numbered in commit order
//! (`store::NoticeSink`); commits that flush together may hand them over in any order, so the
//! hub holds a notice back until every earlier number has arrived. Applying one only queues
//! frames (never waits), so fan-out to a thousand sockets is a loop of `try_send`s under one
//! lock, and every socket's queue receives events in commit order.
//!
//! Each socket has a bounded queue (`QUEUE_FRAMES`); a socket that cannot take a frame is
//! cut off at once (4100) and hears nothing more. A socket whose authorizing session ends
//! gets `logout` when SPEC §9's list calls for one and then 4009, and leaves every index in
//! the same step, so no later event can reach it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, Notify};

use crate::push_protocol::{
    self as protocol, CLOSE_OVER_CAPACITY, CLOSE_SESSION_ENDED, TOKEN_PUSH_EVENT, USER_PUSH_EVENT,
};
use crate::store::{Notice, NoticeSink};

/// Frames a socket may have waiting (SPEC §9: 64); beyond that it is closed with 4100.
pub const QUEUE_FRAMES: usize = 64;

/// What the hub asks a socket's task to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A text frame, shared by every socket it goes to.
    Frame(Arc<str>),
    /// Close with this code (after the frames queued before it).
    Close(u16),
}

/// How the hub stops a socket whose queue is full: a close code and a wake-up, outside the
/// queue.
#[derive(Default)]
pub struct Kill {
    code: AtomicU16,
    notify: Notify,
}

impl Kill {
    fn fire(&self, code: u16) {
        // The first reason wins.
        let _ = self
            .code
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Resolves when the hub cuts the socket off, with the close code.
    pub async fn fired(&self) -> u16 {
        self.notify.notified().await;
        self.code.load(Ordering::SeqCst)
    }
}

/// Why a subscribe was refused: the `pusher:error` to answer (the socket stays open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub code: Option<u16>,
}

struct Conn {
    socket_id: String,
    queue: mpsc::Sender<Outbound>,
    kill: Arc<Kill>,
    channels: HashSet<String>,
    /// Sessions (access_token_id) whose `/broadcasting/auth` signed a channel for it.
    authorized_by: HashSet<String>,
    /// Cut off: in no index any more, hears nothing, waits for its task to go.
    closing: bool,
}

#[derive(Default)]
struct Hub {
    /// The next notice number to apply; earlier ones are done.
    next_seq: u64,
    held_back: BTreeMap<u64, Vec<Notice>>,
    conns: HashMap<u64, Conn>,
    by_socket_id: HashMap<String, u64>,
    by_channel: HashMap<String, HashSet<u64>>,
    by_session: HashMap<String, HashSet<u64>>,
}

/// The push hub (`App::pushes`), also the store's notice sink.
pub struct Pushes {
    app_key: String,
    app_secret: Vec<u8>,
    max_subscriptions: usize,
    next_conn: AtomicU64,
    hub: Mutex<Hub>,
}

/// A live socket's place in the hub; dropping it takes the socket out of every index.
pub struct Registration {
    pushes: Arc<Pushes>,
    pub conn: u64,
    pub socket_id: String,
    pub queue: mpsc::Receiver<Outbound>,
    pub kill: Arc<Kill>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut hub = self.pushes.hub();
        hub.detach(self.conn);
        hub.conns.remove(&self.conn);
    }
}

impl Hub {
    /// Takes a socket out of every index (it stays in `conns` until its task ends).
    fn detach(&mut self, conn: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.closing = true;
        let channels: Vec<String> = c.channels.drain().collect();
        let sessions: Vec<String> = c.authorized_by.drain().collect();
        let socket_id = c.socket_id.clone();
        if self.by_socket_id.get(&socket_id) == Some(&conn) {
            self.by_socket_id.remove(&socket_id);
        }
        for channel in channels {
            remove_from(&mut self.by_channel, &channel, conn);
        }
        for session in sessions {
            remove_from(&mut self.by_session, &session, conn);
        }
    }

    /// Queues `frame` for `conn`; a full queue cuts the socket off (4100).
    fn send(&mut self, conn: u64, frame: Outbound) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        match c.queue.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(socket_id = %c.socket_id, "push socket too slow; closing it (4100)");
                c.kill.fire(CLOSE_OVER_CAPACITY);
                self.detach(conn);
            }
            // Its task is gone; the registration's drop removes it.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn publish(&mut self, channel: &str, frame: Arc<str>) {
        let Some(conns) = self.by_channel.get(channel) else {
            return;
        };
        let conns: Vec<u64> = conns.iter().copied().collect();
        for conn in conns {
            self.send(conn, Outbound::Frame(frame.clone()));
        }
    }

    fn apply(&mut self, notice: Notice) {
        match notice {
            Notice::SessionEnded {
                access_token_id,
                end,
                ..
            } => {
                let Some(conns) = self.by_session.remove(&access_token_id) else {
                    return;
                };
                let channel = protocol::token_channel(&access_token_id);
                let logout: Arc<str> =
                    protocol::event(&channel, TOKEN_PUSH_EVENT, &protocol::logout_data()).into();
                for conn in conns {
                    let Some(c) = self.conns.get(&conn) else {
                        continue;
                    };
                    if c.closing {
                        continue;
                    }
                    let kill = c.kill.clone();
                    let queue = c.queue.clone();
                    let tell = end.is_announced() && c.channels.contains(&channel);
                    tracing::debug!(socket_id = %c.socket_id, end = end.as_str(), "closing a push socket whose session ended");
                    // Out of every index first: the socket hears nothing after this.
                    self.detach(conn);
                    let queued = (!tell || queue.try_send(Outbound::Frame(logout.clone())).is_ok())
                        && queue.try_send(Outbound::Close(CLOSE_SESSION_ENDED)).is_ok();
                    if !queued {
                        kill.fire(CLOSE_SESSION_ENDED);
                    }
                }
            }
            Notice::PermissionsChanged { account_id } => {
                let channel = protocol::user_channel(account_id);
                let frame = protocol::event(
                    &channel,
                    USER_PUSH_EVENT,
                    &protocol::permissions_updated_data(),
                );
                self.publish(&channel, frame.into());
            }
            Notice::CamerasChanged {
                account_id,
                attached,
                detached,
            } => {
                let channel = protocol::user_channel(account_id);
                let frame = protocol::event(
                    &channel,
                    USER_PUSH_EVENT,
                    &protocol::cameras_updated_data(&attached, &detached),
                );
                self.publish(&channel, frame.into());
            }
        }
    }
}

fn remove_from(index: &mut HashMap<String, HashSet<u64>>, key: &str, conn: u64) {
    if let Some(set) = index.get_mut(key) {
        set.remove(&conn);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

impl Pushes {
    pub fn new(app_key: String, app_secret: Vec<u8>, max_subscriptions: usize) -> Pushes {
        Pushes {
            app_key,
            app_secret,
            max_subscriptions,
            next_conn: AtomicU64::new(1),
            hub: Mutex::new(Hub {
                next_seq: 1,
                ..Hub::default()
            }),
        }
    }

    fn hub(&self) -> MutexGuard<'_, Hub> {
        // Every step leaves the indices consistent before it can panic (no user code runs
        // under the lock), so a poisoned lock is used as is.
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn app_key(&self) -> &str {
        &self.app_key
    }

    /// The signature `/broadcasting/auth` hands out for `socket_id` and `channel`.
    pub fn sign(&self, socket_id: &str, channel: &str) -> String {
        protocol::sign(&self.app_key, &self.app_secret, socket_id, channel)
    }

    /// A new socket in the hub with a fresh, unique socket id.
    pub fn register(self: &Arc<Self>) -> Result<Registration, ring::error::Unspecified> {
        let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
        let kill = Arc::new(Kill::default());
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let mut hub = self.hub();
        let socket_id = loop {
            let id = protocol::new_socket_id()?;
            if !hub.by_socket_id.contains_key(&id) {
                break id;
            }
        };
        hub.by_socket_id.insert(socket_id.clone(), conn);
        hub.conns.insert(
            conn,
            Conn {
                socket_id: socket_id.clone(),
                queue: tx,
                kill: kill.clone(),
                channels: HashSet::new(),
                authorized_by: HashSet::new(),
                closing: false,
            },
        );
        Ok(Registration {
            pushes: self.clone(),
            conn,
            socket_id,
            queue: rx,
            kill,
        })
    }

    /// Subscribes `conn` to `channel` (SPEC §9's rules); `Ok` means "answer
    /// subscription_succeeded" (also for a channel it already has).
    pub fn subscribe(&self, conn: u64, channel: &str, auth: Option<&str>) -> Result<(), Refusal> {
        let kind = protocol::classify(channel).map_err(|e| Refusal {
            message: e.to_string(),
            code: None,
        })?;
        let mut hub = self.hub();
        let Some(c) = hub.conns.get_mut(&conn) else {
            return Err(Refusal {
                message: "Unknown socket".into(),
                code: None,
            });
        };
        match kind {
            protocol::ChannelKind::PresenceOrEncrypted => {
                return Err(Refusal {
                    message: protocol::MSG_PRESENCE_UNSUPPORTED.into(),
                    code: None,
                })
            }
            protocol::ChannelKind::Private => {
                let valid = auth.is_some_and(|a| {
                    protocol::verify(&self.app_key, &self.app_secret, &c.socket_id, channel, a)
                });
                if !valid {
                    return Err(Refusal {
                        message: protocol::invalid_signature_message(&c.socket_id, channel, auth),
                        code: None,
                    });
                }
            }
            protocol::ChannelKind::Public => {}
        }
        if c.closing || c.channels.contains(channel) {
            return Ok(());
        }
        if c.channels.len() >= self.max_subscriptions {
            return Err(Refusal {
                message: protocol::MSG_SUBSCRIPTION_LIMIT.into(),
                code: Some(protocol::ERROR_CODE_SUBSCRIPTION_LIMIT),
            });
        }
        c.channels.insert(channel.to_owned());
        hub.by_channel
            .entry(channel.to_owned())
            .or_default()
            .insert(conn);
        Ok(())
    }

    pub fn unsubscribe(&self, conn: u64, channel: &str) {
        let mut hub = self.hub();
        let Some(c) = hub.conns.get_mut(&conn) else {
            return;
        };
        if c.channels.remove(channel) {
            remove_from(&mut hub.by_channel, channel, conn);
        }
    }

    /// Remembers that session `access_token_id` authorized a channel of the live socket
    /// `socket_id`: when the session ends, the socket is closed. False when no live socket
    /// has that id (the signature is then useless to anyone).
    pub fn record_authorization(&self, socket_id: &str, access_token_id: &str) -> bool {
        let mut hub = self.hub();
        let Some(&conn) = hub.by_socket_id.get(socket_id) else {
            return false;
        };
        let Some(c) = hub.conns.get_mut(&conn) else {
            return false;
        };
        c.authorized_by.insert(access_token_id.to_owned());
        hub.by_session
            .entry(access_token_id.to_owned())
            .or_default()
            .insert(conn);
        true
    }

    /// Closes (4009) every socket `access_token_id` authorized: for an authorization whose
    /// session turned out to have ended meanwhile.
    pub fn end_session_silently(&self, account_id: u64, access_token_id: &str) {
        self.hub().apply(Notice::SessionEnded {
            account_id,
            access_token_id: access_token_id.to_owned(),
            end: crate::store::SessionEnd::Logout,
        });
    }

    /// Open Pusher sockets, for tests and the bench.
    pub fn socket_count(&self) -> usize {
        self.hub().conns.len()
    }
}

impl NoticeSink for Pushes {
    fn deliver(&self, seq: u64, notices: Vec<Notice>) {
        let mut hub = self.hub();
        if seq < hub.next_seq {
            return;
        }
        hub.held_back.insert(seq, notices);
        loop {
            let next = hub.next_seq;
            let Some(ready) = hub.held_back.remove(&next) else {
                break;
            };
            hub.next_seq += 1;
            for notice in ready {
                hub.apply(notice);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::SessionEnd;

    fn pushes() -> Arc<Pushes> {
        Arc::new(Pushes::new("key".into(), b"secret".to_vec(), 3))
    }

    fn drain(r: &mut Registration) -> Vec<Outbound> {
        let mut out = Vec::new();
        while let Ok(o) = r.queue.try_recv() {
            out.push(o);
        }
        out
    }

    #[test]
    fn notices_apply_in_sequence_order_whatever_order_they_arrive_in() {
        let p = pushes();
        let mut r = p.register().unwrap();
        let channel = protocol::user_channel(5);
        let auth = p.sign(&r.socket_id, &channel);
        p.subscribe(r.conn, &channel, Some(&auth)).unwrap();
        let cams = |id| Notice::CamerasChanged {
            account_id: 5,
            attached: vec![id],
            detached: vec![],
        };
        p.deliver(2, vec![cams(2)]);
        assert!(drain(&mut r).is_empty(), "2 waits for 1");
        p.deliver(1, vec![cams(1)]);
        p.deliver(3, vec![cams(3)]);
        let got: Vec<String> = drain(&mut r)
            .into_iter()
            .map(|o| match o {
                Outbound::Frame(f) => f.to_string(),
                Outbound::Close(c) => c.to_string(),
            })
            .collect();
        assert_eq!(got.len(), 3);
        for (i, frame) in got.iter().enumerate() {
            assert!(frame.contains(&format!("[{}]", i + 1)), "{frame}");
        }
    }

    #[test]
    fn a_session_end_announces_then_closes_and_silences() {
        let p = pushes();
        let mut r = p.register().unwrap();
        let token = protocol::token_channel("abc");
        let user = protocol::user_channel(1);
        for ch in [&token, &user] {
            let auth = p.sign(&r.socket_id, ch);
            p.subscribe(r.conn, ch, Some(&auth)).unwrap();
        }
        assert!(p.record_authorization(&r.socket_id, "abc"));
        p.deliver(
            1,
            vec![
                Notice::SessionEnded {
                    account_id: 1,
                    access_token_id: "abc".into(),
                    end: SessionEnd::Revoked,
                },
                Notice::PermissionsChanged { account_id: 1 },
            ],
        );
        let out = drain(&mut r);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(&out[0], Outbound::Frame(f) if f.contains("logout")));
        assert_eq!(out[1], Outbound::Close(CLOSE_SESSION_ENDED));
    }

    #[test]
    fn a_silent_end_closes_without_logout() {
        let p = pushes();
        let mut r = p.register().unwrap();
        let token = protocol::token_channel("abc");
        let auth = p.sign(&r.socket_id, &token);
        p.subscribe(r.conn, &token, Some(&auth)).unwrap();
        p.record_authorization(&r.socket_id, "abc");
        p.deliver(
            1,
            vec![Notice::SessionEnded {
                account_id: 1,
                access_token_id: "abc".into(),
                end: SessionEnd::Logout,
            }],
        );
        assert_eq!(drain(&mut r), vec![Outbound::Close(CLOSE_SESSION_ENDED)]);
    }

    #[test]
    fn subscriptions_are_checked_and_bounded() {
        let p = pushes();
        let r = p.register().unwrap();
        let private = "private-user.1";
        assert!(p.subscribe(r.conn, private, None).is_err());
        assert!(p.subscribe(r.conn, private, Some("key:00")).is_err());
        assert_eq!(
            p.subscribe(r.conn, "presence-x", None).unwrap_err().message,
            protocol::MSG_PRESENCE_UNSUPPORTED
        );
        let auth = p.sign(&r.socket_id, private);
        assert!(p.subscribe(r.conn, private, Some(&auth)).is_ok());
        assert!(p.subscribe(r.conn, private, Some(&auth)).is_ok(), "again");
        assert!(p.subscribe(r.conn, "a", None).is_ok());
        assert!(p.subscribe(r.conn, "b", None).is_ok());
        let refused = p.subscribe(r.conn, "c", None).unwrap_err();
        assert_eq!(refused.code, Some(protocol::ERROR_CODE_SUBSCRIPTION_LIMIT));
        p.unsubscribe(r.conn, "b");
        assert!(p.subscribe(r.conn, "c", None).is_ok());
    }

    #[test]
    fn a_full_queue_cuts_the_socket_off() {
        let p = pushes();
        let mut r = p.register().unwrap();
        p.subscribe(
            r.conn,
            &protocol::user_channel(1),
            Some(&p.sign(&r.socket_id, "private-user.1")),
        )
        .unwrap();
        for seq in 1..=(QUEUE_FRAMES as u64 + 1) {
            p.deliver(seq, vec![Notice::PermissionsChanged { account_id: 1 }]);
        }
        assert_eq!(r.kill.code.load(Ordering::SeqCst), CLOSE_OVER_CAPACITY);
        assert_eq!(drain(&mut r).len(), QUEUE_FRAMES);
        p.deliver(
            QUEUE_FRAMES as u64 + 2,
            vec![Notice::PermissionsChanged { account_id: 1 }],
        );
        assert!(drain(&mut r).is_empty(), "nothing after the cut");
        drop(r);
        assert_eq!(p.socket_count(), 0);
    }
}
