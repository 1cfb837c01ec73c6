//! The `vmsd` command line: `serve`, `check-config`, `admin reset-password`. Everything it
//! runs lives in the library; this file parses arguments, wires the pieces, and picks exit codes.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use vmsd::config::{self, Config, EXIT_CONFIG};
use vmsd::{auth, logging, server, shutdown, systemd, tls, App};

#[derive(Parser)]
#[command(
    name = "vmsd",
    version,
    about = "User and access daemon of the VMS appliance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ConfigArgs {
    /// Configuration file (TOML). Without it, the built-in defaults apply.
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Data directory, overriding `data_dir` of the file.
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Address to listen on (repeatable), overriding `listen` of the file.
        #[arg(long = "listen")]
        listen: Vec<SocketAddr>,
    },
    /// Validate the configuration and exit 0 (valid) or 78 (invalid).
    CheckConfig {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Write a consistent, versioned export of the database to FILE (offline).
    Backup {
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Load FILE into an empty data dir (offline).
    Restore {
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// Move an existing database aside (to db.replaced-<time>) instead of refusing.
        #[arg(long)]
        force: bool,
    },
    /// Offline administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set a new password for LOGIN, read from standard input; revokes its sessions.
    ResetPassword {
        login: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn load_config(args: &ConfigArgs) -> Result<Config, ExitCode> {
    let loaded = match &args.config {
        Some(path) => config::load(path).map_err(|e| (path.display().to_string(), e)),
        None => Ok(Config::default()),
    };
    match loaded {
        Ok(mut cfg) => {
            if let Some(dir) = &args.data_dir {
                cfg.data_dir = dir.clone();
            }
            Ok(cfg)
        }
        Err((path, errors)) => {
            eprintln!("vmsd: invalid configuration in {path}:");
            for line in errors.0 {
                eprintln!("  - {line}");
            }
            Err(ExitCode::from(EXIT_CONFIG as u8))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => match load_config(&config) {
            Ok(_) => {
                println!("configuration is valid");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Serve { config, listen } => {
            let mut cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if !listen.is_empty() {
                cfg.listen = listen;
            }
            logging::init(&cfg.log);
            // listenfd clears LISTEN_FDS/LISTEN_PID from the environment, which is only sound
            // while the process has one thread: before the runtime starts.
            let inherited = match systemd::take_listeners() {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("vmsd: socket activation: {e}");
                    return ExitCode::FAILURE;
                }
            };
            // The unit's TasksMax bounds threads; tokio's default of 512 blocking threads
            // could exceed it.
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(64)
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("vmsd: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(cfg, inherited)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    tracing::error!("{message}");
                    eprintln!("vmsd: {message}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Backup { file, config } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match vmsd::backup::backup(&cfg.data_dir, &file) {
                Ok(n) => {
                    println!("wrote {n} records to {}", file.display());
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("vmsd: backup failed: {message}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Restore {
            file,
            config,
            force,
        } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match vmsd::backup::restore(&cfg.data_dir, &file, force) {
                Ok(n) => {
                    println!("restored {n} records into {}", cfg.data_dir.display());
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("vmsd: restore failed: {message}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Admin {
            command: AdminCommand::ResetPassword { login, config },
        } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let mut password = String::new();
            if std::io::stdin().lock().read_line(&mut password).is_err() {
                eprintln!("vmsd: cannot read the new password from standard input");
                return ExitCode::FAILURE;
            }
            let password = password.trim_end_matches(['\n', '\r']);
            match vmsd::reset_password(&cfg, &login, password) {
                Ok(()) => {
                    println!("password of {login} reset; its sessions are revoked");
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("vmsd: {message}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(cfg: Config, inherited: Vec<std::net::TcpListener>) -> Result<(), String> {
    let notifier = Arc::new(systemd::Notifier::from_env());
    let mut listeners = Vec::new();
    if inherited.is_empty() {
        for addr in &cfg.listen {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            listeners.push(l);
        }
    } else {
        for l in inherited {
            listeners.push(tokio::net::TcpListener::from_std(l).map_err(|e| e.to_string())?);
        }
    }
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let ips = certificate_ips(&addrs);
    let (tls_config, reloader) =
        tls::server_config(&cfg.tls, &cfg.data_dir, &ips).map_err(|e| e.to_string())?;
    let admin_password = std::env::var("VMSD_ADMIN_PASSWORD").ok();
    let app = tokio::task::block_in_place(|| App::open(cfg, admin_password))
        .map_err(|e| e.to_string())?;

    // Before anything can answer or report READY (see `StopSignals`); SIGHUP too, whose
    // default action would also kill the daemon.
    let stop_signals = shutdown::StopSignals::install()
        .map_err(|e| format!("cannot catch SIGTERM/SIGINT: {e}"))?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("cannot catch SIGHUP: {e}"))?;
    let (trigger, shutdown) = shutdown::channel();
    tokio::spawn(auth::housekeeping(app.clone(), shutdown.clone()));
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
    {
        let notifier = notifier.clone();
        let reloader = reloader.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = hup.recv() => {}
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
        });
    }
    let listening = addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    tracing::info!(listen = %listening, "vmsd {} serving on {listening}", env!("CARGO_PKG_VERSION"));
    notifier.ready(&format!("serving on {listening}"));

    let server = tokio::spawn(server::run(
        listeners,
        app.clone(),
        tls_config,
        shutdown.clone(),
    ));
    stop_signals.wait().await;
    notifier.stopping();
    trigger.trigger();
    if let Err(e) = server.await {
        tracing::error!(error = %e, "server task failed");
    }
    auth::persist_last_used(&app);
    app.store
        .flush()
        .await
        .map_err(|e| format!("final flush failed: {e}"))?;
    tracing::info!("vmsd stopped");
    Ok(())
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
