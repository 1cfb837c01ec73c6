//! Temporary users (SPEC §4.3, seed 002): `GET/POST /api/admin/v1/special-users`,
//! `GET/PUT/DELETE /api/admin/v1/special-users/{user}`. These are the accounts that take
//! analytics licences (SPEC §5): every change here moves the pools in the same transaction.

use serde_json::{json, Value};

use super::admin_common::{
    account_camera_summaries, account_cameras, account_list, group_index, read_camera_lists,
    read_expired_at, read_login, read_name, read_new_password, read_permissions, read_ptz_priority,
    PermissionScope,
};
use super::{created, ok, status_ok, HandlerResult, Request};
use crate::accounts::{self, AccountChange, Actor, NewAccountRequest};
use crate::app::App;
use crate::error::ApiError;
use crate::model::{Account, UserType};
use crate::validate::Input;
use crate::views::{license_view, special_user_view};

fn is_special(account: &Account) -> bool {
    account.user_type == UserType::Special
}

fn load_special(app: &App, req: &Request) -> Result<Account, ApiError> {
    let id = req.path_id("user")?;
    app.store
        .account(id)?
        .filter(is_special)
        .ok_or(ApiError::NotFound)
}

/// `<SpecialUser>` exactly as seed 002 shows it (create and update answers).
fn render(app: &App, account: &Account) -> Result<Value, ApiError> {
    Ok(special_user_view(account, None, &app.store.pools()?))
}

/// `<SpecialUser>` + `user_type`, full `cameras[]` and `analytic_license` (the single view).
fn render_detail(app: &App, account: &Account) -> Result<Value, ApiError> {
    let pools = app.store.pools()?;
    let mut view = special_user_view(account, None, &pools);
    if let Value::Object(map) = &mut view {
        map.insert("user_type".into(), json!(account.user_type.as_str()));
        map.insert(
            "cameras".into(),
            Value::Array(account_cameras(app, account)?),
        );
        map.insert(
            "analytic_license".into(),
            license_view(&pools, &app.config.license.prefix),
        );
    }
    Ok(view)
}

pub fn list(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let pools = app.store.pools()?;
    let groups = group_index(app)?;
    let licenses = license_view(&pools, &app.config.license.prefix);
    let body = account_list(app, req, is_special, |account| {
        let mut view = special_user_view(account, None, &pools);
        if let Value::Object(map) = &mut view {
            map.insert(
                "cameras".into(),
                Value::Array(account_camera_summaries(app, &groups, account)?),
            );
            map.insert("analytic_license".into(), licenses.clone());
        }
        Ok(view)
    })?;
    ok(&body)
}

pub fn show(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let account = load_special(app, req)?;
    ok(&render_detail(app, &account)?)
}

pub async fn create(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let name = read_name(&mut input, true);
    let login = read_login(app, &mut input, true, None)?;
    let password = read_new_password(app, &mut input, true);
    let permissions = read_permissions(&mut input, PermissionScope::Any);
    let cameras = read_camera_lists(app, &mut input, false);
    let expired_at = read_expired_at(&mut input);
    let ptz_priority = read_ptz_priority(&mut input);
    input.finish()?;
    let (Some(name), Some(login), Some(password)) = (name, login, password) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let request = NewAccountRequest {
        permissions: permissions.unwrap_or_default(),
        cameras,
        expired_at: expired_at.flatten(),
        ptz_priority: ptz_priority.flatten(),
        ..NewAccountRequest::new(UserType::Special, login, name, password)
    };
    let account = accounts::create(app, Some(admin.account.id), &request).await?;
    created(&render(app, &account)?)
}

pub async fn update(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_special(app, req)?.id;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let name = read_name(&mut input, false);
    let login = read_login(app, &mut input, false, Some(id))?;
    let password = read_new_password(app, &mut input, false);
    let permissions = read_permissions(&mut input, PermissionScope::Any);
    let cameras = read_camera_lists(app, &mut input, true);
    let expired_at = read_expired_at(&mut input);
    let ptz_priority = read_ptz_priority(&mut input);
    input.finish()?;
    let change = AccountChange {
        name,
        login,
        password,
        permissions,
        cameras,
        expired_at,
        ptz_priority,
        ..AccountChange::default()
    };
    let applied = accounts::update(
        app,
        Actor::of(&admin),
        "special_user_updated",
        id,
        is_special,
        &change,
    )
    .await?;
    ok(&render(app, &applied.account)?)
}

pub async fn delete(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_special(app, req)?.id;
    accounts::delete(app, Some(admin.account.id), id, is_special).await?;
    status_ok()
}
