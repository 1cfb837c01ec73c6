//! Regular users and their sub-users in the admin API (SPEC §4.2, seed 001):
//! `GET/POST /api/admin/v1/users`, `GET/PUT/DELETE /api/admin/v1/users/{user}`.
//! Regular users take no analytics licences (SPEC §5 counts temporary users only).

use serde_json::Value;

use super::admin_common::{
    account_cameras, account_list, read_bounded_json, read_camera_lists, read_login,
    read_new_password, read_permissions, PermissionScope,
};
use super::{created, ok, status_ok, HandlerResult, Request};
use crate::accounts::{self, AccountChange, Actor, NewAccountRequest};
use crate::app::App;
use crate::error::ApiError;
use crate::model::{Account, UserType};
use crate::validate::{self, Input};
use crate::views::{admin_user_view, regular_user_list_item};

/// How many audit entries the user view shows (SPEC §4.2).
const EVENTS_SHOWN: usize = 50;

fn is_regular(account: &Account) -> bool {
    matches!(account.user_type, UserType::User | UserType::Subuser)
}

/// `<AdminUserView>` of an account as stored now.
fn render(app: &App, account: &Account) -> Result<Value, ApiError> {
    let mut subusers = Vec::new();
    for id in app.store.subuser_ids(account.id)? {
        if let Some(sub) = app.store.account(id)? {
            subusers.push(sub);
        }
    }
    let events = app.store.account_events(account.id, EVENTS_SHOWN)?;
    Ok(admin_user_view(
        account,
        account_cameras(app, account)?,
        &subusers,
        &events,
        &app.store.pools()?,
        &app.config.license.prefix,
    ))
}

fn load_regular(app: &App, req: &Request) -> Result<Account, ApiError> {
    let id = req.path_id("user")?;
    app.store
        .account(id)?
        .filter(is_regular)
        .ok_or(ApiError::NotFound)
}

pub fn list(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let body = account_list(app, req, is_regular, |a| Ok(regular_user_list_item(a)))?;
    ok(&body)
}

pub fn show(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let account = load_regular(app, req)?;
    ok(&render(app, &account)?)
}

pub async fn create(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let login = read_login(app, &mut input, true, None)?;
    let password = read_new_password(app, &mut input, true);
    let name = input.string("name", 255);
    let permissions = read_permissions(&mut input, PermissionScope::ClientOnly);
    let can_update_password = input.boolean("can_update_password");
    let billing_info = read_bounded_json(&mut input, "billing_info");
    let parent_id = match input.raw("parent_id") {
        None | Some(Value::Null) => None,
        Some(raw) => match validate::parse_id(raw) {
            Some(id)
                if app
                    .store
                    .account(id)?
                    .is_some_and(|p| p.user_type == UserType::User) =>
            {
                Some(id)
            }
            _ => {
                input.error("parent_id", validate::msg_invalid("parent_id"));
                None
            }
        },
    };
    if parent_id.is_some() && billing_info.is_some() {
        // Billing belongs to the customer, not to its sub-accounts (SPEC §1).
        input.error("billing_info", "The billing info field is prohibited.");
    }
    input.finish()?;
    let (Some(login), Some(password)) = (login, password) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let request = NewAccountRequest {
        parent_id,
        permissions: permissions.unwrap_or_default(),
        can_update_password: can_update_password.unwrap_or(true),
        billing_info,
        ..NewAccountRequest::new(
            UserType::User,
            login.clone(),
            validate::display_name(name, &login),
            password,
        )
    };
    let account = accounts::create(app, Some(admin.account.id), &request).await?;
    created(&render(app, &account)?)
}

pub async fn update(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_regular(app, req)?.id;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let permissions = read_permissions(&mut input, PermissionScope::ClientOnly);
    let cameras = read_camera_lists(app, &mut input, true);
    input.finish()?;
    let change = AccountChange {
        permissions,
        cameras,
        ..AccountChange::default()
    };
    let applied = accounts::update(
        app,
        Actor::of(&admin),
        "user_updated",
        id,
        is_regular,
        &change,
    )
    .await?;
    ok(&render(app, &applied.account)?)
}

pub async fn delete(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_regular(app, req)?.id;
    accounts::delete(app, Some(admin.account.id), id, is_regular).await?;
    status_ok()
}
