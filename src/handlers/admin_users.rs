//! Regular users and their sub-users in the admin API (SPEC §4.2, seed 001):
//! `GET/POST /api/admin/v1/users`, `GET/PUT/DELETE /api/admin/v1/users/{user}`.
//! Regular users take no analytics licences (SPEC §5 counts temporary users only).

use std::collections::BTreeSet;

use serde_json::Value;

use super::admin_common::{
    account_cameras, account_list, apply_camera_changes, audit_entry, default_language,
    read_bounded_json, read_camera_lists, read_login, read_new_password, read_permissions,
    with_fields, CameraListChange, PermissionScope,
};
use super::{created, ok, status_ok, HandlerResult, Request};
use crate::error::ApiError;
use crate::model::{admin_user_view, now, regular_user_list_item, Account, NewAccount, UserType};
use crate::store::TxError;
use crate::validate::{self, Input};
use crate::App;

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
    let id = validate::path_id(req.param("user"))?;
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

/// A validated `POST /api/admin/v1/users`; the password is already hashed.
struct CreateRegularUserRequest {
    login: String,
    name: String,
    password_hash: String,
    parent_id: Option<u64>,
    permissions: BTreeSet<u64>,
    can_update_password: bool,
    billing_info: Option<Value>,
}

fn invalid_parent() -> ApiError {
    ApiError::field("parent_id", validate::msg_invalid("parent_id"))
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
    let request = CreateRegularUserRequest {
        name: validate::display_name(name, &login),
        login,
        password_hash: app.hasher.hash(password).await?,
        parent_id,
        permissions: permissions.unwrap_or_default(),
        can_update_password: can_update_password.unwrap_or(true),
        billing_info,
    };
    let mut fields = vec!["login", "name", "password"];
    if request.parent_id.is_some() {
        fields.push("parent_id");
    }
    if !request.permissions.is_empty() {
        fields.push("permissions");
    }
    if request.billing_info.is_some() {
        fields.push("billing_info");
    }
    let entry = with_fields(
        &audit_entry(app, admin.account.id, "user_created", "account", None),
        &fields,
    );
    let language = default_language(app);
    let at = now();
    let account = app.store.transaction(|tx| {
        if let Some(parent_id) = request.parent_id {
            // The parent may have been deleted or changed since validation.
            let parent = tx.account(parent_id)?.ok_or_else(invalid_parent)?;
            if parent.user_type != UserType::User {
                return Err(TxError::Abort(invalid_parent()));
            }
        }
        let account = Account {
            can_update_password: request.can_update_password,
            permissions: request.permissions.clone(),
            parent_id: request.parent_id,
            billing_info: request.billing_info.clone(),
            ..Account::new(
                tx.next_id("account")?,
                NewAccount {
                    user_type: if request.parent_id.is_some() {
                        UserType::Subuser
                    } else {
                        UserType::User
                    },
                    login: request.login.clone(),
                    name: request.name.clone(),
                    password_hash: request.password_hash.clone(),
                    language: language.clone(),
                },
                at,
            )
        };
        tx.put_account(&account, None, "login")?;
        if let Some(parent_id) = account.parent_id {
            tx.link_subuser(parent_id, account.id)?;
        }
        tx.audit(&entry.about(account.id))?;
        Ok(account)
    })?;
    app.store.flush().await?;
    tracing::info!(
        user_id = account.id,
        actor_id = admin.account.id,
        "admin {} created {} {}",
        admin.account.id,
        account.user_type.as_str(),
        account.id
    );
    created(&render(app, &account)?)
}

/// A validated `PUT /api/admin/v1/users/{user}`.
struct UpdateRegularUserRequest {
    permissions: Option<BTreeSet<u64>>,
    cameras: CameraListChange,
}

pub async fn update(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_regular(app, req)?.id;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let permissions = read_permissions(&mut input, PermissionScope::ClientOnly);
    let cameras = read_camera_lists(app, &mut input, true);
    input.finish()?;
    let request = UpdateRegularUserRequest {
        permissions,
        cameras,
    };
    let entry = audit_entry(app, admin.account.id, "user_updated", "account", Some(id));
    let at = now();
    let account = app.store.transaction(|tx| {
        let mut account = tx
            .account(id)?
            .filter(is_regular)
            .ok_or(ApiError::NotFound)?;
        let mut fields = Vec::new();
        if let Some(permissions) = &request.permissions {
            if *permissions != account.permissions {
                account.permissions = permissions.clone();
                fields.push("permissions");
            }
        }
        if apply_camera_changes(tx, &mut account, &request.cameras)? {
            fields.push("cameras");
        }
        if fields.is_empty() {
            return Ok(account);
        }
        account.updated_at = at;
        let key = validate::login_key(&account.login);
        tx.put_account(&account, Some(&key), "login")?;
        tx.audit(&with_fields(&entry, &fields))?;
        Ok(account)
    })?;
    app.store.flush().await?;
    ok(&render(app, &account)?)
}

/// What one delete attempt found: done, or a sub-user appeared since the ids were read.
enum DeleteOutcome {
    Deleted,
    SubusersChanged,
}

/// How often a delete re-reads the sub-users when new ones keep appearing meanwhile.
const DELETE_ATTEMPTS: usize = 5;

pub async fn delete(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let id = load_regular(app, req)?.id;
    for _ in 0..DELETE_ATTEMPTS {
        // One audit entry per deleted account; their ids must exist before the transaction.
        let known_subusers: BTreeSet<u64> = app.store.subuser_ids(id)?.into_iter().collect();
        let entry = audit_entry(app, admin.account.id, "user_deleted", "account", Some(id));
        let subuser_entries: Vec<_> = known_subusers
            .iter()
            .map(|sub| audit_entry(app, admin.account.id, "user_deleted", "account", Some(*sub)))
            .collect();
        let outcome = app.store.transaction(|tx| {
            let account = tx
                .account(id)?
                .filter(is_regular)
                .ok_or(ApiError::NotFound)?;
            let subusers = tx.subuser_ids(id)?;
            if subusers.iter().any(|s| !known_subusers.contains(s)) {
                return Ok(DeleteOutcome::SubusersChanged);
            }
            for audit in &subuser_entries {
                let Some(sub_id) = audit.target_id else {
                    continue;
                };
                if !subusers.contains(&sub_id) {
                    continue;
                }
                if let Some(sub) = tx.account(sub_id)? {
                    tx.delete_account(&sub)?;
                    tx.audit(audit)?;
                }
            }
            tx.remove_subuser_index(id)?;
            if let Some(parent_id) = account.parent_id {
                tx.unlink_subuser(parent_id, id)?;
            }
            tx.delete_account(&account)?;
            tx.audit(&entry)?;
            Ok(DeleteOutcome::Deleted)
        })?;
        if let DeleteOutcome::Deleted = outcome {
            app.store.flush().await?;
            tracing::info!(
                user_id = id,
                actor_id = admin.account.id,
                "admin {} deleted user {id}",
                admin.account.id
            );
            return status_ok();
        }
    }
    Err(ApiError::internal(format!(
        "sub-users of user {id} kept changing during its deletion"
    )))
}
