//! The TOML configuration of vmsd: the typed `Config` with the defaults of SPEC §7, parsing and
//! validation of a file, and the exit code (78, `EX_CONFIG`) used when it is wrong.
//!
//! Every problem in a file is reported at once, each naming the dotted key it is about, so an
//! operator fixes the whole file in one pass instead of one error per restart.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Table;

mod parse;
use parse::{syntax_error, Walker};

/// sysexits.h `EX_CONFIG`; systemd and scripts can tell "fix the config" from a crash.
pub const EXIT_CONFIG: i32 = 78;

/// Upper bound of `argon2.memory_kib`: 1 GiB per hash; more, times `max_concurrent`, would push
/// an appliance into swap. The default (m = 7 MiB, t = 5) is OWASP's equivalent of its 19 MiB,
/// t = 2 baseline with the least memory per concurrent hash (SPEC §1).
const ARGON2_MAX_MEMORY_KIB: i64 = 1_048_576;

/// Upper bound of `limits.max_body_bytes` (64 MiB); the API only takes small JSON bodies.
const MAX_BODY_BYTES_LIMIT: i64 = 64 * 1024 * 1024;

/// Bounds of `media.stream_token_ttl`: under a minute a player could not even fetch its playlist
/// before the token died; past 30 days a leaked stream URL stays useful for too long.
const STREAM_TOKEN_TTL_MIN: Duration = Duration::from_secs(MINUTE);
const STREAM_TOKEN_TTL_MAX: Duration = Duration::from_secs(30 * DAY);

/// Longest accepted `media.hls_url` / `media.rtsp_url` template.
const URL_TEMPLATE_MAX_CHARS: usize = 1024;

const DURATION_HINT: &str =
    "a duration greater than zero like \"500ms\", \"10s\", \"15m\", \"12h\" or \"30d\"";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    pub data_dir: PathBuf,
    /// A `tracing` filter (`RUST_LOG` syntax).
    pub log: String,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub argon2: Argon2Config,
    pub limits: LimitsConfig,
    pub license: LicenseConfig,
    pub locales: LocalesConfig,
    pub store: StoreConfig,
    pub media: MediaConfig,
    pub push: PushConfig,
    /// SPEC §10; `None`: no directory logins.
    pub directory: Option<DirectoryConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Both `None`: a self-signed certificate is generated into `<data_dir>/tls/`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// DNS names of the self-signed certificate.
    pub hostnames: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub client_token_ttl: Duration,
    pub admin_token_ttl: Duration,
    /// How long a socket-issued refresh token (SPEC §6) stays valid after its last use.
    pub refresh_token_ttl: Duration,
    pub sessions_limit: usize,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    pub ip_login_limit: u32,
    pub ip_login_window: Duration,
    pub password_min_length: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub max_concurrent: usize,
    pub queue_limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Audit entries kept; housekeeping removes the oldest beyond it, so that a box that runs
    /// for years (and every failed login an attacker makes) cannot fill its disk.
    pub audit_max_entries: u64,
    /// Authenticated DeviceHive sockets one account may hold (SPEC §6).
    pub ws_sockets_per_account: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseConfig {
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalesConfig {
    pub available: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// sled's page cache bound in MiB.
    pub cache_mib: u64,
}

/// SPEC §8: how stream URLs are built and how the media server's authorization hook is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// The plain-HTTP hook listener; `None` when the file sets `""`. Always a loopback
    /// address: the hook speaks plain HTTP and trusts its caller to be the box's media server.
    pub hook_listen: Option<SocketAddr>,
    /// Stream URL templates with the placeholders `{host}`, `{path}` and `{token}`.
    pub hls_url: String,
    pub rtsp_url: String,
    /// Appended to a camera's `media_path` for `type=low`.
    pub low_suffix: String,
    /// Stripped from nginx's `X-Original-URI` before a camera is matched; "" or starts with "/".
    pub uri_prefix: String,
    pub stream_token_ttl: Duration,
}

/// SPEC §9: the Pusher-protocol push socket AIPIX clients keep open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    /// The key in the socket URL and before the `:` of every channel signature.
    pub app_key: String,
    /// `None`: generated at first start and kept in the store (`App::open`).
    pub app_secret: Option<SecretString>,
    /// The prefix `/api/v1/wsurl` advertises; `{path}/app/{key}` is served besides the fixed
    /// `/pusher`, `/ws` and `` prefixes. "" or a path starting with `/`, no trailing `/`.
    pub path: String,
    /// Sent as `activity_timeout`; a socket silent for twice this long is closed (4201).
    pub activity_timeout: Duration,
    /// Channels one socket may be subscribed to.
    pub max_subscriptions: usize,
}

/// SPEC §10: LDAP / Active Directory logins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryConfig {
    /// `ldap://` or `ldaps://` URLs, tried in order.
    pub urls: Vec<String>,
    pub start_tls: bool,
    pub allow_insecure: bool,
    /// `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// `None`: anonymous search.
    pub bind_dn: Option<String>,
    /// Read from `bind_password_file` when the file is parsed.
    pub bind_password: Option<SecretString>,
    pub user_base: String,
    /// Contains `{login}`, replaced by the RFC 4515-escaped login.
    pub user_filter: String,
    pub login_attribute: String,
    pub id_attribute: String,
    pub name_attribute: String,
    pub groups: GroupSource,
    pub nested_groups: bool,
    /// Per server and operation.
    pub timeout: Duration,
    pub max_concurrent: usize,
    pub queue_limit: usize,
    /// Zero: no background sync.
    pub sync_interval: Duration,
    pub maps: Vec<DirectoryMap>,
}

/// Where a person's groups come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSource {
    /// The entry's `memberOf` attribute (AD, OpenLDAP's memberof overlay).
    MemberOf,
    /// A search for groups whose `member` is the entry's DN.
    MemberSearch,
}

/// The role a `[[directory.map]]` entry grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRole {
    Admin,
    User,
}

/// One `[[directory.map]]` entry: members of `group` get these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryMap {
    /// The group's DN, compared case-insensitively.
    pub group: String,
    pub role: MapRole,
    /// Permission ids (the file names them).
    pub permissions: Vec<u64>,
    pub cameras: Vec<u64>,
    pub camera_groups: Vec<u64>,
}

impl Default for DirectoryConfig {
    /// SPEC §10's defaults; `urls`, `user_base` and `user_filter` have none (required).
    fn default() -> Self {
        DirectoryConfig {
            urls: Vec::new(),
            start_tls: false,
            allow_insecure: false,
            ca_file: None,
            bind_dn: None,
            bind_password: None,
            user_base: String::new(),
            user_filter: String::new(),
            login_attribute: "uid".to_owned(),
            id_attribute: "entryUUID".to_owned(),
            name_attribute: "displayName".to_owned(),
            groups: GroupSource::MemberOf,
            nested_groups: false,
            timeout: Duration::from_secs(5),
            max_concurrent: 4,
            queue_limit: 64,
            sync_interval: Duration::from_secs(15 * MINUTE),
            maps: Vec::new(),
        }
    }
}

/// A secret from the configuration: compared and used like a string, never printed (its
/// `Debug` says only that it is set), so a logged `Config` cannot carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(secret: String) -> Self {
        SecretString(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Bounds of `push.activity_timeout`: whole seconds on the wire, and a client pings after
/// that long, so under 1 s it would ping constantly and past 1 h a dead socket lingers.
const ACTIVITY_TIMEOUT_MIN: Duration = Duration::from_secs(1);
const ACTIVITY_TIMEOUT_MAX: Duration = Duration::from_secs(HOUR);

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 443))],
            data_dir: PathBuf::from("/var/lib/vmsd"),
            log: "info".to_owned(),
            tls: TlsConfig {
                cert: None,
                key: None,
                hostnames: vec!["vms.local".to_owned(), "localhost".to_owned()],
            },
            auth: AuthConfig {
                client_token_ttl: Duration::from_secs(30 * DAY),
                admin_token_ttl: Duration::from_secs(12 * HOUR),
                refresh_token_ttl: Duration::from_secs(30 * DAY),
                sessions_limit: 10,
                lockout_threshold: 5,
                lockout_duration: Duration::from_secs(15 * MINUTE),
                ip_login_limit: 20,
                ip_login_window: Duration::from_secs(10 * MINUTE),
                password_min_length: 8,
            },
            argon2: Argon2Config {
                memory_kib: 7_168,
                iterations: 5,
                parallelism: 1,
                max_concurrent: 2,
                queue_limit: 64,
            },
            limits: LimitsConfig {
                max_body_bytes: 1_048_576,
                max_connections: 1024,
                header_read_timeout: Duration::from_secs(10),
                tls_handshake_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(30),
                shutdown_grace: Duration::from_secs(15),
                audit_max_entries: 100_000,
                ws_sockets_per_account: 16,
            },
            license: LicenseConfig {
                prefix: "LIC-XXXX-VA".to_owned(),
            },
            locales: LocalesConfig {
                available: vec!["en".to_owned(), "ru".to_owned()],
            },
            store: StoreConfig { cache_mib: 8 },
            media: MediaConfig {
                hook_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8181))),
                hls_url: "https://{host}:8888/{path}/index.m3u8?token={token}".to_owned(),
                rtsp_url: "rtsp://{host}:8554/{path}?token={token}".to_owned(),
                low_suffix: "_low".to_owned(),
                uri_prefix: String::new(),
                stream_token_ttl: Duration::from_secs(12 * HOUR),
            },
            push: PushConfig {
                app_key: "key".to_owned(),
                app_secret: None,
                path: "/pusher".to_owned(),
                activity_timeout: Duration::from_secs(30),
                max_subscriptions: 100,
            },
            directory: None,
        }
    }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Every problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(problem)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(&text),
        Err(e) => Err(ConfigErrors(vec![format!(
            "cannot read config file {}: {e}",
            path.display()
        )])),
    }
}

/// Parses a duration such as `"500ms"`, `"10s"`, `"15m"`, `"12h"` or `"30d"`. Zero parses; whether
/// it is allowed is up to the key.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let secs_per_unit = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => 1,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        _ => return None,
    };
    n.checked_mul(secs_per_unit).map(Duration::from_secs)
}

/// Parses and validates a whole configuration file; keys absent from it keep their defaults.
///
/// The file is parsed into a `toml::Table` and walked by hand against the schema instead of
/// being deserialized with serde: serde stops at the first problem, and SPEC §7 wants every
/// problem (unknown keys, wrong types, out-of-range values) reported at once.
/// `vmsd serve --hook-listen`: the same rule as `media.hook_listen` ("" disables the hook).
pub fn parse_hook_listen(text: &str) -> Result<Option<SocketAddr>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() => Ok(Some(addr)),
        Ok(_) => Err(format!(
            "must be a loopback address (127.0.0.0/8 or ::1), or \"\" to disable the hook, got {text:?}"
        )),
        Err(_) => Err(format!(
            "expected a loopback address like \"127.0.0.1:8181\", or \"\" to disable the hook, got {text:?}"
        )),
    }
}

pub fn parse_str(text: &str) -> Result<Config, ConfigErrors> {
    let root: Table = match text.parse() {
        Ok(root) => root,
        Err(e) => return Err(ConfigErrors(vec![syntax_error(text, &e)])),
    };
    let mut w = Walker::default();
    let cfg = w.config(&root);
    if w.errors.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigErrors(w.errors))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
