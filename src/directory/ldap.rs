//! The LDAP client of directory accounts: `ldap3` over vmsd's own ring-based rustls
//! `ClientConfig` (ldap3's default one would use the process-wide provider, which panics
//! when two are linked). One connection per operation, each server tried in `urls` order
//! within `timeout` per step; a server that answers is believed (a wrong password on the
//! first server is not retried on the second), one that fails or times out hands over to
//! the next. No referral is followed: ldap3 only reports them and they are ignored here.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, StdStream};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::{normalize_dn, DirectoryError, Entry};
use crate::config::{DirectoryConfig, GroupSource, SecretString};

/// LDAP result codes (RFC 4511 §4.1.9) this client tells apart.
const RC_SUCCESS: u32 = 0;
const RC_SIZE_LIMIT_EXCEEDED: u32 = 4;
const RC_NO_SUCH_OBJECT: u32 = 32;
const RC_INAPPROPRIATE_AUTHENTICATION: u32 = 48;
const RC_INVALID_CREDENTIALS: u32 = 49;
const RC_INSUFFICIENT_ACCESS: u32 = 50;
const RC_UNWILLING_TO_PERFORM: u32 = 53;

/// AD's LDAP_MATCHING_RULE_IN_CHAIN: membership through nested groups.
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// AD `userAccountControl` ACCOUNTDISABLE.
const UAC_ACCOUNT_DISABLE: u64 = 2;

/// The binary id prefix of `Entry::id`.
const HEX_ID: &str = "hex:";

/// How one server's attempt ended when it did not produce an answer.
enum Attempt<T> {
    /// The server answered: believed, no other server is asked.
    Answer(Result<T, DirectoryError>),
    /// Connect, TLS, service bind or protocol failure, or a timeout: ask the next server.
    Failed(String),
}

pub struct Client {
    urls: Vec<String>,
    start_tls: bool,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    bind: Option<(String, SecretString)>,
    user_base: String,
    user_filter: String,
    login_attribute: String,
    id_attribute: String,
    name_attribute: String,
    groups: GroupSource,
    nested_groups: bool,
    /// The `[[directory.map]]` groups: with `member-search` or `nested_groups` membership is
    /// asked of each of them (the only groups that matter).
    map_groups: Vec<String>,
}

/// The certificates of a `ca_file`: what start-up trusts and what `check-config` checks, so
/// a file that is not PEM certificates is refused by both.
pub fn ca_file_roots(path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(path)
        .map_err(|e| format!("directory.ca_file: cannot read {}: {e}", path.display()))?;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            format!(
                "directory.ca_file: {}: not PEM certificates: {e}",
                path.display()
            )
        })?;
        roots.add(cert).map_err(|e| {
            format!(
                "directory.ca_file: {}: unusable certificate: {e}",
                path.display()
            )
        })?;
    }
    if roots.is_empty() {
        return Err(format!(
            "directory.ca_file: {} holds no certificate",
            path.display()
        ));
    }
    Ok(roots)
}

/// The trust anchors: `ca_file`, else the system's roots.
fn root_store(config: &DirectoryConfig) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => roots = ca_file_roots(path)?,
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system store can hold certificates rustls cannot use: skipped, as browsers do.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(
                    "directory: no system root certificates found; set directory.ca_file"
                        .to_owned(),
                );
            }
        }
    }
    Ok(roots)
}

impl Client {
    pub fn new(config: &DirectoryConfig) -> Result<Client, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("directory TLS: {e}"))?
            .with_root_certificates(root_store(config)?)
            .with_no_client_auth();
        Ok(Client {
            urls: config.urls.clone(),
            start_tls: config.start_tls,
            tls: Arc::new(tls),
            timeout: config.timeout,
            bind: config.bind_dn.clone().zip(config.bind_password.clone()),
            user_base: config.user_base.clone(),
            user_filter: config.user_filter.clone(),
            login_attribute: config.login_attribute.clone(),
            id_attribute: config.id_attribute.clone(),
            name_attribute: config.name_attribute.clone(),
            groups: config.groups,
            nested_groups: config.nested_groups,
            map_groups: config.maps.iter().map(|m| m.group.clone()).collect(),
        })
    }

    /// Search + bind (SPEC §10): the entry whose `user_filter` matches `login` (exactly one),
    /// its groups read as the search account, then a bind as that entry with `password`.
    pub async fn authenticate(&self, login: &str, password: &str) -> Result<Entry, DirectoryError> {
        // Escaped here, once: `*`, `(`, `)`, `\` and NUL cannot change the filter's meaning.
        let filter = self.user_filter.replace("{login}", &ldap_escape(login));
        // Connect, search, group searches (one per map with member-search), bind.
        let steps = 3 + self.map_groups.len();
        self.each_server(steps, |mut ldap| {
            let filter = filter.clone();
            async move {
                let entry = match self.find_one(&mut ldap, &filter).await {
                    Attempt::Answer(Ok(Some(entry))) => entry,
                    Attempt::Answer(Ok(None)) => {
                        return Attempt::Answer(Err(DirectoryError::NotFound))
                    }
                    Attempt::Answer(Err(e)) => return Attempt::Answer(Err(e)),
                    Attempt::Failed(why) => return Attempt::Failed(why),
                };
                let bound = ldap
                    .with_timeout(self.timeout)
                    .simple_bind(&entry.dn, password)
                    .await;
                let _ = ldap.unbind().await;
                match bound {
                    Ok(r) if r.rc == RC_SUCCESS => Attempt::Answer(Ok(entry)),
                    Ok(r) if is_refused_bind(r.rc) => {
                        Attempt::Answer(Err(DirectoryError::BadPassword))
                    }
                    Ok(r) => Attempt::Failed(format!("bind answered {}: {}", r.rc, r.text)),
                    Err(e) => Attempt::Failed(format!("bind: {e}")),
                }
            }
        })
        .await
    }

    /// The entries of these ids (the sync), read on one connection: `None` where no entry
    /// has the id any more.
    pub async fn entries_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<Entry>>, DirectoryError> {
        let steps = 2 + ids.len() * (1 + self.map_groups.len());
        self.each_server(steps, |mut ldap| async move {
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                let filter = format!("({}={})", self.id_attribute, id_filter_value(id));
                match self.find_one(&mut ldap, &filter).await {
                    Attempt::Answer(Ok(entry)) => found.push(entry),
                    // Two entries with one id: nothing to trust about this account now.
                    Attempt::Answer(Err(DirectoryError::Ambiguous)) => {
                        return Attempt::Failed(format!("several entries have the id {id}"))
                    }
                    Attempt::Answer(Err(e)) => return Attempt::Answer(Err(e)),
                    Attempt::Failed(why) => return Attempt::Failed(why),
                }
            }
            let _ = ldap.unbind().await;
            Attempt::Answer(Ok(found))
        })
        .await
    }

    /// Runs `work` (at most `steps` operations) on each server in turn until one answers.
    /// Every server failing is `Unavailable` with the causes, for the log.
    async fn each_server<'a, T, F, Fut>(
        &'a self,
        steps: usize,
        work: F,
    ) -> Result<T, DirectoryError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: std::future::Future<Output = Attempt<T>> + 'a,
    {
        let mut causes = Vec::new();
        for url in &self.urls {
            let ldap = match self.connect(url).await {
                Ok(ldap) => ldap,
                Err(why) => {
                    tracing::warn!(url = %url, cause = %why, "directory server unreachable");
                    causes.push(format!("{url}: {why}"));
                    continue;
                }
            };
            // The whole attempt is bounded too: each step has `timeout`, but a server that
            // trickles answers (ldap3 restarts the timer at each reply) must not hold a login
            // slot for ever.
            let budget = self
                .timeout
                .saturating_mul(u32::try_from(steps).unwrap_or(u32::MAX));
            match tokio::time::timeout(budget, work(ldap)).await {
                Ok(Attempt::Answer(answer)) => return answer,
                Ok(Attempt::Failed(why)) => {
                    tracing::warn!(url = %url, cause = %why, "directory server failed");
                    causes.push(format!("{url}: {why}"));
                }
                Err(_) => {
                    tracing::warn!(url = %url, "directory server timed out");
                    causes.push(format!("{url}: timed out"));
                }
            }
        }
        Err(DirectoryError::Unavailable(causes.join("; ")))
    }

    /// A connection, TLS set up (LDAPS or StartTLS), bound as the search account (or
    /// anonymous).
    async fn connect(&self, url: &str) -> Result<Ldap, String> {
        // ldap3 connects without TCP_NODELAY, so a request written in more than one segment
        // waits for the server's delayed ACK (bench/directory: with Nagle off a login's p50
        // fell from 49 to 18 ms, 80 to 215 logins/s). So the TCP connection is made here.
        let addr = host_port(url).ok_or_else(|| "malformed URL".to_owned())?;
        let tcp = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(&addr))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| format!("connect: {e}"))?;
        let tcp = tcp.into_std().map_err(|e| format!("connect: {e}"))?;
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_config(self.tls.clone())
            .set_starttls(self.start_tls && url.starts_with("ldap://"))
            .set_std_stream(StdStream::Tcp(tcp));
        // ldap3's conn_timeout covers the TCP connect and StartTLS; the TLS handshake of
        // ldaps:// is bounded here.
        let (conn, mut ldap) =
            tokio::time::timeout(self.timeout, LdapConnAsync::with_settings(settings, url))
                .await
                .map_err(|_| "connect timed out".to_owned())?
                .map_err(|e| format!("connect: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "directory connection ended");
            }
        });
        if let Some((dn, password)) = &self.bind {
            let r = ldap
                .with_timeout(self.timeout)
                .simple_bind(dn, password.expose())
                .await
                .map_err(|e| format!("search account bind: {e}"))?;
            if r.rc != RC_SUCCESS {
                // A misconfigured search account: every server will say the same, but only a
                // server that answers can say it, so it is a server failure (503), logged.
                return Err(format!(
                    "search account bind refused ({}: {})",
                    r.rc, r.text
                ));
            }
        }
        Ok(ldap)
    }

    /// The one entry `filter` finds under `user_base`, with its groups.
    async fn find_one(&self, ldap: &mut Ldap, filter: &str) -> Attempt<Option<Entry>> {
        let mut attrs = vec![
            self.login_attribute.as_str(),
            self.id_attribute.as_str(),
            self.name_attribute.as_str(),
            "userAccountControl",
        ];
        if self.groups == GroupSource::MemberOf {
            attrs.push("memberOf");
        }
        let result = ldap
            .with_timeout(self.timeout)
            .search(&self.user_base, Scope::Subtree, filter, attrs)
            .await;
        let (entries, res) = match result {
            Ok(r) => (r.0, r.1),
            Err(e) => return Attempt::Failed(format!("search: {e}")),
        };
        let entries: Vec<_> = entries.into_iter().filter(|e| !e.is_ref()).collect();
        match res.rc {
            RC_SUCCESS => {}
            RC_SIZE_LIMIT_EXCEEDED => return Attempt::Answer(Err(DirectoryError::Ambiguous)),
            RC_NO_SUCH_OBJECT => return Attempt::Answer(Ok(None)),
            rc => return Attempt::Failed(format!("search answered {rc}: {}", res.text)),
        }
        let found = match <[_; 1]>::try_from(entries) {
            Ok([found]) => found,
            Err(entries) if entries.is_empty() => return Attempt::Answer(Ok(None)),
            // Two entries included: the sync must not take them for a person who is gone.
            Err(_) => return Attempt::Answer(Err(DirectoryError::Ambiguous)),
        };
        // ldap3's `SearchEntry::construct` panics (`expect`) on an entry it cannot read, e.g.
        // a DN that is not UTF-8. A broken or hostile server must fail this server's attempt
        // (the next URL is tried, or the login gets 503), not unwind the request's task; the
        // panic's own message still reaches stderr through the default hook.
        let found = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            SearchEntry::construct(found)
        })) {
            Ok(found) => found,
            Err(_) => return Attempt::Failed("search returned an entry ldap3 cannot read".into()),
        };
        let Some(mut entry) = self.entry(&found) else {
            // No DN (an empty bind DN would be an anonymous bind), no id or no login: the
            // entry cannot become an account.
            tracing::warn!(
                dn = %found.dn,
                "directory entry lacks {} or {}",
                self.id_attribute,
                self.login_attribute
            );
            return Attempt::Answer(Ok(None));
        };
        if self.groups == GroupSource::MemberSearch || self.nested_groups {
            match self.member_of_map_groups(ldap, &entry.dn).await {
                Ok(groups) => {
                    for g in groups {
                        if !entry
                            .groups
                            .iter()
                            .any(|e| normalize_dn(e) == normalize_dn(&g))
                        {
                            entry.groups.push(g);
                        }
                    }
                }
                Err(why) => return Attempt::Failed(why),
            }
        }
        Attempt::Answer(Ok(Some(entry)))
    }

    fn entry(&self, found: &SearchEntry) -> Option<Entry> {
        if found.dn.is_empty() {
            return None;
        }
        let text = |attr: &str| -> Option<String> {
            found
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                .and_then(|(_, v)| v.first().cloned())
        };
        let binary = found
            .bin_attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.id_attribute))
            .and_then(|(_, v)| v.first());
        // AD's objectGUID is bytes, even when they happen to be valid UTF-8.
        let id = match (binary, text(&self.id_attribute)) {
            (Some(bytes), _) => format!("{HEX_ID}{}", hex::encode(bytes)),
            (None, Some(t)) if self.id_attribute.eq_ignore_ascii_case("objectGUID") => {
                format!("{HEX_ID}{}", hex::encode(t.as_bytes()))
            }
            (None, Some(t)) => t,
            (None, None) => return None,
        };
        let login = text(&self.login_attribute).filter(|l| !l.trim().is_empty())?;
        let name = text(&self.name_attribute).unwrap_or_else(|| login.clone());
        let groups = found
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("memberOf"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let disabled = text("userAccountControl")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .is_some_and(|uac| uac.unsigned_abs() & UAC_ACCOUNT_DISABLE != 0);
        Some(Entry {
            dn: found.dn.clone(),
            id,
            login,
            name,
            groups,
            disabled,
        })
    }

    /// Which of the mapped groups list `dn` as a `member` (through nested groups too with
    /// `nested_groups`): one base-scope search per mapped group.
    async fn member_of_map_groups(&self, ldap: &mut Ldap, dn: &str) -> Result<Vec<String>, String> {
        let rule = if self.nested_groups {
            format!(":{IN_CHAIN}:")
        } else {
            String::new()
        };
        let filter = format!("(member{rule}={})", ldap_escape(dn));
        let mut groups = Vec::new();
        for group in &self.map_groups {
            let result = ldap
                .with_timeout(self.timeout)
                .search(group, Scope::Base, &filter, vec!["1.1"])
                .await
                .map_err(|e| format!("group search: {e}"))?;
            match result.1.rc {
                RC_SUCCESS if result.0.iter().any(|e| !e.is_ref()) => groups.push(group.clone()),
                RC_SUCCESS | RC_NO_SUCH_OBJECT => {}
                rc => return Err(format!("group search answered {rc}: {}", result.1.text)),
            }
        }
        Ok(groups)
    }
}

/// A bind the server refused for this person (not a server failure).
fn is_refused_bind(rc: u32) -> bool {
    matches!(
        rc,
        RC_INVALID_CREDENTIALS
            | RC_INAPPROPRIATE_AUTHENTICATION
            | RC_INSUFFICIENT_ACCESS
            | RC_UNWILLING_TO_PERFORM
    )
}

/// The filter value of a stored id: a binary id as `\xx` escapes of its bytes.
fn id_filter_value(id: &str) -> String {
    match id.strip_prefix(HEX_ID).and_then(|h| hex::decode(h).ok()) {
        Some(bytes) => bytes.iter().map(|b| format!("\\{b:02x}")).collect(),
        None => ldap_escape(id).into_owned(),
    }
}

/// `host:port` of an `ldap://` or `ldaps://` URL (check-config accepted it), with the
/// scheme's port when it names none. Hand-written because only the authority is needed and
/// check-config already parsed the URL; ldap3 parses it again with `url` for the TLS name.
fn host_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    // An IPv6 literal's colons are inside its brackets.
    let after_host = authority.rfind(']').map_or(authority, |i| &authority[i..]);
    if after_host.contains(':') {
        return Some(authority.to_owned());
    }
    let port = if scheme.eq_ignore_ascii_case("ldaps") {
        636
    } else {
        389
    };
    Some(format!("{authority}:{port}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn host_port_of_urls() {
        assert_eq!(
            host_port("ldaps://dc1.corp.example").as_deref(),
            Some("dc1.corp.example:636")
        );
        assert_eq!(
            host_port("ldap://127.0.0.1:3890/").as_deref(),
            Some("127.0.0.1:3890")
        );
        assert_eq!(host_port("ldap://ldap1").as_deref(), Some("ldap1:389"));
        assert_eq!(host_port("ldaps://[::1]").as_deref(), Some("[::1]:636"));
        assert_eq!(
            host_port("ldaps://[::1]:1636").as_deref(),
            Some("[::1]:1636")
        );
        assert_eq!(host_port("ldaps://"), None);
        assert_eq!(host_port("dc1"), None);
    }

    #[test]
    fn ids_become_filter_values() {
        assert_eq!(id_filter_value("hex:00ff10"), "\\00\\ff\\10");
        assert_eq!(id_filter_value("a*b(c)\\"), "a\\2ab\\28c\\29\\5c");
    }

    #[test]
    fn logins_cannot_change_the_filter() {
        let escaped = ldap_escape("*)(uid=*)\\\0");
        assert_eq!(escaped, "\\2a\\29\\28uid=\\2a\\29\\5c\\00");
        assert!(ldap3::parse_filter(format!("(uid={escaped})")).is_ok());
    }
}
