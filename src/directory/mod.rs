//! Directory accounts (SPEC §10): what vmsd knows of an LDAP / Active Directory person
//! (`Entry`), how their groups become a role, permissions and cameras (`Grant`, the
//! `[[directory.map]]` union), the bounded gate in front of directory logins, and the failures
//! a directory can answer (`DirectoryError`).
//!
//! - `ldap`    — the LDAP client (`ldap3` on vmsd's own ring-based rustls configuration):
//!   failover across `urls`, search + bind, group reads.
//! - `account` — creating and updating the vmsd account of a directory person inside a store
//!   transaction, at login and by the sync.
//! - `login`   — the directory half of the login (the crate's `login` hands it over).
//! - `sync`    — the background sync that re-reads every directory account by its id.
//! - `probe`   — `vmsd directory test LOGIN`: one login tried, nothing written.

pub mod account;
pub mod ldap;
pub mod login;
pub mod probe;
pub mod sync;

use std::collections::BTreeSet;

use crate::config::{DirectoryConfig, DirectoryMap, MapRole};
use crate::gate::{Gate, Pass};
use crate::model::UserType;
use crate::permissions::admin_permissions;

/// One person as the directory describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    /// The `id_attribute` value that keys the vmsd account: the text of a string attribute,
    /// `hex:` and the lowercase hex of a binary one (AD's `objectGUID`).
    pub id: String,
    /// The `login_attribute` value: the vmsd login.
    pub login: String,
    pub name: String,
    /// Group DNs, as the directory wrote them.
    pub groups: Vec<String>,
    /// AD's `userAccountControl` has ACCOUNTDISABLE (bit 2) set.
    pub disabled: bool,
}

/// What the matching `[[directory.map]]` entries grant, united.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user_type: UserType,
    pub permissions: BTreeSet<u64>,
    /// Cameras named by the maps (`cameras`); those of `camera_groups` are added when the
    /// account is written, from the groups as they are then.
    pub cameras: BTreeSet<u64>,
    pub camera_groups: BTreeSet<u64>,
}

/// A DN compared the way directories do for these purposes: case-insensitive, spaces around
/// `,` and `=` ignored (`CN=Guards, OU=Groups` is `cn=guards,ou=groups`).
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    for part in dn.split(',') {
        if !out.is_empty() {
            out.push(',');
        }
        let mut rdn = part.splitn(2, '=');
        let attr = rdn.next().unwrap_or("").trim();
        out.push_str(&attr.to_lowercase());
        if let Some(value) = rdn.next() {
            out.push('=');
            out.push_str(&value.trim().to_lowercase());
        }
    }
    out
}

/// Every map whose group the person is in applies: permissions and cameras are united and
/// `admin` wins over `user` (an administrator holds every admin permission and no camera
/// assignments, as a local one). `None`: no map matches, the login is refused.
pub fn grant(maps: &[DirectoryMap], groups: &[String]) -> Option<Grant> {
    let member_of: BTreeSet<String> = groups.iter().map(|g| normalize_dn(g)).collect();
    let matching: Vec<&DirectoryMap> = maps
        .iter()
        .filter(|m| member_of.contains(&normalize_dn(&m.group)))
        .collect();
    if matching.is_empty() {
        return None;
    }
    if matching.iter().any(|m| m.role == MapRole::Admin) {
        return Some(Grant {
            user_type: UserType::Admin,
            permissions: admin_permissions(),
            cameras: BTreeSet::new(),
            camera_groups: BTreeSet::new(),
        });
    }
    Some(Grant {
        user_type: UserType::User,
        permissions: matching
            .iter()
            .flat_map(|m| m.permissions.clone())
            .collect(),
        cameras: matching.iter().flat_map(|m| m.cameras.clone()).collect(),
        camera_groups: matching
            .iter()
            .flat_map(|m| m.camera_groups.clone())
            .collect(),
    })
}

/// Why the directory did not vouch for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryError {
    /// An empty password: refused before any network call (RFC 4513 §5.1.2: an empty
    /// simple bind is an anonymous one, which many servers "accept").
    EmptyPassword,
    /// The search found no entry.
    NotFound,
    /// The search found more than one entry.
    Ambiguous,
    /// The entry's bind failed: wrong password (or an account the server refuses).
    BadPassword,
    /// Every URL failed or timed out; the cause of the last, for the log.
    Unavailable(String),
    /// `max_concurrent` directory logins run and `queue_limit` wait.
    Busy,
}

impl std::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectoryError::EmptyPassword => f.write_str("empty password refused"),
            DirectoryError::NotFound => f.write_str("no directory entry matches the login"),
            DirectoryError::Ambiguous => f.write_str("several directory entries match the login"),
            DirectoryError::BadPassword => f.write_str("the directory refused the password"),
            DirectoryError::Unavailable(cause) => write!(f, "directory unreachable: {cause}"),
            DirectoryError::Busy => f.write_str("too many directory logins waiting"),
        }
    }
}

impl std::error::Error for DirectoryError {}

/// The directory as the daemon uses it: the client and the gate that bounds logins.
pub struct Directory {
    pub config: DirectoryConfig,
    client: ldap::Client,
    /// Directory logins at once (`max_concurrent`) and waiting (`queue_limit`).
    gate: Gate,
}

impl Directory {
    /// Builds the client (its TLS roots are read now, so a bad `ca_file` stops the start).
    pub fn new(config: DirectoryConfig) -> Result<Directory, String> {
        let client = ldap::Client::new(&config)?;
        Ok(Directory {
            gate: Gate::new(config.max_concurrent, config.queue_limit),
            config,
            client,
        })
    }

    async fn slot(&self) -> Result<Pass, DirectoryError> {
        self.gate.enter().await.map_err(|_| DirectoryError::Busy)
    }

    /// Checks `login` + `password` against the directory and reads the person's entry.
    pub async fn authenticate(&self, login: &str, password: &str) -> Result<Entry, DirectoryError> {
        if password.is_empty() {
            return Err(DirectoryError::EmptyPassword);
        }
        let _slot = self.slot().await?;
        self.client.authenticate(login, password).await
    }

    /// Reads the entries of these ids (the sync). `None` for an id no entry has.
    pub async fn entries_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<Entry>>, DirectoryError> {
        let _slot = self.slot().await?;
        self.client.entries_by_id(ids).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(group: &str, role: MapRole, permissions: &[u64], cameras: &[u64]) -> DirectoryMap {
        DirectoryMap {
            group: group.into(),
            role,
            permissions: permissions.to_vec(),
            cameras: cameras.to_vec(),
            camera_groups: vec![],
        }
    }

    #[test]
    fn maps_unite_and_admin_wins() {
        let maps = [
            map("cn=admins,dc=x", MapRole::Admin, &[], &[]),
            map("cn=guards,dc=x", MapRole::User, &[12, 15], &[1, 2]),
            map("cn=site-2,dc=x", MapRole::User, &[13], &[2, 3]),
        ];
        let g = grant(&maps, &["CN=Guards, DC=x".into(), "cn=site-2,dc=x".into()]).unwrap();
        assert_eq!(g.user_type, UserType::User);
        assert_eq!(g.permissions, BTreeSet::from([12, 13, 15]));
        assert_eq!(g.cameras, BTreeSet::from([1, 2, 3]));
        let g = grant(&maps, &["cn=guards,dc=x".into(), "cn=admins,dc=x".into()]).unwrap();
        assert_eq!(g.user_type, UserType::Admin);
        assert_eq!(g.permissions, admin_permissions());
        assert!(g.cameras.is_empty());
        assert_eq!(grant(&maps, &["cn=other,dc=x".into()]), None);
        assert_eq!(grant(&maps, &[]), None);
    }

    #[test]
    fn dns_compare_without_case_or_spaces() {
        assert_eq!(
            normalize_dn("CN=Site 12 Guards , OU=Groups,DC=Corp"),
            "cn=site 12 guards,ou=groups,dc=corp"
        );
    }
}
