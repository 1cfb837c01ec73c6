//! The `vmsd` binary itself (SPEC §7, issue 2 items 2, 4 and 5): `check-config` and its exit
//! codes, `serve` with flags over the file, the first admin and its password file, SIGTERM,
//! durability across `kill -9`, a second daemon on a held data dir, and the offline
//! `admin reset-password`. Every daemon runs under a guard that kills it, even on failure.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{connector_for, https, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_vmsd");

/// Small argon2 parameters keep the daemon's logins fast; the rest are defaults.
const SMALL: &str = "log = \"info\"\n[argon2]\nmemory_kib = 256\niterations = 1\n\
                     [limits]\nshutdown_grace = \"2s\"\n";

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

/// A command for the binary with the environment of a plain shell: no inherited admin
/// password, socket activation, systemd notification or journal.
pub(crate) fn vmsd(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("VMSD_ADMIN_PASSWORD")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    vmsd(args).output().unwrap()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A free local port: bound, then released for the daemon to take.
pub(crate) fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], crate::common::free_port()))
}

/// A running `vmsd serve`; dropping it kills the process and reaps it.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) data: PathBuf,
    pub(crate) stderr: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts `vmsd serve -c CONFIG --listen <free port> --data-dir DATA` in `work`.
    pub(crate) fn spawn(
        work: &Path,
        config: &Path,
        data: &Path,
        admin_password: Option<&str>,
    ) -> Daemon {
        let addr = free_addr();
        let stderr = work.join(format!("stderr-{}.log", addr.port()));
        let mut cmd = vmsd(&[
            "serve",
            "-c",
            config.to_str().unwrap(),
            "--listen",
            &addr.to_string(),
            // Port 0: daemons of parallel tests must not compete for media.hook_listen's 8181.
            "--hook-listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        if let Some(p) = admin_password {
            cmd.env("VMSD_ADMIN_PASSWORD", p);
        }
        let child = cmd
            .current_dir(work)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child,
            addr,
            data: data.to_path_buf(),
            stderr,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Polls `/healthz` until it answers 200; panics with the daemon's log if it exits or
    /// takes more than 20 s.
    pub(crate) async fn ready(self) -> Daemon {
        let mut me = self;
        let started = Instant::now();
        loop {
            if let Some(status) = me.child.try_wait().unwrap() {
                panic!("vmsd exited with {status} before serving:\n{}", me.log());
            }
            if let Some(r) = me.request("GET", "/healthz", None, None).await {
                if r.status == 200 {
                    return me;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "vmsd never became ready:\n{}",
                me.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Option<Reply> {
        let cert = self.data.join("tls/cert.pem");
        if !cert.exists() {
            return None;
        }
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        https(
            &connector_for(&cert),
            self.addr,
            method,
            path,
            &headers,
            body.unwrap_or_default(),
        )
        .await
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.request(method, path, token, body)
            .await
            .expect("the daemon did not answer")
    }

    pub(crate) async fn admin_login(&self, password: &str) -> Reply {
        self.call(
            "POST",
            "/api/admin/v1/auth/token",
            None,
            Some(json!({"login": "admin", "password": password})),
        )
        .await
    }

    /// Waits up to `limit` for the process to exit on its own.
    pub(crate) async fn exited(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "vmsd still running after {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then the exit status (it must stop within 10 s).
    pub(crate) async fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = self.exited(Duration::from_secs(10)).await;
        // A SIGTERM must be handled (drain, final flush, exit status): death by a signal here
        // means it was not caught.
        assert!(
            std::os::unix::process::ExitStatusExt::signal(&status).is_none(),
            "vmsd died by {status} instead of shutting down:\n{}",
            self.log()
        );
        status
    }
}

/// A scratch directory with the small config written into it.
fn workdir() -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("small.toml");
    std::fs::write(&config, SMALL).unwrap();
    (work, config)
}

#[test]
fn check_config_accepts_the_shipped_files_and_the_defaults() {
    for args in [
        vec!["check-config", "-c", shipped("vmsd.toml").to_str().unwrap()],
        vec!["check-config", "-c", shipped("dev.toml").to_str().unwrap()],
        vec!["check-config"],
    ] {
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout).trim(), "configuration is valid");
    }
}

#[test]
fn a_bad_config_exits_78_listing_every_problem() {
    let (work, _) = workdir();
    let bad = work.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[auth]\nsessions_limit = 0\n[limits]\nrequest_timeout = \"soon\"\n[tls]\nbogus = 1\n",
    )
    .unwrap();
    let out = run(&["check-config", "-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let problems: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(problems.len(), 3, "{stderr}");
    for needle in [
        "auth.sessions_limit: expected an integer from 1 to 1000, got 0",
        "limits.request_timeout: expected a duration",
        "unknown key 'tls.bogus'",
    ] {
        assert!(
            stderr.contains(needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }
    // serve refuses the same file the same way, before touching anything.
    let data = work.path().join("data");
    let out = run(&[
        "serve",
        "-c",
        bad.to_str().unwrap(),
        "--listen",
        &free_addr().to_string(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(!data.exists());
    // A file that is not there is a configuration error too.
    let missing = work.path().join("missing.toml");
    let out = run(&["check-config", "-c", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("missing.toml"));
}

#[tokio::test]
async fn serve_takes_flags_over_the_file_and_writes_the_first_admin_password() {
    let (work, _) = workdir();
    let data = work.path().join("d");
    // dev.toml says 127.0.0.1:8443 and ./data; the flags must win.
    let mut daemon = Daemon::spawn(work.path(), &shipped("dev.toml"), &data, None)
        .ready()
        .await;
    assert!(
        !work.path().join("data").exists(),
        "used dev.toml's data_dir"
    );
    let file = data.join("initial-admin-password");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "initial-admin-password mode {mode:o}");
    let key_mode = std::fs::metadata(data.join("tls/key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600, "tls/key.pem mode {key_mode:o}");
    let password = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(password.len() >= 16, "weak initial password");
    let r = daemon.admin_login(&password).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["user"]["login"], "admin");
    // The log names the file and never shows the password.
    let log = daemon.log();
    assert!(log.contains("initial-admin-password"), "{log}");
    assert!(!log.contains(&password), "the password is in the log");

    let status = daemon.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
}

#[tokio::test]
async fn vmsd_admin_password_sets_the_first_password_and_no_file_is_written() {
    let (work, config) = workdir();
    let data = work.path().join("d");
    let mut daemon = Daemon::spawn(work.path(), &config, &data, Some("env-admin-password"))
        .ready()
        .await;
    assert!(!data.join("initial-admin-password").exists());
    assert_eq!(daemon.admin_login("env-admin-password").await.status, 200);
    assert_eq!(daemon.terminate().await.code(), Some(0));
}

#[tokio::test]
async fn an_acknowledged_write_survives_kill_9() {
    let (work, config) = workdir();
    let data = work.path().join("d");
    let mut daemon = Daemon::spawn(work.path(), &config, &data, Some("first-admin-password"))
        .ready()
        .await;
    let token = daemon.admin_login("first-admin-password").await;
    let token = token.body["access_token"].as_str().unwrap().to_owned();
    let r = daemon
        .call(
            "PUT",
            "/api/admin/v1/users/self/update-password",
            Some(&token),
            Some(json!({
                "old_password": "first-admin-password",
                "password": "second-admin-password",
                "password_confirmation": "second-admin-password",
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // No drain, no final flush: only what was flushed before the 200 is there.
    daemon.child.kill().unwrap();
    daemon.exited(Duration::from_secs(5)).await;
    drop(daemon);

    let daemon = Daemon::spawn(work.path(), &config, &data, Some("first-admin-password"))
        .ready()
        .await;
    assert_eq!(daemon.admin_login("first-admin-password").await.status, 422);
    assert_eq!(
        daemon.admin_login("second-admin-password").await.status,
        200
    );
    let me = daemon
        .call("GET", "/api/v1/users/self", Some(&token), None)
        .await;
    assert_eq!(me.status, 200, "the session was lost: {:?}", me.body);
}

#[tokio::test]
async fn a_second_daemon_on_a_held_data_dir_fails_clearly() {
    let (work, config) = workdir();
    let data = work.path().join("d");
    let first = Daemon::spawn(work.path(), &config, &data, Some("admin-password-1"))
        .ready()
        .await;
    let mut second = Daemon::spawn(work.path(), &config, &data, Some("admin-password-1"));
    let status = second.exited(Duration::from_secs(10)).await;
    assert!(
        !status.success(),
        "a second daemon started on the same data dir"
    );
    let log = second.log();
    assert!(
        log.contains("in use by another process") && log.contains(data.to_str().unwrap()),
        "unclear failure:\n{log}"
    );
    assert!(
        !log.contains("restore"),
        "suggests a restore for a busy dir:\n{log}"
    );
    // The first daemon is unharmed.
    assert_eq!(first.admin_login("admin-password-1").await.status, 200);
}

/// Runs `command` to its end with `input` on its standard input; stdout and stderr captured.
pub(crate) fn run_with_stdin(command: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// `vmsd admin reset-password LOGIN` with `password` on stdin.
fn reset_password(config: &Path, data: &Path, login: &str, password: &str) -> Output {
    run_with_stdin(
        &mut vmsd(&[
            "admin",
            "reset-password",
            login,
            "-c",
            config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ]),
        &format!("{password}\n"),
    )
}

#[tokio::test]
async fn admin_reset_password_works_offline_and_refuses_while_the_daemon_runs() {
    let (work, config) = workdir();
    let data = work.path().join("d");
    let mut daemon = Daemon::spawn(work.path(), &config, &data, Some("forgotten-password"))
        .ready()
        .await;
    let token = daemon.admin_login("forgotten-password").await;
    let token = token.body["access_token"].as_str().unwrap().to_owned();

    let out = reset_password(&config, &data, "admin", "recovered-password");
    assert!(
        !out.status.success(),
        "reset while the daemon holds the store"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("is vmsd running"), "{stderr}");
    assert_eq!(daemon.terminate().await.code(), Some(0), "{}", daemon.log());
    drop(daemon);

    let out = reset_password(&config, &data, "nobody", "recovered-password");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no account"),
        "{}",
        text(&out.stderr)
    );
    let out = reset_password(&config, &data, "admin", "short");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("The password must be at least 8 characters."),
        "{}",
        text(&out.stderr)
    );
    let out = reset_password(&config, &data, "admin", "recovered-password");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let daemon = Daemon::spawn(work.path(), &config, &data, None)
        .ready()
        .await;
    assert_eq!(daemon.admin_login("forgotten-password").await.status, 422);
    assert_eq!(daemon.admin_login("recovered-password").await.status, 200);
    // The reset revoked the sessions opened with the old password.
    let me = daemon
        .call("GET", "/api/v1/users/self", Some(&token), None)
        .await;
    assert_eq!(me.status, 401);
}

/// Signals are caught from before the first answer: a SIGTERM or SIGHUP sent the moment the
/// daemon serves must not find the default action (death by signal, no drain, no final flush).
/// Before the fix this raced, and a SIGTERM right after the first `/healthz` answer killed the
/// daemon now and then under a loaded test run.
#[tokio::test]
async fn signals_sent_as_soon_as_it_answers_are_handled_not_fatal() {
    let (work, config) = workdir();
    let data = work.path().join("data");
    for round in 0..6 {
        let mut daemon = Daemon::spawn(work.path(), &config, &data, Some("signal-test-pw"))
            .ready()
            .await;
        if round % 2 == 1 {
            let pid = nix::unistd::Pid::from_raw(daemon.child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(
                daemon.child.try_wait().unwrap().is_none(),
                "round {round}: SIGHUP killed the daemon:\n{}",
                daemon.log()
            );
        }
        let status = daemon.terminate().await;
        assert_eq!(
            status.code(),
            Some(0),
            "round {round}: {status}\n{}",
            daemon.log()
        );
        assert!(daemon.log().contains("vmsd stopped"), "{}", daemon.log());
    }
}
