//! Reading a configuration file: TOML syntax errors as one line with their position, then a
//! walk over every section that checks each key's type and range and reports every problem at
//! once (unknown keys included), starting from the defaults.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use toml::{Table, Value};

use super::*;

#[path = "directory.rs"]
mod directory;

/// A one-line syntax error with its position; toml's own Display spans several lines, which
/// would break the one-problem-per-line output.
pub(super) fn syntax_error(text: &str, e: &toml::de::Error) -> String {
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
pub(super) struct Walker {
    pub(super) errors: Vec<String>,
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

    pub(super) fn config(&mut self, root: &Table) -> Config {
        let mut c = Config::default();
        let empty = Table::new();
        let top = Section {
            name: "",
            table: root,
        };
        self.unknown_keys(
            top,
            &[
                "listen",
                "data_dir",
                "log",
                "tls",
                "auth",
                "argon2",
                "limits",
                "license",
                "locales",
                "store",
                "media",
                "push",
                "directory",
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

        c.directory = self.directory(root);
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
                            && !crate::console::is_console_path(path)
                            && path
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b))) =>
                {
                    p.path = path.clone();
                }
                _ => self.expected(
                    &s.key("path"),
                    "\"\" or a path of up to 64 characters like \"/pusher\" (starting with '/', \
                     no trailing '/', only A-Z a-z 0-9 / . _ ~ -, not the admin console's \
                     /console)",
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
                "refresh_token_ttl",
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
        self.duration(s, "refresh_token_ttl", &mut a.refresh_token_ttl);
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
                "ws_sockets_per_account",
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
        self.int(
            s,
            "ws_sockets_per_account",
            1,
            100_000,
            &mut l.ws_sockets_per_account,
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
