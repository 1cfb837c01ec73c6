//! Licences (SPEC §5): pools taken per camera, a 402 that changes nothing, two admins racing
//! for the last licence, and a client's view of the pools following each change.

use std::collections::BTreeSet;

use serde_json::json;

use crate::admin_support::*;
use crate::common::{assert_field_error, TestServer};

/// Permission ids of the catalogue that need a licence.
const MOTION_DETECT_L1: u64 = 40;
const LINE_CROSSING_L1: u64 = 41;
const PERSON_COUNTING_L2: u64 = 45;
const FACE_L3: u64 = 47;

async fn set_pool(s: &TestServer, token: &str, license: &str, all: u64) {
    let r = put(
        s,
        token,
        &format!("{LICENSES}/{license}"),
        json!({"all": all}),
    )
    .await;
    expect(&r, 200);
}

/// `(all, used)` of each pool, L1..L3, as `GET /licenses` shows them.
async fn pools(s: &TestServer, token: &str) -> [(u64, u64); 3] {
    let r = s.get(LICENSES, token).await;
    let list = expect(&r, 200).as_array().unwrap().clone();
    let mut out = [(0, 0); 3];
    for (i, item) in list.iter().enumerate() {
        assert_eq!(
            item["free"].as_u64().unwrap(),
            item["all"].as_u64().unwrap() - item["used"].as_u64().unwrap()
        );
        out[i] = (
            item["all"].as_u64().unwrap(),
            item["used"].as_u64().unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn licenses_are_taken_per_camera_and_a_402_changes_nothing() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let cams: Vec<u64> = seed_cameras(&s, 4);
    assert_eq!(
        pools(&s, &admin).await,
        [(0, 0); 3],
        "pools start at all = 0"
    );

    // With an empty pool a temporary user cannot take an analytics permission with a camera...
    let r = try_create_special(
        &s,
        &admin,
        "nope",
        json!({"permissions": [MOTION_DETECT_L1], "cameras_to_attach": [cams[0]]}),
    )
    .await;
    assert_eq!(r.status, 402);
    assert_eq!(
        r.body,
        json!({"message": "Exceeded the license limit for the selected analytics case"})
    );
    assert!(s.app.store.account_by_login("nope").unwrap().is_none());
    assert!(s.app.store.camera_accounts(cams[0]).unwrap().is_empty());
    // ...but may hold the permission without cameras, or cameras without the permission.
    let u = create_special(
        &s,
        &admin,
        "analyst",
        json!({"permissions": [MOTION_DETECT_L1, LINE_CROSSING_L1]}),
    )
    .await;
    let id = id_of(&u);
    let path = format!("{SPECIAL}/{id}");
    assert_eq!(
        u["is_licence_limit_reached"], true,
        "draws on an L1 pool with nothing free"
    );

    set_pool(&s, &admin, "analytic_l1", 2).await;
    let r = put(
        &s,
        &admin,
        &path,
        json!({"cameras_to_attach": [cams[0], cams[1]]}),
    )
    .await;
    let body = expect(&r, 200);
    assert_eq!(body["is_licence_limit_reached"], true);
    assert_eq!(
        pools(&s, &admin).await,
        [(2, 2), (0, 0), (0, 0)],
        "two L1 permissions still take one licence per camera"
    );

    // A third camera would overflow: 402, and neither the pool nor the assignments move.
    let updated_at = s.app.store.account(id).unwrap().unwrap().updated_at;
    let r = put(
        &s,
        &admin,
        &path,
        json!({"cameras_to_attach": [cams[2]], "name": "changed"}),
    )
    .await;
    assert_eq!(r.status, 402);
    assert_eq!(
        r.body["message"],
        "Exceeded the license limit for the selected analytics case"
    );
    assert_eq!(pools(&s, &admin).await[0], (2, 2));
    let stored = s.app.store.account(id).unwrap().unwrap();
    assert_eq!(stored.cameras, BTreeSet::from([cams[0], cams[1]]));
    assert_eq!(stored.name, "analyst name");
    assert_eq!(stored.updated_at, updated_at);
    assert!(s.app.store.camera_accounts(cams[2]).unwrap().is_empty());

    // Levels are independent: an L2 permission on the same cameras needs L2 licences.
    let r = put(
        &s,
        &admin,
        &path,
        json!({"permissions": [MOTION_DETECT_L1, PERSON_COUNTING_L2]}),
    )
    .await;
    assert_eq!(r.status, 402);
    set_pool(&s, &admin, "analytic_l2", 5).await;
    let r = put(
        &s,
        &admin,
        &path,
        json!({"permissions": [MOTION_DETECT_L1, PERSON_COUNTING_L2]}),
    )
    .await;
    expect(&r, 200);
    assert_eq!(pools(&s, &admin).await, [(2, 2), (5, 2), (0, 0)]);

    // Pools shrink only down to what is used.
    let r = put(
        &s,
        &admin,
        &format!("{LICENSES}/analytic_l2"),
        json!({"all": 1}),
    )
    .await;
    assert_field_error(&r, "all", &["The all must be at least 2."]);
    for bad in [json!({"all": -1}), json!({"all": "many"}), json!({})] {
        let r = put(&s, &admin, &format!("{LICENSES}/analytic_l2"), bad).await;
        assert!(r.body["errors"]["all"].is_array(), "{:?}", r.body);
    }
    assert_eq!(
        put(
            &s,
            &admin,
            &format!("{LICENSES}/analytic_l9"),
            json!({"all": 1})
        )
        .await
        .status,
        404
    );
    let r = put(
        &s,
        &admin,
        &format!("{LICENSES}/analytic_l2"),
        json!({"all": 2}),
    )
    .await;
    assert_eq!(
        expect(&r, 200),
        &json!({"type": "analytic_l2", "type_pretty": "LIC-XXXX-VA-L2", "all": 2, "free": 0, "used": 2})
    );

    // Detaching frees one licence per level held; removing a permission frees its level.
    let r = put(&s, &admin, &path, json!({"cameras_to_detach": [cams[1]]})).await;
    assert_eq!(expect(&r, 200)["is_licence_limit_reached"], false);
    assert_eq!(pools(&s, &admin).await, [(2, 1), (2, 1), (0, 0)]);
    let r = put(
        &s,
        &admin,
        &path,
        json!({"permissions": [PERSON_COUNTING_L2]}),
    )
    .await;
    expect(&r, 200);
    assert_eq!(pools(&s, &admin).await, [(2, 0), (2, 1), (0, 0)]);

    // Deleting a camera gives its licences back, and so does deleting the user.
    let other = create_special(
        &s,
        &admin,
        "other",
        json!({"permissions": [MOTION_DETECT_L1], "cameras_to_attach": [cams[0], cams[3]]}),
    )
    .await;
    assert_eq!(pools(&s, &admin).await, [(2, 2), (2, 1), (0, 0)]);
    expect(
        &delete(&s, &admin, &format!("{CAMERAS}/{}", cams[0])).await,
        200,
    );
    assert_eq!(pools(&s, &admin).await, [(2, 1), (2, 0), (0, 0)]);
    expect(
        &delete(&s, &admin, &format!("{SPECIAL}/{}", id_of(&other))).await,
        200,
    );
    assert_eq!(pools(&s, &admin).await, [(2, 0), (2, 0), (0, 0)]);

    // Regular users take no licences.
    let user = create_user(&s, &admin, "regular", json!({"permissions": [FACE_L3]})).await;
    let r = put(
        &s,
        &admin,
        &format!("{USERS}/{}", id_of(&user)),
        json!({"cameras_to_attach": [cams[1]]}),
    )
    .await;
    expect(&r, 200);
    assert_eq!(pools(&s, &admin).await[2], (0, 0));
    // The user's own view shows the pools.
    let token = s.login("regular", PASSWORD).await;
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(expect(&me, 200)["analytic_license"][1]["all"], 2);

    let log = audit_log(&s, &admin).await;
    assert!(log.iter().any(|e| e["action"] == "license_updated"
        && e["target_type"] == "license"
        && e["fields"] == json!(["all"])));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_racing_for_the_last_license_cannot_both_win() {
    let s = TestServer::start().await;
    let admin_a = s.admin_token().await;
    let admin_b = s.admin_token().await;
    let cams = seed_cameras(&s, 10);
    let a = id_of(
        &create_special(
            &s,
            &admin_a,
            "racer-a",
            json!({"permissions": [MOTION_DETECT_L1]}),
        )
        .await,
    );
    let b = id_of(
        &create_special(
            &s,
            &admin_a,
            "racer-b",
            json!({"permissions": [LINE_CROSSING_L1]}),
        )
        .await,
    );
    for round in 0..5usize {
        // Exactly one licence is free.
        let (_, used) = pools(&s, &admin_a).await[0];
        set_pool(&s, &admin_a, "analytic_l1", used + 1).await;
        let (cam_a, cam_b) = (cams[2 * round], cams[2 * round + 1]);
        let (path_a, path_b) = (format!("{SPECIAL}/{a}"), format!("{SPECIAL}/{b}"));
        let (ra, rb) = tokio::join!(
            put(&s, &admin_a, &path_a, json!({"cameras_to_attach": [cam_a]})),
            put(&s, &admin_b, &path_b, json!({"cameras_to_attach": [cam_b]})),
        );
        let mut statuses = [ra.status, rb.status];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 402],
            "round {round}: {:?} / {:?}",
            ra.body,
            rb.body
        );
        let loser = if ra.status == 402 { &ra } else { &rb };
        assert_eq!(
            loser.body,
            json!({"message": "Exceeded the license limit for the selected analytics case"})
        );
        let (all, used) = pools(&s, &admin_a).await[0];
        assert_eq!(
            (all, used),
            (round as u64 + 1, round as u64 + 1),
            "round {round}"
        );
        let assigned = stored_cameras(&s, a).len() + stored_cameras(&s, b).len();
        assert_eq!(
            assigned as u64, used,
            "round {round}: one camera per licence"
        );
    }
    // Two creates racing for the last licence: exactly one account exists afterwards.
    let (_, used) = pools(&s, &admin_a).await[0];
    set_pool(&s, &admin_a, "analytic_l1", used + 1).await;
    let (ra, rb) = tokio::join!(
        try_create_special(
            &s,
            &admin_a,
            "late-a",
            json!({"permissions": [MOTION_DETECT_L1], "cameras_to_attach": [cams[0]]})
        ),
        try_create_special(
            &s,
            &admin_b,
            "late-b",
            json!({"permissions": [MOTION_DETECT_L1], "cameras_to_attach": [cams[1]]})
        ),
    );
    let mut statuses = [ra.status, rb.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 402], "{:?} / {:?}", ra.body, rb.body);
    assert_eq!(pools(&s, &admin_a).await[0], (used + 1, used + 1));
    let created = ["late-a", "late-b"]
        .iter()
        .filter(|l| s.app.store.account_by_login(l).unwrap().is_some())
        .count();
    assert_eq!(created, 1);
    s.stop().await;
}

/// The pools in a client's own view are kept in memory between writes: a licence change must
/// show in the very next `GET /users/self`, and a refused one must change nothing.
#[tokio::test]
async fn a_clients_view_of_the_pools_follows_each_license_change_at_once() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    create_user(&s, &admin, "viewer", json!({})).await;
    let token = s.login("viewer", PASSWORD).await;
    for all in [7, 3, 12] {
        // Read first, so that what the view shows is whatever was kept from before.
        expect(&s.get("/api/v1/users/self", &token).await, 200);
        let r = put(
            &s,
            &admin,
            "/api/admin/v1/licenses/analytic_l2",
            json!({"all": all}),
        )
        .await;
        expect(&r, 200);
        let me = s.get("/api/v1/users/self", &token).await;
        let l2 = &expect(&me, 200)["analytic_license"][1];
        assert_eq!(l2["type"], "analytic_l2");
        assert_eq!(
            (l2["all"].clone(), l2["free"].clone(), l2["used"].clone()),
            (json!(all), json!(all), json!(0))
        );
    }
    let r = put(
        &s,
        &admin,
        "/api/admin/v1/licenses/analytic_l2",
        json!({"all": -1}),
    )
    .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let me = s.get("/api/v1/users/self", &token).await;
    assert_eq!(expect(&me, 200)["analytic_license"][1]["all"], 12);
}
