//! The `vmsd` command line: `serve`, `check-config`, `backup`, `restore`, `admin
//! reset-password`, `directory test`. Everything it runs lives in the library; this file parses arguments, opens
//! the listeners, turns the process's signals into the daemon's stop and reload, and picks
//! exit codes.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use vmsd::config::{self, Config, EXIT_CONFIG};
use vmsd::daemon::Daemon;
use vmsd::{logging, offline, shutdown, systemd};

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
        /// The media hook's loopback address, overriding `media.hook_listen`; "" disables it.
        #[arg(long = "hook-listen")]
        hook_listen: Option<String>,
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
    /// Directory accounts (LDAP / Active Directory).
    #[cfg(feature = "directory")]
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
}

#[cfg(feature = "directory")]
#[derive(Subcommand)]
enum DirectoryCommand {
    /// Try LOGIN against the directory (password from standard input) and print its entry,
    /// groups and the resulting role, permissions and cameras; exit 0 when the login would
    /// succeed, 1 otherwise. Nothing is written.
    Test {
        login: String,
        #[command(flatten)]
        config: ConfigArgs,
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

/// The first line of standard input, without its line end.
fn read_password() -> Option<String> {
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password).ok()?;
    Some(password.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(feature = "directory")]
fn directory_test(login: &str, config: &ConfigArgs) -> ExitCode {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(directory) = cfg.directory else {
        eprintln!("vmsd: directory test: the configuration has no [directory] section");
        return ExitCode::FAILURE;
    };
    let Some(password) = read_password() else {
        eprintln!("vmsd: cannot read the password from standard input");
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vmsd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(vmsd::directory::probe::test_login(
        &directory, login, &password,
    )) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("vmsd: directory test of {login:?} failed:\n{reason}");
            ExitCode::FAILURE
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
        Command::Serve {
            config,
            listen,
            hook_listen,
        } => {
            let mut cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if !listen.is_empty() {
                cfg.listen = listen;
            }
            if let Some(hook) = hook_listen {
                match config::parse_hook_listen(&hook) {
                    Ok(addr) => cfg.media.hook_listen = addr,
                    Err(e) => {
                        eprintln!("vmsd: --hook-listen: {e}");
                        return ExitCode::from(EXIT_CONFIG as u8);
                    }
                }
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
            let Some(password) = read_password() else {
                eprintln!("vmsd: cannot read the new password from standard input");
                return ExitCode::FAILURE;
            };
            match offline::reset_password(&cfg, &login, &password) {
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
        #[cfg(feature = "directory")]
        Command::Directory {
            command: DirectoryCommand::Test { login, config },
        } => directory_test(&login, &config),
    }
}

async fn serve(cfg: Config, inherited: systemd::Inherited) -> Result<(), String> {
    // Before anything can answer or report READY (see `StopSignals`); SIGHUP too, whose
    // default action would also kill the daemon.
    let stop_signals = shutdown::StopSignals::install()
        .map_err(|e| format!("cannot catch SIGTERM/SIGINT: {e}"))?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("cannot catch SIGHUP: {e}"))?;
    let reload = Arc::new(tokio::sync::Notify::new());
    let on_hup = reload.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            on_hup.notify_one();
        }
    });
    let mut listeners = Vec::new();
    if inherited.api.is_empty() {
        for addr in &cfg.listen {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            listeners.push(l);
        }
    } else {
        for l in inherited.api {
            listeners.push(tokio::net::TcpListener::from_std(l).map_err(|e| e.to_string())?);
        }
    }
    let admin_password = std::env::var("VMSD_ADMIN_PASSWORD").ok();
    let daemon = tokio::task::block_in_place(|| {
        Daemon::open_with_hook(cfg, listeners, inherited.hook, admin_password)
    })?;
    daemon.run(stop_signals.wait(), reload).await
}
