//! Request bodies as the write routes read them: `validate::parse_body`, every `Input`
//! reader, the self-update checks (`PUT /api/v1/users/self`) and the temporary-user readers
//! of `handlers::admin_common` (`PUT /api/admin/v1/special-users/{user}`), with a real store
//! behind the login and camera look-ups. Beyond "never panics", it checks what the handlers
//! rely on: a reader that returns a value reported no error for that field and the value
//! keeps its bounds, and every refusal renders as SPEC §2's 422 shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vmsd::error::ApiError;
use vmsd::handlers::admin_common::{
    read_bounded_json, read_camera_lists, read_expired_at, read_login, read_name,
    read_new_password, read_permissions, read_ptz_priority, PermissionScope,
    MAX_CAMERAS_PER_REQUEST, MAX_JSON_FIELD_BYTES,
};
use vmsd::validate::{self, Input};

fuzz_target!(|data: &[u8]| {
    let app = vmsd_fuzz::app();
    let body = match validate::parse_body(data) {
        Ok(body) => body,
        Err(e) => {
            assert_422(e, "body");
            return;
        }
    };
    if !body.is_empty() {
        assert!(
            matches!(serde_json::from_slice::<Value>(data), Ok(Value::Object(_))),
            "parse_body accepted something that is not a JSON object"
        );
    }

    // The generic readers, on the keys the routes use.
    let mut input = Input::new(&body);
    for key in ["login", "name", "password", "language"] {
        if let Some(s) = input.string(key, 255) {
            assert!(s.chars().count() <= 255);
            assert!(!input.errors.has(key), "{key}: value and error");
        }
    }
    if let Some(b) = input.boolean("can_update_password") {
        assert!(!input.errors.has("can_update_password"), "{b}");
    }
    if let Some(n) = input.integer("all", 0, 1_000_000_000) {
        assert!((0..=1_000_000_000).contains(&n));
    }
    if let Some(ids) = input.id_list("cameras_to_attach", MAX_CAMERAS_PER_REQUEST) {
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicates survived");
        assert!(ids.len() <= MAX_CAMERAS_PER_REQUEST);
    }
    let generic = input.finish();

    // The self-update path: the same readers and checks as `current_user::update`.
    let mut input = Input::new(&body);
    let password = input.string("password", 1024);
    let confirmation = input.string("password_confirmation", 1024);
    let _current = input.string("current_password", 1024);
    let language = input.string("language", usize::MAX);
    let mut errors = std::mem::take(&mut input.errors);
    if let Some(lang) = &language {
        if !app.config.locales.available.iter().any(|l| l == lang) {
            errors.add("language", validate::msg_invalid("language"));
        }
    }
    if let Some(p) = &password {
        validate::check_new_password(&mut errors, p, confirmation.as_deref(), 8);
        if !errors.has("password") {
            let n = p.chars().count();
            assert!((8..=128).contains(&n) && confirmation.as_deref() == Some(p.as_str()));
        }
    }
    if let Err(e) = errors.into_result() {
        assert_422(e, "");
    }

    // The temporary-user update path, reader by reader as `special_users::update` calls them.
    let mut input = Input::new(&body);
    let name = read_name(&mut input, false);
    let login = match read_login(app, &mut input, false, Some(1)) {
        Ok(login) => login,
        Err(e) => panic!("read_login failed on a healthy store: {e}"),
    };
    let password = read_new_password(app, &mut input, false);
    let permissions = read_permissions(&mut input, PermissionScope::Any);
    let cameras = read_camera_lists(app, &mut input, true);
    let expired_at = read_expired_at(&mut input);
    let ptz_priority = read_ptz_priority(&mut input);
    let billing = read_bounded_json(&mut input, "billing_info");
    if let Some(name) = &name {
        assert!(!name.is_empty() && name.trim() == name && name.chars().count() <= 255);
    }
    if let Some(login) = &login {
        assert!(!login.is_empty() && login.trim() == login && login.chars().count() <= 128);
        assert_ne!(
            vmsd::model::login_key(login),
            vmsd_fuzz::TAKEN_LOGIN,
            "a taken login passed"
        );
    }
    if let Some(p) = &password {
        assert!((8..=128).contains(&p.chars().count()));
    }
    if let Some(permissions) = &permissions {
        for id in permissions {
            assert!(
                vmsd::permissions::PERMISSIONS.iter().any(|p| p.id == *id),
                "permission {id}"
            );
        }
    }
    if let Some(Some(t)) = expired_at {
        assert!(t > vmsd::model::now() - 5, "expired_at in the past passed");
    }
    if let Some(Some(n)) = ptz_priority {
        assert!((1..=100).contains(&n));
    }
    if let Some(v) = &billing {
        assert!(serde_json::to_vec(v).is_ok_and(|b| b.len() <= MAX_JSON_FIELD_BYTES));
    }
    let result = input.finish();
    if result.is_ok() {
        // Nothing refused: every camera named exists and no id is both attached and detached.
        for (_, id) in cameras.attach.iter().chain(cameras.detach.iter()) {
            assert!(
                vmsd_fuzz::CAMERAS.contains(id),
                "unknown camera {id} passed"
            );
        }
        for (_, id) in &cameras.detach {
            assert!(
                !cameras.attach.iter().any(|(_, a)| a == id),
                "{id} in both lists"
            );
        }
    }
    for outcome in [generic, result] {
        if let Err(e) = outcome {
            assert_422(e, "");
        }
    }
});

/// A validation failure renders as `{"message":"The given data was invalid.","errors":{...}}`
/// with every field's messages a non-empty array of strings (and `field` among them if given).
fn assert_422(e: impl Into<ApiError>, field: &str) {
    let e: ApiError = e.into();
    assert!(
        matches!(e, ApiError::Validation(_)),
        "not a validation error: {e:?}"
    );
    let response = e.into_response();
    assert_eq!(response.status().as_u16(), 422);
    let body = vmsd_fuzz::body_bytes(response.into_body());
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(err) => panic!("422 body is not JSON: {err}"),
    };
    assert_eq!(value["message"], "The given data was invalid.");
    let errors = value["errors"]
        .as_object()
        .map(|m| m.iter().collect::<Vec<_>>());
    let errors = errors.unwrap_or_default();
    assert!(!errors.is_empty(), "422 without errors");
    for (key, messages) in &errors {
        let list = messages.as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(
            !list.is_empty() && list.iter().all(Value::is_string),
            "errors.{key}"
        );
    }
    if !field.is_empty() {
        assert!(
            errors.iter().any(|(k, _)| k.as_str() == field),
            "no errors.{field}"
        );
    }
}
