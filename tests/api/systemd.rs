//! The daemon under systemd's protocols, without systemd: the real binary started with a
//! `NOTIFY_SOCKET` the test binds (READY, WATCHDOG and STOPPING arrive in order and on time),
//! and handed a listening socket by `systemd-socket-activate` (LISTEN_FDS), which it serves
//! instead of its configured addresses.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{connector_for, free_port, https};

const ADMIN_PASSWORD: &str = "systemd-test-admin-pw";

/// Kills the child on drop, so a failing assertion leaves no daemon behind.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A config with cheap argon2 parameters; `listen` as given.
fn write_config(dir: &Path, listen: &str) -> std::path::PathBuf {
    let path = dir.join("vmsd.toml");
    let text = format!(
        "listen = [\"{listen}\"]\ndata_dir = \"{}\"\nlog = \"warn\"\n[argon2]\nmemory_kib = 256\niterations = 1\n[media]\nhook_listen = \"127.0.0.1:0\"\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn recv(socket: &UnixDatagram) -> Option<String> {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_sends_ready_then_watchdog_pings_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &format!("127.0.0.1:{port}"));
    let notify_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&notify_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();

    let started = Instant::now();
    let mut daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_vmsd"))
            .args(["serve", "-c"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &notify_path)
            // 300 ms watchdog: pings every 150 ms.
            .env("WATCHDOG_USEC", "300000")
            .env_remove("WATCHDOG_PID")
            .env("VMSD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // READY=1 comes first, with a STATUS line, and only once the daemon serves.
    let first = recv(&socket).expect("no notification within 20 s");
    assert!(
        first.lines().any(|l| l == "READY=1"),
        "first datagram: {first:?}"
    );
    assert!(
        first.lines().any(|l| l.starts_with("STATUS=serving")),
        "{first:?}"
    );
    let connector = connector_for(&dir.path().join("data/tls/cert.pem"));
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let health = https(&connector, addr, "GET", "/healthz", &[], vec![]).await;
    assert_eq!(
        health.map(|r| r.status),
        Some(200),
        "READY=1 before serving"
    );
    println!("ready after {:?}", started.elapsed());

    // Watchdog pings at about half of WATCHDOG_USEC while healthy.
    let mut pings = Vec::new();
    socket
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    while pings.len() < 5 {
        let msg = recv(&socket).expect("watchdog pings stopped");
        assert_eq!(msg.trim(), "WATCHDOG=1", "unexpected datagram {msg:?}");
        pings.push(Instant::now());
    }
    for gap in pings.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            gap >= Duration::from_millis(100) && gap <= Duration::from_millis(400),
            "watchdog gap {gap:?} for a 150 ms interval"
        );
    }

    // SIGTERM: STOPPING=1, then a clean exit within the shutdown grace.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stopping = false;
    while Instant::now() < deadline {
        match recv(&socket) {
            Some(msg) if msg.lines().any(|l| l == "STOPPING=1") => {
                stopping = true;
                break;
            }
            Some(msg) => assert_eq!(msg.trim(), "WATCHDOG=1", "unexpected datagram {msg:?}"),
            None => break,
        }
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM");
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "daemon still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_activation_serves_the_inherited_listener() {
    let Ok(activate) = which("systemd-socket-activate") else {
        println!("skipped: systemd-socket-activate is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The configured address cannot be bound here (TEST-NET-1): serving at all proves the
    // daemon used the socket it was handed instead.
    let config = write_config(dir.path(), "192.0.2.1:443");
    // The certificate is generated up front so the client can trust it before the daemon,
    // which systemd-socket-activate starts on the first connection, exists.
    let mut tls = vmsd::config::Config::default().tls;
    tls.hostnames = vec!["localhost".into()];
    vmsd::tls::server_config(&tls, &dir.path().join("data"), &[]).unwrap();
    let connector = connector_for(&dir.path().join("data/tls/cert.pem"));

    let port = free_port();
    let _daemon = Daemon(
        Command::new(activate)
            .arg("-l")
            .arg(format!("127.0.0.1:{port}"))
            .args(["-E", &format!("VMSD_ADMIN_PASSWORD={ADMIN_PASSWORD}")])
            .arg(env!("CARGO_BIN_EXE_vmsd"))
            .args(["serve", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Some(r) = https(&connector, addr, "GET", "/healthz", &[], vec![]).await {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "no answer on the activated socket"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health.status, 200);
    assert_eq!(health.body, serde_json::json!({"status": "ok"}));
    let body =
        serde_json::to_vec(&serde_json::json!({"login": "admin", "password": ADMIN_PASSWORD}))
            .unwrap();
    let login = https(
        &connector,
        addr,
        "POST",
        "/api/admin/v1/auth/token",
        &[("content-type", "application/json")],
        body,
    )
    .await
    .unwrap();
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_eq!(login.body["token_type"], "Bearer");
}

/// SPEC §8: a socket handed over with `FileDescriptorName=hook` is the media hook's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_activation_hands_over_the_hook_socket_by_name() {
    let Ok(activate) = which("systemd-socket-activate") else {
        println!("skipped: systemd-socket-activate is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The config's hook_listen is 127.0.0.1:0: an answer on `hook_port` can only come from
    // the inherited socket (systemd-socket-activate holds it; nobody else accepts on it).
    let config = write_config(dir.path(), "192.0.2.1:443");
    let (api_port, hook_port) = (free_port(), free_port());
    let _daemon = Daemon(
        Command::new(activate)
            .arg("-l")
            .arg(format!("127.0.0.1:{api_port}"))
            .arg("-l")
            .arg(format!("127.0.0.1:{hook_port}"))
            .arg("--fdname=https:hook")
            .args(["-E", &format!("VMSD_ADMIN_PASSWORD={ADMIN_PASSWORD}")])
            .arg(env!("CARGO_BIN_EXE_vmsd"))
            .args(["serve", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let body = br#"{"action":"read","path":"cam1","token":"","query":""}"#;
    let request = format!(
        "POST /media/auth HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{}",
        body.len(),
        String::from_utf8_lossy(body)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Ok(mut tcp) = tokio::net::TcpStream::connect(("127.0.0.1", hook_port)).await {
            let answer = crate::common::http_exchange(&mut tcp, request.as_bytes()).await;
            if !answer.is_empty() {
                break answer;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no answer on the activated hook socket"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{answer}"
    );
    assert!(
        answer.ends_with(r#"{"message":"Unauthenticated."}"#),
        "{answer}"
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// SHA-256 of the certificate a TLS connection was shown.
fn peer_fingerprint(tls: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> Vec<u8> {
    let cert = &tls.get_ref().1.peer_certificates().unwrap()[0];
    ring::digest::digest(&ring::digest::SHA256, cert.as_ref())
        .as_ref()
        .to_vec()
}

async fn tls_connect(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    connector
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap()
}

async fn get_healthz(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
) -> u16 {
    let req = http::Request::get("/healthz")
        .header("host", "vms.local")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    sender.send_request(req).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &format!("127.0.0.1:{port}"));
    let notify_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&notify_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_vmsd"))
            .args(["serve", "-c"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("VMSD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ready = recv(&socket).expect("no READY=1");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");

    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let tls_dir = dir.path().join("data/tls");
    let old_connector = connector_for(&tls_dir.join("cert.pem"));
    let old_tls = tls_connect(&old_connector, addr).await;
    let old_fingerprint = peer_fingerprint(&old_tls);
    let (mut old_conn, driver) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(old_tls))
            .await
            .unwrap();
    tokio::spawn(driver);
    assert_eq!(get_healthz(&mut old_conn).await, 200);

    // Without configured PEM files a reload re-reads <data_dir>/tls/ and generates a new pair
    // when it is gone: the operator's way to rotate the self-signed certificate.
    std::fs::remove_file(tls_dir.join("cert.pem")).unwrap();
    std::fs::remove_file(tls_dir.join("key.pem")).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.0.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let mut messages = Vec::new();
    while !messages
        .iter()
        .any(|m: &String| m.lines().any(|l| l == "READY=1"))
    {
        messages.push(recv(&socket).expect("no READY=1 after the reload"));
    }
    assert!(
        messages[0].lines().any(|l| l == "RELOADING=1"),
        "RELOADING=1 first: {messages:?}"
    );

    let new_connector = connector_for(&tls_dir.join("cert.pem"));
    let new_tls = tls_connect(&new_connector, addr).await;
    assert_ne!(
        peer_fingerprint(&new_tls),
        old_fingerprint,
        "a new connection sees the new certificate"
    );
    // The connection opened before the reload is still served.
    assert_eq!(get_healthz(&mut old_conn).await, 200);
}
