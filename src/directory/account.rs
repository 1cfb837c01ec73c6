//! The vmsd account of a directory person (SPEC §10), written inside the caller's store
//! transaction: created at the first login, brought in step with the directory at every
//! login and sync (login, name, role, permissions, cameras), disabled by the sync. Changes
//! go through the store like any other, so the change notices reach pushes (§9) and the
//! media hook reads the new state (§8) as for an admin's change.

use std::collections::BTreeSet;

use crate::app::App;
use crate::model::{
    login_key, Account, DirectoryLink, NewAccount, UnixTime, UserType, STATUS_ACTIVE,
    STATUS_DISABLED,
};
use crate::store::{LoginTaken, Notice, SessionEnd, StoreError, Tx, TxError, TxResult};

use super::{Entry, Grant};

/// What the directory says an account must be, cameras of `camera_groups` resolved.
#[derive(Debug, Clone)]
pub struct Derived {
    pub directory_id: String,
    pub login: String,
    pub name: String,
    pub user_type: UserType,
    pub permissions: BTreeSet<u64>,
    pub cameras: BTreeSet<u64>,
}

/// The cameras of each camera group and the groups' parents, read once (outside any
/// transaction: sled transactions cannot scan) and only if a grant names camera groups: a
/// sync resolves every account's grant against one reading instead of scanning all cameras
/// per account.
#[derive(Default)]
pub struct GroupCameras {
    loaded: bool,
    parents: Vec<(u64, u64)>,
    cameras: Vec<(u64, u64)>,
}

impl GroupCameras {
    /// The cameras of `groups` and of their sub-groups.
    fn resolve(&mut self, app: &App, groups: &BTreeSet<u64>) -> Result<BTreeSet<u64>, StoreError> {
        if !self.loaded {
            for g in app.store.camera_groups() {
                let g = g?;
                if let Some(parent) = g.parent_id {
                    self.parents.push((g.id, parent));
                }
            }
            for camera in app.store.cameras() {
                let camera = camera?;
                if let Some(group) = camera.group_id {
                    self.cameras.push((camera.id, group));
                }
            }
            self.loaded = true;
        }
        let mut wanted = groups.clone();
        // Descendants: repeat until no group is added (the tree is small and acyclic).
        loop {
            let before = wanted.len();
            for (id, parent) in &self.parents {
                if wanted.contains(parent) {
                    wanted.insert(*id);
                }
            }
            if wanted.len() == before {
                break;
            }
        }
        Ok(self
            .cameras
            .iter()
            .filter(|(_, group)| wanted.contains(group))
            .map(|(id, _)| *id)
            .collect())
    }
}

impl Derived {
    /// `groups` holds what earlier grants of the same login or sync read of the camera groups.
    pub fn new(
        app: &App,
        entry: &Entry,
        grant: &Grant,
        groups: &mut GroupCameras,
    ) -> Result<Derived, StoreError> {
        let mut cameras = grant.cameras.clone();
        if !grant.camera_groups.is_empty() {
            cameras.extend(groups.resolve(app, &grant.camera_groups)?);
        }
        Ok(Derived {
            directory_id: entry.id.clone(),
            login: entry.login.trim().to_owned(),
            name: entry.name.clone(),
            user_type: grant.user_type,
            permissions: grant.permissions.clone(),
            cameras,
        })
    }
}

/// What a write did.
#[derive(Debug, Clone)]
pub struct Written {
    pub account: Account,
    pub created: bool,
    /// Changed fields (never values); empty when nothing changed.
    pub fields: Vec<&'static str>,
    /// Sessions ended (a role change or a disable).
    pub revoked: usize,
}

/// Creates the account of `derived`, or brings the one linked to its directory id in step.
/// An account the sync disabled is enabled again (the person matches a map again); an
/// admin-set status is left alone.
///
/// Aborts with `LoginTaken` when the login is another account's (a local one, or a directory
/// one with another id).
pub fn write<E: From<LoginTaken>>(
    tx: &Tx<'_>,
    derived: &Derived,
    language: &str,
    at: UnixTime,
) -> TxResult<Written, E> {
    let linked = match tx.account_id_by_directory_id(&derived.directory_id)? {
        Some(id) => tx.account(id)?,
        None => None,
    };
    // The login must be free, or already this account's.
    if let Some(owner) = tx.account_id_by_login(&login_key(&derived.login))? {
        if linked.as_ref().is_none_or(|a| a.id != owner) {
            return Err(TxError::Abort(LoginTaken.into()));
        }
    }
    let Some(mut account) = linked else {
        let id = tx.next_id("account")?;
        let mut account = Account {
            permissions: derived.permissions.clone(),
            can_update_password: false,
            directory: Some(DirectoryLink {
                id: derived.directory_id.clone(),
                sync_disabled: false,
            }),
            ..Account::new(
                id,
                NewAccount {
                    user_type: derived.user_type,
                    login: derived.login.clone(),
                    name: derived.name.clone(),
                    // No local password: a directory account only logs in through the
                    // directory (an empty string is no PHC hash, so nothing verifies).
                    password_hash: String::new(),
                    language: language.to_owned(),
                },
                at,
            )
        };
        for camera in &derived.cameras {
            if tx.camera_exists(*camera)? {
                account.cameras.insert(*camera);
                tx.link_camera(*camera, id)?;
            }
        }
        tx.put_account(&account)?;
        return Ok(Written {
            account,
            created: true,
            fields: vec!["login", "name", "user_type", "permissions", "cameras"],
            revoked: 0,
        });
    };
    let mut fields = Vec::new();
    if account.login != derived.login {
        account.login = derived.login.clone();
        fields.push("login");
    }
    if account.name != derived.name {
        account.name = derived.name.clone();
        fields.push("name");
    }
    let mut revoked = 0;
    if account.user_type != derived.user_type {
        account.user_type = derived.user_type;
        fields.push("user_type");
        // As an admin's role change: the sessions of the old role end.
        revoked += tx.revoke_sessions_of(account.id, None, SessionEnd::RoleChanged)?;
    }
    if account.permissions != derived.permissions {
        account.permissions = derived.permissions.clone();
        fields.push("permissions");
        tx.notice(Notice::PermissionsChanged {
            account_id: account.id,
        });
    }
    let mut attached = Vec::new();
    for camera in &derived.cameras {
        if !account.cameras.contains(camera) && tx.camera_exists(*camera)? {
            account.cameras.insert(*camera);
            tx.link_camera(*camera, account.id)?;
            attached.push(*camera);
        }
    }
    let detached: Vec<u64> = account
        .cameras
        .iter()
        .filter(|c| !derived.cameras.contains(c))
        .copied()
        .collect();
    for camera in &detached {
        account.cameras.remove(camera);
        tx.unlink_camera(*camera, account.id)?;
    }
    if !attached.is_empty() || !detached.is_empty() {
        fields.push("cameras");
        tx.notice(Notice::CamerasChanged {
            account_id: account.id,
            attached,
            detached,
        });
    }
    if let Some(link) = account.directory.as_mut() {
        if link.sync_disabled {
            link.sync_disabled = false;
            account.status = STATUS_ACTIVE;
            fields.push("status");
        }
    }
    if !fields.is_empty() {
        account.updated_at = at;
        tx.put_account(&account)?;
    }
    Ok(Written {
        account,
        created: false,
        fields,
        revoked,
    })
}

/// Disables a directory account the sync found gone, disabled or unmapped, and ends its
/// sessions (with the §9 `logout` push; stream tokens stop at the next hook check). An
/// account already disabled by an admin is left as it is.
pub fn disable<E>(tx: &Tx<'_>, id: u64, at: UnixTime) -> TxResult<Option<Written>, E> {
    let Some(mut account) = tx.account(id)? else {
        return Ok(None);
    };
    if account.status != STATUS_ACTIVE {
        return Ok(None);
    }
    let Some(link) = account.directory.as_mut() else {
        return Ok(None);
    };
    link.sync_disabled = true;
    account.status = STATUS_DISABLED;
    account.updated_at = at;
    let revoked = tx.revoke_sessions_of(id, None, SessionEnd::Deactivated)?;
    tx.rewrite_account(&account)?;
    Ok(Some(Written {
        account,
        created: false,
        fields: vec!["status"],
        revoked,
    }))
}
