//! Camera groups in the admin API (SPEC §4.4, the `group` object of seed 001):
//! `GET/POST /api/admin/v1/camera-groups`, `GET/PUT/DELETE /api/admin/v1/camera-groups/{group}`.
//! Groups form a tree (no cycles, bounded depth); a group is deleted only when empty (no
//! cameras, no child groups), which the counts kept in each group tell without a scan.

use serde_json::Value;

use super::admin_common::{audit, group_index, read_name, read_nullable_id};
use super::{
    created, matches_search, ok, paged_search, search_needle, status_ok, HandlerResult, Request,
};
use crate::app::App;
use crate::error::ApiError;
use crate::model::{now, CameraGroup};
use crate::store::{Tx, TxError, TxResult};
use crate::validate::{self, Input};

/// Deeper group trees are refused (renders walk the chain).
const MAX_GROUP_DEPTH: usize = 32;

fn invalid(field: &str) -> ApiError {
    ApiError::field(field, validate::msg_invalid(field))
}

fn load_group(app: &App, req: &Request) -> Result<CameraGroup, ApiError> {
    let id = req.path_id("group")?;
    app.store.camera_group(id)?.ok_or(ApiError::NotFound)
}

fn render_group(app: &App, id: u64) -> Result<Value, ApiError> {
    group_index(app)?.view(id).ok_or(ApiError::NotFound)
}

pub fn list_groups(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let needle = search_needle(req);
    let groups = group_index(app)?;
    let body = paged_search(
        req,
        app.store.camera_groups(),
        |g| matches_search(needle.as_deref(), &[&g.name]),
        |g| Ok(groups.view(g.id).unwrap_or(Value::Null)),
    )?;
    ok(&body)
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
        if app.store.camera_group(parent)?.is_none() {
            input.error("parent_id", validate::msg_invalid("parent_id"));
        }
    }
    Ok(CameraGroupFields { name, parent_id })
}

/// Checks, inside the transaction, that `parent` exists, is not `group` itself or one of
/// its descendants, and keeps the tree within `MAX_GROUP_DEPTH`.
fn check_parent(tx: &Tx<'_>, group: Option<u64>, parent: u64) -> TxResult<(), ApiError> {
    let mut next = Some(parent);
    let mut depth = 0;
    while let Some(id) = next {
        if Some(id) == group || depth >= MAX_GROUP_DEPTH {
            return Err(TxError::Abort(invalid("parent_id")));
        }
        let current = tx
            .camera_group(id)?
            .ok_or_else(|| TxError::Abort(invalid("parent_id")))?;
        next = current.parent_id;
        depth += 1;
    }
    Ok(())
}

fn adjust_children(tx: &Tx<'_>, parent: Option<u64>, grow: bool) -> TxResult<(), ApiError> {
    if let Some(parent) = parent {
        if let Some(mut group) = tx.camera_group(parent)? {
            group.children_count = if grow {
                group.children_count + 1
            } else {
                group.children_count.saturating_sub(1)
            };
            tx.put_camera_group(&group)?;
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
    let entry = audit(
        app,
        admin.account.id,
        "camera_group_created",
        "camera_group",
        None,
    )
    .with_fields(&fields);
    let at = now();
    let group = app
        .store
        .commit(|tx| {
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
            tx.put_camera_group(&group)?;
            tx.audit(&entry.about(group.id))?;
            Ok(group)
        })
        .await?;
    created(&render_group(app, group.id)?)
}

pub async fn update_group(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_group(app, req)?.id;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let request: UpdateCameraGroupRequest = read_group_fields(app, &mut input, false)?;
    input.finish()?;
    let entry = audit(
        app,
        admin.account.id,
        "camera_group_updated",
        "camera_group",
        Some(id),
    );
    let at = now();
    app.store
        .commit(|tx| {
            let mut group = tx
                .camera_group(id)?
                .ok_or(TxError::Abort(ApiError::NotFound))?;
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
            tx.put_camera_group(&group)?;
            Ok(tx.audit(&entry.with_fields(&fields))?)
        })
        .await?;
    ok(&render_group(app, id)?)
}

pub async fn delete_group(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_group(app, req)?.id;
    let entry = audit(
        app,
        admin.account.id,
        "camera_group_deleted",
        "camera_group",
        Some(id),
    );
    app.store
        .commit(|tx| {
            let group = tx
                .camera_group(id)?
                .ok_or(TxError::Abort(ApiError::NotFound))?;
            if group.cameras_count > 0 || group.children_count > 0 {
                return Err(TxError::Abort(ApiError::field(
                    "group",
                    "The group must have no cameras and no sub-groups to be deleted.",
                )));
            }
            adjust_children(tx, group.parent_id, false)?;
            tx.remove_camera_group(id)?;
            Ok(tx.audit(&entry)?)
        })
        .await?;
    status_ok()
}
