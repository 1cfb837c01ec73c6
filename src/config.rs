//! The TOML configuration of vmsd: the typed `Config` with the defaults of SPEC §7, parsing and
//! validation of a file, and the exit code (78, `EX_CONFIG`) used when it is wrong.
//!
//! Every problem in a file is reported at once, each naming the dotted key it is about, so an
//! operator fixes the whole file in one pass instead of one error per restart.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

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

/// A one-line syntax error with its position; toml's own Display spans several lines, which
/// would break the one-problem-per-line output.
fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("invalid TOML at line {line}, column {column}: {message}")
        }
        None => format!("invalid TOML: {message}"),
    }
}

/// How a value is shown after "got" in a message.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

/// One table of the file and its dotted name ("" for the root).
#[derive(Clone, Copy)]
struct Section<'a> {
    name: &'static str,
    table: &'a Table,
}

impl<'a> Section<'a> {
    fn key(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.name)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.table.get(key)
    }
}

#[derive(Default)]
struct Walker {
    errors: Vec<String>,
}

impl Walker {
    fn expected(&mut self, key: &str, what: &str, got: &Value) {
        self.errors
            .push(format!("{key}: expected {what}, got {}", describe(got)));
    }

    fn unknown_keys(&mut self, s: Section<'_>, known: &[&str]) {
        for key in s.table.keys() {
            if !known.contains(&key.as_str()) {
                self.errors.push(format!("unknown key '{}'", s.key(key)));
            }
        }
    }

    /// The sub-table `name` of the root; an empty one when absent so its defaults apply.
    fn section<'a>(
        &mut self,
        root: &'a Table,
        name: &'static str,
        empty: &'a Table,
    ) -> Section<'a> {
        let table = match root.get(name) {
            None => empty,
            Some(Value::Table(t)) => t,
            Some(other) => {
                self.expected(name, "a table", other);
                empty
            }
        };
        Section { name, table }
    }

    fn int<T: TryFrom<i64>>(&mut self, s: Section<'_>, key: &str, lo: i64, hi: i64, slot: &mut T) {
        let Some(v) = s.get(key) else { return };
        let name = s.key(key);
        let what = format!("an integer from {lo} to {hi}");
        match v {
            Value::Integer(i) if (lo..=hi).contains(i) => match T::try_from(*i) {
                Ok(x) => *slot = x,
                Err(_) => self.expected(&name, &what, v),
            },
            _ => self.expected(&name, &what, v),
        }
    }

    fn duration(&mut self, s: Section<'_>, key: &str, slot: &mut Duration) {
        let Some(v) = s.get(key) else { return };
        match v {
            Value::String(text) => match parse_duration(text) {
                Some(d) if !d.is_zero() => *slot = d,
                _ => self.expected(&s.key(key), DURATION_HINT, v),
            },
            _ => self.expected(&s.key(key), DURATION_HINT, v),
        }
    }

    /// A duration within `lo..=hi`; the message names the bounds in the file's own notation.
    fn duration_within(
        &mut self,
        s: Section<'_>,
        key: &str,
        (lo, lo_text): (Duration, &str),
        (hi, hi_text): (Duration, &str),
        slot: &mut Duration,
    ) {
        let Some(v) = s.get(key) else { return };
        let parsed = match v {
            Value::String(text) => parse_duration(text),
            _ => None,
        };
        match parsed {
            Some(d) if (lo..=hi).contains(&d) => *slot = d,
            _ => self.expected(
                &s.key(key),
                &format!("a duration from \"{lo_text}\" to \"{hi_text}\" like \"12h\""),
                v,
            ),
        }
    }

    /// A string of `min..=max` characters.
    fn string(&mut self, s: Section<'_>, key: &str, min: usize, max: usize) -> Option<String> {
        let v = s.get(key)?;
        let what = if max == usize::MAX {
            "a non-empty string".to_owned()
        } else {
            format!("a string of {min} to {max} characters")
        };
        match v {
            Value::String(text) if (min..=max).contains(&text.chars().count()) => {
                Some(text.clone())
            }
            _ => {
                self.expected(&s.key(key), &what, v);
                None
            }
        }
    }

    /// A non-empty array; element problems are reported as `key[i]`.
    fn array<'a>(&mut self, s: Section<'a>, key: &str, what: &str) -> Option<&'a [Value]> {
        let v = s.get(key)?;
        match v {
            Value::Array(items) if !items.is_empty() => Some(items.as_slice()),
            _ => {
                self.expected(&s.key(key), what, v);
                None
            }
        }
    }

    fn config(&mut self, root: &Table) -> Config {
        let mut c = Config::default();
        let empty = Table::new();
        let top = Section {
            name: "",
            table: root,
        };
        self.unknown_keys(
            top,
            &[
                "listen", "data_dir", "log", "tls", "auth", "argon2", "limits", "license",
                "locales", "store", "media", "push",
            ],
        );

        if let Some(listen) = self.listen(top) {
            c.listen = listen;
        }
        if let Some(dir) = self.string(top, "data_dir", 1, usize::MAX) {
            c.data_dir = PathBuf::from(dir);
        }
        if let Some(log) = self.string(top, "log", 1, usize::MAX) {
            // Checked here so `check-config` catches a filter that logging setup would reject.
            match crate::logging::parse_filter(&log) {
                Ok(_) => c.log = log,
                Err(e) => self.errors.push(format!(
                    "log: expected a tracing filter like \"info,vmsd=debug\", got {log:?} ({e})"
                )),
            }
        }

        let tls = self.section(root, "tls", &empty);
        self.tls(tls, &mut c.tls);
        let auth = self.section(root, "auth", &empty);
        self.auth(auth, &mut c.auth);
        let argon2 = self.section(root, "argon2", &empty);
        self.argon2(argon2, &mut c.argon2);
        let limits = self.section(root, "limits", &empty);
        self.limits(limits, &mut c.limits);

        let license = self.section(root, "license", &empty);
        self.unknown_keys(license, &["prefix"]);
        if let Some(prefix) = self.string(license, "prefix", 1, 64) {
            c.license.prefix = prefix;
        }

        let locales = self.section(root, "locales", &empty);
        self.locales(locales, &mut c.locales);

        let store = self.section(root, "store", &empty);
        self.unknown_keys(store, &["cache_mib"]);
        self.int(store, "cache_mib", 1, 1024, &mut c.store.cache_mib);

        let media = self.section(root, "media", &empty);
        self.media(media, &mut c.media);

        let push = self.section(root, "push", &empty);
        self.push(push, &mut c.push);
        c
    }

    fn push(&mut self, s: Section<'_>, p: &mut PushConfig) {
        self.unknown_keys(
            s,
            &[
                "app_key",
                "app_secret",
                "path",
                "activity_timeout",
                "max_subscriptions",
            ],
        );
        if let Some(v) = s.get("app_key") {
            match v {
                // It lands in a URL path segment and before the signature's ':'.
                Value::String(key)
                    if (1..=64).contains(&key.len())
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)) =>
                {
                    p.app_key = key.clone();
                }
                _ => self.expected(
                    &s.key("app_key"),
                    "1 to 64 characters from A-Z, a-z, 0-9, '.', '_', '~' and '-'",
                    v,
                ),
            }
        }
        if let Some(v) = s.get("app_secret") {
            match v {
                Value::String(secret)
                    if (16..=256).contains(&secret.len())
                        && secret.chars().all(|c| c.is_ascii_graphic()) =>
                {
                    p.app_secret = Some(SecretString::new(secret.clone()));
                }
                // The value is never echoed: it is a secret, even when malformed.
                _ => self.errors.push(format!(
                    "{}: expected 16 to 256 printable ASCII characters (or leave it unset to \
                     have one generated)",
                    s.key("app_secret")
                )),
            }
        }
        if let Some(v) = s.get("path") {
            match v {
                Value::String(path)
                    if path.is_empty()
                        || (path.starts_with('/')
                            && !path.ends_with('/')
                            && path.len() <= 64
                            && !path.contains("//")
                            && path
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b))) =>
                {
                    p.path = path.clone();
                }
                _ => self.expected(
                    &s.key("path"),
                    "\"\" or a path of up to 64 characters like \"/pusher\" (starting with '/', \
                     no trailing '/', only A-Z a-z 0-9 / . _ ~ -)",
                    v,
                ),
            }
        }
        self.duration_within(
            s,
            "activity_timeout",
            (ACTIVITY_TIMEOUT_MIN, "1s"),
            (ACTIVITY_TIMEOUT_MAX, "1h"),
            &mut p.activity_timeout,
        );
        self.int(s, "max_subscriptions", 1, 10_000, &mut p.max_subscriptions);
    }

    fn listen(&mut self, top: Section<'_>) -> Option<Vec<SocketAddr>> {
        let what = "a non-empty array of addresses like \"0.0.0.0:443\"";
        let items = self.array(top, "listen", what)?;
        let mut addrs: Vec<SocketAddr> = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let name = format!("listen[{i}]");
            let parsed = match item {
                Value::String(text) => text.parse::<SocketAddr>().ok(),
                _ => None,
            };
            match parsed {
                // Binding the same address twice would fail at startup with a less clear error.
                Some(addr) => match addrs.iter().position(|a| *a == addr) {
                    Some(first) => {
                        ok = false;
                        self.errors
                            .push(format!("{name}: duplicate of listen[{first}] ({addr})"));
                    }
                    None => addrs.push(addr),
                },
                None => {
                    ok = false;
                    self.expected(
                        &name,
                        "an address like \"0.0.0.0:443\" or \"[::]:443\"",
                        item,
                    );
                }
            }
        }
        ok.then_some(addrs)
    }

    fn tls(&mut self, s: Section<'_>, tls: &mut TlsConfig) {
        self.unknown_keys(s, &["cert", "key", "hostnames"]);
        tls.cert = self.string(s, "cert", 1, usize::MAX).map(PathBuf::from);
        tls.key = self.string(s, "key", 1, usize::MAX).map(PathBuf::from);
        // Judged on presence alone, so a mistyped value still counts as "set" here.
        match (s.get("cert").is_some(), s.get("key").is_some()) {
            (true, false) => self
                .errors
                .push("tls.cert is set but tls.key is not: set both, or neither for a self-signed certificate".to_owned()),
            (false, true) => self
                .errors
                .push("tls.key is set but tls.cert is not: set both, or neither for a self-signed certificate".to_owned()),
            _ => {}
        }

        let Some(items) = self.array(s, "hostnames", "a non-empty array of host names") else {
            return;
        };
        let mut names = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                // ASCII without spaces: it becomes an IA5String DNS name in the certificate.
                Value::String(h)
                    if !h.is_empty()
                        && h.len() <= 253
                        && h.chars().all(|c| c.is_ascii_graphic()) =>
                {
                    names.push(h.clone());
                }
                _ => self.expected(
                    &format!("tls.hostnames[{i}]"),
                    "a host name (1 to 253 ASCII characters, no spaces)",
                    item,
                ),
            }
        }
        if names.len() == items.len() {
            tls.hostnames = names;
        }
    }

    fn auth(&mut self, s: Section<'_>, a: &mut AuthConfig) {
        self.unknown_keys(
            s,
            &[
                "client_token_ttl",
                "admin_token_ttl",
                "sessions_limit",
                "lockout_threshold",
                "lockout_duration",
                "ip_login_limit",
                "ip_login_window",
                "password_min_length",
            ],
        );
        self.duration(s, "client_token_ttl", &mut a.client_token_ttl);
        self.duration(s, "admin_token_ttl", &mut a.admin_token_ttl);
        self.int(s, "sessions_limit", 1, 1000, &mut a.sessions_limit);
        self.int(s, "lockout_threshold", 1, 1000, &mut a.lockout_threshold);
        self.duration(s, "lockout_duration", &mut a.lockout_duration);
        self.int(s, "ip_login_limit", 1, 100_000, &mut a.ip_login_limit);
        self.duration(s, "ip_login_window", &mut a.ip_login_window);
        self.int(s, "password_min_length", 8, 128, &mut a.password_min_length);
    }

    fn argon2(&mut self, s: Section<'_>, a: &mut Argon2Config) {
        self.unknown_keys(
            s,
            &[
                "memory_kib",
                "iterations",
                "parallelism",
                "max_concurrent",
                "queue_limit",
            ],
        );
        self.int(s, "iterations", 1, 16, &mut a.iterations);
        self.int(s, "parallelism", 1, 16, &mut a.parallelism);
        // Argon2 needs at least 8 KiB per lane; a bad parallelism leaves the default (1) here.
        let min_memory = 8 * i64::from(a.parallelism);
        self.int(
            s,
            "memory_kib",
            min_memory,
            ARGON2_MAX_MEMORY_KIB,
            &mut a.memory_kib,
        );
        self.int(s, "max_concurrent", 1, 64, &mut a.max_concurrent);
        self.int(s, "queue_limit", 0, 100_000, &mut a.queue_limit);
    }

    fn limits(&mut self, s: Section<'_>, l: &mut LimitsConfig) {
        self.unknown_keys(
            s,
            &[
                "max_body_bytes",
                "max_connections",
                "header_read_timeout",
                "tls_handshake_timeout",
                "request_timeout",
                "shutdown_grace",
                "audit_max_entries",
            ],
        );
        self.int(
            s,
            "max_body_bytes",
            1024,
            MAX_BODY_BYTES_LIMIT,
            &mut l.max_body_bytes,
        );
        self.int(s, "max_connections", 1, 1_000_000, &mut l.max_connections);
        self.duration(s, "header_read_timeout", &mut l.header_read_timeout);
        self.duration(s, "tls_handshake_timeout", &mut l.tls_handshake_timeout);
        self.duration(s, "request_timeout", &mut l.request_timeout);
        self.duration(s, "shutdown_grace", &mut l.shutdown_grace);
        self.int(
            s,
            "audit_max_entries",
            100,
            100_000_000,
            &mut l.audit_max_entries,
        );
    }

    fn media(&mut self, s: Section<'_>, m: &mut MediaConfig) {
        self.unknown_keys(
            s,
            &[
                "hook_listen",
                "hls_url",
                "rtsp_url",
                "low_suffix",
                "uri_prefix",
                "stream_token_ttl",
            ],
        );
        if let Some(v) = s.get("hook_listen") {
            self.hook_listen(&s.key("hook_listen"), v, &mut m.hook_listen);
        }
        if let Some(template) = self.url_template(s, "hls_url") {
            m.hls_url = template;
        }
        if let Some(template) = self.url_template(s, "rtsp_url") {
            m.rtsp_url = template;
        }
        if let Some(v) = s.get("low_suffix") {
            match v {
                // The suffix lands in URLs and media-server path names as is, so it is limited
                // to RFC 3986's unreserved characters: nothing to escape anywhere.
                Value::String(suffix)
                    if (1..=32).contains(&suffix.len())
                        && suffix
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)) =>
                {
                    m.low_suffix = suffix.clone();
                }
                _ => self.expected(
                    &s.key("low_suffix"),
                    "1 to 32 characters from A-Z, a-z, 0-9, '.', '_', '~' and '-'",
                    v,
                ),
            }
        }
        if let Some(v) = s.get("uri_prefix") {
            match v {
                Value::String(prefix)
                    if prefix.is_empty()
                        || (prefix.starts_with('/')
                            && prefix.len() <= 256
                            && !prefix.contains(['?', '#'])
                            && prefix.chars().all(|c| c.is_ascii_graphic())) =>
                {
                    m.uri_prefix = prefix.clone();
                }
                _ => self.expected(
                    &s.key("uri_prefix"),
                    "\"\" or a URI path of up to 256 printable ASCII characters starting with \"/\" \
                     (no '?' or '#')",
                    v,
                ),
            }
        }
        self.duration_within(
            s,
            "stream_token_ttl",
            (STREAM_TOKEN_TTL_MIN, "1m"),
            (STREAM_TOKEN_TTL_MAX, "30d"),
            &mut m.stream_token_ttl,
        );
    }

    /// `media.hook_listen`: "" disables the hook; otherwise a loopback address, because the
    /// hook is plain HTTP and answers whoever asks which tokens are valid.
    fn hook_listen(&mut self, name: &str, v: &Value, slot: &mut Option<SocketAddr>) {
        let parsed = match v {
            Value::String(text) if text.is_empty() => {
                *slot = None;
                return;
            }
            Value::String(text) => text.parse::<SocketAddr>().ok(),
            _ => None,
        };
        match parsed {
            Some(addr) if addr.ip().is_loopback() => *slot = Some(addr),
            Some(_) => self.errors.push(format!(
                "{name}: must be a loopback address (127.0.0.0/8 or ::1), or \"\" to disable the hook, got {}",
                describe(v)
            )),
            None => self.expected(
                name,
                "a loopback address like \"127.0.0.1:8181\", or \"\" to disable the hook",
                v,
            ),
        }
    }

    /// A stream URL template: `{path}` and `{token}` are required (a URL without them would
    /// name no camera or carry no authorization); `{host}` is optional; any other `{...}` is a
    /// typo that would otherwise reach clients verbatim.
    fn url_template(&mut self, s: Section<'_>, key: &str) -> Option<String> {
        let v = s.get(key)?;
        let name = s.key(key);
        let what = format!(
            "a URL template of at most {URL_TEMPLATE_MAX_CHARS} printable characters containing \
             {{path}} and {{token}} (and optionally {{host}})"
        );
        let Value::String(template) = v else {
            self.expected(&name, &what, v);
            return None;
        };
        if template.chars().count() > URL_TEMPLATE_MAX_CHARS
            || template
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            || !template.contains("{path}")
            || !template.contains("{token}")
        {
            self.expected(&name, &what, v);
            return None;
        }
        let unknown: Vec<&str> = placeholders(template)
            .filter(|p| !matches!(*p, "{host}" | "{path}" | "{token}"))
            .collect();
        if !unknown.is_empty() {
            self.errors.push(format!(
                "{name}: unknown placeholder {} (the placeholders are {{host}}, {{path}} and {{token}}), got {}",
                unknown.join(", "),
                describe(v)
            ));
            return None;
        }
        Some(template.clone())
    }

    fn locales(&mut self, s: Section<'_>, l: &mut LocalesConfig) {
        self.unknown_keys(s, &["available"]);
        let Some(items) = self.array(s, "available", "a non-empty array of locale codes") else {
            return;
        };
        let mut codes = Vec::with_capacity(items.len());
        let mut seen = HashSet::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let name = format!("locales.available[{i}]");
            match item {
                Value::String(code)
                    if (2..=10).contains(&code.len())
                        && code
                            .chars()
                            .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-') =>
                {
                    if seen.insert(code.as_str()) {
                        codes.push(code.clone());
                    } else {
                        ok = false;
                        self.errors
                            .push(format!("{name}: duplicate locale {code:?}"));
                    }
                }
                _ => {
                    ok = false;
                    self.expected(
                        &name,
                        "a locale code of 2 to 10 characters from a-z, A-Z, '_' and '-'",
                        item,
                    );
                }
            }
        }
        if ok {
            l.available = codes;
        }
    }
}

/// Every `{...}` of a template, and an unclosed `{...` tail as written.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    let mut rest = template;
    std::iter::from_fn(move || {
        let from = rest.get(rest.find('{')?..)?;
        let len = from.find('}').map_or(from.len(), |end| end + 1);
        let (found, tail) = from.split_at(len);
        rest = tail;
        Some(found)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse_str(text) {
            Ok(cfg) => panic!("expected errors, parsed {cfg:?}"),
            Err(ConfigErrors(e)) => e,
        }
    }

    const FULL: &str = r#"
listen = ["0.0.0.0:443", "[::]:443"]
data_dir = "/srv/vmsd"
log = "warn,vmsd=debug"
[tls]
cert = "/etc/vmsd/tls/cert.pem"
key = "/etc/vmsd/tls/key.pem"
hostnames = ["nvr.example", "localhost"]
[auth]
client_token_ttl = "7d"
admin_token_ttl = "1h"
sessions_limit = 3
lockout_threshold = 7
lockout_duration = "30m"
ip_login_limit = 50
ip_login_window = "90s"
password_min_length = 12
[argon2]
memory_kib = 65536
iterations = 3
parallelism = 4
max_concurrent = 4
queue_limit = 0
[limits]
max_body_bytes = 2048
max_connections = 10
header_read_timeout = "5s"
tls_handshake_timeout = "3s"
request_timeout = "1m"
shutdown_grace = "500ms"
audit_max_entries = 5000
[license]
prefix = "LIC-ABCD-VA"
[locales]
available = ["en", "ru", "pt-BR"]
[store]
cache_mib = 64
[media]
hook_listen = "[::1]:9000"
hls_url = "http://{host}/hls/{path}/index.m3u8?token={token}"
rtsp_url = "rtsp://10.0.0.5:554/{path}?token={token}"
low_suffix = ".sub"
uri_prefix = "/hls"
stream_token_ttl = "1h"
"#;

    #[test]
    fn defaults_match_spec() {
        let c = Config::default();
        assert_eq!(c.listen, vec!["0.0.0.0:443".parse::<SocketAddr>().unwrap()]);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/vmsd"));
        assert_eq!(c.log, "info");
        assert_eq!(c.tls.cert, None);
        assert_eq!(c.tls.key, None);
        assert_eq!(c.tls.hostnames, ["vms.local", "localhost"]);
        assert_eq!(c.auth.client_token_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(c.auth.admin_token_ttl, Duration::from_secs(12 * 3600));
        assert_eq!(c.auth.sessions_limit, 10);
        assert_eq!(c.auth.lockout_threshold, 5);
        assert_eq!(c.auth.lockout_duration, Duration::from_secs(15 * 60));
        assert_eq!(c.auth.ip_login_limit, 20);
        assert_eq!(c.auth.ip_login_window, Duration::from_secs(10 * 60));
        assert_eq!(c.auth.password_min_length, 8);
        assert_eq!(c.argon2.memory_kib, 7168);
        assert_eq!(c.argon2.iterations, 5);
        assert_eq!(c.argon2.parallelism, 1);
        assert_eq!(c.argon2.max_concurrent, 2);
        assert_eq!(c.argon2.queue_limit, 64);
        assert_eq!(c.limits.max_body_bytes, 1_048_576);
        assert_eq!(c.limits.max_connections, 1024);
        assert_eq!(c.limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.limits.tls_handshake_timeout, Duration::from_secs(10));
        assert_eq!(c.limits.request_timeout, Duration::from_secs(30));
        assert_eq!(c.limits.shutdown_grace, Duration::from_secs(15));
        assert_eq!(c.license.prefix, "LIC-XXXX-VA");
        assert_eq!(c.locales.available, ["en", "ru"]);
        assert_eq!(c.store.cache_mib, 8);
        assert_eq!(
            c.media.hook_listen,
            Some("127.0.0.1:8181".parse::<SocketAddr>().unwrap())
        );
        assert_eq!(
            c.media.hls_url,
            "https://{host}:8888/{path}/index.m3u8?token={token}"
        );
        assert_eq!(c.media.rtsp_url, "rtsp://{host}:8554/{path}?token={token}");
        assert_eq!(c.media.low_suffix, "_low");
        assert_eq!(c.media.uri_prefix, "");
        assert_eq!(c.media.stream_token_ttl, Duration::from_secs(12 * 3600));
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse_str("").unwrap(), Config::default());
    }

    #[test]
    fn full_example_parses() {
        let c = parse_str(FULL).unwrap();
        assert_eq!(
            c.listen,
            vec![
                "0.0.0.0:443".parse::<SocketAddr>().unwrap(),
                "[::]:443".parse().unwrap()
            ]
        );
        assert_eq!(c.data_dir, PathBuf::from("/srv/vmsd"));
        assert_eq!(c.log, "warn,vmsd=debug");
        assert_eq!(c.tls.cert, Some(PathBuf::from("/etc/vmsd/tls/cert.pem")));
        assert_eq!(c.tls.key, Some(PathBuf::from("/etc/vmsd/tls/key.pem")));
        assert_eq!(c.tls.hostnames, ["nvr.example", "localhost"]);
        assert_eq!(
            c.auth,
            AuthConfig {
                client_token_ttl: Duration::from_secs(7 * 86400),
                admin_token_ttl: Duration::from_secs(3600),
                sessions_limit: 3,
                lockout_threshold: 7,
                lockout_duration: Duration::from_secs(1800),
                ip_login_limit: 50,
                ip_login_window: Duration::from_secs(90),
                password_min_length: 12,
            }
        );
        assert_eq!(
            c.argon2,
            Argon2Config {
                memory_kib: 65536,
                iterations: 3,
                parallelism: 4,
                max_concurrent: 4,
                queue_limit: 0,
            }
        );
        assert_eq!(
            c.limits,
            LimitsConfig {
                max_body_bytes: 2048,
                max_connections: 10,
                header_read_timeout: Duration::from_secs(5),
                tls_handshake_timeout: Duration::from_secs(3),
                request_timeout: Duration::from_secs(60),
                shutdown_grace: Duration::from_millis(500),
                audit_max_entries: 5000,
            }
        );
        assert_eq!(c.license.prefix, "LIC-ABCD-VA");
        assert_eq!(c.locales.available, ["en", "ru", "pt-BR"]);
        assert_eq!(c.store, StoreConfig { cache_mib: 64 });
        assert_eq!(
            c.media,
            MediaConfig {
                hook_listen: Some("[::1]:9000".parse().unwrap()),
                hls_url: "http://{host}/hls/{path}/index.m3u8?token={token}".to_owned(),
                rtsp_url: "rtsp://10.0.0.5:554/{path}?token={token}".to_owned(),
                low_suffix: ".sub".to_owned(),
                uri_prefix: "/hls".to_owned(),
                stream_token_ttl: Duration::from_secs(3600),
            }
        );
    }

    #[test]
    fn store_cache_mib_range() {
        assert_eq!(
            parse_str("[store]\ncache_mib = 1").unwrap().store.cache_mib,
            1
        );
        assert_eq!(
            parse_str("[store]\ncache_mib = 1024")
                .unwrap()
                .store
                .cache_mib,
            1024
        );
        assert_eq!(
            errors("[store]\ncache_mib = 0\nsize = 1"),
            [
                "unknown key 'store.size'",
                "store.cache_mib: expected an integer from 1 to 1024, got 0",
            ]
        );
        assert_eq!(
            errors("[store]\ncache_mib = 1025"),
            ["store.cache_mib: expected an integer from 1 to 1024, got 1025"]
        );
    }

    #[test]
    fn the_hook_listen_flag_follows_the_same_rule() {
        assert_eq!(parse_hook_listen(""), Ok(None));
        assert_eq!(
            parse_hook_listen("127.0.0.1:0"),
            Ok(Some("127.0.0.1:0".parse().unwrap()))
        );
        assert_eq!(
            parse_hook_listen("[::1]:8181"),
            Ok(Some("[::1]:8181".parse().unwrap()))
        );
        assert!(parse_hook_listen("0.0.0.0:8181")
            .unwrap_err()
            .starts_with("must be a loopback address"));
        assert!(parse_hook_listen("localhost:8181")
            .unwrap_err()
            .starts_with("expected a loopback address"));
    }

    #[test]
    fn hook_listen_is_loopback_or_disabled() {
        let hook = |text: &str| parse_str(&format!("[media]\nhook_listen = {text:?}"));
        assert_eq!(hook("").unwrap().media.hook_listen, None);
        for ok in ["127.0.0.1:8181", "127.8.9.10:1", "[::1]:8181"] {
            assert_eq!(
                hook(ok).unwrap().media.hook_listen,
                Some(ok.parse().unwrap()),
                "{ok}"
            );
        }
        for public in [
            "0.0.0.0:8181",
            "192.168.1.10:8181",
            "[::]:8181",
            "[::ffff:127.0.0.1]:8181",
        ] {
            assert_eq!(
                errors(&format!("[media]\nhook_listen = {public:?}")),
                [format!(
                    "media.hook_listen: must be a loopback address (127.0.0.0/8 or ::1), \
                     or \"\" to disable the hook, got {public:?}"
                )]
            );
        }
        let e = errors("[media]\nhook_listen = \"localhost:8181\"");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("media.hook_listen: expected a loopback address"),
            "{e:?}"
        );
        assert_eq!(errors("[media]\nhook_listen = 8181").len(), 1);
    }

    #[test]
    fn url_templates_need_path_and_token() {
        let template = |key: &str, t: &str| parse_str(&format!("[media]\n{key} = {t:?}"));
        let c = template("rtsp_url", "rtsp://cams.example/{path}?token={token}").unwrap();
        assert_eq!(c.media.rtsp_url, "rtsp://cams.example/{path}?token={token}");
        for bad in [
            "",
            "https://{host}/{path}/index.m3u8",
            "https://{host}/index.m3u8?token={token}",
            "https://{host}/{path} ?token={token}",
            "https://{host}/{path}?token={token}\n",
        ] {
            for key in ["hls_url", "rtsp_url"] {
                let e = errors(&format!("[media]\n{key} = {bad:?}"));
                assert_eq!(e.len(), 1, "{key} {bad:?}: {e:?}");
                assert!(
                    e[0].starts_with(&format!("media.{key}: expected a URL template")),
                    "{e:?}"
                );
            }
        }
        let long = format!(
            "https://{{host}}/{{path}}?token={{token}}&x={}",
            "a".repeat(1024)
        );
        assert_eq!(errors(&format!("[media]\nhls_url = {long:?}")).len(), 1);
        assert_eq!(errors("[media]\nhls_url = 5").len(), 1);
        assert_eq!(
            errors("[media]\nhls_url = \"https://{hots}/{path}?token={token}&x={oops\""),
            [
                "media.hls_url: unknown placeholder {hots}, {oops (the placeholders are {host}, \
              {path} and {token}), got \"https://{hots}/{path}?token={token}&x={oops\""
            ]
        );
    }

    #[test]
    fn media_suffix_prefix_and_ttl() {
        let c = parse_str(
            "[media]\nlow_suffix = \"-sub~2.x_\"\nuri_prefix = \"/\"\nstream_token_ttl = \"1m\"",
        )
        .unwrap();
        assert_eq!(c.media.low_suffix, "-sub~2.x_");
        assert_eq!(c.media.uri_prefix, "/");
        assert_eq!(c.media.stream_token_ttl, Duration::from_secs(60));
        let c = parse_str("[media]\nstream_token_ttl = \"30d\"").unwrap();
        assert_eq!(c.media.stream_token_ttl, Duration::from_secs(30 * 86400));

        let e = errors(&format!(
            "[media]\nlow_suffix = \"{}\"\nuri_prefix = \"hls\"\nstream_token_ttl = \"59s\"\nbogus = 1",
            "x".repeat(33)
        ));
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!(e[0], "unknown key 'media.bogus'");
        assert!(
            e[1].starts_with("media.low_suffix: expected 1 to 32 characters"),
            "{e:?}"
        );
        assert!(
            e[2].starts_with("media.uri_prefix: expected \"\" or a URI path"),
            "{e:?}"
        );
        assert_eq!(
            e[3],
            "media.stream_token_ttl: expected a duration from \"1m\" to \"30d\" like \"12h\", got \"59s\""
        );
        for bad_suffix in ["", "_low/", "lo w", "_lów", "%20"] {
            assert_eq!(
                errors(&format!("[media]\nlow_suffix = {bad_suffix:?}")).len(),
                1,
                "{bad_suffix:?}"
            );
        }
        for bad_prefix in ["/hls?x", "/h ls", "/hls#", "hls/"] {
            assert_eq!(
                errors(&format!("[media]\nuri_prefix = {bad_prefix:?}")).len(),
                1,
                "{bad_prefix:?}"
            );
        }
        for bad_ttl in ["\"31d\"", "\"0s\"", "\"500ms\"", "43200"] {
            assert_eq!(
                errors(&format!("[media]\nstream_token_ttl = {bad_ttl}")).len(),
                1,
                "{bad_ttl}"
            );
        }
    }

    #[test]
    fn unknown_top_level_key() {
        assert_eq!(errors("lisen = [\"0.0.0.0:1\"]"), ["unknown key 'lisen'"]);
        assert_eq!(errors("[metrics]\nport = 1"), ["unknown key 'metrics'"]);
    }

    #[test]
    fn unknown_nested_key() {
        assert_eq!(
            errors("[auth]\nsesions_limit = 5"),
            ["unknown key 'auth.sesions_limit'"]
        );
    }

    #[test]
    fn all_problems_reported_together() {
        let e = errors(
            "[auth]\nsessions_limit = \"ten\"\nbogus = 1\n[limits]\nrequest_timeout = \"0s\"\n",
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e.contains(&"unknown key 'auth.bogus'".to_owned()), "{e:?}");
        assert!(
            e.contains(
                &"auth.sessions_limit: expected an integer from 1 to 1000, got \"ten\"".to_owned()
            ),
            "{e:?}"
        );
        assert!(
            e.iter().any(
                |m| m.starts_with("limits.request_timeout: expected a duration")
                    && m.ends_with("got \"0s\"")
            ),
            "{e:?}"
        );
        let shown = ConfigErrors(e).to_string();
        assert_eq!(shown.lines().count(), 3);
    }

    #[test]
    fn range_checks() {
        let e = errors(
            "[auth]\npassword_min_length = 7\nip_login_limit = 100001\n\
             [argon2]\nparallelism = 4\nmemory_kib = 31\niterations = 0\n\
             [limits]\nmax_body_bytes = 1023\nmax_connections = 0\naudit_max_entries = 99\n",
        );
        assert_eq!(
            e,
            [
                "auth.ip_login_limit: expected an integer from 1 to 100000, got 100001",
                "auth.password_min_length: expected an integer from 8 to 128, got 7",
                "argon2.iterations: expected an integer from 1 to 16, got 0",
                "argon2.memory_kib: expected an integer from 32 to 1048576, got 31",
                "limits.max_body_bytes: expected an integer from 1024 to 67108864, got 1023",
                "limits.max_connections: expected an integer from 1 to 1000000, got 0",
                "limits.audit_max_entries: expected an integer from 100 to 100000000, got 99",
            ]
        );
        assert!(parse_str("[argon2]\nqueue_limit = 0\nmemory_kib = 8").is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(43200)));
        assert_eq!(parse_duration("30d"), Some(Duration::from_secs(2_592_000)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        for bad in [
            "",
            "10",
            "s",
            "-5s",
            "1.5h",
            "10 s",
            "10S",
            "5w",
            "1h30m",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        let e = errors("[auth]\nadmin_token_ttl = 3600\nlockout_duration = \"0m\"");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("auth.admin_token_ttl: expected a duration"),
            "{e:?}"
        );
        assert!(e[0].ends_with("got 3600"), "{e:?}");
    }

    #[test]
    fn only_cert_set_is_one_error() {
        let e = errors("[tls]\ncert = \"/etc/vmsd/tls/cert.pem\"");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("tls.cert is set but tls.key is not"),
            "{e:?}"
        );
        let e = errors("[tls]\nkey = \"/etc/vmsd/tls/key.pem\"");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("tls.key is set but tls.cert is not"),
            "{e:?}"
        );
    }

    #[test]
    fn listen_errors_name_the_index() {
        let e = errors("listen = [\"127.0.0.1:80\", \"nope\", 5, \"127.0.0.1:80\"]");
        assert_eq!(
            e,
            [
                "listen[1]: expected an address like \"0.0.0.0:443\" or \"[::]:443\", got \"nope\"",
                "listen[2]: expected an address like \"0.0.0.0:443\" or \"[::]:443\", got 5",
                "listen[3]: duplicate of listen[0] (127.0.0.1:80)",
            ]
        );
        assert_eq!(errors("listen = []").len(), 1);
        assert_eq!(errors("listen = \"0.0.0.0:443\"").len(), 1);
    }

    #[test]
    fn strings_lists_and_tables() {
        let e = errors(
            "log = \"\"\ndata_dir = 1\nauth = 5\n[tls]\nhostnames = [\"ok\", \"\", \"a b\"]\n\
             [license]\nprefix = \"\"\n[locales]\navailable = [\"en\", \"e\", \"en\", \"r$\"]\n",
        );
        assert_eq!(
            e,
            [
                "data_dir: expected a non-empty string, got 1",
                "log: expected a non-empty string, got \"\"",
                "tls.hostnames[1]: expected a host name (1 to 253 ASCII characters, no spaces), got \"\"",
                "tls.hostnames[2]: expected a host name (1 to 253 ASCII characters, no spaces), got \"a b\"",
                "auth: expected a table, got 5",
                "license.prefix: expected a string of 1 to 64 characters, got \"\"",
                "locales.available[1]: expected a locale code of 2 to 10 characters from a-z, A-Z, '_' and '-', got \"e\"",
                "locales.available[2]: duplicate locale \"en\"",
                "locales.available[3]: expected a locale code of 2 to 10 characters from a-z, A-Z, '_' and '-', got \"r$\"",
            ]
        );
        assert_eq!(errors("[locales]\navailable = []").len(), 1);
        assert_eq!(errors("[tls]\nhostnames = []").len(), 1);
        let long = "x".repeat(65);
        assert_eq!(errors(&format!("[license]\nprefix = \"{long}\"")).len(), 1);
    }

    #[test]
    fn bad_log_filter() {
        let e = errors("log = \"vmsd=loud\"");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("log: expected a tracing filter"), "{e:?}");
    }

    #[test]
    fn syntax_error_is_one_line_with_position() {
        let e = errors("log = \"info\"\n[auth\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("invalid TOML at line 2"), "{e:?}");
        assert!(!e[0].contains('\n'), "{e:?}");
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.toml");
        let ConfigErrors(e) = load(&path).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].contains(&path.display().to_string()), "{e:?}");
    }

    #[test]
    fn shipped_config_files_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let appliance = load(&dir.join("vmsd.toml")).unwrap();
        assert_eq!(appliance, Config::default());
        let dev = load(&dir.join("dev.toml")).unwrap();
        assert_eq!(
            dev.listen,
            vec!["127.0.0.1:8443".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(dev.data_dir, PathBuf::from("./data"));
        assert_eq!(dev.log, "info,vmsd=debug");
    }

    #[test]
    fn push_section_defaults_values_and_errors() {
        let c = Config::default();
        assert_eq!(c.push.app_key, "key");
        assert_eq!(c.push.app_secret, None);
        assert_eq!(c.push.path, "/pusher");
        assert_eq!(c.push.activity_timeout, Duration::from_secs(30));
        assert_eq!(c.push.max_subscriptions, 100);
        let c = parse_str(
            "[push]\napp_key = \"app-key\"\napp_secret = \"0123456789abcdef0123\"\npath = \"\"\n\
             activity_timeout = \"2m\"\nmax_subscriptions = 5",
        )
        .unwrap();
        assert_eq!(c.push.app_key, "app-key");
        assert_eq!(
            c.push.app_secret.as_ref().map(SecretString::expose),
            Some("0123456789abcdef0123")
        );
        assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
        assert_eq!(c.push.path, "");
        assert_eq!(c.push.activity_timeout, Duration::from_secs(120));
        assert_eq!(c.push.max_subscriptions, 5);
        let e = errors(
            "[push]\napp_key = \"a/b\"\napp_secret = \"short-secret\"\npath = \"pusher/\"\n\
             activity_timeout = \"2h\"\nmax_subscriptions = 0\nextra = 1",
        );
        assert_eq!(e.len(), 6, "{e:?}");
        assert_eq!(e[0], "unknown key 'push.extra'");
        assert!(e.iter().all(|m| !m.contains("short-secret")), "{e:?}");
        assert!(e
            .iter()
            .any(|m| m.starts_with("push.app_secret: expected 16 to 256")));
        assert!(e.iter().any(|m| m.starts_with("push.path: expected")));
        assert!(e
            .iter()
            .any(|m| m
                .starts_with("push.activity_timeout: expected a duration from \"1s\" to \"1h\"")));
        assert!(e
            .iter()
            .any(|m| m.starts_with("push.max_subscriptions: expected an integer from 1 to 10000")));
        assert!(e.iter().any(|m| m.starts_with("push.app_key: expected")));
    }
}
