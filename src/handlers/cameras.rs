//! Cameras in the admin API (SPEC §4.4): `GET/POST /api/admin/v1/cameras`,
//! `GET/PUT/DELETE /api/admin/v1/cameras/{camera}`. Deleting a camera detaches it from every
//! account and gives back the licences it took, in one transaction. A camera's `media_path`
//! (SPEC §4.4, §8) is unique; the check and the index update share the camera's transaction.

use std::collections::BTreeMap;

use serde_json::Value;

use super::admin_common::{audit, group_index, invalid, read_name, read_nullable_id};
use super::{
    created, matches_search, ok, paged_search, search_needle, status_ok, HandlerResult, Request,
};
use crate::accounts::move_licenses;
use crate::app::App;
use crate::error::ApiError;
use crate::model::{default_media_path_id, now, Camera, DEFAULT_CAMERA_TYPE};
use crate::permissions::license_usage;
use crate::store::{Notice, Tx, TxError, TxResult};
use crate::validate::{self, Input};
use crate::views::camera_view;

/// Bounds on `services_list`: a handful of named flags.
const MAX_SERVICES: usize = 32;
const MAX_SERVICE_NAME: usize = 64;
/// Ten years of archive is more than any appliance disk holds.
const MAX_ARCHIVE_STORAGE_DAYS: i64 = 3650;

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
    /// `Some(None)`: back to the default `cam{id}`.
    media_path: Option<Option<String>>,
}

/// Longest `media_path` (SPEC §4.4).
const MAX_MEDIA_PATH_CHARS: usize = 128;

/// `media_path`'s own rules (SPEC §4.4): 1–128 characters of `[A-Za-z0-9._~-]` and '/', no
/// leading or trailing '/', no empty, "." or ".." segment (the hook would never match such
/// a path), and not ending with `media.low_suffix` (that form names the camera's low stream).
fn media_path_error(path: &str, low_suffix: &str) -> Option<String> {
    const FIELD: &str = "media_path";
    let chars = path.chars().count();
    if chars == 0 {
        return Some(validate::msg_required(FIELD));
    }
    if chars > MAX_MEDIA_PATH_CHARS {
        return Some(validate::msg_max_chars(FIELD, MAX_MEDIA_PATH_CHARS));
    }
    let allowed = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._~-/".contains(&b));
    let segments_ok = path
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if !allowed || !segments_ok || path.contains("..") {
        return Some("The media path format is invalid.".to_owned());
    }
    if !low_suffix.is_empty() && path.ends_with(low_suffix) {
        return Some(format!("The media path must not end with {low_suffix}."));
    }
    None
}

/// The stored form of a requested media path for camera `id`: its own default is stored as
/// none. Another camera's default (`cam{n}`) is refused: camera `n` holds it, now or once
/// it is created.
fn stored_media_path(
    tx: &Tx<'_>,
    id: u64,
    requested: &Option<String>,
) -> TxResult<Option<String>, ApiError> {
    let Some(path) = requested else {
        return Ok(None);
    };
    match default_media_path_id(path) {
        Some(n) if n == id => return Ok(None),
        Some(_) => return Err(TxError::Abort(media_path_taken())),
        None => {}
    }
    if tx.media_path_owner(path)?.is_some_and(|owner| owner != id) {
        return Err(TxError::Abort(media_path_taken()));
    }
    Ok(Some(path.clone()))
}

fn media_path_taken() -> ApiError {
    ApiError::field("media_path", validate::msg_unique("media_path"))
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
        if app.store.camera_group(group_id)?.is_none() {
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
    if input.has_key("media_path") {
        fields.media_path = match input.raw("media_path") {
            Some(Value::Null) => Some(None),
            Some(Value::String(path)) => {
                match media_path_error(path, &app.config.media.low_suffix) {
                    Some(message) => {
                        input.error("media_path", message);
                        None
                    }
                    None => Some(Some(path.clone())),
                }
            }
            _ => {
                input.error("media_path", validate::msg_string("media_path"));
                None
            }
        };
    }
    Ok(fields)
}

/// Moves a camera between groups' `cameras_count`, inside the caller's transaction.
fn move_camera_between_groups(
    tx: &Tx<'_>,
    from: Option<u64>,
    to: Option<u64>,
) -> TxResult<(), ApiError> {
    if from == to {
        return Ok(());
    }
    if let Some(from) = from {
        if let Some(mut group) = tx.camera_group(from)? {
            group.cameras_count = group.cameras_count.saturating_sub(1);
            tx.put_camera_group(&group)?;
        }
    }
    if let Some(to) = to {
        // The group may have been deleted since validation.
        let mut group = tx
            .camera_group(to)?
            .ok_or_else(|| TxError::Abort(invalid("group_id")))?;
        group.cameras_count += 1;
        tx.put_camera_group(&group)?;
    }
    Ok(())
}

fn load_camera(app: &App, req: &Request) -> Result<Camera, ApiError> {
    let id = req.path_id("camera")?;
    app.store.camera(id)?.ok_or(ApiError::NotFound)
}

fn render_camera(app: &App, camera: &Camera) -> Result<Value, ApiError> {
    Ok(camera_view(camera, &group_index(app)?, None))
}

pub fn list(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let needle = search_needle(req);
    let groups = group_index(app)?;
    let body = paged_search(
        req,
        app.store.cameras(),
        |c| {
            matches_search(
                needle.as_deref(),
                &[&c.name, c.ip.as_deref().unwrap_or_default()],
            )
        },
        |c| Ok(camera_view(c, &groups, None)),
    )?;
    ok(&body)
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
    let entry = audit(app, admin.account.id, "camera_created", "camera", None)
        .with_fields(&given_camera_fields(&request));
    let at = now();
    let camera = app
        .store
        .commit(|tx| {
            let id = tx.next_id("camera")?;
            let media_path = stored_media_path(tx, id, &request.media_path.clone().flatten())?;
            let camera = Camera {
                id,
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
                media_path,
                created_at: at,
                updated_at: at,
            };
            move_camera_between_groups(tx, None, camera.group_id)?;
            tx.put_camera(&camera)?;
            tx.audit(&entry.about(camera.id))?;
            Ok(camera)
        })
        .await?;
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
        ("media_path", request.media_path.is_some()),
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
    let entry = audit(app, admin.account.id, "camera_updated", "camera", Some(id));
    let at = now();
    let camera = app
        .store
        .commit(|tx| {
            let before = tx.camera(id)?.ok_or(TxError::Abort(ApiError::NotFound))?;
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
            if let Some(path) = &request.media_path {
                camera.media_path = stored_media_path(tx, id, path)?;
            }
            let changed = changed_camera_fields(&before, &camera);
            if changed.is_empty() {
                return Ok(camera);
            }
            move_camera_between_groups(tx, before.group_id, camera.group_id)?;
            camera.updated_at = at;
            tx.put_camera(&camera)?;
            tx.audit(&entry.with_fields(&changed))?;
            Ok(camera)
        })
        .await?;
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
        ("media_path", a.media_path != b.media_path),
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
    let entry = audit(app, admin.account.id, "camera_deleted", "camera", Some(id));
    let detached = app
        .store
        .commit(|tx| {
            let camera = tx.camera(id)?.ok_or(TxError::Abort(ApiError::NotFound))?;
            let mut usage_before = [0u64; 3];
            let mut usage_after = [0u64; 3];
            let holders = tx.camera_accounts(id)?;
            for account_id in &holders {
                let Some(mut account) = tx.account(*account_id)? else {
                    continue;
                };
                let before = license_usage(&account);
                account.cameras.remove(&id);
                // Deleting a camera detaches it from everyone who had it (SPEC §9).
                tx.notice(Notice::CamerasChanged {
                    account_id: account.id,
                    attached: Vec::new(),
                    detached: vec![id],
                });
                let after = license_usage(&account);
                for i in 0..3 {
                    usage_before[i] += before[i];
                    usage_after[i] += after[i];
                }
                tx.rewrite_account(&account)?;
            }
            move_licenses(tx, usage_before, usage_after)?;
            move_camera_between_groups(tx, camera.group_id, None)?;
            tx.remove_camera(id)?;
            tx.audit(&entry)?;
            Ok(holders.len())
        })
        .await?;
    tracing::info!(
        camera_id = id,
        actor_id = admin.account.id,
        "admin {} deleted camera {id}, detached from {detached} accounts",
        admin.account.id
    );
    status_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_path_rules() {
        for ok in [
            "cam1",
            "a/b",
            "site-1/door_2.main~x",
            "A.B",
            &"x".repeat(128),
        ] {
            assert_eq!(media_path_error(ok, "_low"), None, "{ok}");
        }
        let format = Some("The media path format is invalid.".to_owned());
        for bad in [
            "/a", "a/", "a//b", "a/../b", "..", "a..b", "./a", "a b", "a?b", "ä", "a%2f",
        ] {
            assert_eq!(media_path_error(bad, "_low"), format, "{bad}");
        }
        assert_eq!(
            media_path_error("", "_low"),
            Some("The media path field is required.".to_owned())
        );
        assert_eq!(
            media_path_error(&"x".repeat(129), "_low"),
            Some("The media path must not be greater than 128 characters.".to_owned())
        );
        assert_eq!(
            media_path_error("door_low", "_low"),
            Some("The media path must not end with _low.".to_owned())
        );
        assert_eq!(media_path_error("door_low", ""), None);
    }
}
