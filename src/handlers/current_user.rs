//! The logged-in user's own account: `GET`/`PUT /api/v1/users/self` (seed 000, SPEC §4.1) and
//! the administrator's `PUT /api/admin/v1/users/self/update-password`.

use super::{ok, status_ok, HandlerResult, Request};
use crate::accounts::{self, AccountChange, AccountError, Actor};
use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::model::{Account, SessionKey};
use crate::validate::{self, FieldErrors, Input};
use crate::views::ClientUserView;

pub fn show(app: &App, req: &Request) -> HandlerResult {
    let caller = req.caller(app)?;
    render(app, &caller.account, &caller.session)
}

fn render(app: &App, account: &Account, session: &SessionKey) -> HandlerResult {
    let pools = app.store.pools()?;
    let licenses = app
        .licenses_json
        .get(&pools, &app.config.license.prefix)
        .map_err(ApiError::internal)?;
    ok(&ClientUserView::new(
        account,
        Some(&session.access_token_id),
        &licenses,
    ))
}

pub async fn update(app: &App, req: &Request) -> HandlerResult {
    let caller = req.caller(app)?;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let password = input.string("password", 1024);
    let confirmation = input.string("password_confirmation", 1024);
    let current_given = input.has("current_password");
    let current = input.string("current_password", 1024);
    // No length rule: Laravel's `in` rule answers any unknown value with "selected ... invalid".
    let language = input.string("language", usize::MAX);
    let mut errors = std::mem::take(&mut input.errors);

    if password.is_some() && !caller.account.can_update_password {
        return Err(ApiError::Forbidden);
    }
    if let Some(lang) = &language {
        if !app.config.locales.available.iter().any(|l| l == lang) {
            errors.add("language", validate::msg_invalid("language"));
        }
    }
    if let Some(password) = &password {
        validate::check_new_password(
            &mut errors,
            password,
            confirmation.as_deref(),
            app.config.auth.password_min_length,
        );
        match &current {
            // A current_password that is there but not a string already has its error.
            None if current_given => {}
            None => errors.add(
                "current_password",
                validate::msg_required("current_password"),
            ),
            Some(current) => {
                let stored = caller.account.password_hash.clone();
                if !app.hasher.verify(current.clone(), Some(stored)).await? {
                    errors.add("current_password", validate::MSG_PASSWORD_INCORRECT);
                }
            }
        }
    }
    errors.into_result()?;
    let change = AccountChange {
        password,
        language,
        ..AccountChange::default()
    };
    let account = change_own_account(app, &caller, &change).await?;
    render(app, &account, &caller.session)
}

/// A change of the caller's own account; a new password ends its other sessions.
async fn change_own_account(
    app: &App,
    caller: &Caller,
    change: &AccountChange,
) -> Result<Account, ApiError> {
    let id = caller.account.id;
    match accounts::update(app, Actor::of(caller), "self_update", id, |_| true, change).await {
        Ok(applied) => {
            if applied.fields.contains(&"password") {
                tracing::info!(
                    user_id = id,
                    sessions_revoked = applied.revoked,
                    "user {id} changed their password; other sessions revoked"
                );
            }
            Ok(applied.account)
        }
        // Deleted since its token was checked: as if the token had stopped working.
        Err(AccountError::NotFound) => Err(ApiError::Unauthenticated),
        Err(e) => Err(e.into()),
    }
}

pub async fn admin_update_password(app: &App, req: &Request) -> HandlerResult {
    let caller = req.admin(app)?.0;
    let body = req.json()?;
    let mut input = Input::new(&body);
    let old = input.required_string("old_password", 1024);
    let password = input.required_string("password", 1024);
    let confirmation = input.string("password_confirmation", 1024);
    let mut errors: FieldErrors = std::mem::take(&mut input.errors);
    if let Some(password) = &password {
        validate::check_new_password(
            &mut errors,
            password,
            confirmation.as_deref(),
            app.config.auth.password_min_length,
        );
    }
    if let Some(old) = old {
        let stored = caller.account.password_hash.clone();
        if !app.hasher.verify(old, Some(stored)).await? {
            errors.add("old_password", validate::MSG_PASSWORD_INCORRECT);
        }
    }
    errors.into_result()?;
    let Some(password) = password else {
        return Err(ApiError::internal("validated password missing"));
    };
    let change = AccountChange {
        password: Some(password),
        ..AccountChange::default()
    };
    change_own_account(app, &caller, &change).await?;
    status_ok()
}
