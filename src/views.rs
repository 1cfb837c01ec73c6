//! The JSON views the API renders from the records (the seed shapes): client, temporary-user,
//! admin and DeviceHive user objects, cameras with their groups and pivots, permissions,
//! licence pools, audit entries, and the two Laravel time formats.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::model::{
    Account, AuditEntry, Camera, CameraGroup, UnixTime, STATUS_ACTIVE, STATUS_LOCKED,
};
use crate::permissions::{license_limit_reached, permission, LicenseLevel, Permission, Pool};

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

/// `analytic_license` rendered once per change of the pools. Every client view embeds it and
/// serializing it per request was 4 % of a `GET /users/self` (issue 7); it changes only when
/// an admin or a licence-consuming assignment moves a pool.
#[derive(Default)]
pub struct RenderedLicenses {
    last: std::sync::Mutex<Option<Rendered>>,
}

/// Pools and the JSON rendered from them.
type Rendered = ([Pool; 3], Arc<Box<RawValue>>);

impl RenderedLicenses {
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

/// `<ClientUser>` of seed 000 plus `language`.
pub fn client_user_view(
    account: &Account,
    access_token_id: Option<&str>,
    pools: &[Pool; 3],
    prefix: &str,
) -> Value {
    serde_json::value::to_raw_value(&LicenseView { pools, prefix })
        .and_then(|licenses| {
            serde_json::to_value(ClientUserView::new(account, access_token_id, &licenses))
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
    /// Rendered by `RenderedLicenses` (or `LicenseView`): the same for every account.
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
        "is_licence_limit_reached": license_limit_reached(account, pools),
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
        // vmsd has no device types; the DeviceHive client requires the key (SPEC §6).
        "allDeviceTypesAvailable": true,
    })
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
    if let Value::Object(map) = &mut view {
        // SPEC §4.4; added here because the model is at `json!`'s recursion limit.
        map.insert("media_path".into(), Value::String(camera.media_path()));
        if let Some(pivot) = pivot {
            map.insert("pivot".into(), pivot);
        }
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
        "source": account.source(),
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
        "source": account.source(),
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
        "events": events.iter().map(audit_entry_view).collect::<Vec<_>>(),
        "analytic_license": license_view(pools, prefix),
        "intercoms": [],
        "intercom_flats": [],
        "intercom_keys": [],
    })
}

/// One item of `GET /api/admin/v1/audit` and of an admin view's `events`.
pub fn audit_entry_view(entry: &AuditEntry) -> Value {
    json!({
        "id": entry.id,
        "at": fmt_resource(entry.at),
        "actor_id": entry.actor_id,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "fields": entry.fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserType;

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
            directory: None,
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
        let licenses = serde_json::value::to_raw_value(&LicenseView {
            pools: &pools,
            prefix: "LIC",
        })?;
        let typed = serde_json::to_vec(&ClientUserView::new(&account, Some("tok"), &licenses))?;
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
    fn rendered_licenses_match_the_view_and_follow_the_pools(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let cache = RenderedLicenses::default();
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
