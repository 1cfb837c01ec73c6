//! The Pusher protocol's own tests: frames in and out as the real clients read them,
//! channel names, signatures against independently computed vectors, auth bodies, and
//! hostile inputs.

use super::*;
use serde_json::json;

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A frame's `data`, decoded once more when it is a JSON string.
fn inner_data(frame: &Value) -> Value {
    match &frame["data"] {
        Value::String(s) => parsed(s),
        _ => Value::Null,
    }
}

#[test]
fn pings_are_pings_whatever_their_data() {
    for frame in [
        r#"{"event":"pusher:ping","data":{}}"#,
        r#"{"event": "pusher:ping"}"#,
        r#"{"event":"pusher:ping","data":""}"#,
        r#"{"event":"pusher:ping","data":null}"#,
        r#"{"data":[1,2],"event":"pusher:ping"}"#,
    ] {
        assert_eq!(parse_inbound(frame), Ok(Inbound::Ping), "{frame}");
    }
    assert_eq!(
        parse_inbound(r#"{"event":"pusher:pong","data":""}"#),
        Ok(Inbound::Pong)
    );
}

#[test]
fn subscribe_data_may_be_an_object_or_a_string_holding_one() {
    let expected = Inbound::Subscribe {
        channel: "private-user.13".into(),
        auth: Some("key:abc".into()),
        channel_data: None,
    };
    assert_eq!(
        parse_inbound(
            r#"{"event":"pusher:subscribe","data":{"auth":"key:abc","channel":"private-user.13"}}"#
        ),
        Ok(expected.clone())
    );
    assert_eq!(
        parse_inbound(
            r#"{"event":"pusher:subscribe","data":"{\"auth\":\"key:abc\",\"channel\":\"private-user.13\"}"}"#
        ),
        Ok(expected)
    );
    // pusher-js on a public channel: `auth` is "", channel_data undefined (left out).
    assert_eq!(
        parse_inbound(r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"news"}}"#),
        Ok(Inbound::Subscribe {
            channel: "news".into(),
            auth: Some(String::new()),
            channel_data: None
        })
    );
    assert_eq!(
        parse_inbound(
            r#"{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":null,"channel_data":"{\"user_id\":\"1\"}"}}"#
        ),
        Ok(Inbound::Subscribe {
            channel: "presence-a".into(),
            auth: None,
            channel_data: Some("{\"user_id\":\"1\"}".into())
        })
    );
}

#[test]
fn unsubscribe_client_and_unknown_events() {
    assert_eq!(
        parse_inbound(r#"{"event":"pusher:unsubscribe","data":{"channel":"private-user.1"}}"#),
        Ok(Inbound::Unsubscribe {
            channel: "private-user.1".into()
        })
    );
    assert_eq!(
        parse_inbound(r#"{"event":"client-typing","channel":"private-user.1","data":{}}"#),
        Ok(Inbound::ClientEvent {
            event: "client-typing".into(),
            channel: Some("private-user.1".into())
        })
    );
    assert_eq!(
        parse_inbound(r#"{"event":"client-x","data":"hi"}"#),
        Ok(Inbound::ClientEvent {
            event: "client-x".into(),
            channel: None
        })
    );
    assert_eq!(
        parse_inbound(r#"{"event":"pusher:signin","data":{"auth":"k:x","user_data":"{}"}}"#),
        Ok(Inbound::Unknown {
            event: "pusher:signin".into()
        })
    );
}

#[test]
fn malformed_frames_are_errors() {
    let cases = [
        ("", ProtocolError::NotJson),
        ("{", ProtocolError::NotJson),
        ("event", ProtocolError::NotJson),
        ("[]", ProtocolError::NotAnObject),
        ("\"pusher:ping\"", ProtocolError::NotAnObject),
        ("null", ProtocolError::NotAnObject),
        ("{}", ProtocolError::NoEventName),
        (r#"{"event":7}"#, ProtocolError::NoEventName),
        (r#"{"event":null,"data":{}}"#, ProtocolError::NoEventName),
        (
            r#"{"event":"pusher:subscribe"}"#,
            ProtocolError::DataNotAnObject,
        ),
        (
            r#"{"event":"pusher:subscribe","data":"channel"}"#,
            ProtocolError::DataNotAnObject,
        ),
        (
            r#"{"event":"pusher:subscribe","data":"[1]"}"#,
            ProtocolError::DataNotAnObject,
        ),
        (
            r#"{"event":"pusher:subscribe","data":[{"channel":"a"}]}"#,
            ProtocolError::DataNotAnObject,
        ),
        (
            r#"{"event":"pusher:subscribe","data":{}}"#,
            ProtocolError::NoChannel,
        ),
        (
            r#"{"event":"pusher:subscribe","data":{"channel":5}}"#,
            ProtocolError::NoChannel,
        ),
        (
            r#"{"event":"pusher:unsubscribe","data":"{}"}"#,
            ProtocolError::NoChannel,
        ),
    ];
    for (frame, error) in cases {
        assert_eq!(parse_inbound(frame), Err(error), "{frame:?}");
    }
    // Nesting past serde_json's recursion limit is an error, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse_inbound(&deep), Err(ProtocolError::NotJson));
    let deep_data = format!(
        r#"{{"event":"pusher:subscribe","data":"{}"}}"#,
        "[".repeat(10_000)
    );
    assert_eq!(
        parse_inbound(&deep_data),
        Err(ProtocolError::DataNotAnObject)
    );
}

#[test]
fn connection_established_carries_a_string_with_a_numeric_string_timeout() {
    let frame = parsed(&connection_established("123.456", 30));
    assert_eq!(frame["event"], "pusher:connection_established");
    assert!(frame["data"].is_string(), "Java and Pysher need a string");
    assert_eq!(
        inner_data(&frame),
        json!({"socket_id": "123.456", "activity_timeout": "30"})
    );
    assert!(frame.get("channel").is_none());
}

#[test]
fn pong_and_errors_carry_objects() {
    assert_eq!(parsed(&pong()), json!({"event": "pusher:pong", "data": {}}));
    assert_eq!(
        parsed(&error("Subscription limit reached", Some(4302))),
        json!({"event": "pusher:error", "data": {"message": "Subscription limit reached", "code": 4302}})
    );
    assert_eq!(
        parsed(&error("say \"hi\"\n\\", None)),
        json!({"event": "pusher:error", "data": {"message": "say \"hi\"\n\\", "code": null}})
    );
}

#[test]
fn subscription_succeeded_has_string_data() {
    let text = subscription_succeeded("private-user.13");
    assert!(text.contains(r#""data":"{}""#), "{text}");
    assert_eq!(
        parsed(&text),
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "private-user.13", "data": "{}"})
    );
}

#[test]
fn events_carry_their_data_as_a_json_string() {
    let text = event(&token_channel("ab12"), TOKEN_PUSH_EVENT, &logout_data());
    // The JSON-escaped event name as it travels.
    assert!(
        text.starts_with(
            r#"{"event":"App\\Events\\TokenPush","channel":"private-token.ab12","data":""#
        ),
        "{text}"
    );
    let frame = parsed(&text);
    assert_eq!(frame["event"], "App\\Events\\TokenPush");
    assert_eq!(frame["channel"], "private-token.ab12");
    assert_eq!(
        inner_data(&frame),
        json!({"subject": "logout", "data": {"type": "logout", "status": "ok", "data": {}}})
    );
}

#[test]
fn event_names_and_channel_names() {
    assert_eq!(TOKEN_PUSH_EVENT, r"App\Events\TokenPush");
    assert_eq!(USER_PUSH_EVENT, r"App\Events\UserPush");
    assert_eq!(user_channel(13), "private-user.13");
    let id = "0123456789abcdef".repeat(5);
    assert_eq!(token_channel(&id), format!("private-token.{id}"));
    assert_eq!(classify(&token_channel(&id)), Ok(ChannelKind::Private));
    assert_eq!(classify(&user_channel(u64::MAX)), Ok(ChannelKind::Private));
}

#[test]
fn payloads_match_spec_section_9() {
    assert_eq!(
        logout_data(),
        r#"{"subject":"logout","data":{"type":"logout","status":"ok","data":{}}}"#
    );
    assert_eq!(
        parsed(&permissions_updated_data()),
        json!({"subject": "permissions_updated", "data": {"type": "permissions_updated", "status": "ok", "data": {}}})
    );
    assert_eq!(
        parsed(&cameras_updated_data(&[1, 22], &[])),
        json!({"subject": "cameras_updated", "data": {"type": "cameras_updated", "status": "ok",
            "data": {"attached": [1, 22], "detached": []}}})
    );
    assert_eq!(
        parsed(&cameras_updated_data(&[], &[u64::MAX])),
        json!({"subject": "cameras_updated", "data": {"type": "cameras_updated", "status": "ok",
            "data": {"attached": [], "detached": [u64::MAX]}}})
    );
}

#[test]
fn channel_kinds_and_names() {
    assert_eq!(classify("news"), Ok(ChannelKind::Public));
    assert_eq!(classify("private"), Ok(ChannelKind::Public));
    assert_eq!(classify("private-user.1"), Ok(ChannelKind::Private));
    assert_eq!(
        classify("private-encrypted-x"),
        Ok(ChannelKind::PresenceOrEncrypted)
    );
    assert_eq!(
        classify("presence-room"),
        Ok(ChannelKind::PresenceOrEncrypted)
    );
    assert_eq!(
        classify("A-z_0=9@a,b.c;d"),
        Ok(ChannelKind::Public),
        "every allowed punctuation mark"
    );
    let longest = format!("private-{}", "x".repeat(MAX_CHANNEL_NAME_LEN - 8));
    assert_eq!(classify(&longest), Ok(ChannelKind::Private));
    for bad in [
        String::new(),
        format!("{longest}x"),
        "#server-to-user-1".into(),
        "private-user 1".into(),
        "private-user/1".into(),
        "privé".into(),
        "a\0b".into(),
        "a:b".into(),
        "a*".into(),
    ] {
        assert_eq!(classify(&bad), Err(InvalidChannelName), "{bad:?}");
    }
}

#[test]
fn socket_ids() {
    for _ in 0..100 {
        let id = new_socket_id().unwrap_or_default();
        assert!(valid_socket_id(&id), "{id}");
    }
    assert!(valid_socket_id("1234.1234"));
    assert!(valid_socket_id("0.0"));
    assert!(valid_socket_id("18446744073709551615.18446744073709551615"));
    for bad in [
        "",
        ".",
        "1.",
        ".1",
        "1",
        "1.2.3",
        " 1.2",
        "1.2\n",
        "-1.2",
        "1,2",
        "١.٢",
        "１.２",
        "123456789012345678901.1",
        "1.123456789012345678901",
    ] {
        assert!(!valid_socket_id(bad), "{bad:?}");
    }
}

#[test]
fn signatures_match_independently_computed_values() {
    // python3 -c "import hmac,hashlib; print(hmac.new(b'7ad3773142a6692b25b8',
    //   b'1234.1234:private-foobar', hashlib.sha256).hexdigest())"
    // (the test vector of Pusher's auth-signatures documentation)
    let key = "278d425bdf160c739803";
    let secret = b"7ad3773142a6692b25b8";
    let expected = "278d425bdf160c739803:\
        58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
    assert_eq!(sign(key, secret, "1234.1234", "private-foobar"), expected);
    assert!(verify(key, secret, "1234.1234", "private-foobar", expected));

    // python3 -c "import hmac,hashlib; print(hmac.new(b'secret',
    //   b'1234.1234:private-user.13', hashlib.sha256).hexdigest())"
    let aipix = "key:3c4ef33c024abe557af3b840923b78669b7e89be034678b98d4e3e2f23f8a125";
    assert_eq!(
        sign("key", b"secret", "1234.1234", "private-user.13"),
        aipix
    );
    assert!(verify(
        "key",
        b"secret",
        "1234.1234",
        "private-user.13",
        aipix
    ));
    assert!(verify(
        "key",
        b"secret",
        "1234.1234",
        "private-user.13",
        &aipix.to_uppercase().replacen("KEY", "key", 1)
    ));

    // python3 -c "import hmac,hashlib; print(hmac.new(b'secret',
    //   b'350680259.537363339:private-token.' + b'ab'*40, hashlib.sha256).hexdigest())"
    let channel = token_channel(&"ab".repeat(40));
    assert_eq!(
        sign("key", b"secret", "350680259.537363339", &channel),
        "key:0ca6ad3185934fe5afebb869accdfd76f8356b9f35fc0e985be00e3e06ae90fc"
    );
}

#[test]
fn wrong_signatures_are_refused() {
    let good = sign("key", b"secret", "1.2", "private-user.13");
    let hex_part = good.trim_start_matches("key:");
    let flipped_last = if hex_part.ends_with('0') { '1' } else { '0' };
    let refused = [
        String::new(),
        "key:".into(),
        hex_part.to_owned(),
        format!(":{hex_part}"),
        format!("other:{hex_part}"),
        format!("key::{hex_part}"),
        format!("key:{hex_part}00"),
        format!("key:{}", &hex_part[..62]),
        format!("key:{}", &hex_part[..63]),
        format!("key:{}{}", &hex_part[..63], flipped_last),
        format!("key:{hex_part} "),
        format!("key:{}", "zz".repeat(32)),
        format!("{good}\0"),
    ];
    for auth in &refused {
        assert!(
            !verify("key", b"secret", "1.2", "private-user.13", auth),
            "{auth:?}"
        );
    }
    // Right MAC, wrong subject: another socket, channel or secret.
    assert!(!verify("key", b"secret", "1.3", "private-user.13", &good));
    assert!(!verify("key", b"secret", "1.2", "private-user.14", &good));
    assert!(!verify("key", b"secreT", "1.2", "private-user.13", &good));
}

#[test]
fn the_invalid_signature_message_quotes_a_bounded_part() {
    assert_eq!(
        invalid_signature_message("1.2", "private-user.1", Some("key:ab")),
        "Invalid signature: Expected HMAC SHA256 hex digest of 1.2:private-user.1, but got key:ab"
    );
    let long = "é".repeat(1000);
    let message = invalid_signature_message("1.2", "private-user.1", Some(&long));
    assert!(message.ends_with(&"é".repeat(MAX_QUOTED_SIGNATURE_LEN)));
    assert!(message.len() < 400);
    assert!(invalid_signature_message("1.2", "c", None).ends_with("but got "));
}

#[test]
fn auth_bodies_as_each_client_sends_them() {
    let expect = |socket: &str, channel: &str| AuthRequestBody {
        socket_id: Some(socket.into()),
        channel_name: Some(channel.into()),
    };
    // pusher-js and AIPIX iOS.
    assert_eq!(
        parse_auth_body(b"socket_id=350680259.537363339&channel_name=private-user.13"),
        Ok(expect("350680259.537363339", "private-user.13"))
    );
    // Android and Pysher put channel_name first; percent-encoding is decoded.
    assert_eq!(
        parse_auth_body(b"channel_name=private-token.ab%2Ecd&socket_id=1.2"),
        Ok(expect("1.2", "private-token.ab.cd"))
    );
    assert_eq!(
        parse_auth_body(b" \r\n{\"socket_id\":\"1.2\",\"channel_name\":\"private-user.1\"}"),
        Ok(expect("1.2", "private-user.1"))
    );
    assert_eq!(
        parse_auth_body(b"socket_id=1.1&socket_id=2.2&channel_name=a"),
        Ok(expect("2.2", "a")),
        "PHP keeps the last value"
    );
}

#[test]
fn auth_body_absent_odd_and_malformed_fields() {
    assert_eq!(parse_auth_body(b""), Ok(AuthRequestBody::default()));
    assert_eq!(parse_auth_body(b"{}"), Ok(AuthRequestBody::default()));
    assert_eq!(
        parse_auth_body(b"{\"socket_id\":null,\"channel_name\":7}"),
        Ok(AuthRequestBody {
            socket_id: None,
            channel_name: Some("7".into())
        })
    );
    assert_eq!(
        parse_auth_body(b"{\"socket_id\":1.5,\"channel_name\":[\"a\"]}"),
        Ok(AuthRequestBody {
            socket_id: Some("1.5".into()),
            channel_name: Some("[\"a\"]".into())
        })
    );
    assert_eq!(
        parse_auth_body(b"socket_id=%FF%FE&channel_name"),
        Ok(AuthRequestBody {
            socket_id: Some("\u{FFFD}\u{FFFD}".into()),
            channel_name: Some(String::new())
        })
    );
    assert_eq!(
        parse_auth_body(b"[\"socket_id\"]"),
        Ok(AuthRequestBody::default()),
        "not JSON by its first byte, so a form with one odd key"
    );
    for bad in [
        &b"{"[..],
        b"{\"socket_id\":\"1.2\"",
        b"{\"socket_id\":\"1.2\"} trailing",
        b"{\xff}",
    ] {
        assert_eq!(parse_auth_body(bad), Err(MalformedAuthBody), "{bad:?}");
    }
    let huge = format!("socket_id=1.2&pad={}", "x".repeat(MAX_AUTH_BODY_BYTES));
    assert_eq!(parse_auth_body(huge.as_bytes()), Err(MalformedAuthBody));
}

#[test]
fn protocols_5_to_7_are_accepted() {
    for query in [
        "protocol=7&client=js&version=8.6.0&flash=false",
        "client=java-client&protocol=5&version=2.0.2",
        "client=Pysher&version=1.0.7&protocol=6",
        "protocol=7&protocol=1",
    ] {
        assert_eq!(accepted_protocol(Some(query)), Ok(()), "{query}");
    }
    for (query, code) in [
        (None, CLOSE_NO_PROTOCOL),
        (Some(""), CLOSE_NO_PROTOCOL),
        (Some("client=js"), CLOSE_NO_PROTOCOL),
        (Some("protocol="), CLOSE_NO_PROTOCOL),
        (Some("protocol=4"), CLOSE_UNSUPPORTED_PROTOCOL),
        (Some("protocol=8"), CLOSE_UNSUPPORTED_PROTOCOL),
        (Some("protocol=07"), CLOSE_UNSUPPORTED_PROTOCOL),
        (Some("protocol=7.0"), CLOSE_UNSUPPORTED_PROTOCOL),
        (Some("protocol=%37%00"), CLOSE_UNSUPPORTED_PROTOCOL),
        (Some("protocol=abc&protocol=7"), CLOSE_UNSUPPORTED_PROTOCOL),
    ] {
        assert_eq!(accepted_protocol(query), Err(code), "{query:?}");
    }
}

#[test]
fn close_codes_sit_in_the_ranges_clients_act_on() {
    let no_reconnect = 4000..4100;
    assert!(no_reconnect.contains(&CLOSE_UNKNOWN_APP_KEY));
    assert!(no_reconnect.contains(&CLOSE_UNSUPPORTED_PROTOCOL));
    assert!(no_reconnect.contains(&CLOSE_NO_PROTOCOL));
    assert!(no_reconnect.contains(&CLOSE_SESSION_ENDED));
    assert!((4100..4200).contains(&CLOSE_OVER_CAPACITY));
    assert!((4200..4300).contains(&CLOSE_RESTART));
    assert!((4200..4300).contains(&CLOSE_PONG_NOT_RECEIVED));
    const { assert!(ERROR_CODE_SUBSCRIPTION_LIMIT >= 4300) };
    for code in [4001, 4007, 4008, 4009, 4100, 4200, 4201] {
        let reason = close_reason(code);
        assert!(!reason.is_empty() && reason.len() <= 123, "{code}");
    }
}

/// A small xorshift generator: the same mutations on every run, no new dependency.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        const INTERESTING: &[u8] = b"{}[]\":,\\ 0.-e\xff\x00\"pusher:subscribe\"";
        let mut bytes = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(bytes.len() + 1);
            match self.below(5) {
                0 => bytes.truncate(at),
                1 if at < bytes.len() => bytes[at] = self.next() as u8,
                2 if at < bytes.len() => {
                    bytes.remove(at);
                }
                3 => {
                    let start = self.below(INTERESTING.len());
                    let len = self.below(INTERESTING.len() - start) + 1;
                    let piece = INTERESTING[start..start + len].to_vec();
                    bytes.splice(at..at, piece);
                }
                _ => {
                    let from = self.below(bytes.len());
                    let piece: Vec<u8> = bytes[from..].iter().take(8).copied().collect();
                    bytes.splice(at..at, piece);
                }
            }
        }
        bytes
    }
}

#[test]
fn no_input_makes_any_reader_panic() {
    let seeds: &[&[u8]] = &[
        br#"{"event":"pusher:subscribe","data":{"auth":"key:abc","channel":"private-user.13","channel_data":"{}"}}"#,
        br#"{"event":"pusher:subscribe","data":"{\"channel\":\"private-token.ab\"}"}"#,
        br#"{"event":"pusher:unsubscribe","data":{"channel":"x"}}"#,
        br#"{"event":"pusher:ping","data":{}}"#,
        br#"{"event":"client-a","channel":"private-user.1","data":"x"}"#,
        b"socket_id=1.2&channel_name=private-user.13",
        b"protocol=7&client=js&version=8.6.0",
        b"key:3c4ef33c024abe557af3b840923b78669b7e89be034678b98d4e3e2f23f8a125",
    ];
    let mut mutator = Mutator(0x9E37_79B9_7F4A_7C15);
    let mut frames_read = 0;
    for round in 0..20_000 {
        let bytes = mutator.mutate(seeds[round % seeds.len()]);
        let text = String::from_utf8_lossy(&bytes);
        if parse_inbound(&text).is_ok() {
            frames_read += 1;
        }
        let _ = parse_auth_body(&bytes);
        let _ = accepted_protocol(Some(&text));
        let _ = classify(&text);
        let _ = valid_socket_id(&text);
        let _ = verify("key", b"secret", "1.2", "private-user.13", &text);
        let _ = invalid_signature_message("1.2", &text, Some(&text));
        // Whatever a client sent, what vmsd writes back about it is one JSON object.
        let reply = error(&text, None);
        assert!(parsed(&reply).is_object(), "{reply}");
        assert!(parsed(&subscription_succeeded(&text)).is_object());
        assert!(parsed(&event(&text, &text, &text)).is_object());
    }
    assert!(
        frames_read > 100,
        "the mutations should keep some frames whole"
    );
}
