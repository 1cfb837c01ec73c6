//! Cameras and camera groups in the admin API (SPEC §4.4):
//! `GET/POST /api/admin/v1/cameras`, `GET/PUT/DELETE /api/admin/v1/cameras/{camera}`,
//! `GET/POST /api/admin/v1/camera-groups`, `GET/PUT/DELETE /api/admin/v1/camera-groups/{group}`.
//! Deleting a camera detaches it from every account and gives back the licences it took, in
//! one transaction. A group is deleted only when empty (no cameras, no child groups).

use std::collections::BTreeMap;

use serde_json::Value;

use super::admin_common::{
    audit_entry, group_index, matches_search, move_licences, read_name, with_fields,
};
use super::{
    created, ok, page_params, paginated, search_needle, status_ok, HandlerResult, Request,
};
use crate::error::ApiError;
use crate::model::{camera_view, licence_usage, now, Camera, CameraGroup, DEFAULT_CAMERA_TYPE};
use crate::store::{Tx, TxError, TxResult};
use crate::validate::{self, Input};
use crate::App;

/// Bounds on `services_list`: a handful of named flags.
const MAX_SERVICES: usize = 32;
const MAX_SERVICE_NAME: usize = 64;
/// Ten years of archive is more than any appliance disk holds.
const MAX_ARCHIVE_STORAGE_DAYS: i64 = 3650;
/// Deeper group trees are refused (renders walk the chain).
const MAX_GROUP_DEPTH: usize = 32;

fn invalid(field: &str) -> ApiError {
    ApiError::field(field, validate::msg_invalid(field))
}

/// Reads an optional nullable id field: absent → None, null → Some(None).
fn read_nullable_id(input: &mut Input<'_>, key: &str) -> Option<Option<u64>> {
    match input.raw(key) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(raw) => match validate::parse_id(raw) {
            Some(id) => Some(Some(id)),
            None => {
                input.error(key, validate::msg_integer(key));
                None
            }
        },
    }
}

// ---------------------------------------------------------------------------------------
// Cameras
// ---------------------------------------------------------------------------------------

/// The fields of a camera create or update, each given or not. `ip`, `group_id` and
/// `archive_storage_days` may be given as null (cleared).
#[derive(Default)]
struct CameraFields {
    name: Option<String>,
    ip: Option<Option<String>>,
    group_id: Option<Option<u64>>,
    camera_type: Option<String>,
    is_enabled: Option<bool>,
    is_sound_enabled: Option<bool>,
    archive_storage_days: Option<Option<u32>>,
    services_list: Option<BTreeMap<String, bool>>,
}

type CreateCameraRequest = CameraFields;
type UpdateCameraRequest = CameraFields;

fn read_camera_fields(
    app: &App,
    input: &mut Input<'_>,
    creating: bool,
) -> Result<CameraFields, ApiError> {
    let mut fields = CameraFields {
        name: read_name(input, creating),
        ..CameraFields::default()
    };
    if input.has_key("ip") {
        fields.ip = match input.raw("ip") {
            Some(Value::Null) => Some(None),
            _ => input
                .string("ip", 255)
                .map(|ip| Some(ip.trim().to_owned()).filter(|ip| !ip.is_empty())),
        };
    }
    fields.group_id = read_nullable_id(input, "group_id");
    if let Some(Some(group_id)) = fields.group_id {
        if app
            .store
            .camera_group_raw::<CameraGroup>(group_id)?
            .is_none()
        {
            input.error("group_id", validate::msg_invalid("group_id"));
        }
    }
    fields.camera_type = input.string("type", 64).map(|t| t.trim().to_owned());
    if fields.camera_type.as_deref() == Some("") {
        input.error("type", validate::msg_required("type"));
    }
    fields.is_enabled = input.boolean("is_enabled");
    fields.is_sound_enabled = input.boolean("is_sound_enabled");
    if input.has_key("archive_storage_days") {
        fields.archive_storage_days = match input.raw("archive_storage_days") {
            Some(Value::Null) => Some(None),
            _ => input
                .integer("archive_storage_days", 1, MAX_ARCHIVE_STORAGE_DAYS)
                .and_then(|d| u32::try_from(d).ok())
                .map(Some),
        };
    }
    match input.raw("services_list") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            let mut services = BTreeMap::new();
            let mut valid = true;
            if map.len() > MAX_SERVICES {
                input.error(
                    "services_list",
                    validate::msg_max_items("services_list", MAX_SERVICES),
                );
                valid = false;
            }
            for (name, value) in map {
                let key = format!("services_list.{name}");
                match value {
                    Value::Bool(on)
                        if !name.is_empty() && name.chars().count() <= MAX_SERVICE_NAME =>
                    {
                        services.insert(name.clone(), *on);
                    }
                    Value::Bool(_) => {
                        input.error(key.clone(), validate::msg_invalid(&key));
                        valid = false;
                    }
                    _ => {
                        input.error(key.clone(), validate::msg_boolean(&key));
                        valid = false;
                    }
                }
            }
            if valid {
                fields.services_list = Some(services);
            }
        }
        Some(_) => input.error("services_list", validate::msg_object("services_list")),
    }
    Ok(fields)
}

/// Moves a camera between groups' `cameras_count`, inside the caller's transaction.
fn move_camera_between_groups(tx: &Tx<'_>, from: Option<u64>, to: Option<u64>) -> TxResult<()> {
    if from == to {
        return Ok(());
    }
    if let Some(from) = from {
        if let Some(mut group) = tx.camera_group_raw::<CameraGroup>(from)? {
            group.cameras_count = group.cameras_count.saturating_sub(1);
            tx.put_camera_group_raw(from, &group)?;
        }
    }
    if let Some(to) = to {
        // The group may have been deleted since validation.
        let mut group = tx
            .camera_group_raw::<CameraGroup>(to)?
            .ok_or_else(|| invalid("group_id"))?;
        group.cameras_count += 1;
        tx.put_camera_group_raw(to, &group)?;
    }
    Ok(())
}

fn load_camera(app: &App, req: &Request) -> Result<Camera, ApiError> {
    let id = validate::path_id(req.param("camera"))?;
    app.store
        .camera_raw::<Camera>(id)?
        .ok_or(ApiError::NotFound)
}

fn render_camera(app: &App, camera: &Camera) -> Result<Value, ApiError> {
    Ok(camera_view(camera, &group_index(app)?, None))
}

pub fn list(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let (page, per_page) = page_params(req);
    let needle = search_needle(req);
    let groups = group_index(app)?;
    let skip = (page - 1).saturating_mul(per_page);
    let mut total = 0;
    let mut items = Vec::new();
    for camera in app.store.cameras_raw::<Camera>() {
        let camera = camera?;
        let ip = camera.ip.as_deref().unwrap_or_default();
        if !matches_search(needle.as_deref(), &[&camera.name, ip]) {
            continue;
        }
        if total >= skip && items.len() < per_page {
            items.push(camera_view(&camera, &groups, None));
        }
        total += 1;
    }
    ok(&paginated(req, items, total, page, per_page))
}

pub fn show(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let camera = load_camera(app, req)?;
    ok(&render_camera(app, &camera)?)
}

pub async fn create(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let request: CreateCameraRequest = read_camera_fields(app, &mut input, true)?;
    input.finish()?;
    let Some(name) = request.name.clone() else {
        return Err(ApiError::internal("validated camera name missing"));
    };
    let entry = with_fields(
        &audit_entry(app, admin.account.id, "camera_created", "camera", None),
        &given_camera_fields(&request),
    );
    let at = now();
    let camera = app.store.transaction(|tx| {
        let camera = Camera {
            id: tx.next_id("camera")?,
            name: name.clone(),
            ip: request.ip.clone().flatten(),
            group_id: request.group_id.flatten(),
            camera_type: request
                .camera_type
                .clone()
                .unwrap_or_else(|| DEFAULT_CAMERA_TYPE.to_owned()),
            is_enabled: request.is_enabled.unwrap_or(true),
            is_sound_enabled: request.is_sound_enabled.unwrap_or(false),
            archive_storage_days: request.archive_storage_days.flatten(),
            services_list: request.services_list.clone().unwrap_or_default(),
            created_at: at,
            updated_at: at,
        };
        move_camera_between_groups(tx, None, camera.group_id)?;
        tx.put_camera_raw(camera.id, &camera)?;
        tx.audit(&entry.about(camera.id))?;
        Ok(camera)
    })?;
    app.store.flush().await?;
    created(&render_camera(app, &camera)?)
}

/// The names of the fields a create or update request carries.
fn given_camera_fields(request: &CameraFields) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let given = [
        ("name", request.name.is_some()),
        ("ip", request.ip.is_some()),
        ("group_id", request.group_id.is_some()),
        ("type", request.camera_type.is_some()),
        ("is_enabled", request.is_enabled.is_some()),
        ("is_sound_enabled", request.is_sound_enabled.is_some()),
        (
            "archive_storage_days",
            request.archive_storage_days.is_some(),
        ),
        ("services_list", request.services_list.is_some()),
    ];
    for (name, is_given) in given {
        if is_given {
            fields.push(name);
        }
    }
    fields
}

pub async fn update(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_camera(app, req)?.id;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let request: UpdateCameraRequest = read_camera_fields(app, &mut input, false)?;
    input.finish()?;
    let entry = audit_entry(app, admin.account.id, "camera_updated", "camera", Some(id));
    let at = now();
    let camera = app.store.transaction(|tx| {
        let before = tx.camera_raw::<Camera>(id)?.ok_or(ApiError::NotFound)?;
        let mut camera = before.clone();
        if let Some(name) = &request.name {
            camera.name = name.clone();
        }
        if let Some(ip) = &request.ip {
            camera.ip = ip.clone();
        }
        if let Some(group_id) = request.group_id {
            camera.group_id = group_id;
        }
        if let Some(camera_type) = &request.camera_type {
            camera.camera_type = camera_type.clone();
        }
        if let Some(on) = request.is_enabled {
            camera.is_enabled = on;
        }
        if let Some(on) = request.is_sound_enabled {
            camera.is_sound_enabled = on;
        }
        if let Some(days) = request.archive_storage_days {
            camera.archive_storage_days = days;
        }
        if let Some(services) = &request.services_list {
            camera.services_list = services.clone();
        }
        let changed = changed_camera_fields(&before, &camera);
        if changed.is_empty() {
            return Ok(camera);
        }
        move_camera_between_groups(tx, before.group_id, camera.group_id)?;
        camera.updated_at = at;
        tx.put_camera_raw(id, &camera)?;
        tx.audit(&with_fields(&entry, &changed))?;
        Ok(camera)
    })?;
    app.store.flush().await?;
    ok(&render_camera(app, &camera)?)
}

fn changed_camera_fields(a: &Camera, b: &Camera) -> Vec<&'static str> {
    let checks = [
        ("name", a.name != b.name),
        ("ip", a.ip != b.ip),
        ("group_id", a.group_id != b.group_id),
        ("type", a.camera_type != b.camera_type),
        ("is_enabled", a.is_enabled != b.is_enabled),
        ("is_sound_enabled", a.is_sound_enabled != b.is_sound_enabled),
        (
            "archive_storage_days",
            a.archive_storage_days != b.archive_storage_days,
        ),
        ("services_list", a.services_list != b.services_list),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name)
        .collect()
}

pub async fn delete(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_camera(app, req)?.id;
    let entry = audit_entry(app, admin.account.id, "camera_deleted", "camera", Some(id));
    let detached = app.store.transaction(|tx| {
        let camera = tx.camera_raw::<Camera>(id)?.ok_or(ApiError::NotFound)?;
        let mut usage_before = [0u64; 3];
        let mut usage_after = [0u64; 3];
        let holders = tx.camera_accounts(id)?;
        for account_id in &holders {
            let Some(mut account) = tx.account(*account_id)? else {
                continue;
            };
            let before = licence_usage(&account);
            account.cameras.remove(&id);
            let after = licence_usage(&account);
            for i in 0..3 {
                usage_before[i] += before[i];
                usage_after[i] += after[i];
            }
            let key = validate::login_key(&account.login);
            tx.put_account(&account, Some(&key), "login")?;
        }
        move_licences(tx, usage_before, usage_after)?;
        move_camera_between_groups(tx, camera.group_id, None)?;
        tx.remove_camera_raw(id)?;
        tx.audit(&entry)?;
        Ok(holders.len())
    })?;
    app.store.flush().await?;
    tracing::info!(
        camera_id = id,
        actor_id = admin.account.id,
        "admin {} deleted camera {id}, detached from {detached} accounts",
        admin.account.id
    );
    status_ok()
}

// ---------------------------------------------------------------------------------------
// Camera groups
// ---------------------------------------------------------------------------------------

fn load_group(app: &App, req: &Request) -> Result<CameraGroup, ApiError> {
    let id = validate::path_id(req.param("group"))?;
    app.store
        .camera_group_raw::<CameraGroup>(id)?
        .ok_or(ApiError::NotFound)
}

fn render_group(app: &App, id: u64) -> Result<Value, ApiError> {
    group_index(app)?.view(id).ok_or(ApiError::NotFound)
}

pub fn list_groups(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let (page, per_page) = page_params(req);
    let needle = search_needle(req);
    let groups = group_index(app)?;
    let skip = (page - 1).saturating_mul(per_page);
    let mut total = 0;
    let mut items = Vec::new();
    for group in app.store.camera_groups_raw::<CameraGroup>() {
        let group = group?;
        if !matches_search(needle.as_deref(), &[&group.name]) {
            continue;
        }
        if total >= skip && items.len() < per_page {
            if let Some(view) = groups.view(group.id) {
                items.push(view);
            }
        }
        total += 1;
    }
    ok(&paginated(req, items, total, page, per_page))
}

pub fn show_group(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let group = load_group(app, req)?;
    ok(&render_group(app, group.id)?)
}

/// A validated create or update of a group; `parent_id` null makes it a top group.
struct CameraGroupFields {
    name: Option<String>,
    parent_id: Option<Option<u64>>,
}

type CreateCameraGroupRequest = CameraGroupFields;
type UpdateCameraGroupRequest = CameraGroupFields;

fn read_group_fields(
    app: &App,
    input: &mut Input<'_>,
    creating: bool,
) -> Result<CameraGroupFields, ApiError> {
    let name = read_name(input, creating);
    let parent_id = read_nullable_id(input, "parent_id");
    if let Some(Some(parent)) = parent_id {
        if app.store.camera_group_raw::<CameraGroup>(parent)?.is_none() {
            input.error("parent_id", validate::msg_invalid("parent_id"));
        }
    }
    Ok(CameraGroupFields { name, parent_id })
}

/// Checks, inside the transaction, that `parent` exists, is not `group` itself or one of
/// its descendants, and keeps the tree within `MAX_GROUP_DEPTH`.
fn check_parent(tx: &Tx<'_>, group: Option<u64>, parent: u64) -> TxResult<()> {
    let mut next = Some(parent);
    let mut depth = 0;
    while let Some(id) = next {
        if Some(id) == group || depth >= MAX_GROUP_DEPTH {
            return Err(TxError::Abort(invalid("parent_id")));
        }
        let current = tx
            .camera_group_raw::<CameraGroup>(id)?
            .ok_or_else(|| invalid("parent_id"))?;
        next = current.parent_id;
        depth += 1;
    }
    Ok(())
}

fn adjust_children(tx: &Tx<'_>, parent: Option<u64>, grow: bool) -> TxResult<()> {
    if let Some(parent) = parent {
        if let Some(mut group) = tx.camera_group_raw::<CameraGroup>(parent)? {
            group.children_count = if grow {
                group.children_count + 1
            } else {
                group.children_count.saturating_sub(1)
            };
            tx.put_camera_group_raw(parent, &group)?;
        }
    }
    Ok(())
}

pub async fn create_group(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let request: CreateCameraGroupRequest = read_group_fields(app, &mut input, true)?;
    input.finish()?;
    let Some(name) = request.name.clone() else {
        return Err(ApiError::internal("validated group name missing"));
    };
    let parent_id = request.parent_id.flatten();
    let mut fields = vec!["name"];
    if parent_id.is_some() {
        fields.push("parent_id");
    }
    let entry = with_fields(
        &audit_entry(
            app,
            admin.account.id,
            "camera_group_created",
            "camera_group",
            None,
        ),
        &fields,
    );
    let at = now();
    let group = app.store.transaction(|tx| {
        if let Some(parent) = parent_id {
            check_parent(tx, None, parent)?;
        }
        let group = CameraGroup {
            id: tx.next_id("camera_group")?,
            parent_id,
            name: name.clone(),
            created_at: at,
            updated_at: at,
            cameras_count: 0,
            children_count: 0,
        };
        adjust_children(tx, parent_id, true)?;
        tx.put_camera_group_raw(group.id, &group)?;
        tx.audit(&entry.about(group.id))?;
        Ok(group)
    })?;
    app.store.flush().await?;
    created(&render_group(app, group.id)?)
}

pub async fn update_group(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_group(app, req)?.id;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let request: UpdateCameraGroupRequest = read_group_fields(app, &mut input, false)?;
    input.finish()?;
    let entry = audit_entry(
        app,
        admin.account.id,
        "camera_group_updated",
        "camera_group",
        Some(id),
    );
    let at = now();
    app.store.transaction(|tx| {
        let mut group = tx
            .camera_group_raw::<CameraGroup>(id)?
            .ok_or(ApiError::NotFound)?;
        let mut fields = Vec::new();
        if let Some(name) = &request.name {
            if *name != group.name {
                group.name = name.clone();
                fields.push("name");
            }
        }
        if let Some(parent_id) = request.parent_id {
            if parent_id != group.parent_id {
                if let Some(parent) = parent_id {
                    check_parent(tx, Some(id), parent)?;
                }
                adjust_children(tx, group.parent_id, false)?;
                adjust_children(tx, parent_id, true)?;
                group.parent_id = parent_id;
                fields.push("parent_id");
            }
        }
        if fields.is_empty() {
            return Ok(());
        }
        group.updated_at = at;
        tx.put_camera_group_raw(id, &group)?;
        tx.audit(&with_fields(&entry, &fields))
    })?;
    app.store.flush().await?;
    ok(&render_group(app, id)?)
}

pub async fn delete_group(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_group(app, req)?.id;
    let entry = audit_entry(
        app,
        admin.account.id,
        "camera_group_deleted",
        "camera_group",
        Some(id),
    );
    app.store.transaction(|tx| {
        let group = tx
            .camera_group_raw::<CameraGroup>(id)?
            .ok_or(ApiError::NotFound)?;
        if group.cameras_count > 0 || group.children_count > 0 {
            return Err(TxError::Abort(ApiError::field(
                "group",
                "The group must have no cameras and no sub-groups to be deleted.",
            )));
        }
        adjust_children(tx, group.parent_id, false)?;
        tx.remove_camera_group_raw(id)?;
        tx.audit(&entry)
    })?;
    app.store.flush().await?;
    status_ok()
}
