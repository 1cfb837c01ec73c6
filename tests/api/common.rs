//! The test harness: `TestServer` runs the whole daemon (`vmsd::daemon::Daemon`: TLS, the
//! store, housekeeping, the server, the drain and final flush; signals aside) in-process on
//! 127.0.0.1:0 with a temporary data dir and small argon2 parameters, and a minimal HTTPS
//! client that trusts the server's generated certificate (so the TLS set-up itself is under
//! test).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use vmsd::config::Config;
use vmsd::daemon::Daemon;
use vmsd::model::{now, Account, NewAccount, UserType};
use vmsd::shutdown::{self, ShutdownTrigger};
use vmsd::store::LoginTaken;
use vmsd::App;

pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub struct TestServer {
    pub addr: SocketAddr,
    /// The media hook's plain-HTTP address, when enabled.
    pub hook_addr: Option<SocketAddr>,
    pub app: Arc<App>,
    pub dir: tempfile::TempDir,
    connector: TlsConnector,
    trigger: Option<ShutdownTrigger>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

/// A free local port: bound, then released for the process under test to take.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real clients' scripts and lockfiles (`tests/clients`).
pub fn clients_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Whether `var` is set to "1": a test whose real third-party part is not installed fails
/// unless its skip variable asks for skipping (`VMSD_SKIP_REAL_CLIENTS`, `VMSD_SKIP_CHROMIUM`).
pub fn skip_requested(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let defaults = Config::default();
    Config {
        data_dir: dir.to_path_buf(),
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        argon2: vmsd::config::Argon2Config {
            memory_kib: 256,
            iterations: 1,
            ..defaults.argon2.clone()
        },
        log: "warn".into(),
        media: vmsd::config::MediaConfig {
            // Port 0: parallel tests must not compete for 8181; `TestServer::hook_addr` says
            // where it landed.
            hook_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..defaults.media.clone()
        },
        ..defaults
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = test_config(dir.path());
        adjust(&mut cfg);
        Self::start_in(dir, cfg).await
    }

    /// Starts on an existing data dir (restart tests).
    pub async fn start_in(dir: tempfile::TempDir, cfg: Config) -> TestServer {
        let listener = tokio::net::TcpListener::bind(cfg.listen[0]).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let daemon = Daemon::open(cfg, vec![listener], Some(ADMIN_PASSWORD.to_owned())).unwrap();
        let app = daemon.app();
        let hook_addr = daemon.hook_addr();
        let (trigger, mut shutdown) = shutdown::channel();
        let stop = async move { shutdown.wait().await };
        let task = tokio::spawn(daemon.run(stop, Arc::new(tokio::sync::Notify::new())));

        let pem = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        TestServer {
            addr,
            hook_addr,
            app,
            dir,
            connector: TlsConnector::from(Arc::new(client)),
            trigger: Some(trigger),
            task: Some(task),
        }
    }

    /// Stops the server and waits for its drain; returns the data dir for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(t) = self.trigger.take() {
            t.trigger();
        }
        if let Some(task) = self.task.take() {
            // A timed-out drain is the drain tests' business; a daemon that failed is a bug.
            if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(20), task).await {
                panic!("the daemon stopped with an error: {e}");
            }
        }
        self.app.store.flush().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    /// A TLS connection to the server, verified against its certificate as `localhost`.
    pub async fn tls(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        self.connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }

    /// One request on a fresh connection, with any headers and a raw body.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let io = TokioIo::new(self.tls().await);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("accept", "application/json");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req = req.header("host", "vms.local");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).unwrap();
        Reply::of(sender.send_request(req).await.unwrap()).await
    }

    /// A JSON request with an optional bearer token.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        self.raw(method, path, &headers, bytes).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token), None).await
    }

    /// Logs in at `/api/v1/token` and returns the token; panics unless 200.
    pub async fn login(&self, login: &str, password: &str) -> String {
        let r = self
            .call(
                "POST",
                "/api/v1/token",
                None,
                Some(serde_json::json!({"login": login, "password": password})),
            )
            .await;
        assert_eq!(r.status, 200, "login {login}: {:?}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Logs in as the bootstrap admin at `/api/admin/v1/auth/token`.
    pub async fn admin_token(&self) -> String {
        let r = self
            .call(
                "POST",
                "/api/admin/v1/auth/token",
                None,
                Some(serde_json::json!({"login": "admin", "password": ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(r.status, 200, "admin login: {:?}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Puts an account straight into the store (for tests that need one before the admin API).
    pub fn create_account(&self, login: &str, password: &str, user_type: UserType) -> Account {
        let hash = self.app.hasher.hash_blocking(password).unwrap();
        let at = now();

        self.app
            .store
            .commit_blocking::<_, LoginTaken>(|tx| {
                let account = Account::new(
                    tx.next_id("account")?,
                    NewAccount {
                        user_type,
                        login: login.into(),
                        name: login.into(),
                        password_hash: hash.clone(),
                        language: "en".into(),
                    },
                    at,
                );
                tx.put_account(&account)?;
                Ok(account)
            })
            .unwrap()
    }

    /// Changes a stored account directly (for states no endpoint of the test's area sets).
    pub fn edit_account(&self, id: u64, f: impl Fn(&mut Account)) {
        self.app
            .store
            .commit_blocking::<_, LoginTaken>(|tx| {
                let mut a = tx.account(id)?.unwrap();
                f(&mut a);
                tx.put_account(&a)
            })
            .unwrap();
    }
}

/// Asserts a Laravel 422 with exactly these messages for `field`.
#[track_caller]
pub fn assert_field_error(reply: &Reply, field: &str, messages: &[&str]) {
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(reply.body["message"], "The given data was invalid.");
    let got: Vec<&str> = reply.body["errors"][field]
        .as_array()
        .unwrap_or_else(|| panic!("no errors.{field} in {:?}", reply.body))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(got, messages, "errors.{field}");
}

// ---------------------------------------------------------------------------------------------
// Helpers of the rule-by-rule modules (auth, current_user, errors, limits, cli).
// ---------------------------------------------------------------------------------------------

impl Reply {
    /// A response as the tests read it: status, headers, the raw body and its JSON.
    pub async fn of(resp: http::Response<hyper::body::Incoming>) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    /// A response header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestServer {
    /// `POST /api/v1/token` with extra headers (`X-UUID`, `X-Client`...); the whole reply, any status.
    pub async fn try_login(&self, login: &str, password: &str, headers: &[(&str, &str)]) -> Reply {
        let body = serde_json::json!({"login": login, "password": password});
        self.try_login_body(&body, headers).await
    }

    /// `POST /api/v1/token` with any JSON body (for `session_id`).
    pub async fn try_login_body(&self, body: &Value, headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.raw(
            "POST",
            "/api/v1/token",
            &all,
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// `POST /api/admin/v1/auth/token`; the whole reply, any status.
    pub async fn try_admin_login(&self, login: &str, password: &str) -> Reply {
        self.call(
            "POST",
            "/api/admin/v1/auth/token",
            None,
            Some(serde_json::json!({"login": login, "password": password})),
        )
        .await
    }

    /// The status `GET /api/v1/users/self` answers with `token`: 200 while it works, 401 after.
    pub async fn self_status(&self, token: &str) -> u16 {
        self.get("/api/v1/users/self", token).await.status
    }

    /// Stops the server and starts it again on the same data dir and configuration.
    pub async fn restart(self) -> TestServer {
        let cfg = self.app.config.clone();
        let dir = self.stop().await;
        Self::start_again(dir, cfg).await
    }

    /// `start_in` once the previous server's store has let go of `dir`: sled holds an
    /// exclusive lock on its files until the last handle of the old App is gone, which
    /// connection tasks may delay by a moment after the drain.
    pub async fn start_again(dir: tempfile::TempDir, cfg: Config) -> TestServer {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match vmsd::store::Store::open(dir.path(), 1 << 20) {
                Ok(store) => {
                    drop(store);
                    break;
                }
                Err(e) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the old store never closed: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        Self::start_in(dir, cfg).await
    }

    /// A TLS connection, or the error when the server refuses or drops it.
    pub async fn try_tls(&self) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        self.connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    }
}

/// Writes a raw HTTP/1.1 request on `stream` and reads until the server closes (send
/// `connection: close`), for at most 10 s; the answer as text.
pub async fn http_exchange<S>(stream: &mut S, request: &[u8]) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request).await.unwrap();
    stream.flush().await.unwrap();
    let mut out = Vec::new();
    // A close without TLS close_notify is an error here, after the answer was read.
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("no answer within 10 s");
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls `check` every 20 ms until it is true and returns how long that took; panics after
/// `limit`. For things that happen by themselves (a lockout lifting, a connection closing).
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The 200 JSON example of a seed page (`../shared/seeds/NNN_*.txt`): the first JSON object in
/// it. `None` when the seeds are not checked out next to the repository.
pub fn seed_json(number: &str) -> Option<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds");
    let path = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{number}_")))
        })?;
    let text = std::fs::read_to_string(path).ok()?;
    let start = text.find("\n{")? + 1;
    let value = serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<Value>()
        .next()?
        .ok()?;
    value.is_object().then_some(value)
}

/// Asserts that `got` has every key of `expected`, recursively, with the same JSON type
/// (integers stay integers). Array items are checked against the seed's first item, and an
/// array the seed shows with items must not be empty (else nothing would be compared).
/// `null` in the seed means "nullable": any type is accepted there.
#[track_caller]
pub fn assert_same_shape(expected: &Value, got: &Value, path: &str) {
    match (expected, got) {
        (Value::Null, _) => {}
        (Value::Object(e), Value::Object(g)) => {
            for (key, ev) in e {
                let gv = g
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key} is missing in {got}"));
                assert_same_shape(ev, gv, &format!("{path}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(g)) => {
            if let Some(first) = e.first() {
                assert!(!g.is_empty(), "{path}: empty, the seed shows items");
                for (i, item) in g.iter().enumerate() {
                    assert_same_shape(first, item, &format!("{path}[{i}]"));
                }
            }
        }
        (Value::Number(e), Value::Number(g)) => {
            let integer = |n: &serde_json::Number| n.is_u64() || n.is_i64();
            assert_eq!(integer(e), integer(g), "{path}: {g} vs the seed's {e}");
        }
        (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) => {}
        _ => panic!("{path}: the seed has {expected}, got {got}"),
    }
}

/// `len` lowercase hex characters.
pub fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `"Y-m-d H:i:s"` as a unix time, or None when `s` is not in that format.
pub fn parse_resource_time(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(s, format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// A TLS connector that trusts the certificate(s) in the PEM file `cert` (a daemon's
/// generated `<data_dir>/tls/cert.pem`).
pub fn connector_for(cert: &std::path::Path) -> TlsConnector {
    let pem = std::fs::read(cert).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(client))
}

/// One HTTPS request to `addr` on a fresh connection; `None` when the connection fails (a
/// daemon that is not up yet, or gone).
pub async fn https(
    connector: &TlsConnector,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Option<Reply> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .ok()?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .header("host", "vms.local")
        .header("accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.into_body().collect().await.ok()?.to_bytes();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Some(Reply {
        status,
        headers,
        body,
        raw,
    })
}

// ---------------------------------------------------------------------------------------------
// The media hook (SPEC §8): plain HTTP on the loopback listener.
// ---------------------------------------------------------------------------------------------

impl TestServer {
    /// One request to the media hook on a fresh plain-HTTP connection.
    pub async fn hook(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let addr = self.hook_addr.expect("the media hook is enabled");
        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path_and_query)
            .header("host", addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = sender
            .send_request(req.body(Full::new(body.into())).unwrap())
            .await
            .unwrap();
        Reply::of(resp).await
    }

    /// `POST /media/auth` with a MediaMTX-shaped JSON body.
    pub async fn hook_post(&self, body: &Value) -> Reply {
        self.hook(
            "POST",
            "/media/auth",
            &[("content-type", "application/json")],
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }
}
