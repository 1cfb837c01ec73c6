//! `vmsd serve` once its listeners are open (`Daemon::open`, then `Daemon::run`): the TLS
//! configuration, the store (`App`) and its first admin, the media hook's listener (bound
//! here, or handed over by systemd), the background tasks (housekeeping, the systemd
//! watchdog, certificate reloads, the directory sync), readiness, the two servers, and on `stop` their bounded
//! drain and the final flush. The process's signals are `main`'s: it turns
//! SIGTERM/SIGINT into `stop` and SIGHUP into `reload`, so tests run the whole daemon
//! in-process.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::accounts::{default_language, insert, NewAccountRequest};
use crate::app::{App, StartError};
use crate::config::Config;
use crate::files::write_private;
use crate::model::{now, UserType};
use crate::password;
use crate::shutdown::{self, Shutdown};
use crate::systemd::{self, Notifier};
use crate::tls::{self, CertReloader};
use crate::{hook_server, housekeeping, server};

/// An opened daemon, not yet serving: its listeners, TLS configuration and `App`.
pub struct Daemon {
    app: Arc<App>,
    listeners: Vec<TcpListener>,
    addrs: Vec<SocketAddr>,
    /// The media hook's listener; `None` when `media.hook_listen` is "".
    hook: Option<TcpListener>,
    tls_config: Arc<rustls::ServerConfig>,
    reloader: Arc<CertReloader>,
}

impl Daemon {
    /// Prepares the TLS configuration (generating a certificate that names the listeners'
    /// addresses on a first start) and opens the `App`, creating the first admin on an
    /// empty store with `admin_password` (`vmsd serve` passes `VMSD_ADMIN_PASSWORD`) or a
    /// random one. Blocking: it reads and writes files and may hash a password.
    ///
    /// The media hook listens on `media.hook_listen`, bound here (see `open_with_hook`).
    pub fn open(
        config: Config,
        listeners: Vec<TcpListener>,
        admin_password: Option<String>,
    ) -> Result<Daemon, String> {
        Self::open_with_hook(config, listeners, None, admin_password)
    }

    /// `open`, with the hook's listener handed over by systemd (`FileDescriptorName=hook`)
    /// when there is one; otherwise `media.hook_listen` is bound here, also under socket
    /// activation, so that a unit written before the hook existed keeps working.
    pub fn open_with_hook(
        config: Config,
        listeners: Vec<TcpListener>,
        inherited_hook: Option<std::net::TcpListener>,
        admin_password: Option<String>,
    ) -> Result<Daemon, String> {
        let addrs: Vec<SocketAddr> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let ips = certificate_ips(&addrs);
        let (tls_config, reloader) =
            tls::server_config(&config.tls, &config.data_dir, &ips).map_err(|e| e.to_string())?;
        let hook_listen = config.media.hook_listen;
        let app = open_app(config, admin_password).map_err(|e| e.to_string())?;
        // After the store: a second vmsd on the same data dir reports the database in use,
        // not a busy hook port.
        let hook = match (inherited_hook, hook_listen) {
            (Some(inherited), _) => Some(
                TcpListener::from_std(inherited)
                    .map_err(|e| format!("the socket-activated hook listener: {e}"))?,
            ),
            (None, Some(addr)) => Some(bind_hook(addr)?),
            (None, None) => None,
        };
        Ok(Daemon {
            app,
            listeners,
            addrs,
            hook,
            tls_config,
            reloader,
        })
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Where the media hook listens (a test binds port 0 and asks).
    pub fn hook_addr(&self) -> Option<SocketAddr> {
        self.hook.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `stop` completes; `reload` re-reads the TLS certificate. Then drains
    /// (bounded by `limits.shutdown_grace`), persists last-use times and flushes the store.
    pub async fn run(
        self,
        stop: impl Future<Output = ()>,
        reload: Arc<Notify>,
    ) -> Result<(), String> {
        let Daemon {
            app,
            listeners,
            addrs,
            hook,
            tls_config,
            reloader,
        } = self;
        let notifier = Arc::new(Notifier::from_env());
        let (trigger, shutdown) = shutdown::channel();
        tokio::spawn(housekeeping::run(app.clone(), shutdown.clone()));
        #[cfg(feature = "directory")]
        if let Some(directory) = &app.directory {
            if !directory.config.sync_interval.is_zero() {
                tokio::spawn(crate::directory::sync::run(
                    app.clone(),
                    directory.clone(),
                    shutdown.clone(),
                ));
            }
        }
        if let Some(interval) = systemd::watchdog_interval() {
            let probe_app = app.clone();
            tokio::spawn(systemd::run_watchdog(
                notifier.clone(),
                interval,
                move || {
                    let app = probe_app.clone();
                    async move {
                        tokio::task::spawn_blocking(move || app.store.probe().is_ok())
                            .await
                            .unwrap_or(false)
                    }
                },
                shutdown.receiver(),
            ));
        }
        tokio::spawn(reload_certificates(
            reloader,
            reload,
            notifier.clone(),
            shutdown.clone(),
        ));
        let listening = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let hook_addr = hook.as_ref().and_then(|l| l.local_addr().ok());
        let hooking = hook_addr.map_or_else(
            || "media hook disabled".to_owned(),
            |a| format!("media hook on http://{a}{}", hook_server::HOOK_PATH),
        );
        // Both listeners are bound (and listening) by now: READY covers the hook too, so a
        // media server ordered after vmsd.service finds it answering.
        tracing::info!(listen = %listening, hook = ?hook_addr, "vmsd {} serving on {listening}; {hooking}", env!("CARGO_PKG_VERSION"));
        notifier.ready(&format!("serving on {listening}; {hooking}"));

        let server = tokio::spawn(server::run(
            listeners,
            app.clone(),
            tls_config,
            shutdown.clone(),
        ));
        let hook_task = hook.map(|listener| {
            tokio::spawn(hook_server::run(listener, app.clone(), shutdown.clone()))
        });
        stop.await;
        notifier.stopping();
        trigger.trigger();
        if let Err(e) = server.await {
            tracing::error!(error = %e, "server task failed");
        }
        if let Some(task) = hook_task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "media hook task failed");
            }
        }
        housekeeping::persist_last_used(&app);
        app.store
            .flush()
            .await
            .map_err(|e| format!("final flush failed: {e}"))?;
        tracing::info!("vmsd stopped");
        Ok(())
    }
}

/// Binds `media.hook_listen`. Needs a tokio runtime (Daemon::open runs inside one).
fn bind_hook(addr: SocketAddr) -> Result<TcpListener, String> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on media.hook_listen {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("media.hook_listen {addr}: {e}"))?;
    TcpListener::from_std(listener).map_err(|e| format!("media.hook_listen {addr}: {e}"))
}

/// Opens the `App` and, on an empty store, creates the first admin with `admin_password` or
/// a random one written to the data dir.
pub fn open_app(config: Config, admin_password: Option<String>) -> Result<Arc<App>, StartError> {
    let app = App::open(config)?;
    create_first_admin(&app, admin_password)?;
    Ok(Arc::new(app))
}

/// First start on an empty store: the `admin` account, with `admin_password` or a random
/// password written once to `<data_dir>/initial-admin-password` (0600) and named, not printed,
/// in the log.
fn create_first_admin(app: &App, admin_password: Option<String>) -> Result<(), StartError> {
    if app.store.has_accounts() {
        return Ok(());
    }
    let (password, file) = match admin_password {
        Some(p) if !p.is_empty() => (p, None),
        _ => {
            let p = password::random_password();
            let path = app.config.data_dir.join("initial-admin-password");
            write_private(&path, format!("{p}\n").as_bytes())
                .map_err(|e| StartError::Other(format!("cannot write {}: {e}", path.display())))?;
            (p, Some(path))
        }
    };
    let hash = app
        .hasher
        .hash_blocking(&password)
        .map_err(StartError::Other)?;
    let request = NewAccountRequest::new(
        UserType::Admin,
        "admin".into(),
        "Administrator".into(),
        password,
    );
    let language = default_language(app);
    let at = now();
    app.store
        .commit_blocking(|tx| insert(tx, &request, &hash, &language, at))
        .map_err(|e| StartError::Store(format!("cannot create the first admin: {e}")))?;
    match file {
        Some(path) => tracing::info!(
            path = %path.display(),
            "created the admin account; its initial password is in {}",
            path.display()
        ),
        None => {
            tracing::info!("created the admin account with the password from VMSD_ADMIN_PASSWORD")
        }
    }
    Ok(())
}

/// Re-reads the certificate on each `reload` until shutdown; a failed reload keeps the old one.
async fn reload_certificates(
    reloader: Arc<CertReloader>,
    reload: Arc<Notify>,
    notifier: Arc<Notifier>,
    mut shutdown: Shutdown,
) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = reload.notified() => {}
        }
        notifier.reloading();
        let r = reloader.clone();
        match tokio::task::spawn_blocking(move || r.reload()).await {
            Ok(Ok(fp)) => {
                tracing::info!(fingerprint = %fp, "TLS certificate reloaded, fingerprint {fp}")
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
            }
            Err(e) => tracing::error!(error = %e, "TLS reload task failed"),
        }
        notifier.ready("serving");
    }
}

/// The addresses a generated certificate should name: each listen address, or every address
/// of the box's interfaces for a wildcard listener (socket activation hands over `[::]:443`),
/// so that clients reaching the box by IP see a matching certificate.
fn certificate_ips(addrs: &[SocketAddr]) -> Vec<std::net::IpAddr> {
    let mut ips: Vec<std::net::IpAddr> = addrs
        .iter()
        .map(SocketAddr::ip)
        .filter(|ip| !ip.is_unspecified())
        .collect();
    if addrs.iter().any(|a| a.ip().is_unspecified()) {
        if let Ok(interfaces) = nix::ifaddrs::getifaddrs() {
            for interface in interfaces {
                let Some(address) = interface.address else {
                    continue;
                };
                if let Some(v4) = address.as_sockaddr_in() {
                    ips.push(std::net::IpAddr::V4(v4.ip()));
                } else if let Some(v6) = address.as_sockaddr_in6() {
                    let ip = v6.ip();
                    // Link-local addresses need a scope id and are never typed into a client.
                    if ip.segments()[0] & 0xffc0 != 0xfe80 {
                        ips.push(std::net::IpAddr::V6(ip));
                    }
                }
            }
        }
    }
    ips.sort();
    ips.dedup();
    ips
}
