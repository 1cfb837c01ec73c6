//! The push scenario of issue 17 (SPEC §9): opens `--sockets` Pusher sockets to vmsd, each
//! authorized through `/api/v1/broadcasting/auth` and subscribed to one user's channel,
//! measures the server's RSS per idle socket, then makes `--rounds` admin changes to that
//! user's permissions and, for each, the time from the admin's 200 to the frame reaching the
//! last socket.
//!
//! ```text
//! push --addr 127.0.0.1:8443 --fixture FILE --server-pid PID [--sockets 1000] [--rounds 50]
//!      [--hold SECONDS]
//! ```
//! `--hold` keeps the sockets open that long after the measurement (to inspect the server's
//! `/proc/PID/smaps` by hand).
//!
//! One thread (a current-thread runtime): every socket's task and the admin's requests run on
//! the client's one core, and an arrival is recorded without waking another thread. The
//! client's CPU time per fan-out is printed next to the server's: when the client needs as
//! much CPU per change as the server, the figure is as much the client's as the server's
//! (`CLIENT-BOUND`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use vmsd_bench_tools::{
    client_config, percentile, process_cpu_us, process_memory_kib, summary, Args, BenchResult,
};

async fn tls(
    connector: &TlsConnector,
    addr: &str,
) -> BenchResult<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?)
}

/// One HTTP/1.1 request on a fresh connection; the status and body.
async fn request(
    connector: &TlsConnector,
    addr: &str,
    head: &str,
    body: &str,
) -> BenchResult<(u16, String)> {
    let mut s = tls(connector, addr).await?;
    let req = format!(
        "{head}\r\nhost: localhost\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The arrivals of one round's event, shared by every socket's task.
struct Arrivals {
    base: Instant,
    count: AtomicUsize,
    /// Nanoseconds after `base` of the latest arrival.
    last_ns: AtomicU64,
    all_in: Notify,
    expected: usize,
}

impl Arrivals {
    fn arrived(&self) {
        let ns = self.base.elapsed().as_nanos() as u64;
        self.last_ns.fetch_max(ns, Ordering::Relaxed);
        if self.count.fetch_add(1, Ordering::Relaxed) + 1 == self.expected {
            self.all_in.notify_one();
        }
    }

    fn reset(&self) {
        self.count.store(0, Ordering::Relaxed);
        self.last_ns.store(0, Ordering::Relaxed);
    }
}

/// The client's side of each socket. tungstenite zero-fills the free part of its read buffer
/// (128 KiB by default) before every read, so with the default each of the 1 000 frames of a
/// fan-out cost the client a 128 KiB memset: the client, not vmsd, was what the fan-out time
/// measured (bench/README.md, "The push scenario"). A browser or a phone reading its one
/// socket pays nothing like it; the frames here are a few hundred bytes.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096)
}

fn rss_kib(pid: &str) -> BenchResult<u64> {
    process_memory_kib(pid, "VmRSS")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> BenchResult<()> {
    let args = Args::from_env();
    let addr = args.required("addr")?.to_owned();
    let pid = args.required("server-pid")?.to_owned();
    let sockets: usize = args.parse_or("sockets", 1000)?;
    let rounds: usize = args.parse_or("rounds", 50)?;
    let hold = args.seconds_or("hold", 0.0)?;
    let fixture = std::fs::read_to_string(args.required("fixture")?)?;
    let admin = fixture
        .lines()
        .find_map(|l| l.strip_prefix("admin_token "))
        .ok_or("no admin_token in the fixture")?
        .to_owned();
    let (user_id, token) = fixture
        .lines()
        .find_map(|l| {
            let mut p = l.strip_prefix("user ")?.split(' ');
            Some((p.next()?.to_owned(), p.next()?.to_owned()))
        })
        .ok_or("no user in the fixture")?;
    let connector = TlsConnector::from(client_config()?);
    let channel = format!("private-user.{user_id}");

    let arrivals = Arc::new(Arrivals {
        base: Instant::now(),
        count: AtomicUsize::new(0),
        last_ns: AtomicU64::new(0),
        all_in: Notify::new(),
        expected: sockets,
    });
    let rss_before = rss_kib(&pid)?;
    // The RSS after a tenth of the sockets: the slope from there leaves out what the first
    // sockets set up once (the first TLS sessions, the hub's tables' first allocation).
    let tenth = (sockets / 10).max(1);
    let mut rss_tenth = rss_before;
    let mut held = Vec::with_capacity(sockets);
    for n in 0..sockets {
        if n == tenth {
            tokio::time::sleep(Duration::from_millis(500)).await;
            rss_tenth = rss_kib(&pid)?;
        }
        let stream = tls(&connector, &addr).await?;
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(
            "wss://localhost/pusher/app/key?protocol=7",
            stream,
            Some(socket_config()),
        )
        .await?;
        let hello = match ws.next().await {
            Some(Ok(Message::Text(t))) => t.to_string(),
            other => return Err(format!("no connection_established: {other:?}").into()),
        };
        let outer: serde_json::Value = serde_json::from_str(&hello)?;
        let inner: serde_json::Value =
            serde_json::from_str(outer["data"].as_str().unwrap_or("{}"))?;
        let socket_id = inner["socket_id"]
            .as_str()
            .ok_or("no socket_id")?
            .to_owned();
        // A Pusher client pings when it has heard nothing for `activity_timeout`; vmsd closes
        // a socket silent for twice that (4201), which a slow setup of 1 000 sockets reaches.
        let activity: u64 = inner["activity_timeout"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(30);
        let ping_every = Duration::from_secs((activity / 2).max(1));
        let (status, body) = request(
            &connector,
            &addr,
            &format!("POST /api/v1/broadcasting/auth HTTP/1.1\r\nauthorization: Bearer {token}"),
            &format!("socket_id={socket_id}&channel_name={channel}"),
        )
        .await?;
        if status != 200 {
            return Err(format!("auth answered {status}: {body}").into());
        }
        let auth: serde_json::Value = serde_json::from_str(&body)?;
        let subscribe = serde_json::json!({"event": "pusher:subscribe", "data": {"auth": auth["auth"], "channel": channel}});
        ws.send(Message::text(subscribe.to_string())).await?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("subscription_succeeded") => {}
            other => return Err(format!("subscribe failed: {other:?}").into()),
        }
        let arrivals = arrivals.clone();
        held.push(tokio::spawn(async move {
            let start = tokio::time::Instant::now() + ping_every;
            let mut ping = tokio::time::interval_at(start, ping_every);
            loop {
                tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            if t.contains("permissions_updated") {
                                arrivals.arrived();
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = ping.tick() => {
                        let ping = Message::text(r#"{"event":"pusher:ping","data":{}}"#);
                        if ws.send(ping).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(&pid)?;
    let per_socket = (rss_after.saturating_sub(rss_before)) as f64 / sockets as f64;
    let marginal = (rss_after.saturating_sub(rss_tenth)) as f64 / (sockets - tenth).max(1) as f64;
    println!(
        "{sockets} sockets subscribed; server RSS {rss_before} → {rss_tenth} ({tenth} sockets) → \
         {rss_after} KiB: {per_socket:.1} KiB per idle socket from none, {marginal:.1} KiB per \
         socket from {tenth} to {sockets}"
    );
    summary("push.rss_per_idle_socket", per_socket, "KiB");
    summary("push.rss_per_idle_socket_marginal", marginal, "KiB");

    // From a known state: a change to what the user already has publishes nothing. This
    // first change is not measured (it may or may not reach the sockets).
    let (status, body) = request(
        &connector,
        &addr,
        &format!("PUT /api/admin/v1/users/{user_id} HTTP/1.1\r\nauthorization: Bearer {admin}\r\ncontent-type: application/json"),
        "{\"permissions\":[]}",
    )
    .await?;
    if status != 200 {
        return Err(format!("admin change answered {status}: {body}").into());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut last_frame_us: Vec<u32> = Vec::with_capacity(rounds);
    let mut admin_us: Vec<u32> = Vec::with_capacity(rounds);
    let (server0, client0) = (process_cpu_us(&pid)?, process_cpu_us("self")?);
    let started = Instant::now();
    for round in 0..rounds {
        arrivals.reset();
        let permissions = if round % 2 == 0 { "[9]" } else { "[]" };
        let sent = Instant::now();
        let (status, body) = request(
            &connector,
            &addr,
            &format!("PUT /api/admin/v1/users/{user_id} HTTP/1.1\r\nauthorization: Bearer {admin}\r\ncontent-type: application/json"),
            &format!("{{\"permissions\":{permissions}}}"),
        )
        .await?;
        let answered = Instant::now();
        if status != 200 {
            return Err(format!("admin change answered {status}: {body}").into());
        }
        // Waits on the count, not on one notification: a permit left by an earlier change's
        // last frame (the warm-up's) would otherwise end this round at once.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while arrivals.count.load(Ordering::Relaxed) < arrivals.expected {
            if tokio::time::timeout_at(deadline, arrivals.all_in.notified())
                .await
                .is_err()
            {
                return Err(format!(
                    "round {round}: {} of {sockets} sockets got the event within 10 s",
                    arrivals.count.load(Ordering::Relaxed)
                )
                .into());
            }
        }
        let last = arrivals.base + Duration::from_nanos(arrivals.last_ns.load(Ordering::Relaxed));
        // Frames are queued before the 200 is written: a socket may have its frame first.
        last_frame_us.push(last.saturating_duration_since(answered).as_micros() as u32);
        admin_us.push(answered.duration_since(sent).as_micros() as u32);
    }
    let window = started.elapsed().as_secs_f64();
    let server_ms = process_cpu_us(&pid)?.saturating_sub(server0) as f64 / 1000.0 / rounds as f64;
    let client_ms = process_cpu_us("self")?.saturating_sub(client0) as f64 / 1000.0 / rounds as f64;
    last_frame_us.sort_unstable();
    admin_us.sort_unstable();
    let ms = |sorted: &[u32], q| percentile(sorted, q) as f64 / 1000.0;
    let (p50, p99) = (ms(&last_frame_us, 0.5), ms(&last_frame_us, 0.99));
    let per_round_ms = window * 1000.0 / rounds as f64;
    println!(
        "fan-out to {sockets} sockets over {rounds} admin changes: admin's 200 → last socket's \
         frame p50 {p50:.2} ms, p99 {p99:.2} ms; admin's request → 200 p50 {:.2} ms; CPU per \
         change (request, fan-out and 1 000 frames read): server {server_ms:.1} ms, client \
         {client_ms:.1} ms of {per_round_ms:.1} ms{}",
        ms(&admin_us, 0.5),
        // The client reads as many frames as the server writes: when it needs as much CPU
        // per change, the fan-out time is as much the client's as the server's.
        if client_ms >= 0.9 * server_ms {
            "  CLIENT-BOUND (the client needs as much CPU per change as the server)"
        } else {
            ""
        }
    );
    summary("push.fanout_p50", p50, "ms");
    summary("push.fanout_p99", p99, "ms");
    summary("push.admin_p50", ms(&admin_us, 0.5), "ms");
    summary("push.server_cpu_per_change", server_ms, "ms");
    summary("push.client_cpu_per_change", client_ms, "ms");
    if !hold.is_zero() {
        println!("holding the sockets for {} s", hold.as_secs_f64());
        tokio::time::sleep(hold).await;
    }
    for h in held {
        h.abort();
    }
    Ok(())
}
