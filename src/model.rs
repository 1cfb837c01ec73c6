//! The records vmsd stores (accounts, sessions, cameras, licence pools, audit entries), the
//! built-in permission catalogue, and the JSON views the API renders from them (seed shapes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

/// Seconds since the Unix epoch, UTC: the one time representation inside vmsd.
pub type UnixTime = i64;

pub fn now() -> UnixTime {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `"Y-m-d H:i:s"`, as Laravel API resources render times.
const RESOURCE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

pub fn fmt_resource(t: UnixTime) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(RESOURCE_FORMAT).ok())
        .unwrap_or_default()
}

/// `fmt_resource` as a serializable value, formatted on a stack buffer: the request paths
/// that render it (`GET /users/self`) allocate nothing for it.
#[derive(Debug, Clone, Copy)]
pub struct ResourceTime(pub UnixTime);

impl Serialize for ResourceTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 32];
        let len = {
            let mut out: &mut [u8] = &mut buf;
            let written = OffsetDateTime::from_unix_timestamp(self.0)
                .ok()
                .and_then(|d| d.format_into(&mut out, RESOURCE_FORMAT).ok());
            written.unwrap_or(0)
        };
        serializer.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default())
    }
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
        }
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
    /// Persisted lazily; the live value is in `auth`'s in-memory map.
    #[serde(default)]
    pub last_used: Option<UnixTime>,
}

/// The fields of a stored `Session` that authenticating a request needs. Decoding only these
/// skips the session's other strings (device, client, user agent, IP) on every request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionKey {
    pub account_id: u64,
    pub access_token_id: String,
    pub expires_at: UnixTime,
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

    /// The same entry about `target_id`, for a record whose id the transaction assigns.
    pub fn about(&self, target_id: u64) -> AuditEntry {
        AuditEntry {
            target_id: Some(target_id),
            ..self.clone()
        }
    }

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
    serde_json::to_value(LicenseView { pools, prefix }).unwrap_or(Value::Null)
}

/// `analytic_license`: one item per level, keys in the order a `Value` map would print them.
#[derive(Clone, Copy)]
pub struct LicenseView<'a> {
    pub pools: &'a [Pool; 3],
    pub prefix: &'a str,
}

impl Serialize for LicenseView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Item<'a> {
            all: u64,
            free: u64,
            #[serde(rename = "type")]
            type_name: &'static str,
            type_pretty: TypePretty<'a>,
            used: u64,
        }
        struct TypePretty<'a>(&'a str, &'static str);
        impl Serialize for TypePretty<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&format_args!("{}-{}", self.0, self.1))
            }
        }
        serializer.collect_seq(LicenseLevel::ALL.iter().zip(self.pools.iter()).map(
            |(level, pool)| Item {
                all: pool.all,
                free: pool.all.saturating_sub(pool.used),
                type_name: level.type_name(),
                type_pretty: TypePretty(self.prefix, level.suffix()),
                used: pool.used,
            },
        ))
    }
}

/// Every admin-side permission: what each administrator holds.
pub fn admin_permissions() -> BTreeSet<u64> {
    PERMISSIONS
        .iter()
        .filter(|p| p.user_type == UserType::Admin)
        .map(|p| p.id)
        .collect()
}

/// `analytic_license` rendered once per change of the pools. Every client view embeds it and
/// serializing it per request was 4 % of a `GET /users/self` (issue 7); it changes only when
/// an admin or a licence-consuming assignment moves a pool.
#[derive(Default)]
pub struct RenderedLicences {
    last: std::sync::Mutex<Option<Rendered>>,
}

/// Pools and the JSON rendered from them.
type Rendered = ([Pool; 3], Arc<Box<RawValue>>);

impl RenderedLicences {
    /// The JSON of `LicenseView { pools, prefix }`; `prefix` is the configuration's and fixed
    /// for the life of the `App` that owns this.
    pub fn get(
        &self,
        pools: &[Pool; 3],
        prefix: &str,
    ) -> Result<Arc<Box<RawValue>>, serde_json::Error> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((rendered_for, json)) = &*last {
            if rendered_for == pools {
                return Ok(Arc::clone(json));
            }
        }
        let json = Arc::new(serde_json::value::to_raw_value(&LicenseView {
            pools,
            prefix,
        })?);
        *last = Some((*pools, Arc::clone(&json)));
        Ok(json)
    }
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
    serde_json::value::to_raw_value(&LicenseView { pools, prefix })
        .and_then(|licences| {
            serde_json::to_value(ClientUserView::new(account, access_token_id, &licences))
        })
        .unwrap_or(Value::Null)
}

/// The client-side `<User>` (seed 000), serialized straight from the account: `GET` and `PUT
/// /users/self` render it per request, and building a `Value` map first cost more than the
/// rest of the handler. Fields are in the order a `Value` map prints its keys, so both paths
/// produce the same bytes.
#[derive(Serialize)]
pub struct ClientUserView<'a> {
    access_token_id: Option<&'a str>,
    /// Rendered by `RenderedLicences` (or `LicenseView`): the same for every account.
    analytic_license: &'a RawValue,
    can_update_password: bool,
    created_at: ResourceTime,
    id: u64,
    language: &'a str,
    login: &'a str,
    name: &'a str,
    parent_id: Option<u64>,
    permissions: ClientPermissions<'a>,
    updated_at: ResourceTime,
}

impl<'a> ClientUserView<'a> {
    pub fn new(
        account: &'a Account,
        access_token_id: Option<&'a str>,
        analytic_license: &'a RawValue,
    ) -> Self {
        ClientUserView {
            access_token_id,
            analytic_license,
            can_update_password: account.can_update_password,
            created_at: ResourceTime(account.created_at),
            id: account.id,
            language: &account.language,
            login: &account.login,
            name: &account.name,
            parent_id: account.parent_id,
            permissions: ClientPermissions(&account.permissions),
            updated_at: ResourceTime(account.updated_at),
        }
    }
}

/// The account's permissions as `{id, name}` items.
struct ClientPermissions<'a>(&'a BTreeSet<u64>);

impl Serialize for ClientPermissions<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Item {
            id: u64,
            name: &'static str,
        }
        serializer.collect_seq(
            self.0
                .iter()
                .filter_map(|id| permission(*id))
                .map(|p| Item {
                    id: p.id,
                    name: p.name,
                }),
        )
    }
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

/// Groups deeper than this are not walked (a damaged store must not loop a render).
const MAX_GROUP_DEPTH: usize = 64;

/// Every camera group by id: a render needs a group's ancestors, and groups are few.
#[derive(Debug, Default, Clone)]
pub struct CameraGroupIndex(HashMap<u64, CameraGroup>);

impl CameraGroupIndex {
    pub fn new(groups: impl IntoIterator<Item = CameraGroup>) -> Self {
        CameraGroupIndex(groups.into_iter().map(|g| (g.id, g)).collect())
    }

    pub fn get(&self, id: u64) -> Option<&CameraGroup> {
        self.0.get(&id)
    }

    /// The group and its ancestors, root first.
    pub fn chain(&self, id: u64) -> Vec<&CameraGroup> {
        let mut chain = Vec::new();
        let mut next = Some(id);
        while let Some(id) = next {
            let Some(group) = self.0.get(&id) else { break };
            if chain.len() >= MAX_GROUP_DEPTH || chain.iter().any(|g: &&CameraGroup| g.id == id) {
                break;
            }
            chain.push(group);
            next = group.parent_id;
        }
        chain.reverse();
        chain
    }

    pub fn top_group_id(&self, id: u64) -> Option<u64> {
        self.chain(id).first().map(|g| g.id)
    }

    /// Names from the root down, as the VMS writes them: `"Test cameras, manual cameras"`.
    pub fn pretty(&self, id: u64) -> Option<String> {
        let chain = self.chain(id);
        (!chain.is_empty()).then(|| {
            chain
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// The `group` object of seed 001. `is_house`, `is_legal`, `path_index`,
    /// `intercoms_count` are 0 and `type` is `"cameras"`: vmsd has no houses, legal entities
    /// or intercoms. `uuid` and `user_id` are null.
    pub fn view(&self, id: u64) -> Option<Value> {
        let group = self.0.get(&id)?;
        let chain = self.chain(id);
        let pretty = self.pretty(id);
        Some(json!({
            "id": group.id,
            "parent_id": group.parent_id,
            "depth": chain.len().saturating_sub(1),
            "path_index": 0,
            "name": group.name,
            "is_house": 0,
            "type": "cameras",
            "uuid": null,
            "created_at": fmt_model(group.created_at),
            "updated_at": fmt_model(group.updated_at),
            "user_id": null,
            "is_legal": 0,
            "cameras_count": group.cameras_count,
            "short_pretty": pretty,
            "full_pretty": pretty,
            "top_group_id": chain.first().map(|g| g.id),
            "intercoms_count": 0,
        }))
    }
}

impl Camera {
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

/// The `pivot` of an assigned camera (seed 001). vmsd keeps no per-assignment settings:
/// `order` is the camera's position in the account's list (by camera id), `name` the camera's
/// name, `is_favorite` 0 and `status` `"active"`. vmsd has no camera logins, so `login_id`
/// is always 1 (an integer, as the seed types it).
pub fn camera_pivot(account_id: u64, camera: &Camera, order: usize) -> Value {
    json!({
        "user_id": account_id,
        "camera_id": camera.id,
        "order": order,
        "name": camera.name,
        "login_id": 1,
        "is_favorite": 0,
        "status": "active",
    })
}

/// The full camera model of seed 001, with `pivot` when rendered as an account's camera.
/// Defaults for what vmsd does not track: `start_at`, `origin`, `folder_id`, `azimuth`,
/// `location`, `pack_id`, `model_id`, `bridge_id`, `uuid`, `deleted_at`, `host_id` null;
/// `order`, `is_public`, `count_issues`, `is_increased_reconnect`, `is_intercom` 0;
/// `is_sensitive`, `is_buffer_enabled`, `is_user_owner`, `is_need_replace`,
/// `is_auto_create_streams` false; `is_editable` true; `group_type` `"public"`, `source`
/// `"manual"`, `archive_recording_type` `"fulltime"`; `services` `[]`.
/// `is_archive_recording` is true when `archive_storage_days` is set.
pub fn camera_view(camera: &Camera, groups: &CameraGroupIndex, pivot: Option<Value>) -> Value {
    let mut view = json!({
        "id": camera.id,
        "name": camera.name,
        "status": camera.status(),
        "type": camera.camera_type,
        "start_at": null,
        "group_id": camera.group_id,
        "top_group_id": camera.group_id.and_then(|g| groups.top_group_id(g)),
        "order": 0,
        "created_at": fmt_model(camera.created_at),
        "updated_at": fmt_model(camera.updated_at),
        "origin": null,
        "group_type": "public",
        "folder_id": null,
        "is_sensitive": false,
        "is_buffer_enabled": false,
        "is_public": 0,
        "count_issues": 0,
        "azimuth": null,
        "location": null,
        "is_user_owner": false,
        "pack_id": null,
        "source": "manual",
        "archive_storage_days": camera.archive_storage_days,
        "is_archive_recording": camera.archive_storage_days.is_some(),
        "is_increased_reconnect": 0,
        "model_id": null,
        "is_sound_enabled": camera.is_sound_enabled,
        "is_need_replace": false,
        "ip": camera.ip,
        "bridge_id": null,
        "uuid": null,
        "deleted_at": null,
        "archive_recording_type": "fulltime",
        "is_auto_create_streams": false,
        "host_id": null,
        "is_enabled": u8::from(camera.is_enabled),
        "is_editable": true,
        "is_intercom": 0,
        "services_list": camera.services(),
        "group": camera.group_id.and_then(|g| groups.view(g)),
        "services": [],
    });
    if let (Some(pivot), Value::Object(map)) = (pivot, &mut view) {
        map.insert("pivot".into(), pivot);
    }
    view
}

/// The camera summary of the temporary-user list (AIPIX reference §5.4), same defaults as
/// `camera_view`; its times render `Y-m-d H:i:s` as that list does.
pub fn camera_summary_view(camera: &Camera, groups: &CameraGroupIndex) -> Value {
    let pretty = camera.group_id.and_then(|g| groups.pretty(g));
    json!({
        "id": camera.id,
        "group_id": camera.group_id,
        "status": camera.status(),
        "type": camera.camera_type,
        "pretty_text": pretty,
        "short_pretty": pretty,
        "start_at": null,
        "created_at": fmt_resource(camera.created_at),
        "name": camera.name,
        "can_edit": true,
        "origin": null,
        "group_type": "public",
        "shared_from": null,
        "ip": camera.ip,
        "lat": null,
        "lng": null,
        "azimuth": null,
        "is_sensitive": 0,
        "is_public": 0,
        "count_issues": 0,
        "source": "manual",
        "archive_storage_days": camera.archive_storage_days,
        "is_archive_recording": camera.archive_storage_days.is_some(),
        "archive_recording_type": "fulltime",
        "is_increased_reconnect": 0,
        "is_sound_enabled": camera.is_sound_enabled,
        "is_bridge": false,
    })
}

fn admin_permissions_view(permissions: &BTreeSet<u64>) -> Vec<Value> {
    permissions
        .iter()
        .filter_map(|id| permission(*id))
        .map(Permission::admin_view)
        .collect()
}

/// One item of `GET /api/admin/v1/users` (SPEC §4.2).
pub fn regular_user_list_item(account: &Account) -> Value {
    json!({
        "id": account.id,
        "name": account.name,
        "login": account.login,
        "created_at": fmt_resource(account.created_at),
        "user_type": account.user_type.as_str(),
        "parent_id": account.parent_id,
    })
}

/// `billing_info` as the admin view renders it: `{"data": [...]}` or null.
pub fn billing_info_view(billing_info: Option<&Value>) -> Value {
    match billing_info {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Object(map)) if map.get("data").is_some_and(Value::is_array) => {
            Value::Object(map.clone())
        }
        Some(Value::Array(items)) => json!({"data": items}),
        Some(other) => json!({"data": [other]}),
    }
}

/// `<AdminUserView>` of seed 001 (SPEC §4.2). `cameras` are already rendered (with pivots);
/// `events` are this account's audit entries, newest first. vmsd keeps no intercoms: those
/// three lists are empty.
pub fn admin_user_view(
    account: &Account,
    cameras: Vec<Value>,
    subusers: &[Account],
    events: &[AuditEntry],
    pools: &[Pool; 3],
    prefix: &str,
) -> Value {
    json!({
        "id": account.id,
        "name": account.name,
        "login": account.login,
        "created_at": fmt_resource(account.created_at),
        "user_type": account.user_type.as_str(),
        "parent_id": account.parent_id,
        "cameras": cameras,
        "subusers": subusers.iter().map(|s| json!({
            "id": s.id,
            "name": s.name,
            "login": s.login,
            "created_at": fmt_resource(s.created_at),
            "permissions": admin_permissions_view(&s.permissions),
        })).collect::<Vec<_>>(),
        "permissions": admin_permissions_view(&account.permissions),
        "billing_info": billing_info_view(account.billing_info.as_ref()),
        "events": events.iter().map(AuditEntry::view).collect::<Vec<_>>(),
        "analytic_license": license_view(pools, prefix),
        "intercoms": [],
        "intercom_flats": [],
        "intercom_keys": [],
    })
}

/// How many licences of each level (L1, L2, L3) an account takes (SPEC §5): a `special`
/// account holding a permission of level L takes one L licence per assigned camera.
pub fn licence_usage(account: &Account) -> [u64; 3] {
    let mut usage = [0u64; 3];
    if account.user_type == UserType::Special {
        let cameras = account.cameras.len() as u64;
        for level in license_levels(&account.permissions) {
            usage[level as usize] = cameras;
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_typed_client_view_is_the_seed_shape_byte_for_byte(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let account = Account {
            id: 7,
            user_type: UserType::User,
            login: "Zoë \"q\"".into(),
            name: "Name".into(),
            password_hash: "x".into(),
            language: "ru".into(),
            status: STATUS_ACTIVE,
            data: None,
            intro_reviewed: false,
            can_update_password: false,
            permissions: [1, 2, 40, 9999].into(),
            parent_id: Some(3),
            cameras: Default::default(),
            created_at: 1_700_000_000,
            updated_at: 1_700_000_061,
            last_login: None,
            expired_at: None,
            ptz_priority: None,
            billing_info: None,
        };
        let pools = [
            Pool { all: 5, used: 2 },
            Pool { all: 0, used: 0 },
            Pool { all: 9, used: 9 },
        ];
        // The view as a `Value` map built key by key, as the handlers rendered it before.
        let expected = json!({
            "id": account.id,
            "login": account.login,
            "name": account.name,
            "parent_id": account.parent_id,
            "permissions": account.permissions.iter().filter_map(|id| permission(*id)).map(Permission::client_view).collect::<Vec<_>>(),
            "created_at": fmt_resource(account.created_at),
            "updated_at": fmt_resource(account.updated_at),
            "access_token_id": "tok",
            "can_update_password": account.can_update_password,
            "analytic_license": LicenseLevel::ALL.iter().zip(pools.iter()).map(|(level, pool)| json!({
                "type": level.type_name(),
                "type_pretty": format!("LIC-{}", level.suffix()),
                "all": pool.all,
                "free": pool.all.saturating_sub(pool.used),
                "used": pool.used,
            })).collect::<Vec<_>>(),
            "language": account.language,
        });
        let licences = serde_json::value::to_raw_value(&LicenseView {
            pools: &pools,
            prefix: "LIC",
        })?;
        let typed = serde_json::to_vec(&ClientUserView::new(&account, Some("tok"), &licences))?;
        assert_eq!(String::from_utf8(typed)?, serde_json::to_string(&expected)?);
        assert_eq!(
            client_user_view(&account, Some("tok"), &pools, "LIC"),
            expected
        );
        assert_eq!(
            serde_json::to_string(&ResourceTime(i64::MAX))?,
            format!("\"{}\"", fmt_resource(i64::MAX))
        );
        Ok(())
    }

    #[test]
    fn rendered_licences_match_the_view_and_follow_the_pools(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let cache = RenderedLicences::default();
        let mut pools = [
            Pool { all: 5, used: 2 },
            Pool::default(),
            Pool { all: 9, used: 9 },
        ];
        let fresh = |pools: &[Pool; 3]| {
            serde_json::to_string(&LicenseView {
                pools,
                prefix: "LIC",
            })
        };
        let first = cache.get(&pools, "LIC")?;
        assert_eq!(first.get(), fresh(&pools)?);
        assert!(
            Arc::ptr_eq(&first, &cache.get(&pools, "LIC")?),
            "unchanged pools re-rendered"
        );
        pools[1] = Pool { all: 3, used: 1 };
        let second = cache.get(&pools, "LIC")?;
        assert_eq!(second.get(), fresh(&pools)?);
        assert_ne!(first.get(), second.get());
        Ok(())
    }

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

    fn group(id: u64, parent_id: Option<u64>, name: &str) -> CameraGroup {
        CameraGroup {
            id,
            parent_id,
            name: name.into(),
            created_at: 0,
            updated_at: 0,
            cameras_count: 0,
            children_count: 0,
        }
    }

    #[test]
    fn group_chains_derive_depth_top_and_pretty_names_and_survive_cycles() {
        let groups = CameraGroupIndex::new([
            group(1, None, "Test cameras"),
            group(2, Some(1), "manual cameras"),
            group(3, Some(4), "loop a"),
            group(4, Some(3), "loop b"),
        ]);
        let view = groups.view(2).unwrap_or_default();
        assert_eq!(view["depth"], 1);
        assert_eq!(view["top_group_id"], 1);
        assert_eq!(view["full_pretty"], "Test cameras, manual cameras");
        assert_eq!(groups.view(1).unwrap_or_default()["depth"], 0);
        // A damaged store with a cycle renders instead of looping.
        assert_eq!(groups.chain(3).len(), 2);
        assert!(groups.view(99).is_none());
    }

    #[test]
    fn licence_usage_counts_cameras_per_level_for_temporary_users_only() {
        let mut account = Account {
            id: 1,
            user_type: UserType::Special,
            login: "t".into(),
            name: "t".into(),
            password_hash: String::new(),
            language: "en".into(),
            status: STATUS_ACTIVE,
            data: None,
            intro_reviewed: false,
            can_update_password: true,
            permissions: [40, 41, 47, 9].into(),
            parent_id: None,
            cameras: [1, 2, 3].into(),
            created_at: 0,
            updated_at: 0,
            last_login: None,
            expired_at: None,
            ptz_priority: None,
            billing_info: None,
        };
        assert_eq!(licence_usage(&account), [3, 0, 3]);
        account.user_type = UserType::User;
        assert_eq!(licence_usage(&account), [0, 0, 0]);
    }

    #[test]
    fn billing_info_renders_as_a_data_list_or_null() {
        assert_eq!(billing_info_view(None), Value::Null);
        assert_eq!(
            billing_info_view(Some(&json!({"data": [1]}))),
            json!({"data": [1]})
        );
        assert_eq!(
            billing_info_view(Some(&json!([{"a": 1}]))),
            json!({"data": [{"a": 1}]})
        );
        assert_eq!(
            billing_info_view(Some(&json!({"a": 1}))),
            json!({"data": [{"a": 1}]})
        );
    }
}
