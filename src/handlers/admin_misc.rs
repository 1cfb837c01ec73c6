//! The smaller admin endpoints (SPEC §4.4, §5): the permission catalogue
//! (`GET /api/admin/v1/permissions`), licence pools (`GET /api/admin/v1/licenses`,
//! `PUT /api/admin/v1/licenses/{type}`), administrators (`GET/POST /api/admin/v1/admins`)
//! and the audit log (`GET /api/admin/v1/audit`).

use serde_json::Value;

use super::admin_common::{self, account_list, read_login, read_new_password};
use super::{created, ok, page_params, paginated, HandlerResult, Request};
use crate::accounts::{self, NewAccountRequest};
use crate::app::App;
use crate::error::ApiError;
use crate::model::{Account, UserType};
use crate::permissions::{LicenseLevel, PERMISSIONS};
use crate::store::TxError;
use crate::validate::{self, Input};
use crate::views::{audit_entry_view, license_view, special_user_view};

pub fn permissions(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    ok(&Value::Array(
        PERMISSIONS.iter().map(|p| p.catalogue_view()).collect(),
    ))
}

pub fn licenses(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    ok(&license_view(
        &app.store.pools()?,
        &app.config.license.prefix,
    ))
}

/// The largest pool an admin may set; far beyond any camera count, small enough that the
/// arithmetic never nears overflow.
const MAX_POOL_SIZE: i64 = 1_000_000_000;

/// `PUT /api/admin/v1/licenses/{type}` `{all}` → the updated `<License>`. A size below what
/// temporary users already take is refused (422): licences are freed by detaching cameras or
/// removing analytics permissions, never by shrinking the pool under them.
pub async fn update_license(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let level = LicenseLevel::from_type_name(req.param("type")).ok_or(ApiError::NotFound)?;
    let body = req.json()?;
    let mut input = Input::new(&body);
    if !input.has("all") {
        input.error("all", validate::msg_required("all"));
    }
    let all = input.integer("all", 0, MAX_POOL_SIZE);
    input.finish()?;
    let Some(all) = all.and_then(|a| u64::try_from(a).ok()) else {
        return Err(ApiError::internal("validated pool size missing"));
    };
    let entry = admin_common::audit(
        app,
        admin.account.id,
        "license_updated",
        "license",
        Some(level as u64 + 1),
    )
    .with_fields(&["all"]);
    app.store
        .commit(|tx| {
            let mut pool = tx.pool(level)?;
            if all < pool.used {
                return Err(TxError::Abort(ApiError::field(
                    "all",
                    format!("The all must be at least {}.", pool.used),
                )));
            }
            if pool.all == all {
                return Ok(());
            }
            pool.all = all;
            tx.put_pool(level, &pool)?;
            Ok(tx.audit(&entry)?)
        })
        .await?;
    tracing::info!(
        actor_id = admin.account.id,
        "admin {} set the {} pool to {all}",
        admin.account.id,
        level.type_name()
    );
    let pools = app.store.pools()?;
    let view = license_view(&pools, &app.config.license.prefix);
    ok(view.get(level as usize).unwrap_or(&Value::Null))
}

fn is_admin(account: &Account) -> bool {
    account.user_type == UserType::Admin
}

/// `GET /api/admin/v1/admins`: paginated `<SpecialUser>` items, as the AIPIX admin API renders
/// administrators; `access_token_id` is null (it belongs to a login answer only).
pub fn admins(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let pools = app.store.pools()?;
    let body = account_list(app, req, is_admin, |a| {
        Ok(special_user_view(a, None, &pools))
    })?;
    ok(&body)
}

/// A new administrator gets every admin permission of the catalogue, as the first admin has.
pub async fn create_admin(app: &App, req: &Request) -> HandlerResult {
    let admin = req.admin(app)?.0;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let login = read_login(app, &mut input, true, None)?;
    let name = input.string("name", 255);
    let password = read_new_password(app, &mut input, true);
    input.finish()?;
    let (Some(login), Some(password)) = (login, password) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let name = validate::display_name(name, &login);
    let request = NewAccountRequest::new(UserType::Admin, login, name, password);
    let account = accounts::create(app, Some(admin.account.id), &request).await?;
    created(&special_user_view(&account, None, &app.store.pools()?))
}

/// `GET /api/admin/v1/audit`: newest first.
pub fn audit(app: &App, req: &Request) -> HandlerResult {
    req.admin(app)?;
    let (page, per_page) = page_params(req);
    let offset = (page - 1).saturating_mul(per_page);
    let (entries, total) = app.store.audit_page(offset, per_page)?;
    let items = entries.iter().map(audit_entry_view).collect();
    ok(&paginated(req, items, total, page, per_page))
}
