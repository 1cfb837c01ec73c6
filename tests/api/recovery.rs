//! Damaged data and backups, with the real binary (issue 6 items 2 and 3, SPEC §7):
//! `vmsd serve` on a data dir whose sled files are garbage or cut short exits non-zero with
//! one clear message that names the directory and the restore command (never a panic or a
//! backtrace, never a fresh empty database), and that command brings the box back;
//! `vmsd backup` / `vmsd restore` round-trip every record, refuse a non-empty target without
//! `--force`, and refuse while the daemon runs, as README's "Backups" says.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::json;
use vmsd::store::Store;

use crate::cli::{text, vmsd, Daemon};
use crate::invariants::Snapshot;

const ADMIN_PASSWORD: &str = "recovery-admin-password";
const CONFIG: &str = "log = \"info\"\n[argon2]\nmemory_kib = 256\niterations = 1\n\
                      [limits]\nshutdown_grace = \"2s\"\n";

struct Appliance {
    work: tempfile::TempDir,
    config: PathBuf,
}

impl Appliance {
    fn new() -> Appliance {
        let work = tempfile::tempdir().unwrap();
        let config = work.path().join("vmsd.toml");
        std::fs::write(&config, CONFIG).unwrap();
        Appliance { work, config }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    async fn start(&self, data: &Path) -> Daemon {
        Daemon::spawn(self.work.path(), &self.config, data, Some(ADMIN_PASSWORD))
            .ready()
            .await
    }

    /// `vmsd <command> <file> -c CONFIG --data-dir DATA [extra]`.
    fn run(&self, command: &str, file: &Path, data: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            command,
            file.to_str().unwrap(),
            "-c",
            self.config.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        vmsd(&args).output().unwrap()
    }

    /// A data dir with an admin session, a user, a temporary user with a camera of a group,
    /// a licence pool and their audit entries; the daemon stopped cleanly. Returns the
    /// admin's token.
    async fn populated(&self, data: &Path) -> String {
        let mut daemon = self.start(data).await;
        let admin = daemon.admin_login(ADMIN_PASSWORD).await;
        let admin = admin.body["access_token"].as_str().unwrap().to_owned();
        let post = |path: &'static str, body: serde_json::Value| {
            let (daemon, admin) = (&daemon, admin.clone());
            async move {
                let r = daemon.call("POST", path, Some(&admin), Some(body)).await;
                assert_eq!(r.status, 201, "{path}: {:?}", r.body);
                r.body["id"].as_u64().unwrap()
            }
        };
        let group = post("/api/admin/v1/camera-groups", json!({"name": "yard"})).await;
        let camera = post(
            "/api/admin/v1/cameras",
            json!({"name": "gate", "group_id": group}),
        )
        .await;
        post(
            "/api/admin/v1/users",
            json!({"login": "ann", "password": "ann-password", "password_confirmation": "ann-password"}),
        )
        .await;
        let r = daemon
            .call(
                "PUT",
                "/api/admin/v1/licenses/analytic_l1",
                Some(&admin),
                Some(json!({"all": 3})),
            )
            .await;
        assert_eq!(r.status, 200);
        post(
            "/api/admin/v1/special-users",
            json!({"name": "Guard", "login": "guard", "password": "guard-password",
                   "password_confirmation": "guard-password", "permissions": [40],
                   "cameras_to_attach": [camera]}),
        )
        .await;
        assert_eq!(daemon.terminate().await.code(), Some(0), "{}", daemon.log());
        admin
    }
}

fn snapshot(data: &Path) -> Snapshot {
    Snapshot::of(&Store::open(data, 1 << 20).unwrap())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Overwrites a file with bytes that are no sled data, keeping its length.
fn garbage(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len() as usize;
    let bytes: Vec<u8> = (0..len.max(64)).map(|i| (i * 131 % 251) as u8).collect();
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[tokio::test]
async fn a_damaged_data_dir_stops_serve_with_the_restore_command_and_that_command_works() {
    let b = Appliance::new();
    let good = b.path("good");
    b.populated(&good).await;
    let backup = b.path("good.vmsdb");
    let out = b.run("backup", &backup, &good, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = snapshot(&good).raw;

    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("garbage db/conf", |d| garbage(&d.join("db/conf"))),
        ("db/conf cut short", |d| truncate(&d.join("db/conf"), 10)),
        ("garbage db/db", |d| garbage(&d.join("db/db"))),
        ("db/db cut to nothing", |d| truncate(&d.join("db/db"), 0)),
    ];
    for (what, damage) in damages {
        let data = b.path(&what.replace([' ', '/'], "-"));
        copy_dir(&good, &data);
        damage(&data);
        let mut daemon = Daemon::spawn(b.work.path(), &b.config, &data, Some(ADMIN_PASSWORD));
        let status = daemon.exited(Duration::from_secs(20)).await;
        let log = daemon.log();
        assert!(
            !status.success(),
            "{what}: served on a damaged database:\n{log}"
        );
        let dir = data.to_str().unwrap();
        let command = format!("vmsd restore BACKUP_FILE --force --data-dir {dir}");
        assert!(
            log.contains("is damaged") && log.contains(&command),
            "{what}:\n{log}"
        );
        for noise in [
            "panicked",
            "RUST_BACKTRACE",
            "stack backtrace",
            "backtrace (",
        ] {
            assert!(!log.contains(noise), "{what}: {noise:?} in\n{log}");
        }
        assert!(
            !log.contains("created the admin account"),
            "{what}: a new database replaced the damaged one:\n{log}"
        );

        // The command from the message, with the backup for BACKUP_FILE.
        let out = b.run("restore", &backup, &data, &["--force"]);
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        assert_eq!(
            snapshot(&data).raw,
            expected,
            "{what}: restored records differ"
        );
        let daemon = b.start(&data).await;
        assert_eq!(
            daemon.admin_login(ADMIN_PASSWORD).await.status,
            200,
            "{what}"
        );
        let moved = std::fs::read_dir(&data)
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("db.replaced-"));
        assert!(moved, "{what}: the damaged database was not kept aside");
    }
}

#[tokio::test]
async fn backup_and_restore_round_trip_every_record_and_refuse_what_they_should() {
    let b = Appliance::new();
    let data = b.path("data");
    let admin = b.populated(&data).await;
    let source = snapshot(&data);
    source.assert_invariants();
    assert!(source.accounts.len() >= 3 && !source.sessions.is_empty() && !source.audit.is_empty());

    // Both refuse while the daemon holds the database (the README's advice: stop it first).
    let mut daemon = b.start(&data).await;
    let file = b.path("box.vmsdb");
    let out = b.run("backup", &file, &data, &[]);
    assert!(
        !out.status.success(),
        "backup of a running daemon's database"
    );
    assert!(
        text(&out.stderr).contains("is vmsd running"),
        "{}",
        text(&out.stderr)
    );
    assert!(!file.exists());
    assert_eq!(daemon.terminate().await.code(), Some(0));
    drop(daemon);

    let out = b.run("backup", &file, &data, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "backup file mode {mode:o}");

    // Into an empty dir: every record equal, ids and counters included.
    let copy = b.path("copy");
    let out = b.run("restore", &file, &copy, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(snapshot(&copy).raw, source.raw);
    // The generated push.app_secret (SPEC §9) travels with it: restored signatures verify.
    let secret_of = |dir: &std::path::Path| {
        vmsd::store::Store::open(dir, 1 << 20)
            .unwrap()
            .secret_or_insert(vmsd::app::PUSH_APP_SECRET, b"absent")
            .unwrap()
    };
    let original = secret_of(&data);
    assert!(original.len() >= 32, "generated at the first start");
    assert_eq!(secret_of(&copy), original);

    // Into a dir with data: refused without --force, and nothing touched.
    let out = b.run("restore", &file, &data, &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("already holds data") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(snapshot(&data).raw, source.raw);

    // Not while the daemon runs, not even with --force.
    let mut daemon = b.start(&copy).await;
    let out = b.run("restore", &file, &copy, &["--force"]);
    assert!(!out.status.success(), "restored under a running daemon");
    assert!(
        text(&out.stderr).contains("is vmsd running"),
        "{}",
        text(&out.stderr)
    );
    // The restored box serves the old session and hands out new ids after the old ones.
    let me = daemon
        .call("GET", "/api/v1/users/self", Some(&admin), None)
        .await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    let r = daemon
        .call(
            "POST",
            "/api/admin/v1/users",
            Some(&admin),
            Some(json!({"login": "bob", "password": "bob-password", "password_confirmation": "bob-password"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let newest = source.accounts.keys().max().copied().unwrap_or(0);
    assert_eq!(r.body["id"].as_u64(), Some(newest + 1));
    assert_eq!(daemon.terminate().await.code(), Some(0));
    drop(daemon);
    let out = b.run("restore", &file, &copy, &["--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        snapshot(&copy).raw,
        source.raw,
        "--force did not restore the backup"
    );
}

#[test]
fn the_readme_documents_backing_up_a_running_box() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme.find("### Backups").expect("a Backups section")..];
    for needle in [
        "systemctl stop vmsd.service",
        "vmsd backup",
        "systemctl start vmsd.service",
        "vmsd restore",
        "--force",
    ] {
        assert!(
            section.contains(needle),
            "README's Backups section lacks {needle:?}"
        );
    }
}
