//! The load client: N TLS keep-alive connections, closed loop (each sends its next request when
//! the previous answer is in), a warm-up whose requests are not counted, then a fixed window in
//! which it counts completed requests, their latencies, and the server's CPU time. Single
//! threaded and hand-rolled (HTTP/1.1 and WebSocket framing written out, no client library), so
//! that one core of client can saturate one core of server; it reports its own CPU share so a
//! client-bound figure is visible as such.
//!
//! ```text
//! load --addr 127.0.0.1:8443 --scenario get-self --fixture FILE --server-pid PID
//!      [--conns 32] [--warmup 1] [--duration 5] [--label NAME] [--hook-addr 127.0.0.1:8181]
//!      [--rate N]
//! ```
//! `--rate N` paces the connections to N requests/s in all (each sends on its own schedule,
//! a request late when the previous answer is late), so a latency can be measured at a given
//! load instead of at saturation, where 32 closed-loop connections measure mostly queueing.
//! For the plain-HTTP `hook` scenario the pacing is precise (`paced`: per-connection
//! schedules spread evenly, sent from a `ppoll` loop with microsecond timeouts, latency from
//! the intended send time); for the TLS scenarios it uses tokio's 1 ms timer and measures from
//! the actual send.
//! Scenarios: `baseline` (GET /), `get-self`, `put-self`, `attach`, `login`, `ws`, and `hook`:
//! MediaMTX's `POST /media/auth` in plain HTTP on `--hook-addr`, each connection with the
//! stream token and path its user got from `GET /api/v1/cameras/{id}/streams` (over TLS on
//! `--addr`) before the measurement.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use vmsd_bench_tools::{
    client_config, paced, percentile, process_cpu_us, response_head, summary, Args, BenchResult,
};

/// What the seeder left for the client: tokens, logins, the temporary users to attach to.
#[derive(Default)]
struct Fixture {
    admin_token: String,
    /// (user id, bearer token) of regular users, one per connection.
    users: Vec<(u64, String)>,
    /// (login, password) of accounts that nobody else uses, one per connection.
    logins: Vec<(String, String)>,
    /// (temporary user id, the 500 camera ids it toggles), one per connection.
    specials: Vec<(u64, Vec<u64>)>,
}

fn read_fixture(path: &str) -> BenchResult<Fixture> {
    let text = std::fs::read_to_string(path)?;
    let mut f = Fixture::default();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["admin_token", token] => f.admin_token = (*token).to_owned(),
            ["user", id, token] => f.users.push((id.parse()?, (*token).to_owned())),
            ["login", login, password] => {
                f.logins.push(((*login).to_owned(), (*password).to_owned()))
            }
            ["special", id, cameras] => {
                let ids = cameras
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<Vec<u64>, _>>()?;
                f.specials.push((id.parse()?, ids));
            }
            [] => {}
            _ => return Err(format!("fixture: unknown line {line:?}").into()),
        }
    }
    Ok(f)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Baseline,
    GetSelf,
    PutSelf,
    Attach,
    Login,
    WebSocket,
    Hook,
}

impl Scenario {
    fn parse(name: &str) -> BenchResult<Scenario> {
        Ok(match name {
            "baseline" => Scenario::Baseline,
            "get-self" => Scenario::GetSelf,
            "put-self" => Scenario::PutSelf,
            "attach" => Scenario::Attach,
            "login" => Scenario::Login,
            "ws" => Scenario::WebSocket,
            "hook" => Scenario::Hook,
            other => return Err(format!("unknown scenario {other:?}").into()),
        })
    }
}

fn http_request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut r =
        format!("{method} {path} HTTP/1.1\r\nHost: vms.local\r\nAccept: application/json\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

/// The requests one connection cycles through (two for the toggling writes).
fn requests_for(scenario: Scenario, f: &Fixture, conn: usize) -> BenchResult<Vec<Vec<u8>>> {
    let user = || {
        f.users
            .get(conn)
            .ok_or_else(|| format!("fixture has no user for connection {conn}"))
    };
    Ok(match scenario {
        Scenario::Baseline => vec![http_request("GET", "/", &[], "")],
        Scenario::GetSelf => {
            let auth = format!("Bearer {}", user()?.1);
            vec![http_request(
                "GET",
                "/api/v1/users/self",
                &[("Authorization", &auth)],
                "",
            )]
        }
        Scenario::PutSelf => {
            let auth = format!("Bearer {}", user()?.1);
            // Seeded accounts speak "en": every request is a real change, so every one writes.
            ["ru", "en"]
                .iter()
                .map(|lang| {
                    http_request(
                        "PUT",
                        "/api/v1/users/self",
                        &[("Authorization", &auth)],
                        &format!("{{\"language\":\"{lang}\"}}"),
                    )
                })
                .collect()
        }
        Scenario::Attach => {
            let (id, cameras) = f
                .specials
                .get(conn)
                .ok_or_else(|| format!("fixture has no temporary user for connection {conn}"))?;
            let auth = format!("Bearer {}", f.admin_token);
            let list = cameras
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let path = format!("/api/admin/v1/special-users/{id}");
            ["cameras_to_attach", "cameras_to_detach"]
                .iter()
                .map(|field| {
                    http_request(
                        "PUT",
                        &path,
                        &[("Authorization", &auth)],
                        &format!("{{\"{field}\":[{list}]}}"),
                    )
                })
                .collect()
        }
        Scenario::Login => {
            let (login, password) = f
                .logins
                .get(conn)
                .ok_or_else(|| format!("fixture has no login for connection {conn}"))?;
            // One device per connection: each login replaces that device's previous session,
            // so sessions_limit is never reached.
            let device = format!("bench-device-{conn}");
            vec![http_request(
                "POST",
                "/api/v1/token",
                &[("X-UUID", &device)],
                &format!("{{\"login\":\"{login}\",\"password\":\"{password}\"}}"),
            )]
        }
        // Prepared in `run` (it needs a stream URL from the server first).
        Scenario::Hook => Vec::new(),
        Scenario::WebSocket => ["true", "false"]
            .iter()
            .enumerate()
            .map(|(i, flag)| {
                format!(
                    "{{\"action\":\"user/updateCurrent\",\"requestId\":{i},\"user\":{{\"introReviewed\":{flag}}}}}"
                )
                .into_bytes()
            })
            .collect(),
    })
}

/// A TLS stream to the API, or a plain TCP one to the media hook.
trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// One connection with a read buffer; bytes past one answer stay for the next.
struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    mask: u32,
}

impl Conn {
    async fn open(addr: &str, tls: &TlsConnector) -> BenchResult<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from("vms.local")?;
        let io = tls.connect(name, tcp).await?;
        Ok(Conn::new(Box::new(io)))
    }

    /// Plain HTTP (the media hook's listener).
    async fn open_plain(addr: &str) -> BenchResult<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(Conn::new(Box::new(tcp)))
    }

    fn new(io: Box<dyn Io>) -> Conn {
        Conn {
            io,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            mask: 0x9E37_79B9,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads until at least `n` bytes are buffered.
    async fn fill(&mut self, n: usize) -> BenchResult<()> {
        while self.end - self.start < n {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
            let read = self.io.read(&mut self.buf[self.end..]).await?;
            if read == 0 {
                return Err("server closed the connection".into());
            }
            self.end += read;
        }
        Ok(())
    }

    async fn send(&mut self, bytes: &[u8]) -> BenchResult<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Reads one HTTP/1.1 response; returns its status and body.
    async fn response(&mut self) -> BenchResult<(u16, Vec<u8>)> {
        let header_end = loop {
            if let Some(i) = find(self.buffered(), b"\r\n\r\n") {
                break i + 4;
            }
            let have = self.end - self.start;
            self.fill(have + 1).await?;
        };
        let (status, length) = response_head(std::str::from_utf8(&self.buffered()[..header_end])?)
            .ok_or("no status line")?;
        self.fill(header_end + length).await?;
        let body = self.buffered()[header_end..header_end + length].to_vec();
        self.start += header_end + length;
        Ok((status, body))
    }

    /// A masked client text frame (RFC 6455 §5.3: clients mask every frame).
    async fn send_ws_text(&mut self, payload: &[u8]) -> BenchResult<()> {
        self.send_ws(0x1, payload).await
    }

    async fn send_ws(&mut self, opcode: u8, payload: &[u8]) -> BenchResult<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        // xorshift: a mask that changes per frame, as the RFC asks.
        self.mask ^= self.mask << 13;
        self.mask ^= self.mask >> 17;
        self.mask ^= self.mask << 5;
        let key = self.mask.to_be_bytes();
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        self.send(&frame).await
    }

    /// The next text frame from the server; pings are answered on the way.
    async fn ws_text(&mut self) -> BenchResult<Vec<u8>> {
        loop {
            self.fill(2).await?;
            let b = self.buffered();
            let opcode = b[0] & 0x0F;
            let (len, header) = match b[1] & 0x7F {
                126 => {
                    self.fill(4).await?;
                    let b = self.buffered();
                    (u16::from_be_bytes([b[2], b[3]]) as usize, 4)
                }
                127 => {
                    self.fill(10).await?;
                    let b = self.buffered();
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&b[2..10]);
                    (u64::from_be_bytes(n) as usize, 10)
                }
                n => (n as usize, 2),
            };
            self.fill(header + len).await?;
            let payload = self.buffered()[header..header + len].to_vec();
            self.start += header + len;
            match opcode {
                0x1 => return Ok(payload),
                0x9 => self.send_ws(0xA, &payload).await?,
                0x8 => return Err("server closed the WebSocket".into()),
                _ => {}
            }
        }
    }
}

/// The MediaMTX ≥ 1.19 request of a player reading `path` with `token` (HLS: the token
/// only in `query`), as MediaMTX posts it to `authHTTPAddress`.
async fn hook_request(api: &mut Conn, user_token: &str) -> BenchResult<Vec<u8>> {
    let auth = format!("Bearer {user_token}");
    let get = |path: &str| http_request("GET", path, &[("Authorization", &auth)], "");
    api.send(&get("/api/v1/cameras/flat-tree?per_page=1"))
        .await?;
    let (status, tree) = api.response().await?;
    let tree = String::from_utf8(tree)?;
    let camera: u64 = tree
        .split_once("\"id\":")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| format!("flat-tree answered {status} without a camera: {tree:.200}"))?;
    api.send(&get(&format!(
        "/api/v1/cameras/{camera}/streams?source=rtsp"
    )))
    .await?;
    let (status, streams) = api.response().await?;
    let streams = String::from_utf8(streams)?;
    // {"url":"rtsp://host:8554/<path>?token=<token>",...}
    let url = streams
        .split_once("\"url\":\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .ok_or_else(|| format!("streams answered {status}: {streams:.200}"))?;
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (_, path_and_query) = after_scheme
        .split_once('/')
        .ok_or_else(|| format!("stream URL without a path: {url}"))?;
    let (path, token) = path_and_query
        .split_once("?token=")
        .ok_or_else(|| format!("stream URL without a token: {url}"))?;
    let body = format!(
        "{{\"ip\":\"192.168.1.20\",\"user\":\"\",\"password\":\"\",\"token\":\"\",\"action\":\"read\",\
         \"path\":\"{path}\",\"protocol\":\"hls\",\"id\":\"3f2b8c1e-7a4d-4f0e-9b6a-2d1c5e8f9a70\",\
         \"query\":\"token={token}\",\"userAgent\":\"Mozilla/5.0 (bench)\"}}"
    );
    Ok(http_request("POST", "/media/auth", &[], &body))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What one connection measured inside the window.
#[derive(Default)]
struct Counts {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl Counts {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

struct Window {
    warm_end: Instant,
    end: Instant,
}

impl Window {
    fn record(&self, counts: &mut Counts, started: Instant, done: Instant) {
        if done >= self.warm_end && done < self.end {
            let us = done.duration_since(started).as_micros();
            counts
                .latencies_us
                .push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
}

async fn ws_prepare(conn: &mut Conn, token: &str) -> BenchResult<()> {
    let upgrade = "GET /websocket HTTP/1.1\r\nHost: vms.local\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    conn.send(upgrade.as_bytes()).await?;
    let (status, _) = conn.response().await?;
    if status != 101 {
        return Err(format!("WebSocket upgrade answered {status}").into());
    }
    let auth =
        format!("{{\"action\":\"authenticate\",\"requestId\":\"auth\",\"token\":\"{token}\"}}");
    conn.send_ws_text(auth.as_bytes()).await?;
    let reply = conn.ws_text().await?;
    if find(&reply, b"\"success\"").is_none() {
        return Err(format!(
            "WebSocket authenticate failed: {}",
            String::from_utf8_lossy(&reply)
        )
        .into());
    }
    Ok(())
}

async fn run_connection(
    mut conn: Conn,
    scenario: Scenario,
    requests: Vec<Vec<u8>>,
    window: Rc<Window>,
    counts: Rc<RefCell<Counts>>,
    pace: Option<(std::time::Duration, std::time::Duration)>,
) {
    let mut i = 0;
    // (interval, offset): connections start spread over one interval.
    let mut next = pace.map(|(_, offset)| Instant::now() + offset);
    while Instant::now() < window.end {
        if let (Some(at), Some((interval, _))) = (next.as_mut(), pace) {
            tokio::time::sleep_until((*at).into()).await;
            *at += interval;
        }
        let request = &requests[i % requests.len()];
        i += 1;
        let started = Instant::now();
        let outcome = if scenario == Scenario::WebSocket {
            match conn.send_ws_text(request).await {
                Ok(()) => conn.ws_text().await.map(|reply| {
                    let ok = find(&reply, b"\"success\"").is_some();
                    (if ok { 200 } else { 0 }, reply)
                }),
                Err(e) => Err(e),
            }
        } else {
            match conn.send(request).await {
                Ok(()) => conn.response().await,
                Err(e) => Err(e),
            }
        };
        let done = Instant::now();
        match outcome {
            Ok((200, _)) => window.record(&mut counts.borrow_mut(), started, done),
            Ok((status, body)) => {
                let snippet: String = String::from_utf8_lossy(&body).chars().take(200).collect();
                counts
                    .borrow_mut()
                    .error(format!("status {status}: {snippet}"));
            }
            Err(e) => {
                counts.borrow_mut().error(format!("connection failed: {e}"));
                return;
            }
        }
    }
}

fn own_cpu_us() -> u64 {
    process_cpu_us("self").unwrap_or(0)
}

fn main() -> BenchResult<()> {
    let args = Args::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(args))
}

async fn run(args: Args) -> BenchResult<()> {
    let addr = args.required("addr")?.to_owned();
    let scenario = Scenario::parse(args.required("scenario")?)?;
    let label = args.get("label").unwrap_or("load").to_owned();
    let conns: usize = args.parse_or("conns", 32)?;
    let warmup = args.seconds_or("warmup", 1.0)?;
    let duration = args.seconds_or("duration", 5.0)?;
    let server_pid = args.required("server-pid")?.to_owned();
    let rate: f64 = args.parse_or("rate", 0.0)?;
    let fixture = match args.get("fixture") {
        Some(path) => read_fixture(path)?,
        None if scenario == Scenario::Baseline => Fixture::default(),
        None => return Err("--fixture is required for this scenario".into()),
    };

    let tls = TlsConnector::from(client_config()?);
    let mut prepared = Vec::with_capacity(conns);
    if scenario == Scenario::Hook {
        let hook_addr = args.required("hook-addr")?.to_owned();
        let mut api = Conn::open(&addr, &tls).await?;
        let mut requests = Vec::with_capacity(conns);
        for c in 0..conns {
            let token = &fixture
                .users
                .get(c)
                .ok_or_else(|| format!("fixture has no user for connection {c}"))?
                .1;
            requests.push(hook_request(&mut api, token).await?);
        }
        if rate > 0.0 {
            let report = paced::run(&paced::Plan {
                addr: hook_addr,
                requests,
                rate,
                warmup,
                duration,
                server_pid,
            })?;
            report.print(&label, conns);
            return Ok(());
        }
        for request in requests {
            prepared.push((Conn::open_plain(&hook_addr).await?, vec![request]));
        }
    }
    for c in 0..conns {
        if scenario == Scenario::Hook {
            break;
        }
        let mut conn = Conn::open(&addr, &tls).await?;
        if scenario == Scenario::WebSocket {
            let token = &fixture
                .users
                .get(c)
                .ok_or_else(|| format!("fixture has no user for connection {c}"))?
                .1;
            ws_prepare(&mut conn, token).await?;
        }
        prepared.push((conn, requests_for(scenario, &fixture, c)?));
    }

    let begin = Instant::now();
    let window = Rc::new(Window {
        warm_end: begin + warmup,
        end: begin + warmup + duration,
    });
    let mut tasks = Vec::new();
    let mut all_counts = Vec::new();
    let interval = (rate > 0.0).then(|| std::time::Duration::from_secs_f64(conns as f64 / rate));
    for (c, (conn, requests)) in prepared.into_iter().enumerate() {
        let pace = interval.map(|i| (i, i.mul_f64(c as f64 / conns as f64)));
        let counts = Rc::new(RefCell::new(Counts::default()));
        all_counts.push(counts.clone());
        tasks.push(tokio::task::spawn_local(run_connection(
            conn,
            scenario,
            requests,
            window.clone(),
            counts,
            pace,
        )));
    }

    tokio::time::sleep_until(window.warm_end.into()).await;
    let (server0, client0, t0) = (process_cpu_us(&server_pid)?, own_cpu_us(), Instant::now());
    tokio::time::sleep_until(window.end.into()).await;
    let (server1, client1, t1) = (process_cpu_us(&server_pid)?, own_cpu_us(), Instant::now());
    for task in tasks {
        task.await?;
    }

    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for counts in all_counts {
        let mut c = counts.borrow_mut();
        latencies.append(&mut c.latencies_us);
        errors += c.errors;
        if first_error.is_none() {
            first_error = c.first_error.take();
        }
    }
    latencies.sort_unstable();
    let n = latencies.len() as f64;
    let seconds = t1.duration_since(t0).as_secs_f64();
    let rps = n / seconds;
    let p50 = f64::from(percentile(&latencies, 0.50)) / 1000.0;
    let p99 = f64::from(percentile(&latencies, 0.99)) / 1000.0;
    let server_us = server1.saturating_sub(server0) as f64;
    let cpu_per_req = if n > 0.0 { server_us / n } else { 0.0 };
    let server_busy = server_us / (seconds * 1e6);
    let client_busy = client1.saturating_sub(client0) as f64 / (seconds * 1e6);
    println!(
        "{label:<14} {rps:>9.1} req/s  p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  server CPU {cpu_per_req:>8.1} µs/req \
         (core {:.0}% busy)  client core {:.0}% busy  n={n}  conns={conns}{}",
        server_busy * 100.0,
        client_busy * 100.0,
        if client_busy > 0.9 { "  CLIENT-BOUND" } else { "" }
    );
    if errors > 0 {
        println!(
            "{label:<14} {errors} errors; first: {}",
            first_error.unwrap_or_default()
        );
    }
    summary(&format!("{label}.rps"), rps, "req/s");
    summary(&format!("{label}.p50"), p50, "ms");
    summary(&format!("{label}.p99"), p99, "ms");
    summary(&format!("{label}.cpu_per_req"), cpu_per_req, "us");
    summary(&format!("{label}.server_busy"), server_busy, "fraction");
    summary(&format!("{label}.client_busy"), client_busy, "fraction");
    summary(&format!("{label}.errors"), errors as f64, "count");
    Ok(())
}
