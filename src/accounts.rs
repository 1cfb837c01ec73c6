//! Creating, changing and deleting accounts: the rules every route must keep (logins unique,
//! the role and last-admin rules, licence pools, sessions a change ends) and the audit entry
//! of each change, in one place for the REST API and the DeviceHive socket alike. Callers
//! validate the request's shape; this module decides, writes and answers `AccountError`.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::app::App;
use crate::auth::Caller;
use crate::model::{
    now, Account, AuditEntry, NewAccount, UnixTime, UserType, STATUS_ACTIVE, STATUS_DISABLED,
    STATUS_LOCKED,
};
use crate::password::HashError;
use crate::permissions::{admin_permissions, license_usage, LicenseLevel};
use crate::store::{LoginTaken, Notice, SessionEnd, StoreError, TokenHash, Tx, TxError, TxResult};

/// Why a change to an account was refused or failed. REST (`error.rs`) and the DeviceHive
/// socket (`handlers::websocket::protocol`) each map it in one exhaustive `match`.
#[derive(Debug)]
pub enum AccountError {
    /// No such account (or not of the kind the route addresses).
    NotFound,
    /// Another account holds the login (logins are unique across all accounts).
    LoginTaken,
    /// The change would leave no active administrator.
    LastAdmin,
    /// A licence pool would exceed its size (SPEC §5).
    LicenseExceeded,
    /// Only `admin` and `user` accounts move between roles.
    RoleFixed,
    /// A user with sub-users cannot become an administrator.
    HasSubusers,
    /// The account may not change its own password (`can_update_password: false`).
    PasswordFixed,
    /// `cameras_to_attach[index]` names a camera that no longer exists.
    UnknownCamera { index: usize },
    /// The `parent_id` of a new sub-user is no longer a regular user.
    InvalidParent,
    /// The password hashing queue is full: try again.
    Busy,
    /// The account is managed by the directory (SPEC §10): its login, name, password,
    /// permissions, cameras and role change only there, and it is not deleted here.
    DirectoryManaged,
    /// Storage or hashing failed: for the log only.
    Internal(String),
}

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountError::NotFound => f.write_str("no such account"),
            AccountError::LoginTaken => f.write_str("the login is taken"),
            AccountError::LastAdmin => f.write_str("it would leave no active administrator"),
            AccountError::LicenseExceeded => f.write_str("a licence pool would be exceeded"),
            AccountError::RoleFixed => f.write_str("this type of account cannot change role"),
            AccountError::HasSubusers => {
                f.write_str("a user with sub-users cannot become an administrator")
            }
            AccountError::PasswordFixed => f.write_str("the account may not change its password"),
            AccountError::UnknownCamera { index } => {
                write!(f, "camera {index} of the list does not exist")
            }
            AccountError::InvalidParent => f.write_str("the parent is not a regular user"),
            AccountError::Busy => f.write_str("password hashing queue full"),
            AccountError::DirectoryManaged => {
                f.write_str("the account is managed by the directory")
            }
            AccountError::Internal(cause) => write!(f, "internal error: {cause}"),
        }
    }
}

impl std::error::Error for AccountError {}

impl From<LoginTaken> for AccountError {
    fn from(_: LoginTaken) -> Self {
        AccountError::LoginTaken
    }
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        AccountError::Internal(e.to_string())
    }
}

impl From<HashError> for AccountError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => AccountError::Busy,
            HashError::Failed(cause) => AccountError::Internal(cause),
        }
    }
}

impl From<TxError<AccountError>> for AccountError {
    fn from(e: TxError<AccountError>) -> Self {
        match e {
            TxError::Abort(e) => e,
            TxError::Store(e) => e.into(),
        }
    }
}

/// Who makes a change: the audit log's actor, and the session a change of one's own
/// password keeps.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub account_id: Option<u64>,
    pub is_admin: bool,
    pub session: Option<&'a TokenHash>,
}

impl<'a> Actor<'a> {
    /// The caller of a request, changing with its own session.
    pub fn of(caller: &'a Caller) -> Actor<'a> {
        Actor {
            account_id: Some(caller.account.id),
            is_admin: caller.is_admin(),
            session: Some(&caller.token_hash),
        }
    }
}

/// A validated camera list change. Ids keep the request index they first appeared at, so
/// that a camera deleted between validation and the transaction is still reported under its
/// own key.
#[derive(Debug, Default, Clone)]
pub struct CameraListChange {
    pub attach: Vec<(usize, u64)>,
    pub detach: Vec<(usize, u64)>,
}

/// A new account, validated. What is not given starts at `Account::new`'s defaults.
#[derive(Debug, Clone)]
pub struct NewAccountRequest {
    pub user_type: UserType,
    pub login: String,
    pub name: String,
    pub password: String,
    pub parent_id: Option<u64>,
    pub permissions: BTreeSet<u64>,
    pub cameras: CameraListChange,
    pub can_update_password: bool,
    pub billing_info: Option<Value>,
    pub expired_at: Option<UnixTime>,
    pub ptz_priority: Option<u8>,
    /// DeviceHive's `user/insert` may create an account locked (1) or disabled (2).
    pub status: u8,
    pub data: Option<Value>,
    pub intro_reviewed: bool,
}

impl NewAccountRequest {
    pub fn new(user_type: UserType, login: String, name: String, password: String) -> Self {
        NewAccountRequest {
            user_type,
            login,
            name,
            password,
            parent_id: None,
            permissions: BTreeSet::new(),
            cameras: CameraListChange::default(),
            can_update_password: true,
            billing_info: None,
            expired_at: None,
            ptz_priority: None,
            status: STATUS_ACTIVE,
            data: None,
            intro_reviewed: false,
        }
    }

    /// The audit entry's `fields`: what the request set (never a value).
    fn fields(&self) -> Vec<&'static str> {
        // In the order each route's request names them (seed 002 puts `name` first).
        let mut fields = match self.user_type {
            UserType::Special => vec!["name", "login", "password"],
            _ => vec!["login", "name", "password"],
        };
        let given = [
            ("parent_id", self.parent_id.is_some()),
            ("permissions", !self.permissions.is_empty()),
            ("cameras", !self.cameras.attach.is_empty()),
            ("billing_info", self.billing_info.is_some()),
            ("expired_at", self.expired_at.is_some()),
            ("ptz_priority", self.ptz_priority.is_some()),
            ("status", self.status != STATUS_ACTIVE),
            ("data", self.data.is_some()),
            ("intro_reviewed", self.intro_reviewed),
        ];
        fields.extend(given.iter().filter(|(_, set)| *set).map(|(f, _)| *f));
        fields
    }
}

fn created_action(user_type: UserType) -> &'static str {
    match user_type {
        UserType::Admin => "admin_created",
        UserType::User | UserType::Subuser => "user_created",
        UserType::Special => "special_user_created",
    }
}

fn deleted_action(user_type: UserType) -> &'static str {
    match user_type {
        UserType::Admin => "admin_deleted",
        UserType::User | UserType::Subuser => "user_deleted",
        UserType::Special => "special_user_deleted",
    }
}

/// An audit entry about an account, its id taken now: a transaction closure may re-run and
/// must not allocate again.
pub fn audit_entry(
    app: &App,
    actor_id: Option<u64>,
    action: &str,
    target: Option<u64>,
    fields: &[&str],
) -> AuditEntry {
    AuditEntry::new(
        app.store.next_audit_id(),
        actor_id,
        action,
        "account",
        target,
        fields,
    )
}

/// The language a new account starts with: the first configured locale.
pub fn default_language(app: &App) -> String {
    app.config
        .locales
        .available
        .first()
        .cloned()
        .unwrap_or_else(|| "en".into())
}

/// Writes a new account inside the caller's transaction: the record, its login, its cameras,
/// the licences they take, its place under its parent. `password_hash` is the request's
/// password, hashed before the transaction.
pub fn insert(
    tx: &Tx<'_>,
    request: &NewAccountRequest,
    password_hash: &str,
    language: &str,
    at: UnixTime,
) -> TxResult<Account, AccountError> {
    if let Some(parent_id) = request.parent_id {
        // The parent may have been deleted or changed since validation.
        let parent = tx.account(parent_id)?;
        if parent.is_none_or(|p| p.user_type != UserType::User) {
            return Err(TxError::Abort(AccountError::InvalidParent));
        }
    }
    let user_type = match (request.user_type, request.parent_id) {
        (UserType::User, Some(_)) => UserType::Subuser,
        (other, _) => other,
    };
    let mut account = Account {
        permissions: if user_type == UserType::Admin {
            admin_permissions()
        } else {
            request.permissions.clone()
        },
        parent_id: request.parent_id,
        can_update_password: request.can_update_password,
        billing_info: request.billing_info.clone(),
        expired_at: request.expired_at,
        ptz_priority: request.ptz_priority,
        status: request.status,
        data: request.data.clone(),
        intro_reviewed: request.intro_reviewed,
        ..Account::new(
            tx.next_id("account")?,
            NewAccount {
                user_type,
                login: request.login.clone(),
                name: request.name.clone(),
                password_hash: password_hash.to_owned(),
                language: language.to_owned(),
            },
            at,
        )
    };
    apply_camera_changes(tx, &mut account, &request.cameras)?;
    move_licenses(tx, [0; 3], license_usage(&account))?;
    tx.put_account(&account)?;
    if let Some(parent_id) = account.parent_id {
        tx.link_subuser(parent_id, account.id)?;
    }
    Ok(account)
}

/// Creates an account and audits it as made by `actor_id`.
pub async fn create(
    app: &App,
    actor_id: Option<u64>,
    request: &NewAccountRequest,
) -> Result<Account, AccountError> {
    let hash = app.hasher.hash(request.password.clone()).await?;
    let entry = audit_entry(
        app,
        actor_id,
        created_action(request.user_type),
        None,
        &request.fields(),
    );
    let language = default_language(app);
    let at = now();
    let account = app
        .store
        .commit(|tx| {
            let account = insert(tx, request, &hash, &language, at)?;
            tx.audit(&entry.about(account.id))?;
            Ok(account)
        })
        .await?;
    tracing::info!(
        user_id = account.id,
        actor_id,
        user_type = account.user_type.as_str(),
        "created {} {}",
        account.user_type.as_str(),
        account.id
    );
    Ok(account)
}

/// The changes a request asks for, validated; `None` leaves a field as it is. For
/// `expired_at`, `ptz_priority` and `data` the inner `None` clears the value.
#[derive(Debug, Default, Clone)]
pub struct AccountChange {
    pub login: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
    pub language: Option<String>,
    pub permissions: Option<BTreeSet<u64>>,
    pub cameras: CameraListChange,
    pub expired_at: Option<Option<UnixTime>>,
    pub ptz_priority: Option<Option<u8>>,
    /// DeviceHive's role: 0 administrator, 1 client. Only `admin` and `user` accounts move
    /// between them; another type asked for its own role is unchanged.
    pub role: Option<u8>,
    pub status: Option<u8>,
    pub data: Option<Option<Value>>,
    pub intro_reviewed: Option<bool>,
}

/// What a committed change did: the fields that changed (empty: nothing was written) and
/// how many sessions it ended.
#[derive(Debug, Clone)]
pub struct Applied {
    pub account: Account,
    pub fields: Vec<&'static str>,
    pub revoked: usize,
}

/// The account found, when it is of the kind the route addresses (`admits`).
fn addressed(
    found: Option<Account>,
    admits: &impl Fn(&Account) -> bool,
) -> Result<Account, AccountError> {
    found.filter(|a| admits(a)).ok_or(AccountError::NotFound)
}

/// Whether a role or status change would take away the last active administrator. Read
/// outside the transaction (sled transactions cannot scan), so callers hold
/// `App::admin_changes` across the check and the commit.
fn leaves_no_admin(
    app: &App,
    target: &Account,
    change: &AccountChange,
) -> Result<bool, StoreError> {
    let demoted = change.role.is_some_and(|r| r != target.user_type.role());
    let deactivated = matches!(change.status, Some(STATUS_LOCKED | STATUS_DISABLED));
    if target.user_type != UserType::Admin
        || target.status != STATUS_ACTIVE
        || !(demoted || deactivated)
    {
        return Ok(false);
    }
    another_active_admin(app, target.id).map(|found| !found)
}

fn another_active_admin(app: &App, except: u64) -> Result<bool, StoreError> {
    for account in app.store.accounts() {
        let a = account?;
        if a.id != except && a.user_type == UserType::Admin && a.status == STATUS_ACTIVE {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Applies `change` to account `id` when `admits` accepts its kind, audited as `action` by
/// `actor`, in one transaction. A new password or role ends the account's other sessions
/// (the actor's own one stays when it changes itself); a lock or disable ends them all.
pub async fn update(
    app: &App,
    actor: Actor<'_>,
    action: &str,
    id: u64,
    admits: impl Fn(&Account) -> bool,
    change: &AccountChange,
) -> Result<Applied, AccountError> {
    let own = actor.account_id == Some(id);
    if change.password.is_some() && own && !actor.is_admin {
        let current = app.store.account(id)?.ok_or(AccountError::NotFound)?;
        if !current.can_update_password {
            return Err(AccountError::PasswordFixed);
        }
    }
    // Role and status changes are serialised so that two of them cannot each see the other
    // administrator still active and leave none.
    let _one_at_a_time = if change.role.is_some() || change.status.is_some() {
        let guard = app.admin_changes.lock().await;
        let target = addressed(app.store.account(id)?, &admits)?;
        check_role_change(app, &target, change)?;
        if leaves_no_admin(app, &target, change)? {
            return Err(AccountError::LastAdmin);
        }
        Some(guard)
    } else {
        None
    };
    let password_hash = match &change.password {
        Some(p) => Some(app.hasher.hash(p.clone()).await?),
        None => None,
    };
    // Setting status 0 on an account that is locked out after failed logins lifts the lock:
    // a change of its own even when the stored status already is 0.
    let lifts_lockout = change.status == Some(STATUS_ACTIVE) && app.throttle.is_locked_out(id);
    let entry = audit_entry(app, actor.account_id, action, Some(id), &[]);
    let disables = matches!(change.status, Some(STATUS_LOCKED | STATUS_DISABLED));
    let may_end_sessions = disables || change.role.is_some() || password_hash.is_some();
    // An audit id is taken only for an entry that may be written: pruning the audit log
    // counts on few gaps in the ids.
    let revoke_entry = may_end_sessions.then(|| {
        audit_entry(
            app,
            actor.account_id,
            "session_revoked",
            Some(id),
            &["session"],
        )
    });
    let at = now();
    let applied = app
        .store
        .commit(|tx| {
            let account = addressed(tx.account(id)?, &admits).map_err(TxError::Abort)?;
            let mut applied =
                apply_change(tx, account, change, password_hash.as_deref(), lifts_lockout)?;
            if applied.fields.is_empty() {
                return Ok(applied);
            }
            let ends_sessions =
                disables || applied.fields.contains(&"user_type") || password_hash.is_some();
            if let (true, Some(revoke_entry)) = (ends_sessions, &revoke_entry) {
                let keep = if own && !disables {
                    actor.session
                } else {
                    None
                };
                let end = if disables {
                    SessionEnd::Deactivated
                } else if password_hash.is_some() {
                    SessionEnd::PasswordChanged
                } else {
                    SessionEnd::RoleChanged
                };
                applied.revoked = tx.revoke_sessions_of(id, keep, end)?;
                if applied.revoked > 0 {
                    tx.audit(revoke_entry)?;
                }
            }
            applied.account.updated_at = at;
            tx.put_account(&applied.account)?;
            tx.audit(&AuditEntry {
                fields: applied.fields.iter().map(|f| (*f).to_owned()).collect(),
                at,
                ..entry.clone()
            })?;
            Ok(applied)
        })
        .await?;
    if change.status == Some(STATUS_ACTIVE) {
        app.throttle.clear_lockout(id);
    }
    Ok(applied)
}

/// Only admin and user accounts move between roles, and a user with sub-users stays a user.
fn check_role_change(
    app: &App,
    target: &Account,
    change: &AccountChange,
) -> Result<(), AccountError> {
    if change.role.is_none_or(|r| r == target.user_type.role()) {
        return Ok(());
    }
    match target.user_type {
        UserType::Admin => Ok(()),
        UserType::User if !app.store.subuser_ids(target.id)?.is_empty() => {
            Err(AccountError::HasSubusers)
        }
        UserType::User => Ok(()),
        UserType::Subuser | UserType::Special => Err(AccountError::RoleFixed),
    }
}

/// The field-by-field part of `update`, on the record read inside the transaction.
fn apply_change(
    tx: &Tx<'_>,
    mut account: Account,
    change: &AccountChange,
    password_hash: Option<&str>,
    lifts_lockout: bool,
) -> TxResult<Applied, AccountError> {
    let usage_before = license_usage(&account);
    let mut fields: Vec<&'static str> = Vec::new();
    fn set<T: PartialEq + Clone>(
        fields: &mut Vec<&'static str>,
        name: &'static str,
        slot: &mut T,
        value: Option<&T>,
    ) {
        if let Some(value) = value {
            if slot != value {
                *slot = value.clone();
                fields.push(name);
            }
        }
    }
    set(&mut fields, "name", &mut account.name, change.name.as_ref());
    set(
        &mut fields,
        "login",
        &mut account.login,
        change.login.as_ref(),
    );
    if change.role.is_some_and(|r| r != account.user_type.role()) {
        match account.user_type {
            UserType::Admin => {
                account.user_type = UserType::User;
                account.permissions.clear();
            }
            UserType::User => {
                account.user_type = UserType::Admin;
                account.permissions = admin_permissions();
            }
            UserType::Subuser | UserType::Special => {
                return Err(TxError::Abort(AccountError::RoleFixed))
            }
        }
        fields.extend(["user_type", "permissions"]);
    }
    if let Some(status) = change.status {
        if status != account.status || lifts_lockout {
            account.status = status;
            fields.push("status");
        }
    }
    if let Some(hash) = password_hash {
        account.password_hash = hash.to_owned();
        fields.push("password");
    }
    set(
        &mut fields,
        "language",
        &mut account.language,
        change.language.as_ref(),
    );
    set(
        &mut fields,
        "permissions",
        &mut account.permissions,
        change.permissions.as_ref(),
    );
    if apply_camera_changes(tx, &mut account, &change.cameras)? {
        fields.push("cameras");
    }
    set(
        &mut fields,
        "expired_at",
        &mut account.expired_at,
        change.expired_at.as_ref(),
    );
    set(
        &mut fields,
        "ptz_priority",
        &mut account.ptz_priority,
        change.ptz_priority.as_ref(),
    );
    set(&mut fields, "data", &mut account.data, change.data.as_ref());
    set(
        &mut fields,
        "intro_reviewed",
        &mut account.intro_reviewed,
        change.intro_reviewed.as_ref(),
    );
    if account.is_directory_managed() {
        if fields.iter().any(|f| DIRECTORY_FIELDS.contains(f)) {
            return Err(TxError::Abort(AccountError::DirectoryManaged));
        }
        // An admin-set status sticks until an admin changes it again (SPEC §10); only a
        // sync-set disable is lifted by the next matching login or sync.
        if let (true, Some(link)) = (fields.contains(&"status"), account.directory.as_mut()) {
            link.sync_disabled = false;
        }
    }
    if !fields.is_empty() {
        move_licenses(tx, usage_before, license_usage(&account))?;
    }
    if fields.contains(&"permissions") {
        tx.notice(Notice::PermissionsChanged {
            account_id: account.id,
        });
    }
    Ok(Applied {
        account,
        fields,
        revoked: 0,
    })
}

/// What only the directory changes of a directory-managed account (SPEC §10); its status,
/// language, `data` and `intro_reviewed` stay the box's.
const DIRECTORY_FIELDS: &[&str] = &[
    "login",
    "name",
    "password",
    "user_type",
    "permissions",
    "cameras",
];

/// How often a delete re-reads the sub-users when new ones keep appearing meanwhile.
const DELETE_ATTEMPTS: usize = 5;

/// Deletes account `id` when `admits` accepts its kind, with its sub-users, sessions, camera
/// assignments and the licences they took, in one transaction; one audit entry per deleted
/// account.
pub async fn delete(
    app: &App,
    actor_id: Option<u64>,
    id: u64,
    admits: impl Fn(&Account) -> bool,
) -> Result<Account, AccountError> {
    let _one_at_a_time = app.admin_changes.lock().await;
    let target = addressed(app.store.account(id)?, &admits)?;
    if target.is_directory_managed() {
        return Err(AccountError::DirectoryManaged);
    }
    if target.user_type == UserType::Admin
        && target.status == STATUS_ACTIVE
        && !another_active_admin(app, id)?
    {
        return Err(AccountError::LastAdmin);
    }
    for _ in 0..DELETE_ATTEMPTS {
        // One audit entry per deleted account; their ids must exist before the transaction.
        let known_subusers: BTreeSet<u64> = app.store.subuser_ids(id)?.into_iter().collect();
        let action = deleted_action(target.user_type);
        let entry = audit_entry(app, actor_id, action, Some(id), &[]);
        let subuser_entries: HashMap<u64, AuditEntry> = known_subusers
            .iter()
            .map(|sub| {
                (
                    *sub,
                    audit_entry(app, actor_id, "user_deleted", Some(*sub), &[]),
                )
            })
            .collect();
        let deleted = app
            .store
            .commit(|tx| {
                let account = addressed(tx.account(id)?, &admits).map_err(TxError::Abort)?;
                let subusers = tx.subuser_ids(id)?;
                if subusers.iter().any(|s| !known_subusers.contains(s)) {
                    return Ok(None);
                }
                for sub_id in &subusers {
                    if let (Some(sub), Some(audit)) =
                        (tx.account(*sub_id)?, subuser_entries.get(sub_id))
                    {
                        tx.delete_account(&sub)?;
                        tx.audit(audit)?;
                    }
                }
                tx.remove_subuser_index(id)?;
                if let Some(parent_id) = account.parent_id {
                    tx.unlink_subuser(parent_id, id)?;
                }
                move_licenses(tx, license_usage(&account), [0; 3])?;
                tx.delete_account(&account)?;
                tx.audit(&entry)?;
                Ok(Some(account))
            })
            .await?;
        if let Some(account) = deleted {
            tracing::info!(
                user_id = id,
                actor_id,
                "deleted {} {id}",
                account.user_type.as_str()
            );
            return Ok(account);
        }
    }
    Err(AccountError::Internal(format!(
        "sub-users of user {id} kept changing during its deletion"
    )))
}

/// Moves each pool's `used` from `before` to `after` (per level: L1, L2, L3) inside the
/// caller's transaction. A pool that would grow past its `all` aborts the whole transaction
/// (SPEC §5: 402), so nothing of the change is written. Reading and writing the pools inside
/// the transaction is what keeps two admins racing for the last licence from both winning.
pub fn move_licenses<E: From<AccountError>>(
    tx: &Tx<'_>,
    before: [u64; 3],
    after: [u64; 3],
) -> TxResult<(), E> {
    for level in LicenseLevel::ALL {
        let i = level as usize;
        if before[i] == after[i] {
            continue;
        }
        let mut pool = tx.pool(level)?;
        let used = pool.used.saturating_sub(before[i]).saturating_add(after[i]);
        if after[i] > before[i] && used > pool.all {
            return Err(TxError::Abort(AccountError::LicenseExceeded.into()));
        }
        pool.used = used;
        tx.put_pool(level, &pool)?;
    }
    Ok(())
}

/// Applies a camera list change to `account` (its `cameras` set) and to the reverse index,
/// inside the caller's transaction. Attaching an attached camera or detaching a detached one
/// is a no-op. Returns whether the set changed.
fn apply_camera_changes(
    tx: &Tx<'_>,
    account: &mut Account,
    change: &CameraListChange,
) -> TxResult<bool, AccountError> {
    let mut attached = Vec::new();
    let mut detached = Vec::new();
    for (index, id) in &change.attach {
        if account.cameras.contains(id) {
            continue;
        }
        if !tx.camera_exists(*id)? {
            return Err(TxError::Abort(AccountError::UnknownCamera {
                index: *index,
            }));
        }
        account.cameras.insert(*id);
        tx.link_camera(*id, account.id)?;
        attached.push(*id);
    }
    for (_, id) in &change.detach {
        if account.cameras.remove(id) {
            tx.unlink_camera(*id, account.id)?;
            detached.push(*id);
        }
    }
    if attached.is_empty() && detached.is_empty() {
        return Ok(false);
    }
    tx.notice(Notice::CamerasChanged {
        account_id: account.id,
        attached,
        detached,
    });
    Ok(true)
}
