//! The records vmsd stores: accounts, sessions, audit entries, cameras and camera groups,
//! with the rules that belong to the records themselves (when an account's tokens work, the
//! normalised login that makes logins unique). Their JSON views are in `views`; permissions
//! and licence pools in `permissions`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// Seconds since the Unix epoch, UTC: the one time representation inside vmsd.
pub type UnixTime = i64;

pub fn now() -> UnixTime {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The key that makes logins unique across all accounts: trimmed, case-insensitive.
pub fn login_key(login: &str) -> String {
    login.trim().to_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    Admin,
    User,
    Subuser,
    Special,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Admin => "admin",
            UserType::User => "user",
            UserType::Subuser => "subuser",
            UserType::Special => "special",
        }
    }

    /// DeviceHive's role: 0 administrator, 1 client.
    pub fn role(self) -> u8 {
        match self {
            UserType::Admin => 0,
            _ => 1,
        }
    }
}

pub const STATUS_ACTIVE: u8 = 0;
pub const STATUS_LOCKED: u8 = 1;
pub const STATUS_DISABLED: u8 = 2;

/// One account of any type (SPEC §1). Stored as JSON under its id in the `accounts` tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: u64,
    pub user_type: UserType,
    pub login: String,
    pub name: String,
    pub password_hash: String,
    pub language: String,
    /// 0 active, 1 locked by an admin, 2 disabled. An automatic lockout after failed logins is
    /// not stored here: it lives in memory (`auth`) and blocks only new logins.
    pub status: u8,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub intro_reviewed: bool,
    pub can_update_password: bool,
    #[serde(default)]
    pub permissions: BTreeSet<u64>,
    #[serde(default)]
    pub parent_id: Option<u64>,
    /// Camera assignments (`user`, `subuser`, `special`), by camera id.
    #[serde(default)]
    pub cameras: BTreeSet<u64>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    #[serde(default)]
    pub last_login: Option<UnixTime>,
    /// `special` only.
    #[serde(default)]
    pub expired_at: Option<UnixTime>,
    /// `special` only: 1–100.
    #[serde(default)]
    pub ptz_priority: Option<u8>,
    /// `user` only.
    #[serde(default)]
    pub billing_info: Option<Value>,
    /// Set for an account managed by the directory (SPEC §10, `source: "directory"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectoryLink>,
}

/// What ties an account to its directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryLink {
    /// The entry's `id_attribute` value (`directory::Entry::id`): the key, stable across
    /// renames in the directory.
    pub id: String,
    /// The sync (not an admin) disabled the account: the next login or sync that matches a
    /// map lifts it. An admin-set status 1 or 2 clears this and sticks.
    #[serde(default)]
    pub sync_disabled: bool,
}

/// Who an account is and how it logs in: what `Account::new` needs; the rest starts at its
/// default (active, no permissions, cameras or sub-users, never logged in).
pub struct NewAccount {
    pub user_type: UserType,
    pub login: String,
    pub name: String,
    pub password_hash: String,
    pub language: String,
}

impl Account {
    /// A new account created at `at`. Callers override what their kind of account sets
    /// (`Account { permissions, ..Account::new(..) }`).
    pub fn new(id: u64, new: NewAccount, at: UnixTime) -> Account {
        Account {
            id,
            user_type: new.user_type,
            login: new.login,
            name: new.name,
            password_hash: new.password_hash,
            language: new.language,
            status: STATUS_ACTIVE,
            data: None,
            intro_reviewed: false,
            can_update_password: true,
            permissions: BTreeSet::new(),
            parent_id: None,
            cameras: BTreeSet::new(),
            created_at: at,
            updated_at: at,
            last_login: None,
            expired_at: None,
            ptz_priority: None,
            billing_info: None,
            directory: None,
        }
    }

    /// SPEC §1's `source`.
    pub fn source(&self) -> &'static str {
        if self.directory.is_some() {
            "directory"
        } else {
            "local"
        }
    }

    pub fn is_directory_managed(&self) -> bool {
        self.directory.is_some()
    }

    pub fn is_expired(&self, at: UnixTime) -> bool {
        self.user_type == UserType::Special && self.expired_at.is_some_and(|e| e <= at)
    }

    /// Whether this account's tokens still work (SPEC §3): not disabled, not locked by an
    /// admin, not past its expiry.
    pub fn may_use_tokens(&self, at: UnixTime) -> bool {
        self.status == STATUS_ACTIVE && !self.is_expired(at)
    }
}

/// One login session: a token known to the store only by its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub account_id: u64,
    /// Public id of the token: 80 lowercase hex characters.
    pub access_token_id: String,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Persisted lazily; the live value is noted in memory (`Store::touch_session`).
    #[serde(default)]
    pub last_used: Option<UnixTime>,
    /// The refresh token of a DeviceHive socket login (SPEC §6), by its SHA-256 in lowercase
    /// hex (the `refreshhash_tokenid` key), and when it runs out: `auth.refresh_token_ttl`
    /// after its last use. `None` for REST logins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshToken>,
}

/// A session's refresh token, as the store knows it: its hash and when it runs out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub hash: String,
    pub expires_at: UnixTime,
}

impl Session {
    /// When the session itself ends: its access token's expiry, or, with a refresh token,
    /// the later of that and the refresh token's run-out (SPEC §6: an expired access token
    /// waiting to be refreshed does not end the session).
    pub fn ends_at(&self) -> UnixTime {
        ends_at(self.expires_at, self.refresh.as_ref())
    }
}

fn ends_at(expires_at: UnixTime, refresh: Option<&RefreshToken>) -> UnixTime {
    refresh.map_or(expires_at, |r| r.expires_at.max(expires_at))
}

/// The fields of a stored `Session` that authenticating a request needs. Decoding only these
/// skips the session's other strings (device, client, user agent, IP) on every request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionKey {
    pub account_id: u64,
    pub access_token_id: String,
    pub expires_at: UnixTime,
    #[serde(default)]
    pub refresh: Option<RefreshToken>,
}

impl SessionKey {
    /// `Session::ends_at`.
    pub fn ends_at(&self) -> UnixTime {
        ends_at(self.expires_at, self.refresh.as_ref())
    }
}

/// One audit entry (SPEC §4.4). Field names only, never their values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub at: UnixTime,
    pub actor_id: Option<u64>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<u64>,
    pub fields: Vec<String>,
}

impl AuditEntry {
    /// An entry for a change made now, naming the fields that changed (never their values).
    /// Take `id` from `Store::next_audit_id` before a transaction: its closure may re-run and
    /// must not allocate ids again.
    pub fn new(
        id: u64,
        actor_id: Option<u64>,
        action: &str,
        target_type: &str,
        target_id: Option<u64>,
        fields: &[&str],
    ) -> AuditEntry {
        AuditEntry {
            id,
            at: now(),
            actor_id,
            action: action.to_owned(),
            target_type: target_type.to_owned(),
            target_id,
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// The same entry naming the fields that changed, once the transaction knows them.
    pub fn with_fields(&self, fields: &[&str]) -> AuditEntry {
        AuditEntry {
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            ..self.clone()
        }
    }

    /// The same entry about `target_id`, for a record whose id the transaction assigns.
    pub fn about(&self, target_id: u64) -> AuditEntry {
        AuditEntry {
            target_id: Some(target_id),
            ..self.clone()
        }
    }
}

/// Services a camera offers, always rendered with at least these keys (seed 001).
pub const DEFAULT_CAMERA_SERVICES: [&str; 2] = ["ptz", "motion_detect"];

/// The camera `type` when a create does not name one (seed 001's value).
pub const DEFAULT_CAMERA_TYPE: &str = "media_server_v2";

/// A camera as vmsd tracks it (SPEC §4.4). vmsd assigns cameras to accounts; it does not talk
/// to them, so only what an admin sets is stored. Every other key of seed 001's camera model
/// renders a fixed default (see `camera_view`). Stored as JSON under its id in `cameras`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub group_id: Option<u64>,
    #[serde(rename = "type")]
    pub camera_type: String,
    pub is_enabled: bool,
    pub is_sound_enabled: bool,
    /// Days of archive kept; `None` is the media server's default.
    #[serde(default)]
    pub archive_storage_days: Option<u32>,
    #[serde(default)]
    pub services_list: BTreeMap<String, bool>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    /// The camera's path on the box's media server (SPEC §4.4, §8); `None` is the default
    /// `cam{id}` (records written before media paths existed read as `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_path: Option<String>,
}

/// A camera group (the `group` object of seed 001). Groups form a tree through `parent_id`;
/// depth, top group and the pretty names are derived from it when rendering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraGroup {
    pub id: u64,
    #[serde(default)]
    pub parent_id: Option<u64>,
    pub name: String,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    /// Kept in step by every camera create/update/delete (in the same transaction), so a
    /// group delete can refuse a non-empty group without scanning, race-free.
    #[serde(default)]
    pub cameras_count: u64,
    /// Child groups, kept the same way for the same reason.
    #[serde(default)]
    pub children_count: u64,
}

/// The media path of a camera that has none of its own (SPEC §4.4).
pub fn default_media_path(camera_id: u64) -> String {
    format!("cam{camera_id}")
}

/// The camera id a default media path names: exactly `cam{id}`, no leading zeros.
pub fn default_media_path_id(path: &str) -> Option<u64> {
    let digits = path.strip_prefix("cam")?;
    let id: u64 = digits.parse().ok()?;
    (digits.bytes().all(|b| b.is_ascii_digit()) && id.to_string() == digits).then_some(id)
}

impl Camera {
    /// The path the media server knows this camera by: its own, or `cam{id}`.
    pub fn media_path(&self) -> String {
        self.media_path
            .clone()
            .unwrap_or_else(|| default_media_path(self.id))
    }

    /// The services map as rendered: the stored flags over the defaults (all off).
    pub fn services(&self) -> BTreeMap<String, bool> {
        let mut services: BTreeMap<String, bool> = DEFAULT_CAMERA_SERVICES
            .iter()
            .map(|s| ((*s).to_owned(), false))
            .collect();
        services.extend(self.services_list.iter().map(|(k, v)| (k.clone(), *v)));
        services
    }

    /// vmsd does not watch streams: an enabled camera is `active`, a disabled one `inactive`.
    pub fn status(&self) -> &'static str {
        if self.is_enabled {
            "active"
        } else {
            "inactive"
        }
    }
}

/// A plain enabled camera for unit tests (the store's and the backup's).
#[cfg(test)]
pub(crate) fn test_camera(id: u64, media_path: Option<&str>) -> Camera {
    Camera {
        id,
        name: format!("camera {id}"),
        ip: None,
        group_id: None,
        camera_type: "media_server_v2".into(),
        is_enabled: true,
        is_sound_enabled: false,
        archive_storage_days: None,
        services_list: Default::default(),
        media_path: media_path.map(str::to_owned),
        created_at: 1,
        updated_at: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_unique_trimmed_and_case_insensitively() {
        assert_eq!(login_key("  Alice "), "alice");
        assert_eq!(login_key("ALICE"), login_key("alice"));
    }
}
