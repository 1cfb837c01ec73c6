//! The store's own tests: ids, the login index, transactions and aborts, sessions, audit
//! entries and pruning, the caches, group flush, and opening damaged or locked databases.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use super::cache::AUTH_CACHE_ENTRIES;
use super::open::{catch_quietly, INITIALIZED_MARKER};
use super::*;
use crate::model::{UserType, STATUS_ACTIVE};
use crate::permissions::{LicenseLevel, Pool};

/// What the tests' transactions abort with.
#[derive(Debug, PartialEq)]
enum TestAbort {
    Taken,
    Refused,
}

impl From<LoginTaken> for TestAbort {
    fn from(_: LoginTaken) -> Self {
        TestAbort::Taken
    }
}

impl std::fmt::Display for TestAbort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn account(login: &str) -> Account {
    Account {
        id: 0,
        user_type: UserType::User,
        login: login.into(),
        name: login.into(),
        password_hash: "x".into(),
        language: "en".into(),
        status: STATUS_ACTIVE,
        data: None,
        intro_reviewed: false,
        can_update_password: true,
        permissions: Default::default(),
        parent_id: None,
        cameras: Default::default(),
        created_at: 1,
        updated_at: 1,
        last_login: None,
        expired_at: None,
        ptz_priority: None,
        billing_info: None,
        directory: None,
    }
}

fn create(store: &Store, login: &str) -> TxResult<Account, TestAbort> {
    store.commit_blocking(|tx| {
        let mut a = account(login);
        a.id = tx.next_id("account")?;
        tx.put_account(&a)?;
        Ok(a)
    })
}

fn session(account_id: u64, token_id: &str) -> Session {
    Session {
        account_id,
        access_token_id: token_id.into(),
        device: None,
        client: None,
        user_agent: None,
        ip: None,
        created_at: 1,
        expires_at: 2,
        last_used: None,
        refresh: None,
    }
}

#[test]
fn authentication_never_sees_records_older_than_the_last_write(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    let a = create(&store, "a")?;
    let hash: TokenHash = [7; 32];
    store.write_blocking(|tx| tx.add_session(&hash, &session(a.id, "t1")))?;
    let first = store.authenticated(&hash)?.ok_or("no session")?;
    assert_eq!(
        (
            first.account.login.as_str(),
            first.session.access_token_id.as_str()
        ),
        ("a", "t1")
    );
    // Unchanged store: the same decoded records come back.
    let again = store.authenticated(&hash)?.ok_or("no session")?;
    assert!(Arc::ptr_eq(&first.account, &again.account));

    // A change to the account shows on the next call.
    store.commit_blocking::<_, TestAbort>(|tx| {
        let mut account = tx
            .account(a.id)?
            .ok_or(TxError::Abort(TestAbort::Refused))?;
        account.status = crate::model::STATUS_DISABLED;
        tx.put_account(&account)
    })?;
    let after = store.authenticated(&hash)?.ok_or("no session")?;
    assert_eq!(after.account.status, crate::model::STATUS_DISABLED);

    // A revoked session is gone on the next call.
    store.write_blocking(|tx| tx.remove_session(&hash, SessionEnd::Logout).map(drop))?;
    assert!(store.authenticated(&hash)?.is_none());

    // Many callers: the cache stays bounded and every answer is still right.
    let many = AUTH_CACHE_ENTRIES as u16 + 10;
    let hash_of = |n: u16| -> TokenHash {
        let mut h = [0; 32];
        h[..2].copy_from_slice(&n.to_be_bytes());
        h[31] = 1;
        h
    };
    store.write_blocking(|tx| {
        for n in 0..many {
            tx.add_session(&hash_of(n), &session(a.id, &format!("t{n}")))?;
        }
        Ok(())
    })?;
    for n in 0..many {
        let found = store.authenticated(&hash_of(n))?.ok_or("no session")?;
        assert_eq!(found.session.access_token_id, format!("t{n}"));
        assert!(store.cache.authenticated_len() <= AUTH_CACHE_ENTRIES);
    }
    Ok(())
}

#[test]
fn pruning_keeps_the_newest_audit_entries_and_their_index() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    let a = create(&store, "a")?;
    // 2 500 entries (more than two prune batches), every other one about account `a`.
    let entries: Vec<AuditEntry> = (0..2500)
        .map(|n| {
            let target = (n % 2 == 0).then_some(a.id);
            AuditEntry::new(store.next_audit_id(), None, "x", "account", target, &[])
        })
        .collect();
    store.write_blocking(|tx| entries.iter().try_for_each(|e| tx.audit(e)))?;
    assert_eq!(store.prune_audit(5000)?, 0, "under the bound nothing goes");

    assert_eq!(store.prune_audit(300)?, 2200);
    let kept: Vec<u64> = store
        .trees
        .audit
        .iter()
        .keys()
        .filter_map(|k| k.ok().and_then(|k| key_id(&k)))
        .collect();
    let newest: Vec<u64> = entries[2200..].iter().map(|e| e.id).collect();
    assert_eq!(kept, newest);
    // The account index names exactly the kept entries about `a`.
    let indexed: Vec<u64> = store
        .trees
        .accountid_auditid
        .scan_prefix(id_key(a.id))
        .keys()
        .filter_map(|k| k.ok().and_then(|k| key_id(&k[8..])))
        .collect();
    let about_a: Vec<u64> = entries[2200..]
        .iter()
        .filter(|e| e.target_id == Some(a.id))
        .map(|e| e.id)
        .collect();
    assert_eq!(indexed, about_a);
    assert_eq!(store.prune_audit(300)?, 0, "a second pass finds nothing");
    Ok(())
}

#[test]
fn cached_pools_follow_every_commit_and_ignore_aborts() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    let before = store.pools()?;
    let l2 = Pool { all: 7, used: 3 };
    store.write_blocking(|tx| tx.put_pool(LicenseLevel::L2, &l2))?;
    assert_eq!(store.pools()?[LicenseLevel::L2 as usize], l2);
    assert_eq!(store.pools()?, store.read_pools()?);
    // A transaction that writes a pool and then aborts leaves the committed pools.
    let aborted = store.commit_blocking(|tx| {
        tx.put_pool(LicenseLevel::L2, &Pool { all: 1, used: 1 })?;
        Err::<(), _>(TxError::Abort(TestAbort::Refused))
    });
    assert!(aborted.is_err());
    assert_eq!(store.pools()?[LicenseLevel::L2 as usize], l2);
    assert_eq!(
        store.pools()?[LicenseLevel::L1 as usize],
        before[LicenseLevel::L1 as usize]
    );
    drop(store);
    // And they are what a reopened store reads.
    let store = Store::open(dir.path(), 1 << 20)?;
    assert_eq!(store.pools()?[LicenseLevel::L2 as usize], l2);
    Ok(())
}

#[test]
fn ids_are_never_reused_and_survive_reopen() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    {
        let store = Store::open(dir.path(), 1 << 20)?;
        let a = create(&store, "a")?;
        let b = create(&store, "b")?;
        assert_eq!((a.id, b.id), (1, 2));
        store.write_blocking(|tx| tx.delete_account(&b))?;
    }
    let store = Store::open(dir.path(), 1 << 20)?;
    let c = create(&store, "c")?;
    assert_eq!(c.id, 3);
    assert!(store.account(2)?.is_none());
    assert!(store.account_by_login("b")?.is_none());
    Ok(())
}

#[test]
fn login_index_is_case_insensitive_and_unique() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    let a = create(&store, "Alice")?;
    assert_eq!(store.account_by_login("alice")?.map(|x| x.id), Some(a.id));
    let dup = create(&store, " ALICE ");
    assert!(matches!(dup, Err(TxError::Abort(TestAbort::Taken))));
    // A rename frees the old login and takes the new one, in one transaction.
    store.commit_blocking::<_, TestAbort>(|tx| {
        let mut x = tx
            .account(a.id)?
            .ok_or(TxError::Abort(TestAbort::Refused))?;
        x.login = "alicia".into();
        tx.put_account(&x)
    })?;
    // Changing a login needs `put_account`: `rewrite_account` refuses it.
    let renamed = store.write_blocking(|tx| {
        let mut x = tx
            .account(a.id)?
            .ok_or(StoreError::Corrupt("gone".into()))?;
        x.login = "other".into();
        tx.rewrite_account(&x)
    });
    assert!(matches!(renamed, Err(StoreError::Corrupt(_))));
    assert!(store.account_by_login("other")?.is_none());
    assert!(store.account_by_login("alice")?.is_none());
    assert_eq!(
        store
            .account_by_login(&crate::model::login_key("ALICIA"))?
            .map(|x| x.id),
        Some(a.id)
    );
    Ok(())
}

#[test]
fn aborted_transactions_write_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    let r: TxResult<(), TestAbort> = store.commit_blocking(|tx| {
        let mut a = account("ghost");
        a.id = tx.next_id("account")?;
        tx.put_account(&a)?;
        Err(TxError::Abort(TestAbort::Refused))
    });
    assert!(matches!(r, Err(TxError::Abort(TestAbort::Refused))));
    assert_eq!(store.account_count(), 0);
    assert!(!store.has_accounts());
    assert!(store.account_by_login("ghost")?.is_none());
    assert_eq!(create(&store, "real")?.id, 1);
    assert!(store.has_accounts());
    Ok(())
}

#[test]
fn sessions_index_both_ways_and_revoke_keeps_one() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    let a = create(&store, "a")?;
    let (h1, h2, h3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    store.write_blocking(|tx| {
        tx.add_session(&h1, &session(a.id, "t1"))?;
        tx.add_session(&h2, &session(a.id, "t2"))?;
        tx.add_session(&h3, &session(a.id, "t3"))
    })?;
    assert_eq!(store.sessions_of(a.id)?.len(), 3);
    let revoked =
        store.write_blocking(|tx| tx.revoke_sessions_of(a.id, Some(&h2), SessionEnd::Revoked))?;
    assert_eq!(revoked, 2);
    let left = store.sessions_of(a.id)?;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1.access_token_id, "t2");
    assert!(store.session(&h1)?.is_none());
    assert_eq!(store.write_blocking(|tx| tx.hash_by_token_id("t1"))?, None);
    assert_eq!(
        store.write_blocking(|tx| tx.hash_by_token_id("t2"))?,
        Some(h2)
    );
    // Lazy last-use persistence does not resurrect a revoked session.
    store.touch_session(h1, 50);
    store.touch_session(h2, 60);
    assert_eq!(store.noted_last_use(&h2), Some(60));
    store.persist_last_used()?;
    assert_eq!(store.noted_last_use(&h2), None);
    assert!(store.session(&h1)?.is_none());
    assert_eq!(store.session(&h2)?.and_then(|s| s.last_used), Some(60));
    Ok(())
}

#[test]
fn a_refreshed_session_moves_to_its_new_hash_and_its_refresh_index_goes_with_it(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    let a = create(&store, "a")?;
    let (old, new, other) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let mut refreshed = Session {
        refresh: Some(crate::model::RefreshToken {
            hash: "ab".repeat(32),
            expires_at: 100,
        }),
        ..session(a.id, "t1")
    };
    store.write_blocking(|tx| {
        tx.add_session(&other, &session(a.id, "t0"))?;
        tx.add_session(&old, &refreshed)
    })?;
    let found = store.write_blocking(|tx| tx.session_by_refresh(&"ab".repeat(32)))?;
    assert_eq!(found.map(|(h, _)| h), Some(old));
    refreshed.expires_at = 50;
    store.write_blocking(|tx| tx.replace_access_token(&old, &new, &refreshed))?;
    assert!(store.session(&old)?.is_none());
    assert_eq!(store.session(&new)?, Some(refreshed.clone()));
    assert_eq!(store.token_hash_by_id("t1")?, Some(new));
    // Its place in the account's list is kept, the other session untouched.
    let hashes: Vec<TokenHash> = store
        .sessions_of(a.id)?
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(hashes, [other, new]);
    let found = store.write_blocking(|tx| tx.session_by_refresh(&"ab".repeat(32)))?;
    assert_eq!(found, Some((new, refreshed)));
    assert_eq!(
        store.write_blocking(|tx| tx.session_by_refresh(&"cd".repeat(32)))?,
        None
    );
    // Ending the session ends its refresh token.
    store.write_blocking(|tx| tx.remove_session(&new, SessionEnd::Revoked))?;
    assert_eq!(
        store.write_blocking(|tx| tx.session_by_refresh(&"ab".repeat(32)))?,
        None
    );
    assert!(store.trees.refreshhash_tokenid.is_empty());
    Ok(())
}

#[test]
fn deleting_an_account_removes_sessions_and_camera_links() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    let mut a = create(&store, "a")?;
    a.cameras.insert(7);
    store.commit_blocking::<_, TestAbort>(|tx| {
        tx.put_account(&a)?;
        tx.link_camera(7, a.id)?;
        Ok(tx.add_session(&[9u8; 32], &session(a.id, "t"))?)
    })?;
    assert_eq!(store.camera_accounts(7)?, vec![a.id]);
    store.write_blocking(|tx| tx.delete_account(&a))?;
    assert!(store.camera_accounts(7)?.is_empty());
    assert!(store.session(&[9u8; 32])?.is_none());
    assert!(store.sessions_of(a.id)?.is_empty());
    Ok(())
}

#[test]
fn audit_entries_are_indexed_per_account_newest_first() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    for i in 0..3 {
        let entry = AuditEntry {
            id: store.next_audit_id(),
            at: i,
            actor_id: None,
            action: format!("a{i}"),
            target_type: "account".into(),
            target_id: Some(5),
            fields: vec![],
        };
        store.write_blocking(|tx| tx.audit(&entry))?;
    }
    let events = store.account_events(5, 2)?;
    assert_eq!(
        events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["a2", "a1"]
    );
    let (page, total) = store.audit_page(0, 10)?;
    assert_eq!((page.len(), total), (3, 3));
    drop(store);
    let store = Store::open(dir.path(), 1 << 20)?;
    assert_eq!(store.next_audit_id(), 4);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_flushes_cover_every_writer() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = std::sync::Arc::new(Store::open(dir.path(), 1 << 20)?);
    let mut tasks = Vec::new();
    for i in 0..32u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .trees
                .counters
                .insert(format!("k{i}"), &i.to_be_bytes())?;
            store.flush().await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let flushed = store.flushed_through();
    assert_eq!(flushed, 32, "the last flush covers every ticket");
    Ok(())
}

#[test]
fn a_newer_schema_is_refused() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    {
        let db = sled::open(dir.path().join("db"))?;
        db.open_tree("meta")?
            .insert("schema_version", &99u64.to_be_bytes())?;
        db.flush()?;
    }
    assert!(matches!(
        Store::open(dir.path(), 1 << 20),
        Err(StoreError::Schema(_))
    ));
    Ok(())
}

#[test]
fn a_panic_while_opening_becomes_an_error_with_its_message() {
    let caught = catch_quietly(|| -> u8 { panic!("bad page at 42") });
    assert_eq!(caught, Err("bad page at 42".to_owned()));
    assert_eq!(catch_quietly(|| 7), Ok(7));
}

#[test]
fn a_database_that_held_data_and_opens_empty_is_damaged() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = tempfile::tempdir()?;
    drop(Store::open(dir.path(), 1 << 20)?);
    assert!(dir.path().join("db").join(INITIALIZED_MARKER).exists());
    // sled reads a data file of garbage as an empty database.
    std::fs::write(dir.path().join("db/db"), vec![0x5a; 4096])?;
    match Store::open(dir.path(), 1 << 20) {
        Err(StoreError::Damaged(what)) => assert!(what.contains("held vmsd data"), "{what}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a damaged database opened as a new one"),
    }
    Ok(())
}

#[test]
fn the_database_directory_is_private() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    drop(Store::open(&data, 1 << 20)?);
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode(&data)?, 0o700);
    assert_eq!(mode(&data.join("db"))?, 0o700);
    // An existing database directory that others can read is closed on the next open.
    std::fs::set_permissions(data.join("db"), std::fs::Permissions::from_mode(0o755))?;
    drop(Store::open(&data, 1 << 20)?);
    assert_eq!(mode(&data.join("db"))?, 0o700);
    Ok(())
}

#[test]
fn a_second_open_is_reported_as_locked() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let _first = Store::open(dir.path(), 1 << 20)?;
    assert!(matches!(
        Store::open(dir.path(), 1 << 20),
        Err(StoreError::Locked)
    ));
    Ok(())
}

#[test]
fn a_secret_is_generated_once_and_survives_reopen() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    {
        let store = Store::open(dir.path(), 1 << 20)?;
        assert_eq!(store.secret_or_insert("k", b"first")?, b"first");
        assert_eq!(store.secret_or_insert("k", b"second")?, b"first");
        assert_eq!(store.secret_or_insert("other", b"x")?, b"x");
    }
    let store = Store::open(dir.path(), 1 << 20)?;
    assert_eq!(store.secret_or_insert("k", b"third")?, b"first");
    Ok(())
}

#[test]
fn the_media_path_index_follows_camera_writes() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    store.write_blocking(|tx| {
        tx.put_camera(&crate::model::test_camera(1, Some("site/door")))?;
        tx.put_camera(&crate::model::test_camera(2, None))
    })?;
    assert_eq!(store.camera_id_by_media_path("site/door")?, Some(1));
    assert_eq!(store.camera_id_by_media_path("cam2")?, Some(2));
    // A camera with a path of its own is not also reachable by its default.
    assert_eq!(store.camera_id_by_media_path("cam1")?, None);
    assert_eq!(store.camera_id_by_media_path("cam02")?, None);
    assert_eq!(store.camera_id_by_media_path("cam3")?, None);
    // A rename frees the old path; another camera may not take a held path.
    store.write_blocking(|tx| tx.put_camera(&crate::model::test_camera(1, Some("site/gate"))))?;
    assert_eq!(store.camera_id_by_media_path("site/door")?, None);
    assert_eq!(store.camera_id_by_media_path("site/gate")?, Some(1));
    assert!(matches!(
        store.write_blocking(|tx| tx.put_camera(&crate::model::test_camera(2, Some("site/gate")))),
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(
        store.write_blocking(|tx| tx.media_path_owner("site/gate"))?,
        Some(1)
    );
    // Back to the default, then removed: nothing is left in the index.
    store.write_blocking(|tx| tx.put_camera(&crate::model::test_camera(1, None)))?;
    assert_eq!(store.camera_id_by_media_path("site/gate")?, None);
    assert_eq!(store.camera_id_by_media_path("cam1")?, Some(1));
    store.write_blocking(|tx| {
        tx.put_camera(&crate::model::test_camera(1, Some("x")))?;
        tx.remove_camera(1)
    })?;
    assert_eq!(store.camera_id_by_media_path("x")?, None);
    assert_eq!(store.camera_id_by_media_path("cam1")?, None);
    assert!(store.trees.mediapath_cameraid.is_empty());
    Ok(())
}

#[test]
fn the_hooks_lookups_never_outlive_a_write() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 1 << 20)?;
    let a = create(&store, "a")?;
    let hash = [9u8; 32];
    store.write_blocking(|tx| {
        tx.put_camera(&crate::model::test_camera(1, Some("door")))?;
        tx.add_session(&hash, &session(a.id, "t1"))
    })?;
    // Read twice: the second answer comes from memory.
    for _ in 0..2 {
        assert_eq!(store.media_camera("door")?, Some(1));
        assert_eq!(store.media_camera("gate")?, None);
        let found = store.authenticated_by_token_id("t1")?.map(|f| f.account.id);
        assert_eq!(found, Some(a.id));
    }
    store.write_blocking(|tx| {
        tx.put_camera(&crate::model::test_camera(1, Some("gate")))?;
        tx.remove_session(&hash, SessionEnd::Revoked).map(|_| ())
    })?;
    assert_eq!(store.media_camera("door")?, None);
    assert_eq!(store.media_camera("gate")?, Some(1));
    assert!(store.authenticated_by_token_id("t1")?.is_none());
    Ok(())
}
