//! The test harness: `TestServer` runs `vmsd::server::run` in-process on 127.0.0.1:0 with a
//! temporary data dir and small argon2 parameters, and a minimal HTTPS client that trusts the
//! server's generated certificate (so the TLS set-up itself is under test).

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
use vmsd::model::{now, Account, UserType, STATUS_ACTIVE};
use vmsd::shutdown::{self, ShutdownTrigger};
use vmsd::App;

pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub struct TestServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub dir: tempfile::TempDir,
    connector: TlsConnector,
    trigger: Option<ShutdownTrigger>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut cfg = Config::default();
    cfg.data_dir = dir.to_path_buf();
    cfg.listen = vec!["127.0.0.1:0".parse().unwrap()];
    cfg.argon2.memory_kib = 256;
    cfg.argon2.iterations = 1;
    cfg.log = "warn".into();
    cfg
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
        let (tls, _reloader) =
            vmsd::tls::server_config(&cfg.tls, &cfg.data_dir, &[addr.ip()]).unwrap();
        let app = App::open(cfg, Some(ADMIN_PASSWORD.to_owned())).unwrap();
        let (trigger, shutdown) = shutdown::channel();
        let task = tokio::spawn(vmsd::server::run(
            vec![listener],
            app.clone(),
            tls,
            shutdown,
        ));

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
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
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
            .header("host", "vms.local")
            .header("accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).unwrap();
        let resp = sender.send_request(req).await.unwrap();
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
        let account = self
            .app
            .store
            .transaction(|tx| {
                let account = Account {
                    id: tx.next_id("account")?,
                    user_type,
                    login: login.into(),
                    name: login.into(),
                    password_hash: hash.clone(),
                    language: "en".into(),
                    status: STATUS_ACTIVE,
                    data: None,
                    intro_reviewed: false,
                    can_update_password: true,
                    permissions: Default::default(),
                    parent_id: None,
                    cameras: Default::default(),
                    created_at: at,
                    updated_at: at,
                    last_login: None,
                    expired_at: None,
                    ptz_priority: None,
                    billing_info: None,
                };
                tx.put_account(&account, None, "login")?;
                Ok(account)
            })
            .unwrap();
        self.app.store.flush_blocking().unwrap();
        account
    }

    /// Changes a stored account directly (for states no endpoint of the test's area sets).
    pub fn edit_account(&self, id: u64, f: impl Fn(&mut Account)) {
        self.app
            .store
            .transaction(|tx| {
                let mut a = tx.account(id)?.unwrap();
                let key = vmsd::validate::login_key(&a.login);
                f(&mut a);
                tx.put_account(&a, Some(&key), "login")
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
