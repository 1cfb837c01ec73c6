//! systemd integration: the sd_notify protocol (`READY=1`, `STATUS=`, `STOPPING=1`, `RELOADING=1`,
//! `WATCHDOG=1`), the health-gated watchdog loop, and adoption of socket-activated listeners
//! (`LISTEN_FDS`). Everything here is a no-op when the process is not run by systemd.
//!
//! sd_notify is implemented here instead of with a crate because the small crates do not support
//! abstract (`@name`) sockets and the complete ones pull a second `nix` (see stack notes §4).

use std::future::Future;
use std::io;
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Bounds how long a notification may block when systemd's receive queue is full, so a stalled
/// manager can never wedge the async worker that sends a watchdog ping.
const SEND_TIMEOUT: Duration = Duration::from_millis(500);

/// tokio's `interval` panics on a zero period; a caller passing a nonsense interval should get a
/// fast watchdog rather than a crashed daemon.
const MIN_WATCHDOG_INTERVAL: Duration = Duration::from_millis(1);

/// Sends sd_notify datagrams to the socket systemd named in `NOTIFY_SOCKET`.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
}

#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// Kept as given, for log messages: `SocketAddr`'s Debug output hides abstract names.
    display: String,
}

impl Notifier {
    /// The notifier systemd asked for, or a disabled one when `NOTIFY_SOCKET` is unset or unusable.
    pub fn from_env() -> Notifier {
        match std::env::var("NOTIFY_SOCKET") {
            Ok(s) => Notifier::from_socket_path(&s),
            Err(_) => Notifier::disabled(),
        }
    }

    /// A notifier for `s` in `NOTIFY_SOCKET` syntax: an absolute path, or `@name` for an abstract
    /// socket. Anything else disables notifications, as libsystemd does.
    pub fn from_socket_path(s: &str) -> Notifier {
        match Target::open(s) {
            Ok(target) => Notifier {
                target: Some(target),
            },
            Err(e) => {
                if !s.is_empty() {
                    tracing::debug!(notify_socket = s, error = %e, "sd_notify disabled: unusable NOTIFY_SOCKET {s:?}: {e}");
                }
                Notifier::disabled()
            }
        }
    }

    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines) as one datagram; `Ok` without sending
    /// when disabled.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let sent = target.socket.send_to_addr(state.as_bytes(), &target.addr)?;
        if sent != state.len() {
            // A truncated datagram would be parsed by systemd as a different message.
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short sd_notify datagram: {sent} of {} bytes", state.len()),
            ));
        }
        Ok(())
    }

    /// Startup is complete. `status` becomes the unit's status line in `systemctl status`.
    pub fn ready(&self, status: &str) {
        self.send_logged(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send_logged(&format!("STATUS={}", one_line(status)));
    }

    pub fn stopping(&self) {
        self.send_logged("STOPPING=1");
    }

    pub fn watchdog(&self) {
        self.send_logged("WATCHDOG=1");
    }

    /// Tells systemd a reload started; call `ready` when it is done, because systemd keeps the
    /// unit in the "reloading" state until the next `READY=1`.
    ///
    /// `MONOTONIC_USEC=` is not sent: only `Type=notify-reload` requires it, and reading
    /// `CLOCK_MONOTONIC` is not possible without `unsafe` or another nix feature.
    pub fn reloading(&self) {
        self.send_logged("RELOADING=1");
    }

    /// Notifications are advisory: a failed send must never take the daemon down, and a missed
    /// watchdog ping is exactly what systemd is there to notice.
    fn send_logged(&self, state: &str) {
        if let Err(e) = self.notify(state) {
            let socket = self.target.as_ref().map_or("", |t| t.display.as_str());
            tracing::debug!(notify_socket = socket, error = %e, "sd_notify to {socket} failed: {e}");
        }
    }
}

impl Target {
    fn open(s: &str) -> io::Result<Target> {
        let addr = if let Some(name) = s.strip_prefix('@') {
            SocketAddr::from_abstract_name(name.as_bytes())?
        } else if s.starts_with('/') {
            SocketAddr::from_pathname(s)?
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET must be an absolute path or start with '@'",
            ));
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
        Ok(Target {
            socket,
            addr,
            display: s.to_owned(),
        })
    }
}

/// A newline inside a value would start a new `KEY=VALUE` assignment in the datagram.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// How often to send `WATCHDOG=1`: half of the timeout systemd set, or `None` when the watchdog
/// is off or meant for another process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_interval_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// Pure core of [`watchdog_interval`], following sd_watchdog_enabled(3): a set but unparsable
/// `WATCHDOG_PID` disables the watchdog, and so do 0 and "infinity" (`u64::MAX`) timeouts.
pub fn watchdog_interval_from(
    usec: Option<&str>,
    pid: Option<&str>,
    my_pid: u32,
) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 || usec == u64::MAX {
        return None;
    }
    if let Some(pid) = pid {
        let pid: u32 = pid.trim().parse().ok()?;
        if pid != my_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_micros(1)))
}

/// The `FileDescriptorName=` of the socket systemd hands over for the media hook (SPEC §8).
pub const HOOK_FD_NAME: &str = "hook";

/// What systemd handed over: the HTTPS listeners, and the media hook's when one is named
/// `hook` (`LISTEN_FDNAMES`).
#[derive(Debug, Default)]
pub struct Inherited {
    pub api: Vec<TcpListener>,
    pub hook: Option<TcpListener>,
}

/// The listeners systemd passed (`LISTEN_PID`/`LISTEN_FDS`), in order, already non-blocking;
/// empty when the process was not socket-activated. The one named `hook` in
/// `LISTEN_FDNAMES` is the media hook's; every other one serves HTTPS.
///
/// Call this once, before the tokio runtime or any other thread starts: `listenfd` removes
/// `LISTEN_PID`/`LISTEN_FDS` from the environment, which is only sound while single-threaded.
/// Any passed fd that is not a TCP listening socket is an error: the socket unit is then wrong,
/// and silently serving on fewer sockets would hide it.
pub fn take_listeners() -> io::Result<Inherited> {
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    let mut fds = listenfd::ListenFd::from_env();
    let mut inherited = Inherited::default();
    for idx in 0..fds.len() {
        match fds.take_tcp_listener(idx) {
            Ok(Some(listener)) => {
                let listener = adopt(listener)?;
                if is_hook_fd(&names, idx) && inherited.hook.is_none() {
                    inherited.hook = Some(listener);
                } else {
                    inherited.api.push(listener);
                }
            }
            Ok(None) => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("socket-activated listener {idx} (counting from 0): {e}"),
                ))
            }
        }
    }
    Ok(inherited)
}

/// Whether fd number `idx` (from 0) is named `hook` in `LISTEN_FDNAMES` (colon-separated).
fn is_hook_fd(names: &str, idx: usize) -> bool {
    !names.is_empty() && names.split(':').nth(idx) == Some(HOOK_FD_NAME)
}

/// systemd passes blocking sockets unless the socket unit says `NonBlocking=yes`, and tokio's
/// `TcpListener::from_std` debug-asserts that the socket is non-blocking.
fn adopt(listener: TcpListener) -> io::Result<TcpListener> {
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Pings the watchdog every `interval`, but only after `probe` reports health within `interval`.
///
/// Pinging from a bare timer would only prove the timer runs; gating on a probe (runtime
/// responsive, store round-trip) lets systemd restart a daemon that is alive but wedged. A probe
/// that fails or hangs withholds the ping and logs a warning. Returns when `shutdown` becomes
/// true, or when its sender is dropped (nothing could signal shutdown any more).
pub async fn run_watchdog<F, Fut>(
    notifier: Arc<Notifier>,
    interval: Duration,
    probe: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let interval = interval.max(MIN_WATCHDOG_INTERVAL);
    let mut ticker = tokio::time::interval(interval);
    // After a slow probe, wait a whole period instead of firing a burst of catch-up pings.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        tokio::select! {
            _ = ticker.tick() => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        // Shutdown is watched during the probe too, so a hung probe cannot delay exit.
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(interval, probe()) => outcome,
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        match outcome {
            Ok(true) => notifier.watchdog(),
            Ok(false) => tracing::warn!(
                "health probe failed; withholding WATCHDOG=1 so systemd restarts the daemon if it persists"
            ),
            Err(_) => tracing::warn!(
                timeout_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
                "health probe did not answer within {interval:?}; withholding WATCHDOG=1"
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should fail the test loudly
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn bind_path() -> (tempfile::TempDir, UnixDatagram, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let path = path.to_str().unwrap().to_owned();
        (dir, rx, path)
    }

    fn bind_abstract() -> (UnixDatagram, String) {
        // Abstract names are global to the network namespace: make concurrent runs distinct.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("vmsd-test-{}-{nanos}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        (rx, format!("@{name}"))
    }

    fn recv(rx: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = rx.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// Every datagram already queued, without waiting.
    fn drain(rx: &UnixDatagram) -> Vec<String> {
        rx.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = rx.recv(&mut buf) {
            out.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        rx.set_nonblocking(false).unwrap();
        out
    }

    fn assert_lifecycle(notifier: &Notifier, rx: &UnixDatagram) {
        assert!(notifier.is_enabled());
        notifier.ready("listening on 0.0.0.0:443");
        notifier.status("draining\n3 connections");
        notifier.watchdog();
        notifier.reloading();
        notifier.stopping();
        assert_eq!(recv(rx), "READY=1\nSTATUS=listening on 0.0.0.0:443");
        assert_eq!(recv(rx), "STATUS=draining 3 connections");
        assert_eq!(recv(rx), "WATCHDOG=1");
        assert_eq!(recv(rx), "RELOADING=1");
        assert_eq!(recv(rx), "STOPPING=1");
        assert!(drain(rx).is_empty());
    }

    #[test]
    fn path_socket_receives_lifecycle_in_order() {
        let (_dir, rx, path) = bind_path();
        assert_lifecycle(&Notifier::from_socket_path(&path), &rx);
    }

    #[test]
    fn abstract_socket_receives_lifecycle_in_order() {
        let (rx, name) = bind_abstract();
        assert_lifecycle(&Notifier::from_socket_path(&name), &rx);
    }

    #[test]
    fn raw_notify_sends_one_datagram() {
        let (_dir, rx, path) = bind_path();
        let notifier = Notifier::from_socket_path(&path);
        notifier
            .notify("STATUS=a\nEXTEND_TIMEOUT_USEC=5000000")
            .unwrap();
        assert_eq!(recv(&rx), "STATUS=a\nEXTEND_TIMEOUT_USEC=5000000");
    }

    #[test]
    fn disabled_notifier_is_a_no_op() {
        for notifier in [
            Notifier::disabled(),
            Notifier::from_socket_path(""),
            Notifier::from_socket_path("relative/notify.sock"),
        ] {
            assert!(!notifier.is_enabled());
            notifier.notify("READY=1").unwrap();
            notifier.ready("x");
            notifier.status("x");
            notifier.watchdog();
            notifier.reloading();
            notifier.stopping();
        }
    }

    #[test]
    fn missing_receiver_is_an_error_for_notify_and_ignored_by_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody.sock");
        let notifier = Notifier::from_socket_path(path.to_str().unwrap());
        assert!(notifier.is_enabled());
        assert!(notifier.notify("READY=1").is_err());
        notifier.ready("x");
        notifier.watchdog();
    }

    #[test]
    fn watchdog_interval_is_half_the_timeout() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(watchdog_interval_from(Some("30000000"), None, 7), half);
        assert_eq!(watchdog_interval_from(Some("30000000"), Some("7"), 7), half);
        assert_eq!(
            watchdog_interval_from(Some("1"), None, 7),
            Some(Duration::from_micros(1))
        );
    }

    #[test]
    fn watchdog_interval_rejects_other_pids_and_garbage() {
        assert_eq!(watchdog_interval_from(Some("30000000"), Some("8"), 7), None);
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("seven"), 7),
            None
        );
        assert_eq!(watchdog_interval_from(Some("30000000"), Some(""), 7), None);
        assert_eq!(watchdog_interval_from(Some("30s"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("-5"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some(""), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
        assert_eq!(
            watchdog_interval_from(Some(&u64::MAX.to_string()), None, 7),
            None
        );
        assert_eq!(watchdog_interval_from(None, Some("7"), 7), None);
        assert_eq!(watchdog_interval_from(None, None, 7), None);
    }

    #[test]
    fn adopt_makes_a_blocking_listener_non_blocking() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // A fresh std listener is blocking, like an fd inherited from systemd.
        let listener = adopt(listener).unwrap();
        assert_eq!(
            listener.accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "accept on an adopted listener must not block"
        );
    }

    #[tokio::test]
    async fn adopted_listener_is_accepted_by_tokio() {
        let listener = adopt(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Debug builds would panic here if the socket were still blocking (tokio #7172).
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let client = tokio::spawn(tokio::net::TcpStream::connect(addr));
        let (_stream, _) = listener.accept().await.unwrap();
        client.await.unwrap().unwrap();
    }

    #[test]
    fn the_hook_fd_is_found_by_name() {
        assert!(is_hook_fd("hook", 0));
        assert!(is_hook_fd("vmsd.socket:hook", 1));
        assert!(!is_hook_fd("vmsd.socket:hook", 0));
        assert!(!is_hook_fd("", 0));
        assert!(!is_hook_fd("vmsd.socket", 1));
    }

    #[test]
    fn take_listeners_without_activation_is_empty() {
        // The test harness is not socket-activated; LISTEN_PID, if inherited, names another pid.
        if std::env::var_os("LISTEN_FDS").is_none() {
            let inherited = take_listeners().unwrap();
            assert!(inherited.api.is_empty() && inherited.hook.is_none());
        }
    }

    fn ping_count(datagrams: &[String]) -> usize {
        assert!(datagrams.iter().all(|d| d == "WATCHDOG=1"), "{datagrams:?}");
        datagrams.len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watchdog_pings_only_while_probe_passes() {
        let (_dir, rx, path) = bind_path();
        let notifier = Arc::new(Notifier::from_socket_path(&path));
        let healthy = Arc::new(AtomicBool::new(true));
        let (tx, shutdown) = watch::channel(false);
        let probe_flag = healthy.clone();
        let task = tokio::spawn(run_watchdog(
            notifier,
            Duration::from_millis(50),
            move || {
                let flag = probe_flag.clone();
                async move { flag.load(Ordering::SeqCst) }
            },
            shutdown,
        ));

        tokio::time::sleep(Duration::from_millis(400)).await;
        let healthy_pings = ping_count(&drain(&rx));
        assert!(
            (3..=12).contains(&healthy_pings),
            "{healthy_pings} pings in 400 ms at 50 ms"
        );

        healthy.store(false, Ordering::SeqCst);
        // A probe that read the flag just before the flip may still ping once.
        tokio::time::sleep(Duration::from_millis(60)).await;
        drain(&rx);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            ping_count(&drain(&rx)),
            0,
            "pings continued after the probe failed"
        );

        healthy.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            ping_count(&drain(&rx)) >= 2,
            "pings did not resume after recovery"
        );

        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hanging_probe_withholds_pings_and_shutdown_still_ends_the_loop() {
        let (_dir, rx, path) = bind_path();
        let notifier = Arc::new(Notifier::from_socket_path(&path));
        let (tx, shutdown) = watch::channel(false);
        let task = tokio::spawn(run_watchdog(
            notifier,
            Duration::from_millis(50),
            std::future::pending::<bool>,
            shutdown,
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(ping_count(&drain(&rx)), 0);
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_millis(500), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_probe_past_the_interval_withholds_the_ping() {
        let (_dir, rx, path) = bind_path();
        let notifier = Arc::new(Notifier::from_socket_path(&path));
        let (tx, shutdown) = watch::channel(false);
        let task = tokio::spawn(run_watchdog(
            notifier,
            Duration::from_millis(50),
            || async {
                tokio::time::sleep(Duration::from_millis(80)).await;
                true
            },
            shutdown,
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(ping_count(&drain(&rx)), 0);
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_millis(500), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn shutdown_ends_the_loop() {
        // Already shut down: returns without probing.
        let (_tx, shutdown) = watch::channel(true);
        let probed = Arc::new(AtomicBool::new(false));
        let flag = probed.clone();
        tokio::time::timeout(
            Duration::from_secs(1),
            run_watchdog(
                Arc::new(Notifier::disabled()),
                Duration::from_millis(50),
                move || {
                    flag.store(true, Ordering::SeqCst);
                    async { true }
                },
                shutdown,
            ),
        )
        .await
        .unwrap();
        assert!(!probed.load(Ordering::SeqCst));

        // Sender dropped: nobody can ever signal shutdown, so the loop ends too.
        let (tx, shutdown) = watch::channel(false);
        drop(tx);
        tokio::time::timeout(
            Duration::from_secs(1),
            run_watchdog(
                Arc::new(Notifier::disabled()),
                Duration::from_millis(50),
                || async { true },
                shutdown,
            ),
        )
        .await
        .unwrap();

        // Zero interval is clamped instead of panicking inside tokio.
        let (tx, shutdown) = watch::channel(false);
        let task = tokio::spawn(run_watchdog(
            Arc::new(Notifier::disabled()),
            Duration::ZERO,
            || async { true },
            shutdown,
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .unwrap()
            .unwrap();
    }
}
