//! What a `user/update` frame asks for (SPEC §6): the `userId` (an id, a PHP-style numeric
//! string, or `"current"`) and the `user` object's changes, validated with DeviceHive's codes
//! and texts before anything is read or written.

use serde_json::{Map, Value};

use super::protocol::{
    msg_data_too_big, msg_password_length, Failure, MAX_DATA_BYTES, MAX_PASSWORD_CHARS,
    MSG_DATA_TYPE, MSG_INTRO_TYPE, MSG_LOGIN_INVALID, MSG_MALFORMED, MSG_ROLE_INVALID,
    MSG_STATUS_INVALID, MSG_USER_ID, MSG_USER_REQUIRED,
};
use crate::validate::{self, FieldErrors};

/// Which account a `userId` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserId {
    Current,
    Id(u64),
    /// A negative id: no account has it, but the 404 text repeats it.
    Negative(i64),
}

pub fn parse_user_id(value: Option<&Value>) -> Result<UserId, Failure> {
    let bad = || Failure::new(400, MSG_USER_ID);
    match value {
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("current") => Ok(UserId::Current),
        Some(v @ (Value::Number(_) | Value::String(_))) => {
            if let Some(id) = validate::parse_id(v) {
                return Ok(UserId::Id(id));
            }
            let negative = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            negative
                .filter(|n| *n < 0)
                .map(UserId::Negative)
                .ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// The changes a `user` object asks for, validated.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Patch {
    pub login: Option<String>,
    pub role: Option<u8>,
    pub status: Option<u8>,
    pub password: Option<String>,
    /// `Some(None)` clears the data.
    pub data: Option<Option<Value>>,
    pub intro_reviewed: Option<bool>,
}

/// Present and not `null`: DeviceHive treats a `null` field as not sent.
pub fn present(user: &Map<String, Value>, key: &str) -> bool {
    user.get(key).is_some_and(|v| !v.is_null())
}

pub fn small_int(value: Option<&Value>, max: u8, message: &str) -> Result<Option<u8>, Failure> {
    let parsed = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match parsed.and_then(|n| u8::try_from(n).ok()) {
        Some(n) if n <= max => Ok(Some(n)),
        _ => Err(Failure::new(400, message)),
    }
}

pub fn parse_patch(user: &Map<String, Value>, min_password: usize) -> Result<Patch, Failure> {
    let login = match user.get("login") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let mut errors = FieldErrors::new();
            validate::check_login(&mut errors, "login", s);
            if !errors.is_empty() {
                return Err(Failure::new(400, MSG_LOGIN_INVALID));
            }
            Some(s.trim().to_owned())
        }
        Some(_) => return Err(Failure::new(400, MSG_LOGIN_INVALID)),
    };
    let min = min_password.min(MAX_PASSWORD_CHARS);
    let password = match user.get("password") {
        None | Some(Value::Null) => None,
        // DeviceHive ignores an empty password rather than refusing it.
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min || n > MAX_PASSWORD_CHARS {
                return Err(Failure::new(400, msg_password_length(min)));
            }
            Some(s.clone())
        }
        Some(_) => return Err(Failure::new(400, msg_password_length(min))),
    };
    let role = small_int(user.get("role"), 1, MSG_ROLE_INVALID)?;
    let status = small_int(user.get("status"), 2, MSG_STATUS_INVALID)?;
    let data = match user.get("data") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v @ Value::Object(_)) => {
            let size = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
            if size > MAX_DATA_BYTES {
                return Err(Failure::new(400, msg_data_too_big()));
            }
            Some(Some(v.clone()))
        }
        Some(_) => return Err(Failure::new(400, MSG_DATA_TYPE)),
    };
    let intro_reviewed = match user.get("introReviewed") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(Failure::new(400, MSG_INTRO_TYPE)),
    };
    Ok(Patch {
        login,
        role,
        status,
        password,
        data,
        intro_reviewed,
    })
}

/// The decoding half of `user/update` on its own, without a socket or a store: the frame's
/// `userId` and `user` object, checked as `SocketSession::update_user` checks them. Err is the
/// error reply's code and text. An entry point for `fuzz/fuzz_targets/ws_frame.rs`.
pub fn decode_user_update(
    request: &Map<String, Value>,
    min_password: usize,
) -> Result<(), (u16, String)> {
    let fail = |f: Failure| (f.code, f.error);
    parse_user_id(request.get("userId")).map_err(fail)?;
    match request.get("user") {
        Some(Value::Object(user)) => parse_patch(user, min_password).map(drop).map_err(fail),
        None | Some(Value::Null) => Err((400, MSG_USER_REQUIRED.to_owned())),
        Some(_) => Err((400, MSG_MALFORMED.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn user_ids_as_devicehive_and_php_clients_send_them() {
        assert_eq!(parse_user_id(Some(&json!(5))).ok(), Some(UserId::Id(5)));
        assert_eq!(parse_user_id(Some(&json!("5"))).ok(), Some(UserId::Id(5)));
        assert_eq!(
            parse_user_id(Some(&json!("current"))).ok(),
            Some(UserId::Current)
        );
        assert_eq!(
            parse_user_id(Some(&json!(-1))).ok(),
            Some(UserId::Negative(-1))
        );
        for bad in [json!(null), json!("x"), json!(1.5), json!([1]), json!(true)] {
            assert_eq!(
                parse_user_id(Some(&bad)).err().map(|f| f.error),
                Some(MSG_USER_ID.to_owned()),
                "{bad}"
            );
        }
        assert!(parse_user_id(None).is_err());
    }

    #[test]
    fn patch_rules() {
        let p = parse_patch(
            &obj(
                json!({"login": "  bob ", "role": "1", "status": 2, "password": "12345678",
                        "data": null, "introReviewed": true}),
            ),
            8,
        );
        assert_eq!(
            p.ok(),
            Some(Patch {
                login: Some("bob".into()),
                role: Some(1),
                status: Some(2),
                password: Some("12345678".into()),
                data: Some(None),
                intro_reviewed: Some(true),
            })
        );
        let err = |v: Value| parse_patch(&obj(v), 8).err().map(|f| (f.code, f.error));
        assert_eq!(
            err(json!({"password": "short"})),
            Some((
                400,
                "Password can contain only from 8 to 128 symbols!".into()
            ))
        );
        assert_eq!(
            err(json!({"password": "x".repeat(129)})),
            Some((
                400,
                "Password can contain only from 8 to 128 symbols!".into()
            ))
        );
        assert_eq!(
            err(json!({"role": 2})),
            Some((400, MSG_ROLE_INVALID.into()))
        );
        assert_eq!(
            err(json!({"role": -1})),
            Some((400, MSG_ROLE_INVALID.into()))
        );
        assert_eq!(
            err(json!({"status": 3})),
            Some((400, MSG_STATUS_INVALID.into()))
        );
        assert_eq!(err(json!({"data": [1]})), Some((400, MSG_DATA_TYPE.into())));
        assert_eq!(
            err(json!({"login": " "})),
            Some((400, MSG_LOGIN_INVALID.into()))
        );
        assert_eq!(
            err(json!({"introReviewed": "yes"})),
            Some((400, MSG_INTRO_TYPE.into()))
        );
        let big = json!({"data": {"k": "x".repeat(MAX_DATA_BYTES)}});
        assert_eq!(err(big), Some((400, msg_data_too_big())));
        // Omitted data is kept; an empty password is ignored, as DeviceHive does.
        assert_eq!(
            parse_patch(&obj(json!({"password": ""})), 8).ok(),
            Some(Patch::default())
        );
    }
}
