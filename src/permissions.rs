//! The built-in permission catalogue (SPEC §4.4: ids are part of the API, stable across
//! versions) and the analytics licence rules of SPEC §5: which permission draws on which
//! licence level, how many licences an account takes, and whether a pool it draws on is full.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{Account, UserType};

/// The three analytics licence pools (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
pub enum LicenseLevel {
    L1,
    L2,
    L3,
}

impl LicenseLevel {
    pub const ALL: [LicenseLevel; 3] = [LicenseLevel::L1, LicenseLevel::L2, LicenseLevel::L3];

    pub fn type_name(self) -> &'static str {
        match self {
            LicenseLevel::L1 => "analytic_l1",
            LicenseLevel::L2 => "analytic_l2",
            LicenseLevel::L3 => "analytic_l3",
        }
    }

    pub fn from_type_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.type_name() == name)
    }

    pub fn suffix(self) -> &'static str {
        match self {
            LicenseLevel::L1 => "L1",
            LicenseLevel::L2 => "L2",
            LicenseLevel::L3 => "L3",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Pool {
    pub all: u64,
    pub used: u64,
}

/// One built-in permission. Ids are part of the API: never renumber, only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub id: u64,
    pub name: &'static str,
    pub display_name: &'static str,
    pub group: &'static str,
    pub user_type: UserType,
    pub license: Option<LicenseLevel>,
}

/// A catalogue row; the table reads as one permission per line.
const fn p(
    id: u64,
    name: &'static str,
    group: &'static str,
    user_type: UserType,
    license: Option<LicenseLevel>,
    display_name: &'static str,
) -> Permission {
    Permission {
        id,
        name,
        display_name,
        group,
        user_type,
        license,
    }
}

use LicenseLevel::{L1, L2, L3};
use UserType::{Admin, User};

/// The catalogue (SPEC §4.4): every permission name of the AIPIX reference §5.6 and the
/// analytics cases of SPEC §5. `layouts-store` is id 9, as seed 001 shows it.
#[rustfmt::skip]
pub const PERMISSIONS: &[Permission] = &[
    p(  1, "groups-index",                                "Groups",             User,  None,     "Viewing camera groups"),
    p(  2, "groups-store",                                "Groups",             User,  None,     "Creating a camera group"),
    p(  3, "groups-destroy",                              "Groups",             User,  None,     "Deleting a camera group"),
    p(  4, "groups-rename",                               "Groups",             User,  None,     "Renaming a camera group"),
    p(  5, "groups-cameras-attach",                       "Groups",             User,  None,     "Adding cameras to a group"),
    p(  6, "groups-cameras-detach",                       "Groups",             User,  None,     "Removing cameras from a group"),
    p(  7, "layouts-rename",                              "Layouts",            User,  None,     "Renaming a Layout"),
    p(  8, "layouts-destroy",                             "Layouts",            User,  None,     "Deleting a Layout"),
    p(  9, "layouts-store",                               "Layouts",            User,  None,     "Creating Layout"),
    p( 10, "layouts-cameras-attach",                      "Layouts",            User,  None,     "Adding cameras to a Layout"),
    p( 11, "layouts-cameras-detach",                      "Layouts",            User,  None,     "Removing cameras from a Layout"),
    p( 12, "archives-show",                               "Archive",            User,  None,     "Viewing the archive"),
    p( 13, "archives-download",                           "Archive",            User,  None,     "Downloading the archive"),
    p( 14, "archives-preview-download",                   "Archive",            User,  None,     "Downloading archive previews"),
    p( 15, "ptz",                                         "Cameras",            User,  None,     "PTZ camera control"),
    p( 16, "camera-events-store",                         "Events",             User,  None,     "Creating camera events"),
    p( 17, "camera-events-index",                         "Events",             User,  None,     "Viewing camera events"),
    p( 18, "logins-store",                                "Logins",             User,  None,     "Creating logins"),
    p( 19, "users-index",                                 "Sub-users",          User,  None,     "Viewing sub-users"),
    p( 20, "users-store",                                 "Sub-users",          User,  None,     "Creating sub-users"),
    p( 21, "users-show",                                  "Sub-users",          User,  None,     "Viewing a sub-user"),
    p( 22, "users-update",                                "Sub-users",          User,  None,     "Updating sub-users"),
    p( 23, "users-destroy",                               "Sub-users",          User,  None,     "Deleting sub-users"),
    p( 24, "users-change-password",                       "Sub-users",          User,  None,     "Changing sub-user passwords"),
    p( 25, "marks-index",                                 "Marks",              User,  None,     "Viewing marks"),
    p( 26, "marks-store",                                 "Marks",              User,  None,     "Creating marks"),
    p( 27, "marks-destroy",                               "Marks",              User,  None,     "Deleting marks"),
    p( 28, "marks-update",                                "Marks",              User,  None,     "Updating marks"),
    p( 29, "intercom-index",                              "Intercoms",          User,  None,     "Viewing intercoms"),
    p( 30, "analytic",                                    "Analytics",          User,  None,     "Business analytics"),
    p( 31, "analytic-cases-index",                        "Analytics",          User,  None,     "Viewing analytics cases (deprecated)"),
    p( 32, "bridges",                                     "Bridges",            User,  None,     "Bridges"),
    p( 33, "intercom-face",                               "Intercoms",          User,  None,     "Intercom face recognition (deprecated)"),
    p( 40, "analytic-cases-motion-detect",                "Analytics cases L1", User,  Some(L1), "Motion detection"),
    p( 41, "analytic-cases-line-intersection",            "Analytics cases L1", User,  Some(L1), "Line crossing"),
    p( 42, "analytic-cases-smoke-fire",                   "Analytics cases L1", User,  Some(L1), "Smoke and fire"),
    p( 43, "analytic-cases-loud-sound",                   "Analytics cases L1", User,  Some(L1), "Loud sound"),
    p( 44, "analytic-cases-camera-obstacle",              "Analytics cases L1", User,  Some(L1), "Camera obstruction"),
    p( 45, "analytic-cases-person-counting",              "Analytics cases L2", User,  Some(L2), "Person counting"),
    p( 46, "analytic-cases-visitor-counting",             "Analytics cases L2", User,  Some(L2), "Visitor counting"),
    p( 47, "analytic-cases-face",                         "Analytics cases L3", User,  Some(L3), "Face recognition"),
    p( 48, "analytic-cases-license-plate",                "Analytics cases L3", User,  Some(L3), "Licence plate recognition"),
    p( 49, "analytic-cases-container-number-recognition", "Analytics cases L3", User,  Some(L3), "Container number recognition"),
    p(100, "streams-update",                              "Video streams",      Admin, None,     "Updating a video Stream"),
    p(101, "dhcp-subnets-destroy",                        "DHCP subnets",       Admin, None,     "Deleting a DHCP network"),
    p(102, "servers-update",                              "Servers",            Admin, None,     "Updating a media server"),
    p(103, "packs-destroy",                               "Packs",              Admin, None,     "Deleting a pack"),
    p(104, "users-admin-index",                           "Users",              Admin, None,     "Viewing users"),
    p(105, "users-admin-update",                          "Users",              Admin, None,     "Updating users"),
    p(106, "cameras-admin-index",                         "Cameras",            Admin, None,     "Viewing cameras"),
    p(107, "cameras-admin-update",                        "Cameras",            Admin, None,     "Updating cameras"),
];

/// `archives-show`: watching a camera's archive (SPEC §8's `playback`) needs it.
pub const ARCHIVES_SHOW: u64 = 12;

pub fn permission(id: u64) -> Option<&'static Permission> {
    PERMISSIONS.iter().find(|p| p.id == id)
}

/// Every admin-side permission: what each administrator holds.
pub fn admin_permissions() -> BTreeSet<u64> {
    PERMISSIONS
        .iter()
        .filter(|p| p.user_type == UserType::Admin)
        .map(|p| p.id)
        .collect()
}

/// The licence levels an account draws on: one per level of the analytics permissions it holds.
pub fn license_levels(permissions: &BTreeSet<u64>) -> BTreeSet<LicenseLevel> {
    permissions
        .iter()
        .filter_map(|id| permission(*id).and_then(|p| p.license))
        .collect()
}

/// `is_licence_limit_reached`: a pool this account draws on has nothing free.
pub fn license_limit_reached(account: &Account, pools: &[Pool; 3]) -> bool {
    license_levels(&account.permissions).iter().any(|level| {
        let pool = pools[*level as usize];
        pool.all.saturating_sub(pool.used) == 0
    })
}

/// How many licences of each level (L1, L2, L3) an account takes (SPEC §5): a `special`
/// account holding a permission of level L takes one L licence per assigned camera.
pub fn license_usage(account: &Account) -> [u64; 3] {
    let mut usage = [0u64; 3];
    if account.user_type == UserType::Special {
        let cameras = account.cameras.len() as u64;
        for level in license_levels(&account.permissions) {
            usage[level as usize] = cameras;
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalogue_ids_and_names_are_unique_and_cover_the_contract() {
        let ids: HashSet<_> = PERMISSIONS.iter().map(|p| p.id).collect();
        let names: HashSet<_> = PERMISSIONS.iter().map(|p| p.name).collect();
        assert_eq!(ids.len(), PERMISSIONS.len());
        assert_eq!(names.len(), PERMISSIONS.len());
        for name in [
            "layouts-store",
            "layouts-destroy",
            "layouts-rename",
            "layouts-cameras-attach",
            "layouts-cameras-detach",
            "groups-index",
            "groups-store",
            "groups-destroy",
            "groups-rename",
            "groups-cameras-attach",
            "groups-cameras-detach",
            "archives-show",
            "archives-download",
            "archives-preview-download",
            "ptz",
            "camera-events-store",
            "camera-events-index",
            "logins-store",
            "users-index",
            "users-store",
            "users-show",
            "users-update",
            "users-destroy",
            "users-change-password",
            "marks-index",
            "marks-store",
            "marks-destroy",
            "marks-update",
            "intercom-index",
            "analytic",
            "analytic-cases-index",
            "bridges",
            "intercom-face",
            "streams-update",
            "dhcp-subnets-destroy",
            "servers-update",
            "packs-destroy",
            "analytic-cases-camera-obstacle",
        ] {
            assert!(names.contains(name), "missing {name}");
        }
        assert_eq!(permission(9).map(|p| p.name), Some("layouts-store"));
        let levels: Vec<_> = PERMISSIONS.iter().filter_map(|p| p.license).collect();
        assert_eq!(levels.iter().filter(|l| **l == LicenseLevel::L1).count(), 5);
        assert_eq!(levels.iter().filter(|l| **l == LicenseLevel::L2).count(), 2);
        assert_eq!(levels.iter().filter(|l| **l == LicenseLevel::L3).count(), 3);
    }

    #[test]
    fn license_usage_counts_cameras_per_level_for_temporary_users_only() {
        let mut account = Account {
            id: 1,
            user_type: UserType::Special,
            login: "t".into(),
            name: "t".into(),
            password_hash: String::new(),
            language: "en".into(),
            status: crate::model::STATUS_ACTIVE,
            data: None,
            intro_reviewed: false,
            can_update_password: true,
            permissions: [40, 41, 47, 9].into(),
            parent_id: None,
            cameras: [1, 2, 3].into(),
            created_at: 0,
            updated_at: 0,
            last_login: None,
            expired_at: None,
            ptz_priority: None,
            billing_info: None,
            directory: None,
        };
        assert_eq!(license_usage(&account), [3, 0, 3]);
        account.user_type = UserType::User;
        assert_eq!(license_usage(&account), [0, 0, 0]);
    }
}
