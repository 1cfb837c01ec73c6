//! The push scenario of issue 17 (SPEC §9): opens `--sockets` Pusher sockets to vmsd, each
//! authorized through `/api/v1/broadcasting/auth` and subscribed to one user's channel,
//! measures the server's RSS per idle socket, then makes `--rounds` admin changes to that
//! user's permissions and, for each, the time from the admin's 200 to the frame reaching the
//! last socket.
//!
//! push --addr 127.0.0.1:8443 --fixture FILE --server-pid PID [--sockets 1000] [--rounds 50]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use vmsd_bench_tools::{client_config, percentile, process_memory_kib, summary, Args, BenchResult};

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

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> BenchResult<()> {
    let args = Args::from_env();
    let addr = args.required("addr")?.to_owned();
    let pid = args.required("server-pid")?.to_owned();
    let sockets: usize = args.parse_or("sockets", 1000)?;
    let rounds: usize = args.parse_or("rounds", 50)?;
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

    let rss_before = process_memory_kib(&pid, "VmRSS")?;
    // Each socket's task reports every event's arrival time.
    let (arrivals_tx, mut arrivals) = mpsc::unbounded_channel::<Instant>();
    let mut held = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        let stream = tls(&connector, &addr).await?;
        let (mut ws, _) =
            tokio_tungstenite::client_async("wss://localhost/pusher/app/key?protocol=7", stream)
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
        let tx = arrivals_tx.clone();
        held.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    if t.contains("permissions_updated") {
                        let _ = tx.send(Instant::now());
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = process_memory_kib(&pid, "VmRSS")?;
    let per_socket = (rss_after.saturating_sub(rss_before)) as f64 * 1024.0 / sockets as f64;
    println!("{sockets} sockets subscribed; RSS {rss_before} → {rss_after} KiB, {per_socket:.0} bytes per idle socket");
    summary("push.rss_per_idle_socket", per_socket / 1024.0, "KiB");

    let mut last_frame_us: Vec<u32> = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let permissions = if round % 2 == 0 { "[9]" } else { "[]" };
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
        let mut last = answered;
        for _ in 0..sockets {
            let at = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
                .await?
                .ok_or("sockets gone")?;
            last = last.max(at);
        }
        last_frame_us.push(last.duration_since(answered).as_micros() as u32);
    }
    last_frame_us.sort_unstable();
    let p50 = percentile(&last_frame_us, 0.5) as f64 / 1000.0;
    let p99 = percentile(&last_frame_us, 0.99) as f64 / 1000.0;
    println!("fan-out to {sockets} sockets over {rounds} admin changes: admin's 200 → last socket's frame p50 {p50:.2} ms, p99 {p99:.2} ms");
    summary("push.fanout_p50", p50, "ms");
    summary("push.fanout_p99", p99, "ms");
    for h in held {
        h.abort();
    }
    Ok(())
}
