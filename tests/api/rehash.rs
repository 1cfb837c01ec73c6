//! SPEC §1's re-hash on login: a stored hash made with other argon2 parameters (the previous
//! default, m = 19 MiB, t = 2) is replaced by one with the configured parameters in the
//! successful login's own write, and by nothing else: not by a failed login, not by a login
//! answered 419; the password keeps working, no session ends, `updated_at` and the audit log
//! are untouched.

use vmsd::config::Argon2Config;
use vmsd::model::{now, Session, UserType};
use vmsd::password::Hasher;
use vmsd::store::SessionEnd;

use crate::common::TestServer;

fn old_default_hash(password: &str) -> String {
    let previous_default = Argon2Config {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
        max_concurrent: 1,
        queue_limit: 1,
    };
    Hasher::new(&previous_default)
        .unwrap()
        .hash_blocking(password)
        .unwrap()
}

fn session(account_id: u64, access_token_id: &str) -> Session {
    Session {
        account_id,
        access_token_id: access_token_id.into(),
        device: None,
        client: None,
        user_agent: None,
        ip: None,
        created_at: now(),
        expires_at: now() + 3600,
        last_used: None,
        refresh: None,
    }
}

#[tokio::test]
async fn a_hash_with_other_parameters_is_replaced_at_the_next_successful_login_only() {
    let s = TestServer::start_with(|c| c.auth.sessions_limit = 2).await;
    let account = s.create_account("rehashed", "placeholder-1", UserType::User);
    let old = old_default_hash("the-old-default");
    assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
    s.edit_account(account.id, |a| a.password_hash = old.clone());
    let (kept, filler) = ([1u8; 32], [2u8; 32]);
    s.app
        .store
        .write_blocking(|tx| {
            tx.add_session(&kept, &session(account.id, "kept-session"))?;
            tx.add_session(&filler, &session(account.id, "filler-session"))
        })
        .unwrap();
    let stored = || s.app.store.account(account.id).unwrap().unwrap();
    let audit_total = || s.app.store.audit_page(0, 1).unwrap().1;

    // A failed login re-hashes nothing.
    assert_eq!(
        s.try_login("rehashed", "wrong-password", &[]).await.status,
        422
    );
    assert_eq!(stored().password_hash, old);

    // A login answered 419 writes nothing, its re-hash included.
    assert_eq!(
        s.try_login("rehashed", "the-old-default", &[]).await.status,
        419
    );
    assert_eq!(stored().password_hash, old);

    s.app
        .store
        .write_blocking(|tx| tx.remove_session(&filler, SessionEnd::Revoked).map(drop))
        .unwrap();
    let before = stored();
    let audited = audit_total();
    let r = s.try_login("rehashed", "the-old-default", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let after = stored();
    assert!(
        after
            .password_hash
            .starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
        "not re-hashed with the configured parameters: {}",
        after.password_hash
    );
    assert!(!s.app.hasher.needs_rehash(&after.password_hash));
    assert_eq!(
        after.updated_at, before.updated_at,
        "a re-hash is no change"
    );
    assert_eq!(audit_total(), audited, "a re-hash is not audited");
    assert!(
        s.app.store.session(&kept).unwrap().is_some(),
        "a re-hash ends no session"
    );
    // The password still works, now against the new hash (one place under the limit freed).
    s.app
        .store
        .write_blocking(|tx| tx.remove_session(&kept, SessionEnd::Revoked).map(drop))
        .unwrap();
    let token = s.login("rehashed", "the-old-default").await;
    assert_eq!(s.self_status(&token).await, 200);
    assert_eq!(
        stored().password_hash,
        after.password_hash,
        "re-hashed once"
    );
    s.stop().await;
}
