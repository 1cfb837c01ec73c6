//! The store's record and key decoding. Two halves per input:
//! - the stored record types (`Account`, `Session`, `AuditEntry`, `Pool`, `Camera`,
//!   `CameraGroup`) decoded from the bytes: whatever decodes encodes and decodes back to the
//!   same value, and renders through the API views;
//! - the bytes written as a raw record into one of the store's trees under a key of a chosen
//!   shape (ids, token hashes, pairs, odd lengths, pool names, logins), then read back through
//!   every reader of `Store`, `Tx` (aborted, so only the decoding runs) and
//!   `auth::authenticate_token`: a damaged record must be an error or be skipped, never a
//!   panic or an endless loop (camera groups that form a cycle).
//!
//! Keys come from a small space so the store stays small over millions of runs.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use vmsd::auth::{authenticate_token, hash_token};
use vmsd::model::{Account, AuditEntry, Camera, CameraGroup, Session};
use vmsd::permissions::{license_usage, LicenseLevel, Pool};
use vmsd::store::{TxError, TREE_NAMES};
use vmsd::views::{
    audit_entry_view, camera_summary_view, camera_view, client_user_view, dh_user_view,
    special_user_view, CameraGroupIndex,
};

const LOGINS: [&str; 3] = ["admin", "taken", "x"];
const IDS: u64 = 8;

fn token(i: u8) -> String {
    format!("fuzz-token-{}", i % 4)
}

fuzz_target!(|data: &[u8]| {
    round_trip::<Account>(data);
    round_trip::<Session>(data);
    round_trip::<AuditEntry>(data);
    round_trip::<Pool>(data);
    round_trip::<Camera>(data);
    round_trip::<CameraGroup>(data);
    if let Ok(account) = serde_json::from_slice::<Account>(data) {
        render_account(&account);
    }
    if let Ok(entry) = serde_json::from_slice::<AuditEntry>(data) {
        let _ = audit_entry_view(&entry);
    }

    let [tree, shape, seed, value @ ..] = data else {
        return;
    };
    let tree = TREE_NAMES[usize::from(*tree) % TREE_NAMES.len()];
    let key: Vec<u8> = match shape % 6 {
        0 => u64::from(seed % 8).to_be_bytes().to_vec(),
        1 => hash_token(&token(*seed)).to_vec(),
        2 => [u64::from(seed % 4), u64::from(seed / 64)]
            .iter()
            .flat_map(|n| n.to_be_bytes())
            .collect(),
        3 => vec![shape / 6 % 4; usize::from(*seed) % 41],
        4 => LicenseLevel::ALL[usize::from(*seed) % 3]
            .type_name()
            .as_bytes()
            .to_vec(),
        _ => LOGINS[usize::from(*seed) % 3].as_bytes().to_vec(),
    };
    let app = vmsd_fuzz::app();
    if let Err(e) = app.store.import_entry(tree, &key, value) {
        panic!("writing a raw record failed: {e}");
    }
    read_everything(app);
});

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let bytes = match serde_json::to_vec(&value) {
        Ok(b) => b,
        Err(e) => panic!("{value:?} does not encode: {e}"),
    };
    match serde_json::from_slice::<T>(&bytes) {
        Ok(back) => assert_eq!(back, value),
        Err(e) => panic!("{value:?} encodes to something that does not decode: {e}"),
    }
}

fn render_account(account: &Account) {
    let pools = [Pool::default(); 3];
    let _ = client_user_view(account, Some("id"), &pools, "LIC");
    let _ = special_user_view(account, None, &pools);
    let _ = dh_user_view(account, true);
    let _ = license_usage(account);
    let _ = account.may_use_tokens(vmsd::model::now());
}

fn read_everything(app: &vmsd::App) {
    let store = &app.store;
    for id in 0..IDS {
        let _ = store.account(id);
        let _ = store.sessions_of(id);
        let _ = store.camera_accounts(id);
        let _ = store.subuser_ids(id);
        let _ = store.account_events(id, 50);
        let _ = store.camera(id);
        let _ = store.camera_group(id);
    }
    for login in LOGINS {
        let _ = store.account_by_login(login);
    }
    let _ = store.pools();
    let _ = store.audit_page(0, 50);
    let _ = store.probe();
    let _ = store.is_empty();
    let _ = store.export_entries().count();
    let hashes: Vec<_> = store.all_sessions().filter_map(Result::ok).collect();
    for (hash, _) in &hashes {
        store.touch_session(*hash, 1);
    }
    let _ = store.persist_last_used();
    for i in 0..4 {
        let _ = authenticate_token(app, &token(i));
    }

    let accounts: Vec<Account> = store.accounts().filter_map(Result::ok).collect();
    for account in &accounts {
        render_account(account);
    }
    let groups = CameraGroupIndex::new(store.camera_groups().filter_map(Result::ok));
    for camera in store.cameras().filter_map(Result::ok) {
        let _ = camera_view(&camera, &groups, None);
        let _ = camera_summary_view(&camera, &groups);
    }
    for id in 0..IDS {
        let _ = groups.view(id);
    }

    // Every transactional reader and the account delete over damaged indexes, then an abort:
    // only decoding runs, nothing is written.
    let r = store.commit_blocking(|tx| {
        for id in 0..IDS {
            let _ = tx.account(id);
            let _ = tx.session_hashes(id);
            let _ = tx.camera_accounts(id);
            let _ = tx.subuser_ids(id);
            let _ = tx.camera(id);
            let _ = tx.camera_group(id);
        }
        for login in LOGINS {
            let _ = tx.account_id_by_login(login);
        }
        for level in LicenseLevel::ALL {
            let _ = tx.pool(level);
        }
        for account in &accounts {
            let _ = tx.delete_account(account);
        }
        Err::<(), _>(TxError::Abort(()))
    });
    assert!(r.is_err());
}
