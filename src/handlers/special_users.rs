//! Temporary users (SPEC §4.3, seed 002): `GET/POST /api/admin/v1/special-users`,
//! `GET/PUT/DELETE /api/admin/v1/special-users/{user}`. These are the accounts that take
//! analytics licences (SPEC §5): every change here moves the pools in the same transaction.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::admin_common::{
    account_camera_summaries, account_cameras, account_list, apply_camera_changes, audit_entry,
    default_language, group_index, move_licences, read_camera_lists, read_expired_at, read_login,
    read_name, read_new_password, read_permissions, read_ptz_priority, with_fields,
    CameraListChange, PermissionScope,
};
use super::{created, ok, status_ok, HandlerResult, Request};
use crate::error::ApiError;
use crate::model::{
    licence_usage, license_view, now, special_user_view, Account, NewAccount, UnixTime, UserType,
};
use crate::validate::{self, Input};
use crate::App;

fn is_special(account: &Account) -> bool {
    account.user_type == UserType::Special
}

fn load_special(app: &App, req: &Request) -> Result<Account, ApiError> {
    let id = validate::path_id(req.param("user"))?;
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
    let licences = license_view(&pools, &app.config.license.prefix);
    let body = account_list(app, req, is_special, |account| {
        let mut view = special_user_view(account, None, &pools);
        if let Value::Object(map) = &mut view {
            map.insert(
                "cameras".into(),
                Value::Array(account_camera_summaries(app, &groups, account)?),
            );
            map.insert("analytic_license".into(), licences.clone());
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

/// A validated `POST /api/admin/v1/special-users`; the password is already hashed.
struct CreateSpecialUserRequest {
    name: String,
    login: String,
    password_hash: String,
    permissions: BTreeSet<u64>,
    cameras: CameraListChange,
    expired_at: Option<UnixTime>,
    ptz_priority: Option<u8>,
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
    let request = CreateSpecialUserRequest {
        name,
        login,
        password_hash: app.hasher.hash(password).await?,
        permissions: permissions.unwrap_or_default(),
        cameras,
        expired_at: expired_at.flatten(),
        ptz_priority: ptz_priority.flatten(),
    };
    let mut fields = vec!["name", "login", "password"];
    if !request.permissions.is_empty() {
        fields.push("permissions");
    }
    if !request.cameras.attach.is_empty() {
        fields.push("cameras");
    }
    if request.expired_at.is_some() {
        fields.push("expired_at");
    }
    if request.ptz_priority.is_some() {
        fields.push("ptz_priority");
    }
    let entry = with_fields(
        &audit_entry(
            app,
            admin.account.id,
            "special_user_created",
            "account",
            None,
        ),
        &fields,
    );
    let language = default_language(app);
    let at = now();
    let account = app.store.transaction(|tx| {
        let mut account = Account {
            permissions: request.permissions.clone(),
            expired_at: request.expired_at,
            ptz_priority: request.ptz_priority,
            ..Account::new(
                tx.next_id("account")?,
                NewAccount {
                    user_type: UserType::Special,
                    login: request.login.clone(),
                    name: request.name.clone(),
                    password_hash: request.password_hash.clone(),
                    language: language.clone(),
                },
                at,
            )
        };
        apply_camera_changes(tx, &mut account, &request.cameras)?;
        move_licences(tx, [0; 3], licence_usage(&account))?;
        tx.put_account(&account, None, "login")?;
        tx.audit(&entry.about(account.id))?;
        Ok(account)
    })?;
    app.store.flush().await?;
    tracing::info!(
        user_id = account.id,
        actor_id = admin.account.id,
        "admin {} created temporary user {}",
        admin.account.id,
        account.id
    );
    created(&render(app, &account)?)
}

/// A validated `PUT /api/admin/v1/special-users/{user}`: every field optional. The outer
/// `Option` of `expired_at` / `ptz_priority` is "given"; the inner one is the value (null
/// clears).
struct UpdateSpecialUserRequest {
    name: Option<String>,
    login: Option<String>,
    password_hash: Option<String>,
    permissions: Option<BTreeSet<u64>>,
    cameras: CameraListChange,
    expired_at: Option<Option<UnixTime>>,
    ptz_priority: Option<Option<u8>>,
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
    let request = UpdateSpecialUserRequest {
        name,
        login,
        password_hash: match password {
            Some(p) => Some(app.hasher.hash(p).await?),
            None => None,
        },
        permissions,
        cameras,
        expired_at,
        ptz_priority,
    };
    let entry = audit_entry(
        app,
        admin.account.id,
        "special_user_updated",
        "account",
        Some(id),
    );
    let at = now();
    let account = app.store.transaction(|tx| {
        let mut account = tx
            .account(id)?
            .filter(is_special)
            .ok_or(ApiError::NotFound)?;
        let previous_login_key = validate::login_key(&account.login);
        let usage_before = licence_usage(&account);
        let mut fields = Vec::new();
        if let Some(name) = &request.name {
            if *name != account.name {
                account.name = name.clone();
                fields.push("name");
            }
        }
        if let Some(login) = &request.login {
            if *login != account.login {
                account.login = login.clone();
                fields.push("login");
            }
        }
        if let Some(hash) = &request.password_hash {
            account.password_hash = hash.clone();
            // An admin set a new password: whoever held the old one is logged out.
            tx.revoke_sessions_of(account.id, None)?;
            fields.push("password");
        }
        if let Some(permissions) = &request.permissions {
            if *permissions != account.permissions {
                account.permissions = permissions.clone();
                fields.push("permissions");
            }
        }
        if apply_camera_changes(tx, &mut account, &request.cameras)? {
            fields.push("cameras");
        }
        if let Some(expired_at) = request.expired_at {
            if expired_at != account.expired_at {
                account.expired_at = expired_at;
                fields.push("expired_at");
            }
        }
        if let Some(ptz_priority) = request.ptz_priority {
            if ptz_priority != account.ptz_priority {
                account.ptz_priority = ptz_priority;
                fields.push("ptz_priority");
            }
        }
        if fields.is_empty() {
            return Ok(account);
        }
        move_licences(tx, usage_before, licence_usage(&account))?;
        account.updated_at = at;
        tx.put_account(&account, Some(&previous_login_key), "login")?;
        tx.audit(&with_fields(&entry, &fields))?;
        Ok(account)
    })?;
    app.store.flush().await?;
    ok(&render(app, &account)?)
}

pub async fn delete(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_special(app, req)?.id;
    let entry = audit_entry(
        app,
        admin.account.id,
        "special_user_deleted",
        "account",
        Some(id),
    );
    app.store.transaction(|tx| {
        let account = tx
            .account(id)?
            .filter(is_special)
            .ok_or(ApiError::NotFound)?;
        move_licences(tx, licence_usage(&account), [0; 3])?;
        tx.delete_account(&account)?;
        tx.audit(&entry)
    })?;
    app.store.flush().await?;
    tracing::info!(
        user_id = id,
        actor_id = admin.account.id,
        "admin {} deleted temporary user {id}",
        admin.account.id
    );
    status_ok()
}
