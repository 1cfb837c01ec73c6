//! The `[directory]` section (SPEC §10): LDAP / Active Directory logins. Its own file because
//! it is the largest section and the only one that reads another file (`bind_password_file`)
//! and checks LDAP syntax (filters, URLs) at `check-config` time.

use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};

use super::{Section, Walker};
use crate::config::{
    DirectoryConfig, DirectoryMap, GroupSource, MapRole, SecretString, DURATION_HINT,
};
use crate::permissions::PERMISSIONS;

/// Longest accepted DN, filter or attribute value in the section: far beyond any real one,
/// short enough that a pasted file cannot become a search request of megabytes.
const MAX_LDAP_STRING: usize = 1024;

/// `bind_password_file` larger than this is not a password file.
const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

const KEYS: &[&str] = &[
    "urls",
    "start_tls",
    "allow_insecure",
    "ca_file",
    "bind_dn",
    "bind_password_file",
    "user_base",
    "user_filter",
    "login_attribute",
    "id_attribute",
    "name_attribute",
    "groups",
    "nested_groups",
    "timeout",
    "max_concurrent",
    "queue_limit",
    "sync_interval",
    "map",
];

impl Walker {
    /// `[directory]`, when the file has one.
    pub(super) fn directory(&mut self, root: &Table) -> Option<DirectoryConfig> {
        let table = match root.get("directory")? {
            Value::Table(t) => t,
            other => {
                self.expected("directory", "a table", other);
                return None;
            }
        };
        if !cfg!(feature = "directory") {
            self.errors.push(
                "directory: this build of vmsd has no directory support (cargo feature \
                 \"directory\")"
                    .to_owned(),
            );
            return None;
        }
        let s = Section {
            name: "directory",
            table,
        };
        self.unknown_keys(s, KEYS);
        let mut d = DirectoryConfig::default();
        let before = self.errors.len();
        for key in ["urls", "user_base", "user_filter"] {
            if s.get(key).is_none() {
                self.errors.push(format!(
                    "directory.{key} is required when [directory] is set"
                ));
            }
        }
        self.bool(s, "start_tls", &mut d.start_tls);
        self.bool(s, "allow_insecure", &mut d.allow_insecure);
        if let Some(items) = self.array(s, "urls", "a non-empty array of ldap:// or ldaps:// URLs")
        {
            for (i, item) in items.iter().enumerate() {
                let name = format!("directory.urls[{i}]");
                match item {
                    Value::String(url) => match check_url(url) {
                        Ok(Scheme::Ldaps) => d.urls.push(url.clone()),
                        Ok(Scheme::Ldap) if d.start_tls || d.allow_insecure => {
                            d.urls.push(url.clone());
                        }
                        Ok(Scheme::Ldap) => self.errors.push(format!(
                            "{name}: {url:?} is plain LDAP: passwords would cross the network \
                             in clear; use ldaps://, or set directory.start_tls = true (or \
                             directory.allow_insecure = true on a trusted network)"
                        )),
                        Err(why) => self.errors.push(format!("{name}: {why}, got {url:?}")),
                    },
                    _ => self.expected(&name, "an ldap:// or ldaps:// URL", item),
                }
            }
        }
        d.ca_file = self.string(s, "ca_file", 1, usize::MAX).map(PathBuf::from);
        if let Some(ca) = &d.ca_file {
            if let Err(e) = crate::directory::ldap::ca_file_roots(ca) {
                self.errors.push(e);
            }
        }
        d.bind_dn = self.string(s, "bind_dn", 1, MAX_LDAP_STRING);
        match (&d.bind_dn, s.get("bind_password_file")) {
            (Some(_), None) => self.errors.push(
                "directory.bind_password_file is required when directory.bind_dn is set".to_owned(),
            ),
            (None, Some(_)) => self.errors.push(
                "directory.bind_password_file is set but directory.bind_dn is not: set both, \
                 or neither for an anonymous search"
                    .to_owned(),
            ),
            _ => {}
        }
        if let Some(path) = self.string(s, "bind_password_file", 1, usize::MAX) {
            match read_password_file(&PathBuf::from(&path)) {
                Ok(password) => d.bind_password = Some(password),
                Err(why) => self
                    .errors
                    .push(format!("directory.bind_password_file: {path}: {why}")),
            }
        }
        if let Some(base) = self.string(s, "user_base", 1, MAX_LDAP_STRING) {
            d.user_base = base;
        }
        if let Some(filter) = self.string(s, "user_filter", 1, MAX_LDAP_STRING) {
            match check_filter(&filter) {
                Ok(()) => d.user_filter = filter,
                Err(why) => self
                    .errors
                    .push(format!("directory.user_filter: {why}, got {filter:?}")),
            }
        }
        for (key, slot) in [
            ("login_attribute", &mut d.login_attribute),
            ("id_attribute", &mut d.id_attribute),
            ("name_attribute", &mut d.name_attribute),
        ] {
            if let Some(v) = s.get(key) {
                match v {
                    Value::String(a) if is_attribute_name(a) => *slot = a.clone(),
                    _ => self.expected(
                        &s.key(key),
                        "an LDAP attribute name like \"uid\" (letters, digits, '-', or a \
                         dotted OID)",
                        v,
                    ),
                }
            }
        }
        if let Some(v) = s.get("groups") {
            match v {
                Value::String(g) if g == "memberOf" => d.groups = GroupSource::MemberOf,
                Value::String(g) if g == "member-search" => d.groups = GroupSource::MemberSearch,
                _ => self.expected("directory.groups", "\"memberOf\" or \"member-search\"", v),
            }
        }
        self.bool(s, "nested_groups", &mut d.nested_groups);
        self.duration(s, "timeout", &mut d.timeout);
        self.int(s, "max_concurrent", 1, 64, &mut d.max_concurrent);
        self.int(s, "queue_limit", 0, 100_000, &mut d.queue_limit);
        if let Some(v) = s.get("sync_interval") {
            // The one duration where 0 is allowed: it turns the background sync off. Under a
            // minute the sync would keep the directory busy re-reading every account.
            match v {
                Value::String(text) => match super::super::parse_duration(text) {
                    Some(d0) if d0.is_zero() || d0 >= Duration::from_secs(60) => {
                        d.sync_interval = d0;
                    }
                    _ => self.expected(
                        "directory.sync_interval",
                        "\"0s\" (no background sync) or a duration of at least \"1m\" like \
                         \"15m\"",
                        v,
                    ),
                },
                _ => self.expected("directory.sync_interval", DURATION_HINT, v),
            }
        }
        d.maps = self.maps(s);
        (self.errors.len() == before).then_some(d)
    }

    fn bool(&mut self, s: Section<'_>, key: &str, slot: &mut bool) {
        match s.get(key) {
            None => {}
            Some(Value::Boolean(b)) => *slot = *b,
            Some(other) => self.expected(&s.key(key), "true or false", other),
        }
    }

    /// `[[directory.map]]`: every entry needs a group DN and a `user_type`.
    fn maps(&mut self, s: Section<'_>) -> Vec<DirectoryMap> {
        let items = match s.get("map") {
            None => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.expected(
                    "directory.map",
                    "an array of tables ([[directory.map]])",
                    other,
                );
                return Vec::new();
            }
        };
        let mut maps = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let name = format!("directory.map[{i}]");
            let Value::Table(t) = item else {
                self.expected(&name, "a table ([[directory.map]])", item);
                continue;
            };
            for key in t.keys() {
                if ![
                    "group",
                    "user_type",
                    "permissions",
                    "cameras",
                    "camera_groups",
                ]
                .contains(&key.as_str())
                {
                    self.errors.push(format!("unknown key '{name}.{key}'"));
                }
            }
            let group = match t.get("group") {
                Some(Value::String(g)) if !g.is_empty() && g.len() <= MAX_LDAP_STRING => {
                    Some(g.clone())
                }
                Some(other) => {
                    self.expected(&format!("{name}.group"), "a group DN", other);
                    None
                }
                None => {
                    self.errors.push(format!("{name}.group is required"));
                    None
                }
            };
            let role = match t.get("user_type") {
                Some(Value::String(u)) if u == "admin" => Some(MapRole::Admin),
                Some(Value::String(u)) if u == "user" => Some(MapRole::User),
                Some(other) => {
                    self.expected(&format!("{name}.user_type"), "\"admin\" or \"user\"", other);
                    None
                }
                None => {
                    self.errors.push(format!("{name}.user_type is required"));
                    None
                }
            };
            let permissions = self.permission_names(&name, t.get("permissions"));
            let cameras = self.ids(&format!("{name}.cameras"), t.get("cameras"));
            let camera_groups = self.ids(&format!("{name}.camera_groups"), t.get("camera_groups"));
            if let (Some(group), Some(role)) = (group, role) {
                maps.push(DirectoryMap {
                    group,
                    role,
                    permissions,
                    cameras,
                    camera_groups,
                });
            }
        }
        maps
    }

    /// Permission names of the catalogue that a `user` account may hold (an `admin` holds
    /// every admin permission anyway); stored as their ids.
    fn permission_names(&mut self, name: &str, v: Option<&Value>) -> Vec<u64> {
        let Some(v) = v else { return Vec::new() };
        let Value::Array(items) = v else {
            self.expected(
                &format!("{name}.permissions"),
                "an array of permission names",
                v,
            );
            return Vec::new();
        };
        let mut ids = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let found = match item {
                Value::String(p) => PERMISSIONS
                    .iter()
                    .find(|perm| perm.name == p && perm.user_type == crate::model::UserType::User),
                _ => None,
            };
            match found {
                Some(perm) => ids.push(perm.id),
                None => self.expected(
                    &format!("{name}.permissions[{i}]"),
                    "the name of a user permission like \"archives-show\" (GET \
                     /api/admin/v1/permissions lists them)",
                    item,
                ),
            }
        }
        ids
    }

    fn ids(&mut self, name: &str, v: Option<&Value>) -> Vec<u64> {
        let Some(v) = v else { return Vec::new() };
        let what = "an array of ids (integers from 1)";
        let Value::Array(items) = v else {
            self.expected(name, what, v);
            return Vec::new();
        };
        let mut ids = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::Integer(id) if *id >= 1 => ids.push(id.unsigned_abs()),
                _ => self.expected(&format!("{name}[{i}]"), "an id (an integer from 1)", item),
            }
        }
        ids
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Scheme {
    Ldap,
    Ldaps,
}

/// An `ldap://` or `ldaps://` URL naming a host and optionally a port, nothing else: vmsd
/// takes the base DN and filter from their own keys, not from RFC 4516's URL parts.
fn check_url(url: &str) -> Result<Scheme, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("ldaps://") {
        (Scheme::Ldaps, rest)
    } else if let Some(rest) = url.strip_prefix("ldap://") {
        (Scheme::Ldap, rest)
    } else {
        return Err("expected a URL starting with ldap:// or ldaps://".to_owned());
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let shape = "expected ldap[s]://HOST or ldap[s]://HOST:PORT with no path, user or query";
    if authority.is_empty()
        || authority.contains(['/', '?', '#', '@'])
        || authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(shape.to_owned());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| shape.to_owned())?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(shape.to_owned());
        }
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(shape.to_owned());
    }
    // The URL parser under ldap3 is built without Unicode host names (Cargo.lock pins
    // `idna_adapter` to its ASCII-only 1.0 stream: the ICU tables were 131 KB of the aarch64
    // binary), so such a host would only fail at the first login; refuse it here instead.
    if !host.is_ascii() {
        return Err(format!(
            "{shape}; write an internationalized host name in its ASCII form (xn--...)"
        ));
    }
    if let Some(port) = port {
        if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return Err(format!("{shape} (PORT from 1 to 65535)"));
        }
    }
    Ok(scheme)
}

/// `user_filter` must contain `{login}` (else every login would find the same entries) and,
/// with a login put in, be an RFC 4515 filter.
fn check_filter(filter: &str) -> Result<(), String> {
    if !filter.contains("{login}") {
        return Err("must contain {login}".to_owned());
    }
    #[cfg(feature = "directory")]
    {
        let sample = filter.replace("{login}", "someone");
        if ldap3::parse_filter(&sample).is_err() {
            return Err("not a valid LDAP search filter (RFC 4515) like \
                 \"(&(objectClass=person)(uid={login}))\""
                .to_owned());
        }
    }
    Ok(())
}

/// An attribute description of RFC 4512: a name (letter, then letters, digits, '-') or a
/// numeric OID.
pub(crate) fn is_attribute_name(a: &str) -> bool {
    let mut chars = a.chars();
    let named = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !a.is_empty()
        && a.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    (named || oid) && a.len() <= 128
}

/// The search account's password: the file's first line (a trailing newline is not part of
/// it). Never echoed: not even a malformed one.
fn read_password_file(path: &std::path::Path) -> Result<SecretString, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it ({e})"))?;
    if !meta.is_file() || meta.len() > MAX_PASSWORD_FILE_BYTES {
        return Err(format!(
            "expected a file of at most {MAX_PASSWORD_FILE_BYTES} bytes holding the password"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it ({e})"))?;
    let password = text.lines().next().unwrap_or("");
    if password.is_empty() {
        // An empty password would make the "authenticated" bind an anonymous one (RFC 4513
        // §5.1.2): refused rather than silently searching anonymously.
        return Err("the file is empty: it must hold the bind password on its first line".into());
    }
    Ok(SecretString::new(password.to_owned()))
}
