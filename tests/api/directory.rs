//! Directory accounts (SPEC §10) against a real OpenLDAP (`slapd.rs`): logins of mapped
//! people (accounts created with their maps united), refusals (wrong or empty password,
//! filter injection, no map, two entries), the directory down (503 while local logins work),
//! failover to the second URL (also past a server sending an entry ldap3 cannot read), TLS (LDAPS, StartTLS, a wrong CA), group changes at the next
//! login, the fields only the directory changes (403), and the background sync (group
//! changes with their pushes, deleted people disabled with their sessions and stream tokens,
//! the "nothing found, disable nobody" guard).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use vmsd::config::{DirectoryConfig, DirectoryMap, MapRole, SecretString};
use vmsd::directory::sync;
use vmsd::push_protocol;

use crate::admin_support::create_group;
use crate::common::{assert_field_error, Reply, TestServer, ADMIN_PASSWORD};
use crate::pushes::{
    assert_event, assert_silent, current_token_id, next, subscribed, user_push, Next,
};
use crate::slapd::{Slapd, GROUPS, PEOPLE, SERVICE_DN, SERVICE_PW};
use crate::video::{
    assert_allowed, assert_forbidden, assert_unauthenticated, create_camera, mediamtx_1_19,
    token_of,
};
use crate::websocket::{admin_socket, call, error, success};

const FILTER: &str = "(&(objectClass=inetOrgPerson)(uid={login}))";
const MSG_CREDENTIALS: &str = "These credentials do not match our records.";
const MSG_NOT_ALLOWED: &str = "This account is not allowed on this box.";

/// Camera 1 (no group), camera 2, camera 3 in camera group 1: created in this order by
/// `Fixture::start`, so the maps can name their ids.
fn maps() -> Vec<DirectoryMap> {
    vec![
        DirectoryMap {
            group: format!("cn=vms-admins,{GROUPS}"),
            role: MapRole::Admin,
            permissions: vec![],
            cameras: vec![],
            camera_groups: vec![],
        },
        DirectoryMap {
            group: format!("cn=guards,{GROUPS}"),
            role: MapRole::User,
            // archives-show, ptz
            permissions: vec![12, 15],
            cameras: vec![1, 2],
            camera_groups: vec![],
        },
        DirectoryMap {
            // Written as an operator might: other case, spaces.
            group: format!("CN=Site-2, {GROUPS}"),
            role: MapRole::User,
            // archives-download
            permissions: vec![13],
            cameras: vec![2],
            camera_groups: vec![1],
        },
    ]
}

pub fn directory_config(slapd: &Slapd, urls: Vec<String>) -> DirectoryConfig {
    DirectoryConfig {
        urls,
        ca_file: Some(slapd.ca.clone()),
        bind_dn: Some(SERVICE_DN.into()),
        bind_password: Some(SecretString::new(SERVICE_PW.into())),
        user_base: PEOPLE.into(),
        user_filter: FILTER.into(),
        name_attribute: "displayName".into(),
        timeout: Duration::from_secs(2),
        sync_interval: Duration::ZERO,
        maps: maps(),
        ..DirectoryConfig::default()
    }
}

struct Fixture {
    slapd: Slapd,
    s: TestServer,
    admin: String,
}

impl Fixture {
    /// slapd with alice (guards + site-2), bob (no group), carol (vms-admins + site-2); vmsd with
    /// `[directory]` over LDAPS and the three cameras.
    async fn start() -> Fixture {
        Self::start_with(|_, _| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&Slapd, &mut DirectoryConfig)) -> Fixture {
        let slapd = Slapd::start();
        slapd.add_person("alice", "Alice Liddell", "alice-password");
        slapd.add_person("bob", "Bob", "bob-password");
        slapd.add_person("carol", "Carol", "carol-password");
        // groupOfNames needs a member: "dave" (no entry) keeps groups valid when alice leaves.
        slapd.add_group("guards", &["alice", "dave"]);
        slapd.add_group("site-2", &["alice", "carol"]);
        slapd.add_group("vms-admins", &["carol"]);
        let mut d = directory_config(&slapd, vec![slapd.ldaps_url()]);
        adjust(&slapd, &mut d);
        let s = TestServer::start_with(|c| {
            c.auth.ip_login_limit = 100_000;
            c.directory = Some(d);
        })
        .await;
        let admin = s.admin_token().await;
        let group = create_group(&s, &admin, "Site 2", None).await;
        assert_eq!(group, 1);
        for (n, body) in [
            json!({"name": "Gate"}),
            json!({"name": "Yard"}),
            json!({"name": "Hall", "group_id": group}),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(create_camera(&s, &admin, body).await, n as u64 + 1);
        }
        Fixture { slapd, s, admin }
    }

    fn account(&self, id: u64) -> vmsd::model::Account {
        self.s.app.store.account(id).unwrap().unwrap()
    }

    fn audit_actions(&self, id: u64) -> Vec<(Option<u64>, String, Vec<String>)> {
        self.s
            .app
            .store
            .account_events(id, 100)
            .unwrap()
            .into_iter()
            .map(|e| (e.actor_id, e.action, e.fields))
            .collect()
    }
}

#[tokio::test]
async fn a_mapped_person_logs_in_and_gets_an_account_with_the_maps_united() {
    let f = Fixture::start().await;
    let r = f.s.try_login("Alice", "alice-password", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["access_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let id = r.body["user"]["id"].as_u64().unwrap();
    assert_eq!(r.body["user"]["login"], "alice");
    assert_eq!(r.body["user"]["name"], "Alice Liddell");
    let a = f.account(id);
    assert_eq!(a.user_type, vmsd::model::UserType::User);
    assert_eq!(a.source(), "directory");
    assert!(!a.can_update_password);
    assert_eq!(a.password_hash, "", "no local password hash");
    // guards (12, 15; cameras 1, 2) ∪ site-2 (13; camera 2 and camera group 1: camera 3).
    assert_eq!(a.permissions, BTreeSet::from([12, 13, 15]));
    assert_eq!(a.cameras, BTreeSet::from([1, 2, 3]));
    let uuid = &a.directory.as_ref().unwrap().id;
    assert_eq!(uuid.len(), 36, "entryUUID keys the account: {uuid}");
    // The admin view says where it comes from; the audit log says who made it.
    let view =
        f.s.get(&format!("/api/admin/v1/users/{id}"), &f.admin)
            .await;
    assert_eq!(view.status, 200, "{:?}", view.body);
    assert_eq!(view.body["source"], "directory");
    let events = f.audit_actions(id);
    assert!(
        events.iter().any(|(actor, action, fields)| actor.is_none()
            && action == "directory_created"
            && fields.contains(&"permissions".to_owned())),
        "{events:?}"
    );
    // The token works, and a second login finds the same account (keyed by entryUUID).
    let token = r.body["access_token"].as_str().unwrap();
    assert_eq!(f.s.self_status(token).await, 200);
    let again = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["user"]["id"], id);

    // An admin-mapped person logs in at the admin route, and not at the client route.
    let r = f.s.try_admin_login("carol", "carol-password").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let carol = f.account(r.body["user"]["id"].as_u64().unwrap());
    assert_eq!(carol.user_type, vmsd::model::UserType::Admin);
    assert!(carol.cameras.is_empty());
    let r = f.s.try_login("carol", "carol-password", &[]).await;
    assert_field_error(&r, "login", &[MSG_CREDENTIALS]);
}

#[tokio::test]
async fn wrong_password_is_the_usual_422_and_counts_towards_the_lockout() {
    let f = Fixture::start_with(|_, _| {}).await;
    let threshold = f.s.app.config.auth.lockout_threshold as usize;
    // Before the account exists the failures count under the login.
    for _ in 0..threshold {
        let r = f.s.try_login("alice", "wrong-password", &[]).await;
        assert_field_error(&r, "login", &[MSG_CREDENTIALS]);
    }
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert!(r.header("retry-after").is_some());
    // Another person is not locked.
    let r = f.s.try_login("bob", "wrong-password", &[]).await;
    assert_field_error(&r, "login", &[MSG_CREDENTIALS]);
}

#[tokio::test]
async fn wrong_password_of_an_existing_directory_account_locks_it_out() {
    let f = Fixture::start().await;
    let id = f.s.try_login("alice", "alice-password", &[]).await.body["user"]["id"]
        .as_u64()
        .unwrap();
    let threshold = f.s.app.config.auth.lockout_threshold as usize;
    for _ in 0..threshold {
        let r = f.s.try_login("alice", "nope-nope", &[]).await;
        assert_field_error(&r, "login", &[MSG_CREDENTIALS]);
    }
    assert!(f.s.app.throttle.is_locked_out(id));
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    let events = f.audit_actions(id);
    assert!(
        events.iter().any(|(_, action, _)| action == "lockout"),
        "{events:?}"
    );
}

#[tokio::test]
async fn an_empty_password_is_refused_without_reaching_the_directory() {
    let f = Fixture::start().await;
    let before = f.slapd.connections();
    let alice = format!("uid=alice,{PEOPLE}");
    let binds = f.slapd.binds_of(&alice);
    let r = f.s.try_login("alice", "", &[]).await;
    assert_field_error(&r, "login", &[MSG_CREDENTIALS]);
    // slapd logs asynchronously: give a connection that should not exist time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.slapd.connections(), before, "vmsd connected to slapd");
    assert_eq!(f.slapd.binds_of(&alice), binds);
    // The same login with its password does reach it.
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(f.slapd.connections() > before);
    assert_eq!(f.slapd.binds_of(&alice), binds + 1);
}

#[tokio::test]
async fn filter_metacharacters_in_a_login_cannot_widen_the_search() {
    let f = Fixture::start().await;
    // Unescaped, each of these would find alice (or everyone) with alice's password.
    for login in [
        "*",
        "a*",
        "*)(uid=*",
        "alice)(|(uid=*",
        "\\2a",
        "ali\\",
        "alice\0",
        "*\0*",
    ] {
        let r = f.s.try_login(login, "alice-password", &[]).await;
        assert_field_error(&r, "login", &[MSG_CREDENTIALS]);
    }
    assert_eq!(f.s.app.store.account_by_login("alice").unwrap(), None);
    // The escaping reached slapd as escapes, not as wildcards.
    let log = f.slapd.log();
    assert!(
        log.contains("(uid=\\2A)") || log.contains("(uid=\\2a)"),
        "{log}"
    );
}

#[tokio::test]
async fn a_person_in_no_mapped_group_is_not_allowed_on_this_box() {
    let f = Fixture::start().await;
    let r = f.s.try_login("bob", "bob-password", &[]).await;
    assert_field_error(&r, "login", &[MSG_NOT_ALLOWED]);
    assert_eq!(f.s.app.store.account_by_login("bob").unwrap(), None);
    // A wrong password still answers the credentials message, not this one.
    let r = f.s.try_login("bob", "bob-wrong", &[]).await;
    assert_field_error(&r, "login", &[MSG_CREDENTIALS]);
}

#[tokio::test]
async fn a_login_that_two_entries_match_is_refused() {
    let f = Fixture::start().await;
    f.slapd.add(&format!(
        "dn: ou=contractors,{PEOPLE}\nobjectClass: organizationalUnit\nou: contractors\n\n\
         dn: uid=alice,ou=contractors,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: alice\n\
         cn: Other Alice\nsn: A\nuserPassword: alice-password\n"
    ));
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_field_error(&r, "login", &[MSG_CREDENTIALS]);
}

#[tokio::test]
async fn directory_down_answers_503_while_local_logins_keep_working() {
    let mut f = Fixture::start().await;
    let token = f.s.login_ok_directory("alice").await;
    f.slapd.stop();
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body, json!({"message": "Service Unavailable."}));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    // A new person too: nothing is cached.
    let r = f.s.try_login("carol", "carol-password", &[]).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    // The local admin logs in; the open directory session keeps working.
    let r = f.s.try_admin_login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(f.s.self_status(&token).await, 200);
    // No failure was counted: many attempts while down do not lock alice out.
    for _ in 0..f.s.app.config.auth.lockout_threshold {
        let r = f.s.try_login("alice", "alice-password", &[]).await;
        assert_eq!(r.status, 503);
    }
    f.slapd.launch();
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn the_second_url_is_used_when_the_first_is_down() {
    let f = Fixture::start_with(|slapd, d| {
        // Nothing listens on the first (a port just freed); the second is slapd over StartTLS.
        let dead = crate::common::free_port();
        d.urls = vec![format!("ldaps://127.0.0.1:{dead}"), slapd.ldap_url()];
        d.start_tls = true;
    })
    .await;
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // StartTLS, not plain LDAP, carried the bind.
    assert!(f.slapd.log().contains("STARTTLS"), "{}", f.slapd.log());
}

/// A plain-LDAP server that answers every bind with success and every search with one entry
/// whose DN is not UTF-8 (the byte 0xFF), which ldap3's `SearchEntry::construct` cannot read.
/// Returns its port and how many searches it answered.
async fn malformed_entry_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let searches = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = searches.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                loop {
                    // An LDAPMessage: SEQUENCE, a short or 0x81/0x82 long length, then the
                    // message id (INTEGER) and the operation's application tag.
                    let mut head = [0u8; 2];
                    if tcp.read_exact(&mut head).await.is_err() || head[0] != 0x30 {
                        return;
                    }
                    let len = match head[1] {
                        n if n < 0x80 => usize::from(n),
                        0x81 => usize::from(tcp.read_u8().await.unwrap()),
                        0x82 => usize::from(tcp.read_u16().await.unwrap()),
                        _ => return,
                    };
                    let mut body = vec![0u8; len];
                    tcp.read_exact(&mut body).await.unwrap();
                    assert_eq!((body[0], body[1]), (0x02, 1), "a one-byte message id");
                    let (id, op) = (body[2], body[3]);
                    let result = |tag: u8| {
                        vec![
                            0x30, 0x0c, 0x02, 0x01, id, tag, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00,
                            0x04, 0x00,
                        ]
                    };
                    let answer = match op {
                        0x60 => result(0x61), // bindRequest -> bindResponse, success
                        0x63 => {
                            // searchRequest -> searchResultEntry { objectName 0xFF, no
                            // attributes }, then searchResultDone, success.
                            counted.fetch_add(1, Ordering::SeqCst);
                            let mut a = vec![
                                0x30, 0x0a, 0x02, 0x01, id, 0x64, 0x05, 0x04, 0x01, 0xff, 0x30,
                                0x00,
                            ];
                            a.extend(result(0x65));
                            a
                        }
                        _ => return, // unbind or anything else: hang up
                    };
                    if tcp.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, searches)
}

#[tokio::test]
async fn an_entry_ldap3_cannot_read_fails_that_server_and_the_next_one_answers() {
    // ldap3 panics on such an entry; vmsd must treat it as that server failing, not lose the
    // request (the client would see its connection dropped).
    let (bad, searches) = malformed_entry_server().await;
    let f = Fixture::start_with(|slapd, d| {
        d.urls = vec![format!("ldap://127.0.0.1:{bad}"), slapd.ldaps_url()];
        d.allow_insecure = true;
    })
    .await;
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(searches.load(std::sync::atomic::Ordering::SeqCst), 1);

    // With only that server: the usual 503 of a directory that cannot answer.
    let (bad, searches) = malformed_entry_server().await;
    let f = Fixture::start_with(|_, d| {
        d.urls = vec![format!("ldap://127.0.0.1:{bad}")];
        d.allow_insecure = true;
    })
    .await;
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body, json!({"message": "Service Unavailable."}));
    assert_eq!(searches.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The daemon still serves: the local admin logs in.
    let r = f.s.try_admin_login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn a_server_whose_certificate_the_ca_file_does_not_vouch_for_is_refused() {
    let f = Fixture::start_with(|slapd, d| d.ca_file = Some(slapd.wrong_ca.clone())).await;
    let alice = format!("uid=alice,{PEOPLE}");
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        f.slapd.binds_of(&alice),
        0,
        "the password crossed an untrusted TLS"
    );
    assert_eq!(f.slapd.binds_of(SERVICE_DN), 0);
}

#[tokio::test]
async fn a_group_change_is_picked_up_at_the_next_login() {
    let f = Fixture::start().await;
    let id = f.s.try_login("alice", "alice-password", &[]).await.body["user"]["id"]
        .as_u64()
        .unwrap();
    f.slapd.leave_group("site-2", "alice");
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let a = f.account(id);
    assert_eq!(a.permissions, BTreeSet::from([12, 15]));
    assert_eq!(a.cameras, BTreeSet::from([1, 2]));
    let events = f.audit_actions(id);
    assert!(
        events.iter().any(|(actor, action, fields)| actor.is_none()
            && action == "directory_login"
            && fields == &["permissions".to_owned(), "cameras".to_owned()]),
        "{events:?}"
    );
    // Promoted to the admin group: an admin now (and the client route no longer takes it).
    f.slapd.join_group("vms-admins", "alice");
    let r = f.s.try_admin_login("alice", "alice-password").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(f.account(id).user_type, vmsd::model::UserType::Admin);
    // Out of every mapped group: refused.
    for g in ["guards", "vms-admins"] {
        f.slapd.leave_group(g, "alice");
    }
    let r = f.s.try_admin_login("alice", "alice-password").await;
    assert_field_error(&r, "login", &[MSG_NOT_ALLOWED]);
}

#[tokio::test]
async fn what_the_directory_manages_cannot_be_changed_or_deleted_over_the_api() {
    let f = Fixture::start().await;
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    let id = r.body["user"]["id"].as_u64().unwrap();
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let path = format!("/api/admin/v1/users/{id}");
    // REST: the admin's permission and camera changes, the delete, the own password.
    for body in [
        json!({"permissions": [12]}),
        json!({"cameras_to_detach": [1]}),
    ] {
        let r =
            f.s.call("PUT", &path, Some(&f.admin), Some(body.clone()))
                .await;
        assert_eq!(r.status, 403, "{body}: {:?}", r.body);
        assert_eq!(r.body, json!({"message": "This action is unauthorized."}));
    }
    let r = f.s.call("DELETE", &path, Some(&f.admin), None).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(r.body, json!({"message": "This action is unauthorized."}));
    let r =
        f.s.call(
            "PUT",
            "/api/v1/users/self",
            Some(&token),
            Some(json!({"password": "new-password-1", "password_confirmation": "new-password-1"})),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    // The DeviceHive socket (whose user has no name): login, password and role are the
    // directory's.
    let mut ws = admin_socket(&f.s).await;
    for (n, user) in [
        json!({"login": "mallory"}),
        json!({"password": "new-password-1"}),
        json!({"role": 0}),
    ]
    .into_iter()
    .enumerate()
    {
        let r = call(
            &mut ws,
            json!({"action": "user/update", "requestId": n, "userId": id, "user": user}),
        )
        .await;
        assert_eq!(
            r,
            error("user/update", json!(n), 403, "Access is denied"),
            "{user}"
        );
    }
    let a = f.account(id);
    assert_eq!(
        (a.login.as_str(), a.name.as_str()),
        ("alice", "Alice Liddell")
    );
    assert_eq!((a.permissions.len(), a.cameras.len()), (3, 3));
    assert_eq!(a.user_type, vmsd::model::UserType::User);
    assert_eq!(f.s.self_status(&token).await, 200);
    // The box's own fields stay the box's: an admin-set disable sticks, even at the next
    // login through the directory, until an admin lifts it.
    let status = |n: u8| json!({"action": "user/update", "requestId": 9, "userId": id, "user": {"status": n}});
    assert_eq!(
        call(&mut ws, status(2)).await,
        success("user/update", json!(9))
    );
    assert_eq!(f.s.self_status(&token).await, 401);
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_field_error(&r, "login", &["This account is disabled."]);
    assert_eq!(
        call(&mut ws, status(0)).await,
        success("user/update", json!(9))
    );
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn a_local_account_keeps_its_login_and_a_colliding_directory_person_is_refused() {
    let f = Fixture::start().await;
    f.s.create_account("alice", "local-password-1", vmsd::model::UserType::User);
    // The local account is checked locally, with its own password...
    let r = f.s.try_login("alice", "local-password-1", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // ...and the directory's password for that login is a wrong password.
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_field_error(&r, "login", &[MSG_CREDENTIALS]);
}

impl TestServer {
    /// A directory login at the client route that must succeed; its token.
    async fn login_ok_directory(&self, login: &str) -> String {
        let r = self
            .try_login(login, &format!("{login}-password"), &[])
            .await;
        assert_eq!(r.status, 200, "{login}: {:?}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }
}

/// One sync now, as the background task runs it every `sync_interval`.
async fn sync(s: &TestServer) -> Result<sync::Report, sync::SyncError> {
    sync::sync(&s.app, s.app.directory.as_ref().unwrap()).await
}

/// The stream token of camera `camera` for `token` (or `stream`), and the media hook's
/// answer to it.
async fn stream_check(
    s: &TestServer,
    token: &str,
    camera: u64,
    stream: Option<&str>,
) -> (String, Reply) {
    let stream = match stream {
        Some(t) => t.to_owned(),
        None => {
            let r = s
                .get(&format!("/api/v1/cameras/{camera}/streams"), token)
                .await;
            assert_eq!(r.status, 200, "streams: {:?}", r.body);
            token_of(r.body["url"].as_str().unwrap())
        }
    };
    let path = format!("cam{camera}");
    let query = format!("token={stream}");
    let r = s
        .hook_post(&mediamtx_1_19("read", &path, "", "", &query))
        .await;
    (stream, r)
}

#[tokio::test]
async fn the_sync_follows_group_changes_and_disables_people_gone_from_the_directory() {
    let f = Fixture::start().await;
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["user"]["id"].as_u64().unwrap();
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let token_id = current_token_id(&f.s, &token).await;
    let mut p = subscribed(&f.s, id, &token, &token_id).await;
    let (stream, r) = stream_check(&f.s, &token, 1, None).await;
    assert_allowed(&r, "alice watches camera 1");
    let (stream3, r) = stream_check(&f.s, &token, 3, None).await;
    assert_allowed(&r, "alice watches camera 3");

    // Nothing changed: nothing written, nothing pushed.
    let report = sync(&f.s).await.unwrap();
    assert_eq!(
        (report.accounts, report.updated, report.disabled),
        (1, 0, 0)
    );
    assert_silent(&mut p, Duration::from_millis(200)).await;

    // Out of site-2: archives-download and cameras 3 go, with their pushes.
    f.slapd.leave_group("site-2", "alice");
    let report = sync(&f.s).await.unwrap();
    assert_eq!((report.updated, report.disabled), (1, 0));
    let a = f.account(id);
    assert_eq!(a.permissions, BTreeSet::from([12, 15]));
    assert_eq!(a.cameras, BTreeSet::from([1, 2]));
    let user = push_protocol::user_channel(id);
    assert_event(
        next(&mut p.ws).await,
        &user,
        "App\\Events\\UserPush",
        user_push("permissions_updated", json!({})),
    );
    assert_event(
        next(&mut p.ws).await,
        &user,
        "App\\Events\\UserPush",
        user_push("cameras_updated", json!({"attached": [], "detached": [3]})),
    );
    assert_eq!(f.s.self_status(&token).await, 200);
    // Camera 3's stream token stops working; camera 1's does not.
    let (_, r) = stream_check(&f.s, &token, 3, Some(&stream3)).await;
    assert_forbidden(&r, "camera 3 after the sync");
    let (_, r) = stream_check(&f.s, &token, 1, Some(&stream)).await;
    assert_allowed(&r, "camera 1 after the sync");

    // Deleted from the directory: disabled, sessions revoked (logout pushed), stream refused.
    // (Carol has an account too: were alice the only one, her absence would be "the
    // searches found nobody", and nobody is disabled then.)
    let r = f.s.try_admin_login("carol", "carol-password").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    f.slapd.delete(&format!("uid=alice,{PEOPLE}"));
    let report = sync(&f.s).await.unwrap();
    assert_eq!(
        (report.accounts, report.updated, report.disabled),
        (2, 0, 1)
    );
    assert_event(
        next(&mut p.ws).await,
        &push_protocol::token_channel(&token_id),
        "App\\Events\\TokenPush",
        json!({"subject": "logout", "data": {"type": "logout", "status": "ok", "data": {}}}),
    );
    assert_eq!(next(&mut p.ws).await, Next::Closed(4009));
    assert_eq!(f.s.self_status(&token).await, 401);
    let (_, r) = stream_check(&f.s, &token, 1, Some(&stream)).await;
    assert_unauthenticated(&r, "after the sync disabled alice");
    let a = f.account(id);
    assert_eq!(a.status, 2);
    assert!(a.directory.as_ref().unwrap().sync_disabled);
    let events = f.audit_actions(id);
    assert!(
        events.iter().any(|(actor, action, fields)| actor.is_none()
            && action == "directory_sync"
            && fields == &["status".to_owned()]),
        "{events:?}"
    );
    // A second sync does not disable (or audit) again.
    let report = sync(&f.s).await.unwrap();
    assert_eq!(report.disabled, 0);
}

#[tokio::test]
async fn a_sync_whose_searches_find_nobody_disables_nobody() {
    let mut f = Fixture::start().await;
    let alice = f.s.login_ok_directory("alice").await;
    let r = f.s.try_admin_login("carol", "carol-password").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let carol = r.body["access_token"].as_str().unwrap().to_owned();
    // The directory unreachable: nothing changes either.
    f.slapd.stop();
    assert!(matches!(
        sync(&f.s).await,
        Err(sync::SyncError::Directory(
            vmsd::directory::DirectoryError::Unavailable(_)
        ))
    ));
    f.slapd.launch();
    // An empty replica: every person gone at once.
    for uid in ["alice", "bob", "carol"] {
        f.slapd.delete(&format!("uid={uid},{PEOPLE}"));
    }
    let e = sync(&f.s).await.unwrap_err();
    assert!(
        matches!(e, sync::SyncError::NothingFound { accounts: 2 }),
        "{e}"
    );
    assert_eq!(f.s.self_status(&alice).await, 200);
    assert_eq!(f.s.self_status(&carol).await, 200);
    for account in f.s.app.store.accounts() {
        assert_eq!(account.unwrap().status, 0);
    }
}

#[tokio::test]
async fn a_sync_disable_of_an_unmapped_person_is_lifted_when_a_map_matches_again() {
    let f = Fixture::start().await;
    let token = f.s.login_ok_directory("alice").await;
    let id = f.s.app.store.account_by_login("alice").unwrap().unwrap().id;
    for g in ["guards", "site-2"] {
        f.slapd.leave_group(g, "alice");
    }
    assert_eq!(sync(&f.s).await.unwrap().disabled, 1);
    assert_eq!(f.s.self_status(&token).await, 401);
    let r = f.s.try_login("alice", "alice-password", &[]).await;
    assert_field_error(&r, "login", &[MSG_NOT_ALLOWED]);
    // Back in guards: the next sync re-enables the account with the guards' rights...
    f.slapd.join_group("guards", "alice");
    assert_eq!(sync(&f.s).await.unwrap().updated, 1);
    let a = f.account(id);
    assert_eq!(a.status, 0);
    assert_eq!(a.cameras, BTreeSet::from([1, 2]));
    // ...and the login works again.
    f.s.login_ok_directory("alice").await;
}

/// `vmsd directory test LOGIN -c FILE` with `password` on stdin: (exit code, stdout, stderr).
fn directory_test(config: &std::path::Path, login: &str, password: &str) -> (i32, String, String) {
    let out = crate::cli::run_with_stdin(
        crate::cli::vmsd(&["directory", "test", login, "-c"]).arg(config),
        &format!("{password}\n"),
    );
    (
        out.status.code().unwrap(),
        crate::cli::text(&out.stdout),
        crate::cli::text(&out.stderr),
    )
}

#[tokio::test]
async fn vmsd_directory_test_prints_what_a_login_would_get_and_exits_by_the_outcome() {
    let slapd = Slapd::start();
    slapd.add_person("alice", "Alice Liddell", "alice-password");
    slapd.add_person("bob", "Bob", "bob-password");
    slapd.add_group("guards", &["alice"]);
    slapd.add_group("site-2", &["alice"]);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("directory.pw");
    std::fs::write(&pw, format!("{SERVICE_PW}\n")).unwrap();
    let config = dir.path().join("vmsd.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[directory]\nurls = [{url:?}]\nca_file = {ca:?}\n\
             bind_dn = {SERVICE_DN:?}\nbind_password_file = {pw:?}\nuser_base = {PEOPLE:?}\n\
             user_filter = {FILTER:?}\n\
             [[directory.map]]\ngroup = \"cn=guards,{GROUPS}\"\nuser_type = \"user\"\n\
             permissions = [\"archives-show\", \"ptz\"]\ncameras = [1, 2]\n\
             [[directory.map]]\ngroup = \"cn=site-2,{GROUPS}\"\nuser_type = \"user\"\n\
             camera_groups = [4]\n",
            data = dir.path().join("data").display().to_string(),
            url = slapd.ldaps_url(),
            ca = slapd.ca.display().to_string(),
            pw = pw.display().to_string(),
        ),
    )
    .unwrap();
    let check = crate::cli::vmsd(&["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        crate::cli::text(&check.stderr)
    );

    let (code, out, err) = directory_test(&config, "alice", "alice-password");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("dn: uid=alice,{PEOPLE}\n")), "{out}");
    assert!(out.contains("name: Alice Liddell\n"), "{out}");
    assert!(
        out.contains(&format!("group: cn=guards,{GROUPS}\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("group: cn=site-2,{GROUPS}\n")),
        "{out}"
    );
    assert!(out.contains("user_type: user\n"), "{out}");
    assert!(out.contains("permissions: archives-show, ptz\n"), "{out}");
    assert!(out.contains("cameras: 1, 2\ncamera_groups: 4\n"), "{out}");
    assert!(out.ends_with("the login would succeed\n"), "{out}");
    assert!(!out.contains(SERVICE_PW) && !err.contains(SERVICE_PW));

    let (code, out, err) = directory_test(&config, "alice", "wrong");
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("the directory refused the password"), "{err}");
    assert!(!err.contains("wrong"), "{err}");

    let (code, _, err) = directory_test(&config, "bob", "bob-password");
    assert_eq!(code, 1);
    assert!(err.contains("no [[directory.map]] group matches"), "{err}");
    assert!(err.contains("dn: uid=bob"), "{err}");

    let (code, _, err) = directory_test(&config, "nobody", "x");
    assert_eq!(code, 1);
    assert!(err.contains("no entry under"), "{err}");

    let (code, _, err) = directory_test(&config, "alice", "");
    assert_eq!(code, 1);
    assert!(err.contains("the password is empty"), "{err}");

    // Exactly two entries match: ambiguous, not "no entry" (the sync relies on the difference).
    slapd.add(&format!(
        "dn: ou=contractors,{PEOPLE}\nobjectClass: organizationalUnit\nou: contractors\n\n\
         dn: uid=bob,ou=contractors,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: bob\n\
         cn: Other Bob\nsn: B\nuserPassword: bob-password\n"
    ));
    let (code, _, err) = directory_test(&config, "bob", "bob-password");
    assert_eq!(code, 1);
    assert!(err.contains("several entries under"), "{err}");

    let mut slapd = slapd;
    slapd.stop();
    let (code, _, err) = directory_test(&config, "alice", "alice-password");
    assert_eq!(code, 1);
    assert!(err.contains("no directory server answered"), "{err}");
    // Nothing was written: not even the data directory exists.
    assert!(!dir.path().join("data").exists());
}

#[tokio::test]
async fn a_directory_login_that_collides_with_a_local_login_is_refused() {
    // People log in with their mail; their vmsd login is their uid.
    let f = Fixture::start_with(|_, d| {
        d.user_filter = "(&(objectClass=inetOrgPerson)(mail={login}))".into();
    })
    .await;
    f.slapd.modify(&format!(
        "dn: uid=alice,{PEOPLE}\nchangetype: modify\nadd: mail\nmail: alice@example.test\n"
    ));
    let local =
        f.s.create_account("alice", "local-password-1", vmsd::model::UserType::User);
    let r =
        f.s.try_login("alice@example.test", "alice-password", &[])
            .await;
    assert_field_error(&r, "login", &[MSG_CREDENTIALS]);
    // The local account is untouched and still logs in with its own password.
    assert_eq!(f.account(local.id), local);
    f.s.login("alice", "local-password-1").await;
    // Once the local login is gone, the same directory login works and gets "alice".
    let r =
        f.s.call(
            "DELETE",
            &format!("/api/admin/v1/users/{}", local.id),
            Some(&f.admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r =
        f.s.try_login("alice@example.test", "alice-password", &[])
            .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["user"]["login"], "alice");
}

#[tokio::test]
async fn the_socket_token_action_logs_directory_people_in_too() {
    let mut f = Fixture::start().await;
    let mut ws = crate::websocket::connect(&f.s).await;
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 1, "login": "carol", "password": "carol-password"}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    let token = r["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(f.s.self_status(&token).await, 200);
    // SPEC §6: a socket login hands out a refresh token, directory people's included.
    let refresh = r["refreshToken"]
        .as_str()
        .expect("a refreshToken")
        .to_owned();
    let r = call(
        &mut ws,
        json!({"action": "token/refresh", "requestId": 9, "refreshToken": refresh}),
    )
    .await;
    assert_eq!(r["status"], "success", "{r}");
    let renewed = r["accessToken"].as_str().unwrap();
    assert_eq!(f.s.self_status(renewed).await, 200);
    assert_eq!(f.s.self_status(&token).await, 401);
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 2, "login": "bob", "password": "bob-password"}),
    )
    .await;
    assert_eq!(r, error("token", json!(2), 401, MSG_NOT_ALLOWED));
    f.slapd.stop();
    let r = call(
        &mut ws,
        json!({"action": "token", "requestId": 3, "login": "alice", "password": "alice-password"}),
    )
    .await;
    assert_eq!(
        (
            r["code"].clone(),
            r["error"].clone(),
            r["retryAfter"].clone()
        ),
        (json!(503), json!("Service Unavailable."), json!(30)),
        "{r}"
    );
}

mod active_directory {
    //! The AD-only behaviours against `fake_ad.rs`.

    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::fake_ad::{self, Person, BASE};

    const GUARDS: &str = "CN=VMS Guards,OU=Groups,DC=ad,DC=test";
    const TEAM: &str = "CN=Night Team,OU=Groups,DC=ad,DC=test";

    fn person(sam: &str, guid: &[u8; 16], groups: &[&str], uac: u32) -> Person {
        Person {
            sam: sam.into(),
            guid: *guid,
            name: format!("{sam} Example"),
            password: format!("{sam}-password"),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            uac,
        }
    }

    async fn start(nested: bool) -> (fake_ad::Shared, TestServer) {
        let directory = Arc::new(Mutex::new(fake_ad::Directory::default()));
        {
            let mut d = directory.lock().unwrap();
            // nina is in Night Team, which is in VMS Guards; olaf is disabled (512 | 2).
            d.people
                .push(person("nina", b"nina-guid-000001", &[TEAM], 512));
            d.people
                .push(person("olaf", b"olaf-guid-000002", &[GUARDS], 514));
            d.people
                .push(person("paul", b"paul-guid-000003", &[GUARDS], 512));
            d.nesting.insert(TEAM.into(), vec![GUARDS.into()]);
        }
        let url = fake_ad::start(directory.clone()).await;
        let cfg = DirectoryConfig {
            urls: vec![url],
            allow_insecure: true,
            bind_dn: Some(fake_ad::SERVICE_DN.into()),
            bind_password: Some(SecretString::new(fake_ad::SERVICE_PW.into())),
            user_base: BASE.into(),
            user_filter: "(&(objectCategory=person)(sAMAccountName={login}))".into(),
            login_attribute: "sAMAccountName".into(),
            id_attribute: "objectGUID".into(),
            name_attribute: "displayName".into(),
            nested_groups: nested,
            timeout: Duration::from_secs(2),
            sync_interval: Duration::ZERO,
            maps: vec![DirectoryMap {
                group: GUARDS.into(),
                role: MapRole::User,
                permissions: vec![12],
                cameras: vec![],
                camera_groups: vec![],
            }],
            ..DirectoryConfig::default()
        };
        let s = TestServer::start_with(|c| {
            c.auth.ip_login_limit = 100_000;
            c.directory = Some(cfg);
        })
        .await;
        (directory, s)
    }

    #[tokio::test]
    async fn nested_groups_count_only_with_the_in_chain_rule() {
        let (_, s) = start(false).await;
        let r = s.try_login("nina", "nina-password", &[]).await;
        assert_field_error(&r, "login", &[MSG_NOT_ALLOWED]);
        let (_, s) = start(true).await;
        let r = s.try_login("NINA", "nina-password", &[]).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let a = s.app.store.account_by_login("nina").unwrap().unwrap();
        assert_eq!(a.permissions, BTreeSet::from([12]));
        // objectGUID is the key, as the hex of its bytes.
        assert_eq!(
            a.directory.unwrap().id,
            format!("hex:{}", hex::encode(b"nina-guid-000001"))
        );
    }

    #[tokio::test]
    async fn user_account_control_disabled_refuses_the_login_and_the_sync_disables() {
        let (directory, s) = start(false).await;
        let r = s.try_login("olaf", "olaf-password", &[]).await;
        assert_field_error(&r, "login", &["This account is disabled."]);
        assert_eq!(s.app.store.account_by_login("olaf").unwrap(), None);
        // paul logs in, then is disabled in AD: the sync (finding him by objectGUID) disables.
        let token = s.login("paul", "paul-password").await;
        directory.lock().unwrap().people[2].uac = 514;
        // nina (not mapped without nesting) has no account: paul is the one account, found.
        let report = sync(&s).await.unwrap();
        assert_eq!((report.accounts, report.disabled), (1, 1));
        assert_eq!(s.self_status(&token).await, 401);
        // Enabled again in AD: the next sync lifts it.
        directory.lock().unwrap().people[2].uac = 512;
        assert_eq!(sync(&s).await.unwrap().updated, 1);
        s.login("paul", "paul-password").await;
        // Renamed in AD: the same account (same objectGUID) follows at the next sync.
        directory.lock().unwrap().people[2].sam = "paula".into();
        assert_eq!(sync(&s).await.unwrap().updated, 1);
        let a = s.app.store.account_by_login("paula").unwrap().unwrap();
        assert_eq!(a.name, "paul Example");
        assert_eq!(s.app.store.account_by_login("paul").unwrap(), None);
    }
}

/// Not a test: directory logins against the local slapd, `max_concurrent` clients at once,
/// for the README. `cargo test --test api directory::bench -- --ignored --nocapture`
/// (add `--release` for figures of the optimised code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_directory_logins() {
    const LOGINS: usize = 400;
    let f = Fixture::start().await;
    let clients = f.s.app.config.directory.as_ref().unwrap().max_concurrent;
    // Warm-up: the account exists, the TLS session caches are filled.
    f.s.login_ok_directory("alice").await;
    let s = std::sync::Arc::new(f.s);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            for _ in 0..LOGINS / clients {
                let t = std::time::Instant::now();
                let r = s.try_login("alice", "alice-password", &[]).await;
                assert_eq!(r.status, 200, "{:?}", r.body);
                took.push(t.elapsed());
                // Stay under the session limit: log this session out again.
                let token = r.body["access_token"].as_str().unwrap();
                let r = s.call("POST", "/api/v1/logout", Some(token), None).await;
                assert_eq!(r.status, 200);
            }
            took
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "directory logins: {} in {:.2?} with {clients} clients (login + logout each): \
         {:.1} logins/s, p50 {:.2?}, p99 {:.2?}",
        all.len(),
        wall,
        all.len() as f64 / wall.as_secs_f64(),
        at(0.50),
        at(0.99)
    );
}

#[tokio::test]
async fn reset_password_refuses_a_directory_account() {
    let f = Fixture::start().await;
    f.s.login_ok_directory("alice").await;
    let dir = f.s.stop().await;
    let out = crate::cli::run_with_stdin(
        crate::cli::vmsd(&["admin", "reset-password", "alice", "--data-dir"]).arg(dir.path()),
        "a-new-password-1\n",
    );
    let err = crate::cli::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("\"alice\" is a directory account: its password is changed in the directory"),
        "{err}"
    );
}
