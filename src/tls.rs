//! TLS for vmsd: the rustls `ServerConfig` (ring provider, TLS 1.2 + 1.3, ALPN `http/1.1`), loading
//! the configured PEM pair, generating and reusing the self-signed certificate in
//! `<data_dir>/tls/`, and swapping the certificate on SIGHUP without dropping connections.

use std::fmt;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;
use crate::files;

/// The generated certificate lives this long. Clients of a self-signed appliance pin its
/// fingerprint, so a certificate that silently expired (and was replaced by a new fingerprint)
/// would break them; 10 years outlives the hardware. The 825-day cap of some platforms applies
/// to CA-issued certificates, which an operator configures through `tls.cert`/`tls.key`.
const GENERATED_VALIDITY_DAYS: i64 = 3650;

/// Why TLS could not be set up; every variant names the file or directory involved.
#[derive(Debug)]
pub enum TlsError {
    /// Reading, writing or creating `path` failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// `path` was read but its content is unusable (no PEM block, bad PEM, unsupported key...).
    Invalid { path: PathBuf, problem: String },
    /// The private key in `key` is not the key of the certificate in `cert`.
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// rcgen could not build the self-signed certificate meant for `dir`.
    Generate { dir: PathBuf, problem: String },
    /// rustls rejected the server configuration (no file involved).
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            TlsError::Invalid { path, problem } => write!(f, "{}: {problem}", path.display()),
            TlsError::KeyMismatch { cert, key } => write!(
                f,
                "{}: private key does not match the certificate in {}",
                key.display(),
                cert.display()
            ),
            TlsError::Generate { dir, problem } => write!(
                f,
                "cannot generate a self-signed certificate in {}: {problem}",
                dir.display()
            ),
            TlsError::Rustls(e) => write!(f, "TLS server configuration rejected: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Io { source, .. } => Some(source),
            TlsError::Rustls(e) => Some(e),
            _ => None,
        }
    }
}

/// Where the certificate comes from; `reload` goes back to the same place.
#[derive(Debug)]
enum Source {
    Configured {
        cert: PathBuf,
        key: PathBuf,
    },
    /// `<data_dir>/tls/`; regenerated when either file is missing (an operator deletes them to
    /// get a new certificate, e.g. after changing `tls.hostnames`).
    Generated {
        dir: PathBuf,
        subject_alt_names: Vec<String>,
    },
}

struct Current {
    key: Arc<CertifiedKey>,
    fingerprint: String,
}

/// The certificate resolver given to rustls. Each handshake takes the current certificate, so a
/// `reload` applies to new connections while established ones keep the one they started with.
pub struct CertReloader {
    source: Source,
    provider: Arc<CryptoProvider>,
    current: RwLock<Current>,
}

impl fmt::Debug for CertReloader {
    // Hand-written so the signing key never reaches a log line, whatever its own Debug prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertReloader")
            .field("source", &self.source)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.read().key.clone())
    }
}

impl CertReloader {
    /// Re-reads the certificate and key (generating them again if the generated files are gone)
    /// and makes them the certificate of new connections. On error the current one stays.
    /// Returns the new SHA-256 fingerprint. Blocking file I/O, a few milliseconds.
    pub fn reload(&self) -> Result<String, TlsError> {
        let (key, fingerprint) = obtain(&self.source, &self.provider)?;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = Current {
            key,
            fingerprint: fingerprint.clone(),
        };
        Ok(fingerprint)
    }

    /// SHA-256 of the current end-entity certificate, lowercase hex with ':' (as openssl prints).
    pub fn fingerprint(&self) -> String {
        self.read().fingerprint.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        // A panic while holding the lock cannot leave a half-written `Current` (it is replaced
        // whole), so a poisoned lock is still safe to use.
        self.current.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds the server configuration and the reloader behind it. `listen_ips` go into a generated
/// certificate's SANs (unspecified addresses are skipped; 127.0.0.1 is always added).
pub fn server_config(
    cfg: &TlsConfig,
    data_dir: &Path,
    listen_ips: &[IpAddr],
) -> Result<(Arc<rustls::ServerConfig>, Arc<CertReloader>), TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let source = match (&cfg.cert, &cfg.key) {
        (Some(cert), Some(key)) => Source::Configured {
            cert: cert.clone(),
            key: key.clone(),
        },
        // config::parse_str rejects one without the other; a hand-built TlsConfig that does
        // it gets the self-signed certificate rather than half of a configured pair.
        _ => Source::Generated {
            dir: data_dir.join("tls"),
            subject_alt_names: subject_alt_names(&cfg.hostnames, listen_ips),
        },
    };
    let (key, fingerprint) = obtain(&source, &provider)?;
    let reloader = Arc::new(CertReloader {
        source,
        provider: provider.clone(),
        current: RwLock::new(Current { key, fingerprint }),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_cert_resolver(reloader.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), reloader))
}

fn subject_alt_names(hostnames: &[String], listen_ips: &[IpAddr]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let ips = listen_ips
        .iter()
        .filter(|ip| !ip.is_unspecified())
        .copied()
        .chain([IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    for name in hostnames
        .iter()
        .cloned()
        .chain(ips.map(|ip| ip.to_string()))
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Loads (or first generates) the certificate of `source` and logs its fingerprint.
fn obtain(
    source: &Source,
    provider: &CryptoProvider,
) -> Result<(Arc<CertifiedKey>, String), TlsError> {
    let (cert_path, key_path, generated) = match source {
        Source::Configured { cert, key } => (cert.clone(), key.clone(), false),
        Source::Generated {
            dir,
            subject_alt_names,
        } => {
            let cert = dir.join("cert.pem");
            let key = dir.join("key.pem");
            let generated = !(cert.exists() && key.exists());
            if generated {
                generate(dir, &cert, &key, subject_alt_names)?;
            }
            (cert, key, generated)
        }
    };
    let certified = load_pair(&cert_path, &key_path, provider)?;
    let fingerprint = certified
        .cert
        .first()
        .map(|der| fingerprint(der))
        .unwrap_or_default();
    let path = cert_path.display();
    if generated {
        tracing::info!(fingerprint = %fingerprint, path = %path, "TLS certificate generated (self-signed)");
    } else {
        tracing::info!(fingerprint = %fingerprint, path = %path, "TLS certificate loaded");
    }
    Ok((Arc::new(certified), fingerprint))
}

/// SHA-256 of a certificate's DER, lowercase hex bytes joined by ':'.
fn fingerprint(der: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, problem: impl Into<String>) -> TlsError {
    TlsError::Invalid {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert_path)?;
    if cert_pem.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(cert_path, "file is empty"));
    }
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert_path, format!("invalid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(
            cert_path,
            "no \"BEGIN CERTIFICATE\" PEM block found",
        ));
    }

    let key_pem = read(key_path)?;
    if key_pem.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(key_path, "file is empty"));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid(
            key_path,
            "no private key PEM block found (expected PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\")",
        ),
        other => invalid(key_path, format!("invalid PEM: {other}")),
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| invalid(key_path, format!("unusable private key: {e}")))?;

    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // Unknown: the key type cannot report its public key; the handshake will tell.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(TlsError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            })
        }
        Err(e) => {
            return Err(invalid(
                cert_path,
                format!("first certificate is not a valid X.509 certificate: {e}"),
            ))
        }
    }
    warn_if_world_readable(key_path);
    Ok(certified)
}

fn warn_if_world_readable(key_path: &Path) {
    if let Ok(meta) = fs::metadata(key_path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o004 != 0 {
            tracing::warn!(
                path = %key_path.display(),
                mode = %format!("{mode:o}"),
                "TLS private key is readable by every local user"
            );
        }
    }
}

/// Writes a new ECDSA P-256 self-signed certificate and key into `dir`.
///
/// Both files are written beside their final names and renamed into place key first, after
/// any lone old file is removed. A crash at any point leaves either no pair (generated again
/// at the next start) or a matching pair, never a new key beside an old certificate.
fn generate(
    dir: &Path,
    cert_path: &Path,
    key_path: &Path,
    subject_alt_names: &[String],
) -> Result<(), TlsError> {
    let gen_err = |e: rcgen::Error| TlsError::Generate {
        dir: dir.to_owned(),
        problem: e.to_string(),
    };
    files::create_private_dir(dir).map_err(|source| TlsError::Io {
        action: "create directory",
        path: dir.to_owned(),
        source,
    })?;

    let mut params = rcgen::CertificateParams::new(subject_alt_names.to_vec()).map_err(gen_err)?;
    let mut dn = rcgen::DistinguishedName::new();
    if let Some(first) = subject_alt_names.first() {
        dn.push(rcgen::DnType::CommonName, first.as_str());
    }
    dn.push(rcgen::DnType::OrganizationName, "vmsd self-signed");
    params.distinguished_name = dn;
    // A day of slack for appliances whose clock is behind the client's.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(GENERATED_VALIDITY_DAYS);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let cert = params.self_signed(&key_pair).map_err(gen_err)?;

    let key_tmp = dir.join("key.pem.new");
    let cert_tmp = dir.join("cert.pem.new");
    write_new(&key_tmp, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_new(&cert_tmp, cert.pem().as_bytes(), 0o644)?;
    remove_if_present(cert_path)?;
    remove_if_present(key_path)?;
    rename(&key_tmp, key_path)?;
    rename(&cert_tmp, cert_path)?;
    // The renames are only durable once the directory entry is.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| TlsError::Io {
            action: "sync directory",
            path: dir.to_owned(),
            source,
        })
}

/// Writes `path` afresh with `mode` from the start (a private key is never readable by
/// others, not even between create and chmod), flushed to disk.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    files::write_with_mode(path, contents, mode).map_err(|source| TlsError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    })
}

fn remove_if_present(path: &Path) -> Result<(), TlsError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(TlsError::Io {
            action: "remove",
            path: path.to_owned(),
            source,
        }),
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), TlsError> {
    fs::rename(from, to).map_err(|source| TlsError::Io {
        action: "rename into",
        path: to.to_owned(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    fn default_tls() -> TlsConfig {
        crate::config::Config::default().tls
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn first_cert(path: &Path) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(path).unwrap()
    }

    #[test]
    fn generates_self_signed_with_private_key_and_sans() {
        let data = tempfile::tempdir().unwrap();
        let ips = [
            "0.0.0.0".parse().unwrap(),
            "192.168.7.20".parse().unwrap(),
            "::".parse().unwrap(),
        ];
        let (_, reloader) = server_config(&default_tls(), data.path(), &ips).unwrap();
        let dir = data.path().join("tls");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&cert), 0o644);
        let cert_pem = fs::read_to_string(&cert).unwrap();
        let key_pem = fs::read_to_string(&key).unwrap();
        assert!(
            cert_pem.starts_with("-----BEGIN CERTIFICATE-----"),
            "{cert_pem}"
        );
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!dir.join("key.pem.new").exists() && !dir.join("cert.pem.new").exists());

        let der = first_cert(&cert);
        // SANs are plain IA5 strings and raw address octets inside the DER.
        assert!(contains(&der, b"vms.local"));
        assert!(contains(&der, b"localhost"));
        assert!(contains(&der, &[0x87, 4, 192, 168, 7, 20]));
        assert!(contains(&der, &[0x87, 4, 127, 0, 0, 1]));
        assert!(!contains(&der, &[0x87, 4, 0, 0, 0, 0]));
        let mut unspecified_v6 = vec![0x87, 16];
        unspecified_v6.extend([0; 16]);
        assert!(!contains(&der, &unspecified_v6));

        let fp = reloader.fingerprint();
        assert_eq!(fp, fingerprint(&der));
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp
            .chars()
            .all(|c| c == ':' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_eq!(reloader.reload().unwrap(), fp);
        let shown = format!("{reloader:?}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
    }

    #[test]
    fn second_start_reuses_generated_files() {
        let data = tempfile::tempdir().unwrap();
        let (_, first) = server_config(&default_tls(), data.path(), &[]).unwrap();
        let (_, second) = server_config(&default_tls(), data.path(), &[]).unwrap();
        assert_eq!(first.fingerprint(), second.fingerprint());
    }

    #[test]
    fn lone_generated_key_is_replaced_by_a_new_pair() {
        let data = tempfile::tempdir().unwrap();
        let (_, first) = server_config(&default_tls(), data.path(), &[]).unwrap();
        let old = first.fingerprint();
        fs::remove_file(data.path().join("tls/cert.pem")).unwrap();
        let fp = first.reload().unwrap();
        assert_ne!(fp, old);
        assert_eq!(first.fingerprint(), fp);
        let (_, again) = server_config(&default_tls(), data.path(), &[]).unwrap();
        assert_eq!(again.fingerprint(), fp);
    }

    /// A configured pair written by rcgen, as an operator's CA would hand it over.
    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, CertificateDer<'static>) {
        let ck = rcgen::generate_simple_self_signed(vec!["vms.local".to_owned()]).unwrap();
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        fs::write(&cert, ck.cert.pem()).unwrap();
        fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        (cert, key, ck.cert.der().clone())
    }

    fn configured(cert: &Path, key: &Path) -> TlsConfig {
        TlsConfig {
            cert: Some(cert.to_owned()),
            key: Some(key.to_owned()),
            hostnames: vec!["vms.local".to_owned()],
        }
    }

    #[test]
    fn configured_pair_loads() {
        let etc = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let (cert, key, der) = write_pair(etc.path(), "site");
        let (_, reloader) = server_config(&configured(&cert, &key), data.path(), &[]).unwrap();
        assert_eq!(reloader.fingerprint(), fingerprint(&der));
        assert!(!data.path().join("tls").exists(), "nothing generated");
    }

    fn config_error(cfg: &TlsConfig) -> String {
        let data = tempfile::tempdir().unwrap();
        server_config(cfg, data.path(), &[])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bad_configured_files_name_the_file() {
        let etc = tempfile::tempdir().unwrap();
        let (cert, key, _) = write_pair(etc.path(), "good");
        let garbage = etc.path().join("garbage.pem");
        fs::write(&garbage, "this is not a certificate\nat all\n").unwrap();
        let empty = etc.path().join("empty.pem");
        fs::write(&empty, "").unwrap();
        let missing = etc.path().join("missing.pem");

        let msg = config_error(&configured(&garbage, &key));
        assert!(msg.starts_with(&garbage.display().to_string()), "{msg}");
        assert!(msg.contains("no \"BEGIN CERTIFICATE\" PEM block"), "{msg}");

        let msg = config_error(&configured(&cert, &garbage));
        assert!(msg.starts_with(&garbage.display().to_string()), "{msg}");
        assert!(msg.contains("no private key"), "{msg}");

        let msg = config_error(&configured(&empty, &key));
        assert_eq!(msg, format!("{}: file is empty", empty.display()));

        let msg = config_error(&configured(&cert, &missing));
        assert!(
            msg.starts_with(&format!("cannot read {}", missing.display())),
            "{msg}"
        );

        let (_, other_key, _) = write_pair(etc.path(), "other");
        let msg = config_error(&configured(&cert, &other_key));
        assert_eq!(
            msg,
            format!(
                "{}: private key does not match the certificate in {}",
                other_key.display(),
                cert.display()
            )
        );
    }

    /// Serves TLS connections forever: each gets "ok" and is closed.
    async fn spawn_server(config: Arc<rustls::ServerConfig>) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(b"ok").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        addr
    }

    struct Seen {
        alpn: Option<Vec<u8>>,
        version: rustls::ProtocolVersion,
        peer: CertificateDer<'static>,
    }

    async fn connect(
        addr: std::net::SocketAddr,
        trust: &CertificateDer<'static>,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> Seen {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(trust.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("vms.local").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let mut body = Vec::new();
        tls.read_to_end(&mut body).await.unwrap();
        assert_eq!(body, b"ok");
        let (_, conn) = tls.get_ref();
        Seen {
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            version: conn.protocol_version().unwrap(),
            peer: conn.peer_certificates().unwrap()[0].clone(),
        }
    }

    #[tokio::test]
    async fn handshake_tls12_and_tls13_then_reload() {
        let data = tempfile::tempdir().unwrap();
        let (config, reloader) =
            server_config(&default_tls(), data.path(), &["127.0.0.1".parse().unwrap()]).unwrap();
        let cert_path = data.path().join("tls/cert.pem");
        let old = first_cert(&cert_path);
        let addr = spawn_server(config).await;

        for (version, wire) in [
            (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
            (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        ] {
            let seen = connect(addr, &old, version).await;
            assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
            assert_eq!(seen.version, wire);
            assert_eq!(seen.peer, old);
        }

        // An operator drops in a new pair and sends SIGHUP.
        let ck = rcgen::generate_simple_self_signed(vec!["vms.local".to_owned()]).unwrap();
        fs::write(&cert_path, ck.cert.pem()).unwrap();
        fs::write(
            data.path().join("tls/key.pem"),
            ck.signing_key.serialize_pem(),
        )
        .unwrap();
        let new = ck.cert.der().clone();
        assert_eq!(reloader.reload().unwrap(), fingerprint(&new));
        assert_eq!(reloader.fingerprint(), fingerprint(&new));

        let seen = connect(addr, &new, &rustls::version::TLS13).await;
        assert_eq!(seen.peer, new);
        assert_ne!(seen.peer, old);
    }

    #[test]
    fn failed_reload_keeps_the_current_certificate() {
        let etc = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let (cert, key, der) = write_pair(etc.path(), "site");
        let (_, reloader) = server_config(&configured(&cert, &key), data.path(), &[]).unwrap();
        fs::write(&cert, "garbage").unwrap();
        let err = reloader.reload().unwrap_err().to_string();
        assert!(err.starts_with(&cert.display().to_string()), "{err}");
        assert_eq!(reloader.fingerprint(), fingerprint(&der));
    }
}
