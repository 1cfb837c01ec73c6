//! What the admin handlers share: the readers that validate request fields (`cameras_to_attach`
//! / `cameras_to_detach`, permission lists, logins, passwords, `expired_at`, `ptz_priority`,
//! stored JSON), account lists with search and paging, and the rendering of an account's
//! cameras.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::{matches_search, paged_search, search_needle, Request};
use crate::accounts::CameraListChange;
use crate::app::App;
use crate::error::ApiError;
use crate::model::{login_key, now, Account, AuditEntry, UnixTime, UserType};
use crate::permissions::PERMISSIONS;
use crate::validate::{self, FieldErrors, Input};
use crate::views::{camera_pivot, camera_summary_view, camera_view, CameraGroupIndex};

/// SPEC §4.3: at most this many ids in each camera list of one request.
pub const MAX_CAMERAS_PER_REQUEST: usize = 500;

/// Most sub-users and permissions an id list may carry (the catalogue is far smaller).
const MAX_PERMISSIONS_PER_REQUEST: usize = 500;

/// `billing_info` and `services_list` are stored as given; SPEC §1 bounds `data` the same way.
pub const MAX_JSON_FIELD_BYTES: usize = 64 * 1024;

/// An audit entry for an admin's change to a record that is not an account (a camera, a
/// group, a licence pool), its id taken now: a transaction closure may re-run and must not
/// allocate again.
pub fn audit(
    app: &App,
    actor_id: u64,
    action: &str,
    target_type: &str,
    target_id: Option<u64>,
) -> AuditEntry {
    AuditEntry::new(
        app.store.next_audit_id(),
        Some(actor_id),
        action,
        target_type,
        target_id,
        &[],
    )
}

/// `field` names something that does not exist (or no longer does).
pub fn invalid(field: &str) -> ApiError {
    ApiError::field(field, validate::msg_invalid(field))
}

/// Reads an optional nullable id field: absent → None, null → Some(None).
pub fn read_nullable_id(input: &mut Input<'_>, key: &str) -> Option<Option<u64>> {
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

/// Each id of a validated list with the index it first appeared at in the request, for
/// errors keyed `field.N` as Laravel keys them.
fn ids_with_index(raw: Option<&Value>) -> Vec<(usize, u64)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    if let Some(Value::Array(items)) = raw {
        for (i, item) in items.iter().enumerate() {
            if let Some(id) = validate::parse_id(item) {
                if seen.insert(id) {
                    out.push((i, id));
                }
            }
        }
    }
    out
}

/// Which permissions a list may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionScope {
    /// Regular users and sub-users: client-side permissions only (SPEC §4.2).
    ClientOnly,
    /// Temporary users: any permission of the catalogue (SPEC §4.3).
    Any,
}

/// Reads a `permissions` list: every id must be in the catalogue (and in scope), else
/// `The selected permissions.N is invalid.` keyed by its index.
pub fn read_permissions(input: &mut Input<'_>, scope: PermissionScope) -> Option<BTreeSet<u64>> {
    // Known ids are checked even when another element is malformed, so that every failing
    // element is reported at once.
    let ids = input.id_list("permissions", MAX_PERMISSIONS_PER_REQUEST);
    if !list_within(input.raw("permissions"), MAX_PERMISSIONS_PER_REQUEST) {
        return None;
    }
    let mut ok = ids.is_some();
    for (i, id) in ids_with_index(input.raw("permissions")) {
        let valid = PERMISSIONS.iter().any(|p| {
            p.id == id && (scope == PermissionScope::Any || p.user_type == UserType::User)
        });
        if !valid {
            let key = format!("permissions.{i}");
            input.error(key.clone(), validate::msg_invalid(&key));
            ok = false;
        }
    }
    ids.filter(|_| ok).map(|ids| ids.into_iter().collect())
}

/// An array of at most `max` items (what `id_list` checks element by element).
fn list_within(raw: Option<&Value>, max: usize) -> bool {
    matches!(raw, Some(Value::Array(items)) if items.len() <= max)
}

/// Reads both camera lists (SPEC §4.3): arrays of at most 500 existing camera ids each,
/// duplicates collapsed, no id in both. `allow_detach` is false on creates.
pub fn read_camera_lists(app: &App, input: &mut Input<'_>, allow_detach: bool) -> CameraListChange {
    let mut change = CameraListChange::default();
    let mut fields = vec!["cameras_to_attach"];
    if allow_detach {
        fields.push("cameras_to_detach");
    }
    for field in fields {
        input.id_list(field, MAX_CAMERAS_PER_REQUEST);
        if !list_within(input.raw(field), MAX_CAMERAS_PER_REQUEST) {
            continue;
        }
        let ids = ids_with_index(input.raw(field));
        for (i, id) in &ids {
            match app.store.camera_exists(*id) {
                Ok(true) => {}
                Ok(false) => {
                    let key = format!("{field}.{i}");
                    input.error(key.clone(), validate::msg_invalid(&key));
                }
                Err(e) => {
                    // Reported as a server error by the transaction's own re-check.
                    tracing::error!(error = %e, "camera lookup failed while validating");
                }
            }
        }
        if field == "cameras_to_attach" {
            change.attach = ids;
        } else {
            change.detach = ids;
        }
    }
    let attach: HashMap<u64, usize> = change.attach.iter().map(|(i, id)| (*id, *i)).collect();
    for (i, id) in &change.detach {
        if attach.contains_key(id) {
            let key = format!("cameras_to_detach.{i}");
            input.error(
                key.clone(),
                format!("The {key} and cameras to attach must be different."),
            );
        }
    }
    change
}

/// A name: a non-blank string of at most 255 characters, trimmed.
pub fn read_name(input: &mut Input<'_>, required: bool) -> Option<String> {
    let name = if required {
        input.required_string("name", 255)
    } else {
        input.string("name", 255)
    }?;
    let name = name.trim().to_owned();
    if name.is_empty() {
        input.error("name", validate::msg_required("name"));
        return None;
    }
    Some(name)
}

/// Reads `expired_at` (SPEC §4.3): absent → None; `null` → Some(None) (clears it); else a
/// date in one of the accepted formats that lies after now.
pub fn read_expired_at(input: &mut Input<'_>) -> Option<Option<UnixTime>> {
    const KEY: &str = "expired_at";
    match input.raw(KEY) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => match validate::parse_date(s) {
            None => {
                input.error(KEY, validate::msg_date(KEY));
                None
            }
            Some(t) if t.unix_timestamp() <= now() => {
                input.error(KEY, validate::msg_after_now(KEY));
                None
            }
            Some(t) => Some(Some(t.unix_timestamp())),
        },
        Some(_) => {
            input.error(KEY, validate::msg_date(KEY));
            None
        }
    }
}

/// Reads `ptz_priority`: absent → None; `null` → Some(None); else an integer 1–100.
pub fn read_ptz_priority(input: &mut Input<'_>) -> Option<Option<u8>> {
    const KEY: &str = "ptz_priority";
    match input.raw(KEY) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => input
            .integer(KEY, 1, 100)
            .and_then(|n| u8::try_from(n).ok())
            .map(Some),
    }
}

/// Reads a login for a new or renamed account: shape, and that no other account holds it
/// (case-insensitively, across all account types). `Tx::put_account` re-checks inside the
/// transaction, where a concurrent request may have taken it meanwhile.
pub fn read_login(
    app: &App,
    input: &mut Input<'_>,
    required: bool,
    own_id: Option<u64>,
) -> Result<Option<String>, ApiError> {
    let login = if required {
        input.required_string("login", 255)
    } else {
        input.string("login", 255)
    };
    let Some(login) = login else {
        return Ok(None);
    };
    let mut errors = FieldErrors::new();
    validate::check_login(&mut errors, "login", &login);
    if !errors.is_empty() {
        for message in errors.messages("login") {
            input.error("login", message.clone());
        }
        return Ok(None);
    }
    if let Some(owner) = app.store.account_by_login(&login_key(&login))? {
        if Some(owner.id) != own_id {
            input.error("login", validate::msg_unique("login"));
            return Ok(None);
        }
    }
    Ok(Some(validate::normalize_login(&login)))
}

/// Reads `password` + `password_confirmation` under the configured length policy.
pub fn read_new_password(app: &App, input: &mut Input<'_>, required: bool) -> Option<String> {
    let password = if required {
        input.required_string("password", 1024)
    } else {
        input.string("password", 1024)
    };
    let confirmation = input.string("password_confirmation", 1024);
    let password = password?;
    let mut errors = FieldErrors::new();
    validate::check_new_password(
        &mut errors,
        &password,
        confirmation.as_deref(),
        app.config.auth.password_min_length,
    );
    if errors.is_empty() {
        Some(password)
    } else {
        for message in errors.messages("password") {
            input.error("password", message.clone());
        }
        None
    }
}

/// A paginated list of the accounts `keep` selects, searched on login and name.
pub fn account_list(
    app: &App,
    req: &Request,
    keep: impl Fn(&Account) -> bool,
    render: impl Fn(&Account) -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    let needle = search_needle(req);
    paged_search(
        req,
        app.store.accounts(),
        |a| keep(a) && matches_search(needle.as_deref(), &[&a.login, &a.name]),
        render,
    )
}

/// Every camera group, for rendering camera models.
pub fn group_index(app: &App) -> Result<CameraGroupIndex, ApiError> {
    let groups = app.store.camera_groups().collect::<Result<Vec<_>, _>>()?;
    Ok(CameraGroupIndex::new(groups))
}

/// The account's cameras as full models with their `pivot` (seed 001), in id order.
pub fn account_cameras(app: &App, account: &Account) -> Result<Vec<Value>, ApiError> {
    let groups = group_index(app)?;
    let mut out = Vec::with_capacity(account.cameras.len());
    for id in &account.cameras {
        if let Some(camera) = app.store.camera(*id)? {
            let pivot = camera_pivot(account.id, &camera, out.len());
            out.push(camera_view(&camera, &groups, Some(pivot)));
        }
    }
    Ok(out)
}

/// The account's cameras as the summaries of the temporary-user list.
pub fn account_camera_summaries(
    app: &App,
    groups: &CameraGroupIndex,
    account: &Account,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(account.cameras.len());
    for id in &account.cameras {
        if let Some(camera) = app.store.camera(*id)? {
            out.push(camera_summary_view(&camera, groups));
        }
    }
    Ok(out)
}

/// Reads a JSON value stored as given (`billing_info`), bounded in size.
pub fn read_bounded_json(input: &mut Input<'_>, key: &str) -> Option<Value> {
    let value = input.raw(key)?;
    if value.is_null() {
        return None;
    }
    if !(value.is_object() || value.is_array()) {
        input.error(key, validate::msg_object(key));
        return None;
    }
    let size = serde_json::to_vec(value)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_JSON_FIELD_BYTES {
        input.error(
            key,
            format!(
                "The {} must not be greater than {} kilobytes.",
                validate::attr(key),
                MAX_JSON_FIELD_BYTES / 1024
            ),
        );
        return None;
    }
    Some(value.clone())
}
