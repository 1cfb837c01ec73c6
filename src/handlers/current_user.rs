//! The logged-in user's own account: `GET`/`PUT /api/v1/users/self` (seed 000, SPEC §4.1) and
//! the administrator's `PUT /api/admin/v1/users/self/update-password`.

use super::{ok, status_ok, HandlerResult, Request};
use crate::auth::Caller;
use crate::error::{ApiError, FieldErrors};
use crate::model::{now, Account, AuditEntry, ClientUserView, SessionKey};
use crate::validate::{self, Input};
use crate::App;

pub fn show(app: &App, req: &Request) -> HandlerResult {
    let caller = req.caller(app)?;
    render(app, &caller.account, &caller.session)
}

fn render(app: &App, account: &Account, session: &SessionKey) -> HandlerResult {
    let pools = app.store.pools()?;
    let licences = app
        .licences_json
        .get(&pools, &app.config.license.prefix)
        .map_err(ApiError::internal)?;
    ok(&ClientUserView::new(
        account,
        Some(&session.access_token_id),
        &licences,
    ))
}

/// What a `PUT /api/v1/users/self` asks for, once validated.
struct UpdateSelfRequest {
    new_password_hash: Option<String>,
    language: Option<String>,
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

    let request = UpdateSelfRequest {
        new_password_hash: match password {
            Some(p) => Some(app.hasher.hash(p).await?),
            None => None,
        },
        language: language.filter(|l| *l != caller.account.language),
    };
    if request.new_password_hash.is_none() && request.language.is_none() {
        return render(app, &caller.account, &caller.session);
    }
    let mut fields = Vec::new();
    if request.new_password_hash.is_some() {
        fields.push("password");
    }
    if request.language.is_some() {
        fields.push("language");
    }
    let account = apply_self_update(app, &caller, &request, &fields).await?;
    render(app, &account, &caller.session)
}

/// Writes a self-update in one transaction: the account, the audit entry and, for a new
/// password, the revocation of every other session of the account.
async fn apply_self_update(
    app: &App,
    caller: &Caller,
    request: &UpdateSelfRequest,
    fields: &[&str],
) -> Result<crate::model::Account, ApiError> {
    let at = now();
    let entry = AuditEntry {
        at,
        ..AuditEntry::new(
            app.store.next_audit_id(),
            Some(caller.account.id),
            "self_update",
            "account",
            Some(caller.account.id),
            fields,
        )
    };
    let account = app.store.transaction(|tx| {
        let mut account = tx
            .account(caller.account.id)?
            .ok_or(ApiError::Unauthenticated)?;
        let login_key = validate::login_key(&account.login);
        if let Some(hash) = &request.new_password_hash {
            account.password_hash = hash.clone();
            tx.revoke_sessions_of(account.id, Some(&caller.token_hash))?;
        }
        if let Some(language) = &request.language {
            account.language = language.clone();
        }
        account.updated_at = at;
        tx.put_account(&account, Some(&login_key), "login")?;
        tx.audit(&entry)?;
        Ok(account)
    })?;
    app.store.flush().await?;
    if request.new_password_hash.is_some() {
        tracing::info!(
            user_id = account.id,
            "user {} changed their password; other sessions revoked",
            account.id
        );
    }
    Ok(account)
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
    let request = UpdateSelfRequest {
        new_password_hash: Some(app.hasher.hash(password).await?),
        language: None,
    };
    apply_self_update(app, &caller, &request, &["password"]).await?;
    status_ok()
}
