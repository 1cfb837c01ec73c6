//! A decoded copy of every tree of a store, read through `Store::export_entries` (the records
//! a backup holds), and the cross-tree invariants every committed transaction must keep
//! (SPEC §1, §3, §5, §7): the login index and the accounts, camera assignments and their
//! reverse index, each licence pool's `used` and the sum SPEC §5 defines, sessions and their
//! three indexes (four with a refresh token's), sub-users and their parents, audit entries and their index, id counters.
//! The crash test checks them after every `kill -9`; the hostile-input tests compare
//! snapshots to prove that a refused request changed nothing.

use std::collections::{BTreeMap, BTreeSet};

use vmsd::model::{login_key, Account, AuditEntry, Camera, Session, UserType};
use vmsd::permissions::{license_usage, LicenseLevel, Pool};
use vmsd::store::{Store, TokenHash};

/// Every record of a store, decoded; `raw` keeps the entries as exported.
pub struct Snapshot {
    pub accounts: BTreeMap<u64, Account>,
    pub logins: BTreeMap<String, u64>,
    pub sessions: BTreeMap<TokenHash, Session>,
    pub account_sessions: BTreeMap<u64, Vec<TokenHash>>,
    pub token_ids: BTreeMap<String, TokenHash>,
    /// Refresh token hash (hex) → the session's public id.
    pub refresh_ids: BTreeMap<String, String>,
    pub cameras: BTreeMap<u64, Camera>,
    pub camera_accounts: BTreeMap<u64, Vec<u64>>,
    pub pools: BTreeMap<String, Pool>,
    pub subusers: BTreeMap<u64, Vec<u64>>,
    pub audit: BTreeMap<u64, AuditEntry>,
    pub account_audit: Vec<(u64, u64)>,
    pub counters: BTreeMap<String, u64>,
    pub raw: Vec<(&'static str, Vec<u8>, Vec<u8>)>,
}

fn id(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("an 8-byte id"))
}

fn ids(bytes: &[u8]) -> Vec<u64> {
    assert_eq!(bytes.len() % 8, 0, "an id list of {} bytes", bytes.len());
    bytes.chunks(8).map(id).collect()
}

fn hash(bytes: &[u8]) -> TokenHash {
    bytes.try_into().expect("a 32-byte token hash")
}

fn json<T: serde::de::DeserializeOwned>(tree: &str, bytes: &[u8]) -> T {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{tree}: a record that does not decode: {e}"))
}

impl Snapshot {
    pub fn of(store: &Store) -> Snapshot {
        let raw: Vec<_> = store
            .export_entries()
            .collect::<Result<_, _>>()
            .expect("every tree reads");
        let mut s = Snapshot {
            accounts: BTreeMap::new(),
            logins: BTreeMap::new(),
            sessions: BTreeMap::new(),
            account_sessions: BTreeMap::new(),
            token_ids: BTreeMap::new(),
            refresh_ids: BTreeMap::new(),
            cameras: BTreeMap::new(),
            camera_accounts: BTreeMap::new(),
            pools: BTreeMap::new(),
            subusers: BTreeMap::new(),
            audit: BTreeMap::new(),
            account_audit: Vec::new(),
            counters: BTreeMap::new(),
            raw: Vec::new(),
        };
        for (tree, k, v) in &raw {
            match *tree {
                "accounts" => {
                    s.accounts.insert(id(k), json(tree, v));
                }
                "login_accountid" => {
                    s.logins
                        .insert(String::from_utf8(k.clone()).expect("a text login"), id(v));
                }
                "tokenhash_session" => {
                    s.sessions.insert(hash(k), json(tree, v));
                }
                "accountid_tokenhashes" => {
                    assert_eq!(v.len() % 32, 0, "a hash list of {} bytes", v.len());
                    s.account_sessions
                        .insert(id(k), v.chunks(32).map(hash).collect());
                }
                "tokenid_tokenhash" => {
                    s.token_ids
                        .insert(String::from_utf8(k.clone()).expect("a text id"), hash(v));
                }
                "refreshhash_tokenid" => {
                    s.refresh_ids.insert(
                        String::from_utf8(k.clone()).expect("a hex hash"),
                        String::from_utf8(v.clone()).expect("a text id"),
                    );
                }
                "cameras" => {
                    s.cameras.insert(id(k), json(tree, v));
                }
                "cameraid_accountids" => {
                    s.camera_accounts.insert(id(k), ids(v));
                }
                "licensetype_pool" => {
                    s.pools.insert(
                        String::from_utf8(k.clone()).expect("a pool name"),
                        json(tree, v),
                    );
                }
                "parentid_subuserids" => {
                    s.subusers.insert(id(k), ids(v));
                }
                "audit" => {
                    s.audit.insert(id(k), json(tree, v));
                }
                "accountid_auditid" => {
                    assert_eq!(k.len(), 16, "an audit index key of {} bytes", k.len());
                    s.account_audit.push((id(&k[..8]), id(&k[8..])));
                }
                "counters" => {
                    s.counters
                        .insert(String::from_utf8(k.clone()).expect("a counter name"), id(v));
                }
                _ => {}
            }
        }
        s.raw = raw;
        s
    }

    /// Every problem found, as sentences; empty when every invariant holds.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        // The login index and the accounts map onto each other exactly.
        for (id, a) in &self.accounts {
            if a.id != *id {
                out.push(format!("account stored under {id} says id {}", a.id));
            }
            if self.logins.get(&login_key(&a.login)) != Some(id) {
                out.push(format!(
                    "account {id}'s login {:?} is not indexed to it",
                    a.login
                ));
            }
        }
        for (key, id) in &self.logins {
            match self.accounts.get(id) {
                Some(a) if login_key(&a.login) == *key => {}
                Some(a) => out.push(format!(
                    "login {key:?} indexes account {id}, whose login is {:?}",
                    a.login
                )),
                None => out.push(format!("login {key:?} indexes missing account {id}")),
            }
        }
        // Assignments: the account's set, the reverse index and the cameras agree.
        for (id, a) in &self.accounts {
            for c in &a.cameras {
                if !self.cameras.contains_key(c) {
                    out.push(format!("account {id} is assigned missing camera {c}"));
                }
                if !self
                    .camera_accounts
                    .get(c)
                    .is_some_and(|ids| ids.contains(id))
                {
                    out.push(format!(
                        "account {id} has camera {c}, the reverse index does not"
                    ));
                }
            }
        }
        for (c, holders) in &self.camera_accounts {
            if !self.cameras.contains_key(c) {
                out.push(format!("the reverse index lists missing camera {c}"));
            }
            if holders.iter().collect::<BTreeSet<_>>().len() != holders.len() {
                out.push(format!("camera {c} lists an account twice: {holders:?}"));
            }
            for h in holders {
                if !self.accounts.get(h).is_some_and(|a| a.cameras.contains(c)) {
                    out.push(format!(
                        "camera {c} lists account {h}, which does not have it"
                    ));
                }
            }
        }
        // SPEC §5: each pool's `used` is the sum over temporary users, and within `all`.
        for level in LicenseLevel::ALL {
            let used: u64 = self
                .accounts
                .values()
                .map(|a| license_usage(a)[level as usize])
                .sum();
            let pool = self
                .pools
                .get(level.type_name())
                .copied()
                .unwrap_or_default();
            if pool.used != used {
                out.push(format!(
                    "{} used {} but the users take {used}",
                    level.type_name(),
                    pool.used
                ));
            }
            if pool.used > pool.all {
                out.push(format!(
                    "{} used {} over all {}",
                    level.type_name(),
                    pool.used,
                    pool.all
                ));
            }
        }
        // Sessions belong to existing accounts and their three indexes agree.
        for (h, s) in &self.sessions {
            if !self.accounts.contains_key(&s.account_id) {
                out.push(format!("a session of missing account {}", s.account_id));
            }
            if !self
                .account_sessions
                .get(&s.account_id)
                .is_some_and(|hs| hs.contains(h))
            {
                out.push(format!(
                    "session {} is not listed under account {}",
                    s.access_token_id, s.account_id
                ));
            }
            if self.token_ids.get(&s.access_token_id) != Some(h) {
                out.push(format!(
                    "session {} is not indexed by its id",
                    s.access_token_id
                ));
            }
        }
        for (account, hashes) in &self.account_sessions {
            if !self.accounts.contains_key(account) {
                out.push(format!("session list of missing account {account}"));
            }
            if hashes.is_empty() || hashes.iter().collect::<BTreeSet<_>>().len() != hashes.len() {
                out.push(format!(
                    "account {account}'s session list is empty or repeats"
                ));
            }
            for h in hashes {
                if self.sessions.get(h).map(|s| s.account_id) != Some(*account) {
                    out.push(format!(
                        "account {account} lists a session that is not its own"
                    ));
                }
            }
        }
        for (token_id, h) in &self.token_ids {
            if self.sessions.get(h).map(|s| s.access_token_id.as_str()) != Some(token_id.as_str()) {
                out.push(format!(
                    "token id {token_id} indexes a missing or other session"
                ));
            }
        }
        // A refresh token indexes its session, and only a live one.
        for s in self.sessions.values() {
            if let Some(refresh) = &s.refresh {
                if self.refresh_ids.get(&refresh.hash) != Some(&s.access_token_id) {
                    out.push(format!(
                        "session {}'s refresh token is not indexed to it",
                        s.access_token_id
                    ));
                }
            }
        }
        for (refresh_hash, token_id) in &self.refresh_ids {
            let owner = self
                .token_ids
                .get(token_id)
                .and_then(|h| self.sessions.get(h));
            if owner
                .and_then(|s| s.refresh.as_ref())
                .is_none_or(|r| r.hash != *refresh_hash)
            {
                out.push(format!(
                    "refresh index names session {token_id}, which does not hold it"
                ));
            }
        }
        // Sub-users and their parents.
        for (parent, children) in &self.subusers {
            if !self
                .accounts
                .get(parent)
                .is_some_and(|a| a.user_type == UserType::User)
            {
                out.push(format!(
                    "sub-user list of {parent}, which is not a regular user"
                ));
            }
            for c in children {
                if self.accounts.get(c).and_then(|a| a.parent_id) != Some(*parent) {
                    out.push(format!(
                        "{parent} lists sub-user {c}, whose parent is not {parent}"
                    ));
                }
            }
        }
        for (id, a) in &self.accounts {
            if let Some(parent) = a.parent_id {
                if !self.subusers.get(&parent).is_some_and(|c| c.contains(id)) {
                    out.push(format!(
                        "sub-user {id} is not listed under its parent {parent}"
                    ));
                }
            }
        }
        // The audit index points at entries about that account.
        for (account, entry) in &self.account_audit {
            if self.audit.get(entry).and_then(|e| e.target_id) != Some(*account) {
                out.push(format!(
                    "audit index ({account}, {entry}) points at another entry"
                ));
            }
        }
        // Ids are never reused: each counter is at least the largest id it handed out.
        for (name, records) in [
            ("account", self.accounts.keys().max()),
            ("camera", self.cameras.keys().max()),
        ] {
            let counter = self.counters.get(name).copied().unwrap_or(0);
            if records.is_some_and(|max| *max > counter) {
                out.push(format!("counter {name} is {counter}, below id {records:?}"));
            }
        }
        out
    }

    #[track_caller]
    pub fn assert_invariants(&self) {
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "store invariants broken:\n  {}",
            problems.join("\n  ")
        );
    }

    /// The records with what changes by merely using the API blanked: session last-use
    /// times (persisted lazily) and `last_login`. Two snapshots of a store that no write
    /// reached compare equal.
    pub fn stable(&self) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
        self.raw
            .iter()
            .map(|(tree, k, v)| {
                let v = match *tree {
                    "tokenhash_session" => {
                        let mut s: Session = json(tree, v);
                        s.last_used = None;
                        serde_json::to_vec(&s).expect("a session encodes")
                    }
                    "accounts" => {
                        let mut a: Account = json(tree, v);
                        a.last_login = None;
                        serde_json::to_vec(&a).expect("an account encodes")
                    }
                    _ => v.clone(),
                };
                (*tree, k.clone(), v)
            })
            .collect()
    }
}

#[test]
fn the_invariant_check_finds_broken_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 20).unwrap();
    let account: Account = serde_json::from_value(serde_json::json!({
        "id": 1, "user_type": "special", "login": "ann", "name": "Ann", "password_hash": "",
        "language": "en", "status": 0, "can_update_password": true, "permissions": [40],
        "cameras": [7], "created_at": 0, "updated_at": 0,
    }))
    .unwrap();
    // Written around the transaction helpers: an account indexed under another login, a
    // camera that does not exist, and a pool that does not count the assignment.
    store
        .import_entry(
            "accounts",
            &1u64.to_be_bytes(),
            &serde_json::to_vec(&account).unwrap(),
        )
        .unwrap();
    store
        .import_entry("login_accountid", b"bob", &1u64.to_be_bytes())
        .unwrap();
    let problems = Snapshot::of(&store).problems();
    for needle in [
        "account 1's login \"ann\" is not indexed",
        "login \"bob\" indexes account 1",
        "assigned missing camera 7",
        "the reverse index does not",
        "analytic_l1 used 0 but the users take 1",
        "counter account is 0",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{needle:?} not in {problems:#?}"
        );
    }
}
