//! The records vmsd stores (accounts, sessions, cameras, licence pools, audit entries), the
//! built-in permission catalogue, and the JSON views the API renders from them (seed shapes).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

/// Seconds since the Unix epoch, UTC: the one time representation inside vmsd.
pub type UnixTime = i64;

pub fn now() -> UnixTime {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `"Y-m-d H:i:s"`, as Laravel API resources render times.
pub fn fmt_resource(t: UnixTime) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// `"Y-m-dTH:i:s.000000Z"`, as raw Eloquent models (cameras, groups) render times.
pub fn fmt_model(t: UnixTime) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].000000Z"
            ))
            .ok()
        })
        .unwrap_or_default()
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
}

impl Account {
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
    /// Persisted lazily; the live value is in `auth`'s in-memory map.
    #[serde(default)]
    pub last_used: Option<UnixTime>,
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
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "at": fmt_resource(self.at),
            "actor_id": self.actor_id,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "fields": self.fields,
        })
    }
}

/// The three analytics licence pools (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
pub enum LicenseLevel {
    L1,
    L2,
    L3,
}

impl LicenseLevel {
    pub const ALL: [LicenseLevel; 3] = [LicenseLevel::L1, LicenseLevel::L2, LicenseLevel::L3];

    pub fn type_name(self) -> &'static str {
        match self {
            LicenseLevel::L1 => "analytic_l1",
            LicenseLevel::L2 => "analytic_l2",
            LicenseLevel::L3 => "analytic_l3",
        }
    }

    pub fn from_type_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.type_name() == name)
    }

    fn suffix(self) -> &'static str {
        match self {
            LicenseLevel::L1 => "L1",
            LicenseLevel::L2 => "L2",
            LicenseLevel::L3 => "L3",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Pool {
    pub all: u64,
    pub used: u64,
}

/// `analytic_license` of every user object: the three pools, in L1, L2, L3 order.
pub fn license_view(pools: &[Pool; 3], prefix: &str) -> Value {
    Value::Array(
        LicenseLevel::ALL
            .iter()
            .zip(pools.iter())
            .map(|(level, pool)| {
                json!({
                    "type": level.type_name(),
                    "type_pretty": format!("{prefix}-{}", level.suffix()),
                    "all": pool.all,
                    "free": pool.all.saturating_sub(pool.used),
                    "used": pool.used,
                })
            })
            .collect(),
    )
}

/// One built-in permission. Ids are part of the API: never renumber, only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub id: u64,
    pub name: &'static str,
    pub display_name: &'static str,
    pub group: &'static str,
    pub user_type: UserType,
    pub license: Option<LicenseLevel>,
}

macro_rules! perm {
    ($id:expr, $name:expr, $display:expr, $group:expr, $ut:ident) => {
        Permission {
            id: $id,
            name: $name,
            display_name: $display,
            group: $group,
            user_type: UserType::$ut,
            license: None,
        }
    };
    ($id:expr, $name:expr, $display:expr, $group:expr, $ut:ident, $lvl:ident) => {
        Permission {
            id: $id,
            name: $name,
            display_name: $display,
            group: $group,
            user_type: UserType::$ut,
            license: Some(LicenseLevel::$lvl),
        }
    };
}

/// The catalogue (SPEC §4.4): every permission name of the AIPIX reference §5.6 and the
/// analytics cases of SPEC §5. `layouts-store` is id 9, as seed 001 shows it.
pub const PERMISSIONS: &[Permission] = &[
    perm!(1, "groups-index", "Viewing camera groups", "Groups", User),
    perm!(2, "groups-store", "Creating a camera group", "Groups", User),
    perm!(
        3,
        "groups-destroy",
        "Deleting a camera group",
        "Groups",
        User
    ),
    perm!(
        4,
        "groups-rename",
        "Renaming a camera group",
        "Groups",
        User
    ),
    perm!(
        5,
        "groups-cameras-attach",
        "Adding cameras to a group",
        "Groups",
        User
    ),
    perm!(
        6,
        "groups-cameras-detach",
        "Removing cameras from a group",
        "Groups",
        User
    ),
    perm!(7, "layouts-rename", "Renaming a Layout", "Layouts", User),
    perm!(8, "layouts-destroy", "Deleting a Layout", "Layouts", User),
    perm!(9, "layouts-store", "Creating Layout", "Layouts", User),
    perm!(
        10,
        "layouts-cameras-attach",
        "Adding cameras to a Layout",
        "Layouts",
        User
    ),
    perm!(
        11,
        "layouts-cameras-detach",
        "Removing cameras from a Layout",
        "Layouts",
        User
    ),
    perm!(12, "archives-show", "Viewing the archive", "Archive", User),
    perm!(
        13,
        "archives-download",
        "Downloading the archive",
        "Archive",
        User
    ),
    perm!(
        14,
        "archives-preview-download",
        "Downloading archive previews",
        "Archive",
        User
    ),
    perm!(15, "ptz", "PTZ camera control", "Cameras", User),
    perm!(
        16,
        "camera-events-store",
        "Creating camera events",
        "Events",
        User
    ),
    perm!(
        17,
        "camera-events-index",
        "Viewing camera events",
        "Events",
        User
    ),
    perm!(18, "logins-store", "Creating logins", "Logins", User),
    perm!(19, "users-index", "Viewing sub-users", "Sub-users", User),
    perm!(20, "users-store", "Creating sub-users", "Sub-users", User),
    perm!(21, "users-show", "Viewing a sub-user", "Sub-users", User),
    perm!(22, "users-update", "Updating sub-users", "Sub-users", User),
    perm!(23, "users-destroy", "Deleting sub-users", "Sub-users", User),
    perm!(
        24,
        "users-change-password",
        "Changing sub-user passwords",
        "Sub-users",
        User
    ),
    perm!(25, "marks-index", "Viewing marks", "Marks", User),
    perm!(26, "marks-store", "Creating marks", "Marks", User),
    perm!(27, "marks-destroy", "Deleting marks", "Marks", User),
    perm!(28, "marks-update", "Updating marks", "Marks", User),
    perm!(29, "intercom-index", "Viewing intercoms", "Intercoms", User),
    perm!(30, "analytic", "Business analytics", "Analytics", User),
    perm!(
        31,
        "analytic-cases-index",
        "Viewing analytics cases (deprecated)",
        "Analytics",
        User
    ),
    perm!(32, "bridges", "Bridges", "Bridges", User),
    perm!(
        33,
        "intercom-face",
        "Intercom face recognition (deprecated)",
        "Intercoms",
        User
    ),
    perm!(
        40,
        "analytic-cases-motion-detect",
        "Motion detection",
        "Analytics cases L1",
        User,
        L1
    ),
    perm!(
        41,
        "analytic-cases-line-intersection",
        "Line crossing",
        "Analytics cases L1",
        User,
        L1
    ),
    perm!(
        42,
        "analytic-cases-smoke-fire",
        "Smoke and fire",
        "Analytics cases L1",
        User,
        L1
    ),
    perm!(
        43,
        "analytic-cases-loud-sound",
        "Loud sound",
        "Analytics cases L1",
        User,
        L1
    ),
    perm!(
        44,
        "analytic-cases-camera-obstacle",
        "Camera obstruction",
        "Analytics cases L1",
        User,
        L1
    ),
    perm!(
        45,
        "analytic-cases-person-counting",
        "Person counting",
        "Analytics cases L2",
        User,
        L2
    ),
    perm!(
        46,
        "analytic-cases-visitor-counting",
        "Visitor counting",
        "Analytics cases L2",
        User,
        L2
    ),
    perm!(
        47,
        "analytic-cases-face",
        "Face recognition",
        "Analytics cases L3",
        User,
        L3
    ),
    perm!(
        48,
        "analytic-cases-license-plate",
        "Licence plate recognition",
        "Analytics cases L3",
        User,
        L3
    ),
    perm!(
        49,
        "analytic-cases-container-number-recognition",
        "Container number recognition",
        "Analytics cases L3",
        User,
        L3
    ),
    perm!(
        100,
        "streams-update",
        "Updating a video Stream",
        "Video streams",
        Admin
    ),
    perm!(
        101,
        "dhcp-subnets-destroy",
        "Deleting a DHCP network",
        "DHCP subnets",
        Admin
    ),
    perm!(
        102,
        "servers-update",
        "Updating a media server",
        "Servers",
        Admin
    ),
    perm!(103, "packs-destroy", "Deleting a pack", "Packs", Admin),
    perm!(104, "users-admin-index", "Viewing users", "Users", Admin),
    perm!(105, "users-admin-update", "Updating users", "Users", Admin),
    perm!(
        106,
        "cameras-admin-index",
        "Viewing cameras",
        "Cameras",
        Admin
    ),
    perm!(
        107,
        "cameras-admin-update",
        "Updating cameras",
        "Cameras",
        Admin
    ),
];

pub fn permission(id: u64) -> Option<&'static Permission> {
    PERMISSIONS.iter().find(|p| p.id == id)
}

impl Permission {
    /// `{id, name}`: the client-side shape (seed 000).
    pub fn client_view(&self) -> Value {
        json!({"id": self.id, "name": self.name})
    }

    /// `{id, name, display_name, group}`: the admin-side shape (seeds 001, 002).
    pub fn admin_view(&self) -> Value {
        json!({"id": self.id, "name": self.name, "display_name": self.display_name, "group": self.group})
    }

    pub fn catalogue_view(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "display_name": self.display_name,
            "group": self.group, "user_type": self.user_type.as_str(),
        })
    }
}

/// The licence levels an account draws on: one per level of the analytics permissions it holds.
pub fn license_levels(permissions: &BTreeSet<u64>) -> BTreeSet<LicenseLevel> {
    permissions
        .iter()
        .filter_map(|id| permission(*id).and_then(|p| p.license))
        .collect()
}

/// `<ClientUser>` of seed 000 plus `language`.
pub fn client_user_view(
    account: &Account,
    access_token_id: Option<&str>,
    pools: &[Pool; 3],
    prefix: &str,
) -> Value {
    json!({
        "id": account.id,
        "login": account.login,
        "name": account.name,
        "parent_id": account.parent_id,
        "permissions": account.permissions.iter().filter_map(|id| permission(*id)).map(Permission::client_view).collect::<Vec<_>>(),
        "created_at": fmt_resource(account.created_at),
        "updated_at": fmt_resource(account.updated_at),
        "access_token_id": access_token_id,
        "can_update_password": account.can_update_password,
        "analytic_license": license_view(pools, prefix),
        "language": account.language,
    })
}

/// `is_licence_limit_reached`: a pool this account draws on has nothing free.
pub fn licence_limit_reached(account: &Account, pools: &[Pool; 3]) -> bool {
    license_levels(&account.permissions).iter().any(|level| {
        let pool = pools[*level as usize];
        pool.all.saturating_sub(pool.used) == 0
    })
}

/// `<SpecialUser>` of seed 002; also the admin shape (SPEC §3, admin login).
pub fn special_user_view(
    account: &Account,
    access_token_id: Option<&str>,
    pools: &[Pool; 3],
) -> Value {
    json!({
        "id": account.id,
        "name": account.name,
        "login": account.login,
        "created_at": fmt_resource(account.created_at),
        "updated_at": fmt_resource(account.updated_at),
        "expired_at": account.expired_at.map(fmt_resource),
        "is_licence_limit_reached": licence_limit_reached(account, pools),
        "permissions": account.permissions.iter().filter_map(|id| permission(*id)).map(Permission::admin_view).collect::<Vec<_>>(),
        "ptz_priority": account.ptz_priority,
        "admin_camera_groups": [],
        "dhcp_subnet_groups": [],
        "access_token_id": access_token_id,
    })
}

/// `<DhUser>` of the DeviceHive API (SPEC §6). `locked_out` reflects an active automatic lockout.
pub fn dh_user_view(account: &Account, locked_out: bool) -> Value {
    let status = if account.status == STATUS_ACTIVE && locked_out {
        STATUS_LOCKED
    } else {
        account.status
    };
    json!({
        "id": account.id,
        "login": account.login,
        "role": account.user_type.role(),
        "status": status,
        "lastLogin": account.last_login.map(fmt_resource),
        "data": account.data,
        "introReviewed": account.intro_reviewed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalogue_ids_and_names_are_unique_and_cover_the_contract() {
        let ids: HashSet<_> = PERMISSIONS.iter().map(|p| p.id).collect();
        let names: HashSet<_> = PERMISSIONS.iter().map(|p| p.name).collect();
        assert_eq!(ids.len(), PERMISSIONS.len());
        assert_eq!(names.len(), PERMISSIONS.len());
        for name in [
            "layouts-store",
            "layouts-destroy",
            "layouts-rename",
            "layouts-cameras-attach",
            "layouts-cameras-detach",
            "groups-index",
            "groups-store",
            "groups-destroy",
            "groups-rename",
            "groups-cameras-attach",
            "groups-cameras-detach",
            "archives-show",
            "archives-download",
            "archives-preview-download",
            "ptz",
            "camera-events-store",
            "camera-events-index",
            "logins-store",
            "users-index",
            "users-store",
            "users-show",
            "users-update",
            "users-destroy",
            "users-change-password",
            "marks-index",
            "marks-store",
            "marks-destroy",
            "marks-update",
            "intercom-index",
            "analytic",
            "analytic-cases-index",
            "bridges",
            "intercom-face",
            "streams-update",
            "dhcp-subnets-destroy",
            "servers-update",
            "packs-destroy",
            "analytic-cases-camera-obstacle",
        ] {
            assert!(names.contains(name), "missing {name}");
        }
        assert_eq!(permission(9).map(|p| p.name), Some("layouts-store"));
        let levels: Vec<_> = PERMISSIONS.iter().filter_map(|p| p.license).collect();
        assert_eq!(levels.iter().filter(|l| **l == LicenseLevel::L1).count(), 5);
        assert_eq!(levels.iter().filter(|l| **l == LicenseLevel::L2).count(), 2);
        assert_eq!(levels.iter().filter(|l| **l == LicenseLevel::L3).count(), 3);
    }

    #[test]
    fn times_render_in_both_laravel_formats() {
        let t = 1_650_559_066; // 2022-04-21 16:37:46 UTC
        assert_eq!(fmt_resource(t), "2022-04-21 16:37:46");
        assert_eq!(fmt_model(t), "2022-04-21T16:37:46.000000Z");
    }

    #[test]
    fn license_view_computes_free_and_pretty_names() {
        let pools = [
            Pool { all: 100, used: 2 },
            Pool::default(),
            Pool { all: 1, used: 1 },
        ];
        let v = license_view(&pools, "LIC-XXXX-VA");
        assert_eq!(v[0]["type"], "analytic_l1");
        assert_eq!(v[0]["type_pretty"], "LIC-XXXX-VA-L1");
        assert_eq!(v[0]["free"], 98);
        assert_eq!(v[2]["free"], 0);
    }
}
