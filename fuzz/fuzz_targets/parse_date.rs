//! `validate::parse_date` (the `expired_at` formats: `Y-m-d H:i:s`, `Y-m-d`, RFC 3339) and the
//! renderers the accepted dates go through. Beyond "never panics": a date the parser accepts
//! renders as `Y-m-d H:i:s` (resource times) and that rendering parses back to the same second,
//! and `read_expired_at` agrees with the parser on what is a date.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use vmsd::model::now;
use vmsd::validate::{self, Input};
use vmsd::views::{fmt_model, fmt_resource};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = validate::parse_date(text);
    if let Some(t) = parsed {
        let seconds = t.unix_timestamp();
        let rendered = fmt_resource(seconds);
        // Years beyond 9999 or before 0 have no `Y-m-d` rendering; the renderer says so
        // with an empty string instead of failing.
        if !rendered.is_empty() {
            let back = validate::parse_date(&rendered).map(|b| b.unix_timestamp());
            assert_eq!(back, Some(seconds), "{text:?} -> {rendered:?}");
        }
        let _ = fmt_model(seconds);
    }

    let mut body = Map::new();
    body.insert("expired_at".into(), Value::String(text.to_owned()));
    let mut input = Input::new(&body);
    let read = vmsd::handlers::admin_common::read_expired_at(&mut input);
    let at = now();
    match parsed {
        None => {
            assert_eq!(read, None);
            assert_eq!(
                input.errors.messages("expired_at"),
                [validate::msg_date("expired_at")]
            );
        }
        Some(t) if t.unix_timestamp() < at - 5 => {
            assert_eq!(read, None);
            assert_eq!(
                input.errors.messages("expired_at"),
                [validate::msg_after_now("expired_at")]
            );
        }
        Some(t) if t.unix_timestamp() > at + 5 => {
            assert_eq!(read, Some(Some(t.unix_timestamp())));
            assert!(input.errors.is_empty());
        }
        // Within seconds of now the answer depends on the clock between the two reads.
        Some(_) => {}
    }
    // Non-string JSON never counts as a date.
    let mut body = Map::new();
    body.insert("expired_at".into(), json!(data.len()));
    let mut input = Input::new(&body);
    assert_eq!(
        vmsd::handlers::admin_common::read_expired_at(&mut input),
        None
    );
    assert!(input.errors.has("expired_at"));
});
