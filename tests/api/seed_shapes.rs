//! Shape tests of the admin API against the JSON examples of the seed pages (seeds 001, 002):
//! every key of a seed's response example is answered, with the same JSON type. `seed_response`
//! and `assert_shape` are shared with `cameras` and `admin_misc`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::admin_support::*;
use crate::common::TestServer;

fn seeds_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "note: {} is absent; seed shape comparison skipped",
            dir.display()
        );
        None
    }
}

/// The first top-level JSON object after the "200" line of a seed page: the response example.
pub(crate) fn seed_response(prefix: &str) -> Option<Value> {
    let dir = seeds_dir()?;
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no seed {prefix}* in {}", dir.display()));
    let text = std::fs::read_to_string(&path).unwrap();
    let after_200 = text
        .lines()
        .position(|l| l.trim_start().starts_with("200"))
        .map(|n| text.lines().skip(n).collect::<Vec<_>>().join("\n"))
        .unwrap_or_else(|| panic!("no 200 section in {}", path.display()));
    let start = after_200
        .lines()
        .position(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON object after 200 in {}", path.display()));
    let from_object = after_200.lines().skip(start).collect::<Vec<_>>().join("\n");
    let value = serde_json::Deserializer::from_str(&from_object)
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap();
    assert!(value.is_object());
    Some(value)
}

/// Every key of `seed` is in `got` with the same JSON type, recursively; integers stay
/// integers; `null` in the seed accepts anything; arrays compare their first items when both
/// have one.
#[track_caller]
pub(crate) fn assert_shape(seed: &Value, got: &Value, path: &str) {
    match (seed, got) {
        (Value::Null, _) => {}
        (Value::Object(e), Value::Object(g)) => {
            for (key, ev) in e {
                let gv = g
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key} missing in {got}"));
                assert_shape(ev, gv, &format!("{path}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(g)) => {
            if let (Some(ef), Some(gf)) = (e.first(), g.first()) {
                assert_shape(ef, gf, &format!("{path}[0]"));
            }
        }
        (Value::Number(e), Value::Number(g)) => {
            let integer = |n: &serde_json::Number| n.is_u64() || n.is_i64();
            assert_eq!(integer(e), integer(g), "{path}: {g} vs seed {e}");
        }
        (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) => {}
        _ => panic!("{path}: seed has {seed}, vmsd has {got}"),
    }
}

#[test]
fn the_shape_comparison_fails_on_missing_keys_and_type_changes() {
    let seed = json!({"a": 1, "b": {"c": "x", "d": [{"e": true}]}, "n": null});
    assert_shape(
        &seed,
        &json!({"a": 2, "b": {"c": "y", "d": []}, "n": 5}),
        "",
    );
    for bad in [
        json!({"b": {"c": "y", "d": []}}),
        json!({"a": 1.5, "b": {"c": "y", "d": []}}),
        json!({"a": 1, "b": {"c": 1, "d": []}}),
        json!({"a": 1, "b": {"c": "y", "d": [{"e": 0}]}}),
        json!({"a": "1", "b": {"c": "y", "d": []}}),
    ] {
        let outcome = std::panic::catch_unwind(|| assert_shape(&seed, &bad, ""));
        assert!(outcome.is_err(), "{bad} passed");
    }
}

#[tokio::test]
async fn seed_001_admin_user_view_has_every_key_with_the_same_types() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let top = create_group(&s, &admin, "Test cameras", None).await;
    let group = create_group(&s, &admin, "manual cameras", Some(top)).await;
    let camera = create_camera(&s, &admin, "manual MS. 7 - stand 1", Some(group)).await;
    // Billing data is the billing system's, stored as given: the seed's own example when the
    // seeds are here.
    let billing = seed_response("001_")
        .map(|seed| seed["billing_info"].clone())
        .unwrap_or_else(|| json!({"data": [{"login": "login", "billing_id": "b-1"}]}));
    let user = create_user(&s, &admin, "170500", json!({"billing_info": billing})).await;
    let user_id = id_of(&user);
    let sub = create_user(
        &s,
        &admin,
        "subuser@mail.com",
        json!({"parent_id": user_id, "permissions": [LAYOUTS_STORE]}),
    )
    .await;
    assert_eq!(sub["user_type"], "subuser");
    assert_eq!(sub["parent_id"], user_id);

    let r = put(
        &s,
        &admin,
        &format!("{USERS}/{user_id}"),
        json!({"permissions": [LAYOUTS_STORE], "cameras_to_attach": [camera]}),
    )
    .await;
    let view = expect(&r, 200).clone();
    let shown = s.get(&format!("{USERS}/{user_id}"), &admin).await;
    assert_eq!(expect(&shown, 200), &view);

    // Values the seed's semantics fix.
    assert_eq!(view["user_type"], "user");
    assert_eq!(view["billing_info"], billing);
    assert_eq!(view["subusers"][0]["id"], id_of(&sub));
    assert_eq!(
        view["subusers"][0]["permissions"][0]["name"],
        "layouts-store"
    );
    assert_eq!(
        view["permissions"],
        json!([{"id": 9, "name": "layouts-store", "display_name": "Creating Layout", "group": "Layouts"}])
    );
    let cam = &view["cameras"][0];
    assert_eq!(
        cam["pivot"],
        json!({"user_id": user_id, "camera_id": camera, "order": 0,
               "name": "manual MS. 7 - stand 1", "login_id": 1, "is_favorite": 0, "status": "active"})
    );
    assert_eq!(cam["group_id"], group);
    assert_eq!(cam["top_group_id"], top);
    assert_eq!(cam["group"]["id"], group);
    assert_eq!(cam["group"]["parent_id"], top);
    assert_eq!(cam["group"]["depth"], 1);
    assert_eq!(cam["group"]["full_pretty"], "Test cameras, manual cameras");
    assert_eq!(cam["group"]["cameras_count"], 1);
    assert_eq!(cam["ip"], "192.168.204.13");
    assert_eq!(cam["is_enabled"], 1);
    assert_eq!(
        cam["services_list"],
        json!({"ptz": false, "motion_detect": false})
    );
    assert!(cam["created_at"].as_str().unwrap().ends_with(".000000Z"));
    assert_eq!(view["analytic_license"].as_array().unwrap().len(), 3);
    for empty in ["intercoms", "intercom_flats", "intercom_keys"] {
        assert_eq!(view[empty], json!([]));
    }
    // events[]: this account's audit entries, newest first.
    let events = view["events"].as_array().unwrap();
    assert_eq!(events[0]["action"], "user_updated");
    assert_eq!(events[0]["fields"], json!(["permissions", "cameras"]));
    assert_eq!(events[1]["action"], "user_created");
    assert!(events.iter().all(|e| e["target_id"] == user_id));

    if let Some(seed) = seed_response("001_") {
        assert_shape(&seed, &view, "user");
    }
    s.stop().await;
}

#[tokio::test]
async fn seed_002_special_user_answers_have_every_key_with_the_same_types() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let created = create_special(
        &s,
        &admin,
        "user@mail.com",
        json!({"permissions": [PACKS_DESTROY_ADMIN]}),
    )
    .await;
    let id = id_of(&created);
    let r = put(
        &s,
        &admin,
        &format!("{SPECIAL}/{id}"),
        json!({"name": "user", "ptz_priority": 10}),
    )
    .await;
    let updated = expect(&r, 200).clone();
    assert_eq!(updated["name"], "user");
    assert_eq!(updated["ptz_priority"], 10);
    assert_eq!(updated["expired_at"], Value::Null);
    assert_eq!(updated["is_licence_limit_reached"], false);
    assert_eq!(updated["access_token_id"], Value::Null);
    assert_eq!(updated["admin_camera_groups"], json!([]));
    assert_eq!(updated["dhcp_subnet_groups"], json!([]));
    assert_eq!(
        updated["permissions"],
        json!([{"id": 103, "name": "packs-destroy", "display_name": "Deleting a pack", "group": "Packs"}])
    );
    let keys: BTreeSet<&str> = updated
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let expected: BTreeSet<&str> = [
        "id",
        "name",
        "login",
        "created_at",
        "updated_at",
        "expired_at",
        "is_licence_limit_reached",
        "permissions",
        "ptz_priority",
        "admin_camera_groups",
        "dhcp_subnet_groups",
        "access_token_id",
    ]
    .into();
    assert_eq!(keys, expected, "exactly the seed's keys");
    if let Some(seed) = seed_response("002_") {
        assert_shape(&seed, &created, "created");
        assert_shape(&seed, &updated, "updated");
        let shown = s.get(&format!("{SPECIAL}/{id}"), &admin).await;
        assert_shape(&seed, expect(&shown, 200), "shown");
    }
    s.stop().await;
}
