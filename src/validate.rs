//! Request-body validation with Laravel's English messages (SPEC §2): typed field readers that
//! collect every failure at once, id parsing that accepts PHP's numeric strings, password
//! policy, and the date formats `expired_at` accepts.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Field name → messages, in Laravel's `errors` shape. A `BTreeMap` keeps the output stable.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn messages(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or(&[])
    }

    /// `Ok(())` when nothing failed, so validators can end with `errors.into_result()?`.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// Laravel's `errors` object.
    pub fn to_json(&self) -> Value {
        serde_json::json!(self.0)
    }
}

/// How a field name reads inside a message: `password_confirmation` → `password confirmation`.
/// Array elements keep their path (`cameras_to_attach.3`), as Laravel prints them.
pub fn attr(field: &str) -> String {
    if field.contains('.') {
        field.to_owned()
    } else {
        field.replace('_', " ")
    }
}

pub fn msg_required(field: &str) -> String {
    format!("The {} field is required.", attr(field))
}
pub fn msg_string(field: &str) -> String {
    format!("The {} must be a string.", attr(field))
}
pub fn msg_integer(field: &str) -> String {
    format!("The {} must be an integer.", attr(field))
}
pub fn msg_array(field: &str) -> String {
    format!("The {} must be an array.", attr(field))
}
pub fn msg_boolean(field: &str) -> String {
    format!("The {} must be true or false.", attr(field))
}
pub fn msg_object(field: &str) -> String {
    format!("The {} must be an object.", attr(field))
}
pub fn msg_min_chars(field: &str, n: usize) -> String {
    format!("The {} must be at least {n} characters.", attr(field))
}
pub fn msg_max_chars(field: &str, n: usize) -> String {
    format!(
        "The {} must not be greater than {n} characters.",
        attr(field)
    )
}
pub fn msg_max_items(field: &str, n: usize) -> String {
    format!("The {} must not have more than {n} items.", attr(field))
}
pub fn msg_confirmed(field: &str) -> String {
    format!("The {} confirmation does not match.", attr(field))
}
pub fn msg_unique(field: &str) -> String {
    format!("The {} has already been taken.", attr(field))
}
pub fn msg_invalid(field: &str) -> String {
    format!("The selected {} is invalid.", attr(field))
}
pub fn msg_date(field: &str) -> String {
    format!("The {} is not a valid date.", attr(field))
}
pub fn msg_after_now(field: &str) -> String {
    format!("The {} must be a date after now.", attr(field))
}
pub fn msg_between(field: &str, min: i64, max: i64) -> String {
    format!("The {} must be between {min} and {max}.", attr(field))
}
pub const MSG_PASSWORD_INCORRECT: &str = "The password is incorrect.";
pub const MSG_BODY_INVALID_JSON: &str = "The request body must be valid JSON.";
pub const MSG_BODY_NOT_OBJECT: &str = "The request body must be a JSON object.";

/// Parses a request body. Empty, `null` and `{}` all mean "no changes" (SPEC §2).
pub fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, FieldErrors> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(FieldErrors::single("body", MSG_BODY_NOT_OBJECT)),
        Err(_) => Err(FieldErrors::single("body", MSG_BODY_INVALID_JSON)),
    }
}

/// An integer id as PHP clients send it: a JSON number or a numeric string (`"5"`).
pub fn parse_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                s.parse().ok()
            }
        }
        _ => None,
    }
}

/// A path segment id; anything that is not a u64 cannot name a record, so it is a 404.
pub fn path_id(segment: &str) -> Option<u64> {
    parse_id(&Value::String(segment.to_owned()))
}

/// Typed access to one JSON object, collecting every failure into one `FieldErrors`.
pub struct Input<'a> {
    map: &'a Map<String, Value>,
    pub errors: FieldErrors,
}

impl<'a> Input<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Input {
            map,
            errors: FieldErrors::new(),
        }
    }

    /// Present and not `null`: Laravel's `nullable` fields treat `null` as absent.
    pub fn has(&self, key: &str) -> bool {
        matches!(self.map.get(key), Some(v) if !v.is_null())
    }

    /// Present at all, `null` included (for fields where `null` means "clear").
    pub fn has_key(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.add(field, message);
    }

    /// A string of at most `max` characters, trimmed of nothing (passwords keep their spaces).
    pub fn string(&mut self, key: &str, max: usize) -> Option<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                if s.chars().count() > max {
                    self.errors.add(key, msg_max_chars(key, max));
                    None
                } else {
                    Some(s.clone())
                }
            }
            Some(_) => {
                self.errors.add(key, msg_string(key));
                None
            }
        }
    }

    pub fn required_string(&mut self, key: &str, max: usize) -> Option<String> {
        if !self.has(key) {
            self.errors.add(key, msg_required(key));
            return None;
        }
        self.string(key, max)
    }

    /// Laravel's `boolean`: true, false, 1, 0, "1", "0".
    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Some(true),
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Some(false),
            Some(Value::String(s)) if s == "1" || s == "true" => Some(true),
            Some(Value::String(s)) if s == "0" || s == "false" => Some(false),
            Some(_) => {
                self.errors.add(key, msg_boolean(key));
                None
            }
        }
    }

    /// An integer in `min..=max` (numeric strings accepted).
    pub fn integer(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.map.get(key)?;
        if value.is_null() {
            return None;
        }
        let parsed = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match parsed {
            None => {
                self.errors.add(key, msg_integer(key));
                None
            }
            Some(n) if n < min || n > max => {
                self.errors.add(key, msg_between(key, min, max));
                None
            }
            Some(n) => Some(n),
        }
    }

    /// An array of ids of at most `max_items`; duplicates collapse, order of first sight kept.
    /// A bad element is reported as `key.N` (`The selected key.N is invalid.`).
    pub fn id_list(&mut self, key: &str, max_items: usize) -> Option<Vec<u64>> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                if items.len() > max_items {
                    self.errors.add(key, msg_max_items(key, max_items));
                    return None;
                }
                let mut ids = Vec::with_capacity(items.len());
                let mut seen = std::collections::HashSet::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match parse_id(item) {
                        Some(id) => {
                            if seen.insert(id) {
                                ids.push(id);
                            }
                        }
                        None => {
                            let path = format!("{key}.{i}");
                            self.errors.add(path.clone(), msg_integer(&path));
                            ok = false;
                        }
                    }
                }
                ok.then_some(ids)
            }
            Some(_) => {
                self.errors.add(key, msg_array(key));
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), FieldErrors> {
        self.errors.into_result()
    }
}

/// Length policy for a new password (SPEC §1: `min`..=128 characters) and its confirmation.
pub fn check_new_password(
    errors: &mut FieldErrors,
    password: &str,
    confirmation: Option<&str>,
    min: usize,
) {
    let len = password.chars().count();
    if len < min {
        errors.add("password", msg_min_chars("password", min));
    }
    if len > 128 {
        errors.add("password", msg_max_chars("password", 128));
    }
    if confirmation != Some(password) {
        errors.add("password", msg_confirmed("password"));
    }
}

/// A login as stored and compared: trimmed; uniqueness is case-insensitive on `login_key`.
pub fn normalize_login(login: &str) -> String {
    login.trim().to_owned()
}

/// An account's display name: the given one, trimmed, or the login when none or blank.
pub fn display_name(name: Option<String>, login: &str) -> String {
    name.map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| login.to_owned())
}

/// Checks a login's shape (1–128 chars after trimming, no control characters).
pub fn check_login(errors: &mut FieldErrors, field: &str, login: &str) {
    let trimmed = login.trim();
    if trimmed.is_empty() {
        errors.add(field, msg_required(field));
    } else if trimmed.chars().count() > 128 {
        errors.add(field, msg_max_chars(field, 128));
    } else if trimmed.chars().any(char::is_control) {
        errors.add(field, format!("The {} format is invalid.", attr(field)));
    }
}

/// `expired_at` as clients send it: `Y-m-d H:i:s`, `Y-m-d` (midnight UTC) or RFC 3339.
pub fn parse_date(input: &str) -> Option<OffsetDateTime> {
    let s = input.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    if let Ok(t) = PrimitiveDateTime::parse(
        s,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    ) {
        return Some(t.assume_utc());
    }
    if let Ok(d) = time::Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Some(d.midnight().assume_utc());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_blank_or_missing_display_name_falls_back_to_the_login() {
        assert_eq!(
            display_name(Some("  Bob Smith ".into()), "bob"),
            "Bob Smith"
        );
        assert_eq!(display_name(Some("   ".into()), "bob"), "bob");
        assert_eq!(display_name(None, "bob"), "bob");
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn bodies_null_and_empty_mean_no_changes() {
        assert!(parse_body(b"").map(|m| m.is_empty()).unwrap_or(false));
        assert!(parse_body(b"null").map(|m| m.is_empty()).unwrap_or(false));
        assert!(parse_body(b" {} ").map(|m| m.is_empty()).unwrap_or(false));
        let bad = parse_body(b"{\"a\":").err();
        assert!(matches!(bad, Some(e) if e.messages("body") == [MSG_BODY_INVALID_JSON]));
        let arr = parse_body(b"[1]").err();
        assert!(matches!(arr, Some(e) if e.has("body")));
    }

    #[test]
    fn ids_accept_numbers_and_numeric_strings_only() {
        assert_eq!(parse_id(&json!(5)), Some(5));
        assert_eq!(parse_id(&json!("5")), Some(5));
        assert_eq!(parse_id(&json!(" 7 ")), Some(7));
        assert_eq!(parse_id(&json!(-1)), None);
        assert_eq!(parse_id(&json!(1.5)), None);
        assert_eq!(parse_id(&json!("5a")), None);
        assert_eq!(parse_id(&json!("99999999999999999999999")), None);
        assert_eq!(parse_id(&json!(null)), None);
        assert!(path_id("abc").is_none());
        assert_eq!(path_id("12"), Some(12));
    }

    #[test]
    fn field_readers_report_every_failure_with_laravel_wording() {
        let body = map(json!({
            "name": 5, "flag": "yes", "ptz": 101, "ids": [1, "2", 2, "x"], "list": "nope", "long": "abcdef"
        }));
        let mut input = Input::new(&body);
        assert_eq!(input.string("name", 255), None);
        assert_eq!(input.boolean("flag"), None);
        assert_eq!(input.integer("ptz", 1, 100), None);
        assert_eq!(input.id_list("ids", 500), None);
        assert_eq!(input.id_list("list", 500), None);
        assert_eq!(input.string("long", 3), None);
        assert_eq!(input.required_string("login", 10), None);
        let e = input.errors.clone();
        assert_eq!(e.messages("name"), ["The name must be a string."]);
        assert_eq!(e.messages("flag"), ["The flag must be true or false."]);
        assert_eq!(e.messages("ptz"), ["The ptz must be between 1 and 100."]);
        assert_eq!(e.messages("ids.3"), ["The ids.3 must be an integer."]);
        assert_eq!(e.messages("list"), ["The list must be an array."]);
        assert_eq!(
            e.messages("long"),
            ["The long must not be greater than 3 characters."]
        );
        assert_eq!(e.messages("login"), ["The login field is required."]);
        assert!(input.finish().is_err());
    }

    #[test]
    fn id_lists_collapse_duplicates_and_cap_items() {
        let body = map(json!({"a": [3, "3", 1], "b": (0..501).collect::<Vec<_>>()}));
        let mut input = Input::new(&body);
        assert_eq!(input.id_list("a", 500), Some(vec![3, 1]));
        assert_eq!(input.id_list("b", 500), None);
        assert_eq!(
            input.errors.messages("b"),
            ["The b must not have more than 500 items."]
        );
        assert_eq!(attr("cameras_to_attach"), "cameras to attach");
    }

    #[test]
    fn password_policy_reports_length_and_confirmation_together() {
        let mut e = FieldErrors::new();
        check_new_password(&mut e, "short", Some("other"), 8);
        assert_eq!(
            e.messages("password"),
            [
                "The password must be at least 8 characters.",
                "The password confirmation does not match."
            ]
        );
        let mut e = FieldErrors::new();
        check_new_password(&mut e, &"x".repeat(129), Some(&"x".repeat(129)), 8);
        assert_eq!(
            e.messages("password"),
            ["The password must not be greater than 128 characters."]
        );
        let mut e = FieldErrors::new();
        check_new_password(&mut e, "long enough", Some("long enough"), 8);
        assert!(e.is_empty());
    }

    #[test]
    fn dates_in_the_three_accepted_formats() {
        let a = parse_date("2030-01-02 03:04:05").map(|t| t.unix_timestamp());
        let b = parse_date("2030-01-02T03:04:05Z").map(|t| t.unix_timestamp());
        let c = parse_date("2030-01-02T05:04:05+02:00").map(|t| t.unix_timestamp());
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            parse_date("2030-01-02").map(|t| t.unix_timestamp()),
            parse_date("2030-01-02 00:00:00").map(|t| t.unix_timestamp())
        );
        assert!(parse_date("tomorrow").is_none());
        assert!(parse_date("2030-13-01").is_none());
        assert!(parse_date("").is_none());
    }

    #[test]
    fn logins_are_trimmed_and_compared_case_insensitively() {
        assert_eq!(normalize_login("  Bob "), "Bob");
        assert_eq!(crate::model::login_key("  Bob "), "bob");
        let mut e = FieldErrors::new();
        check_login(&mut e, "login", "   ");
        check_login(&mut e, "login2", &"a".repeat(129));
        check_login(&mut e, "login3", "a\u{0}b");
        assert!(e.has("login") && e.has("login2") && e.has("login3"));
    }
}
