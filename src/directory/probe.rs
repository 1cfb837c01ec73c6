//! `vmsd directory test LOGIN` (SPEC §10): one directory login tried from the command line,
//! the way the daemon would do it (connect, search, bind, groups, maps), with nothing
//! written anywhere. It reads no store (the daemon may hold it), so the cameras of
//! `camera_groups` are shown as the group ids, and a collision with a local login is not
//! checked.

use crate::config::DirectoryConfig;
use crate::permissions::permission;

use super::{grant, Directory, DirectoryError};

/// What the daemon would make of `login` + `password`: the report to print when the login
/// would succeed, the reason (with what is known so far) when it would not.
pub async fn test_login(
    config: &DirectoryConfig,
    login: &str,
    password: &str,
) -> Result<String, String> {
    let directory = Directory::new(config.clone())?;
    let entry = directory
        .authenticate(login, password)
        .await
        .map_err(|e| match e {
            DirectoryError::EmptyPassword => {
                "the password is empty: refused before asking the directory".to_owned()
            }
            DirectoryError::NotFound => format!(
                "no entry under {} matches {}",
                config.user_base, config.user_filter
            ),
            DirectoryError::Ambiguous => format!(
                "several entries under {} match {}: the login is refused",
                config.user_base, config.user_filter
            ),
            DirectoryError::BadPassword => "the directory refused the password".to_owned(),
            DirectoryError::Unavailable(cause) => {
                format!("no directory server answered ({cause})")
            }
            DirectoryError::Busy => "too many directory logins at once".to_owned(),
        })?;
    let mut out = format!(
        "dn: {}\nid: {}\nlogin: {}\nname: {}\n",
        entry.dn, entry.id, entry.login, entry.name
    );
    if entry.groups.is_empty() {
        out.push_str("groups: (none)\n");
    }
    for g in &entry.groups {
        out.push_str(&format!("group: {g}\n"));
    }
    if entry.disabled {
        return Err(format!(
            "{out}the account is disabled in the directory (userAccountControl)"
        ));
    }
    let Some(grant) = grant(&config.maps, &entry.groups) else {
        return Err(format!(
            "{out}no [[directory.map]] group matches: the login would be refused (\"This \
             account is not allowed on this box.\")"
        ));
    };
    let names: Vec<&str> = grant
        .permissions
        .iter()
        .filter_map(|id| permission(*id).map(|p| p.name))
        .collect();
    let list = |ids: &std::collections::BTreeSet<u64>| {
        ids.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push_str(&format!(
        "user_type: {}\npermissions: {}\ncameras: {}\ncamera_groups: {}\nthe login would succeed\n",
        grant.user_type.as_str(),
        names.join(", "),
        list(&grant.cameras),
        list(&grant.camera_groups),
    ));
    Ok(out)
}
