//! The Pusher Channels protocol that AIPIX clients speak (SPEC §9), as pure functions and
//! types with no I/O: reading client frames, writing server frames, channel names and
//! kinds, socket ids, the channel auth signature, the `/api/v1/broadcasting/auth` body, the
//! URL's `protocol` check, close codes, and the payloads of vmsd's own events. The socket
//! task, the registry and the auth route build on this and own every decision about state.
//!
//! Every rule here that a real client depends on is noted with the client that needs it;
//! the sources are in shared/reference/push-and-media-hooks.md, part A.

use serde_json::{Map, Value};

/// The event that tells a device its session is over (on `private-token.{access_token_id}`).
/// On the wire, JSON-escaped, it reads `App\\Events\\TokenPush`.
pub const TOKEN_PUSH_EVENT: &str = "App\\Events\\TokenPush";
/// The event about an account's permissions and cameras (on `private-user.{id}`).
pub const USER_PUSH_EVENT: &str = "App\\Events\\UserPush";

/// The WebSocket subprotocol the AIPIX iOS SDK offers; echoing it is what it expects.
pub const SUBPROTOCOL: &str = "pusher-channels-protocol-7";

// Close codes (Pusher protocol). Clients act on the range: 4000–4099 never reconnect,
// 4100–4199 reconnect after a back-off, 4200–4299 reconnect at once.
/// The key in the URL is not vmsd's `push.app_key`.
pub const CLOSE_UNKNOWN_APP_KEY: u16 = 4001;
/// The URL's `protocol` is not 5, 6 or 7.
pub const CLOSE_UNSUPPORTED_PROTOCOL: u16 = 4007;
/// The URL has no `protocol` at all (see [`accepted_protocol`]).
pub const CLOSE_NO_PROTOCOL: u16 = 4008;
/// The session that authorized the socket's private channels ended: in the no-reconnect
/// range, so a revoked device stays disconnected (pusher-js `disconnect()`s on it).
pub const CLOSE_SESSION_ENDED: u16 = 4009;
/// Too many sockets, or a consumer too slow for its send queue: reconnect after a back-off.
pub const CLOSE_OVER_CAPACITY: u16 = 4100;
/// Restart or shutdown: clients reconnect at once, to the restarted daemon. Not 4009, which
/// would leave every client disconnected until its app restarts.
pub const CLOSE_RESTART: u16 = 4200;
/// Nothing arrived for 2 × activity_timeout, so the client stopped pinging.
pub const CLOSE_PONG_NOT_RECEIVED: u16 = 4201;

/// `pusher:error` code when a socket asks for more than `push.max_subscriptions` channels.
/// In the 4300 range, which no client treats as a close (Pysher disconnects on 4000–4099
/// and reconnects on 4100–4299 when such a code arrives in an error frame).
pub const ERROR_CODE_SUBSCRIPTION_LIMIT: u16 = 4302;
pub const MSG_SUBSCRIPTION_LIMIT: &str = "Subscription limit reached";
pub const MSG_PRESENCE_UNSUPPORTED: &str = "Presence channels are not supported";
pub const MSG_CLIENT_EVENTS_UNSUPPORTED: &str = "Client events are not supported";

/// Longest channel name Pusher accepts (its "Invalid channel name" rule); vmsd's longest,
/// `private-token.` + 80 hex digits, is 94.
pub const MAX_CHANNEL_NAME_LEN: usize = 164;

/// Digits on either side of a socket id's dot: a u64 has at most 20, which covers the ids
/// of every Pusher server as well as vmsd's own.
const MAX_SOCKET_ID_PART_LEN: usize = 20;

/// Largest `/api/v1/broadcasting/auth` body read: two short fields, plus room for the extra
/// `params` pusher-js may add.
pub const MAX_AUTH_BODY_BYTES: usize = 16 * 1024;

/// How much of a client's rejected signature the error frame quotes back.
const MAX_QUOTED_SIGNATURE_LEN: usize = 128;

/// A frame a client sent, as far as the server acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Ping,
    Pong,
    Subscribe {
        channel: String,
        /// Absent when the client sent none or a non-string; pusher-js sends `""` for public
        /// channels, kept as `Some("")`.
        auth: Option<String>,
        channel_data: Option<String>,
    },
    Unsubscribe {
        channel: String,
    },
    /// A `client-*` event: vmsd relays none of them.
    ClientEvent {
        event: String,
        channel: Option<String>,
    },
    /// Any other event name, `pusher:signin` included: vmsd does not offer it.
    Unknown {
        event: String,
    },
}

/// Why a client frame could not be read; the socket answers `pusher:error` and stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    NotJson,
    NotAnObject,
    /// No `event`, or one that is not a string.
    NoEventName,
    /// A subscribe or unsubscribe whose `data` is neither an object nor a string holding one.
    DataNotAnObject,
    /// A subscribe or unsubscribe whose `data` has no string `channel`.
    NoChannel,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProtocolError::NotJson => "Malformed frame: not JSON",
            ProtocolError::NotAnObject => "Malformed frame: not a JSON object",
            ProtocolError::NoEventName => "Malformed frame: no event name",
            ProtocolError::DataNotAnObject => "Malformed frame: data is not an object",
            ProtocolError::NoChannel => "Malformed frame: no channel",
        })
    }
}

impl std::error::Error for ProtocolError {}

/// Reads one client text frame `{event, channel?, data}`.
///
/// The `data` of `pusher:subscribe`/`pusher:unsubscribe` is an object from pusher-js, the
/// Swift and Java clients and Pysher; a JSON string holding the object is read too, since
/// every server→client `data` is string-encoded and a client may encode its own the same
/// way. `pusher:ping` is a ping whatever its `data`: pusher-js sends `{}`, the Android SDK
/// none, Pysher `""`.
pub fn parse_inbound(text: &str) -> Result<Inbound, ProtocolError> {
    let value: Value = serde_json::from_str(text).map_err(|_| ProtocolError::NotJson)?;
    let Value::Object(mut frame) = value else {
        return Err(ProtocolError::NotAnObject);
    };
    let Some(Value::String(event)) = frame.remove("event") else {
        return Err(ProtocolError::NoEventName);
    };
    match event.as_str() {
        "pusher:ping" => Ok(Inbound::Ping),
        "pusher:pong" => Ok(Inbound::Pong),
        "pusher:subscribe" => {
            let mut data = data_object(frame.remove("data"))?;
            let channel = take_string(&mut data, "channel").ok_or(ProtocolError::NoChannel)?;
            Ok(Inbound::Subscribe {
                channel,
                auth: take_string(&mut data, "auth"),
                channel_data: take_string(&mut data, "channel_data"),
            })
        }
        "pusher:unsubscribe" => {
            let mut data = data_object(frame.remove("data"))?;
            let channel = take_string(&mut data, "channel").ok_or(ProtocolError::NoChannel)?;
            Ok(Inbound::Unsubscribe { channel })
        }
        _ if event.starts_with("client-") => Ok(Inbound::ClientEvent {
            channel: take_string(&mut frame, "channel"),
            event,
        }),
        _ => Ok(Inbound::Unknown { event }),
    }
}

fn data_object(data: Option<Value>) -> Result<Map<String, Value>, ProtocolError> {
    match data {
        Some(Value::Object(map)) => Ok(map),
        Some(Value::String(text)) => match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(ProtocolError::DataNotAnObject),
        },
        _ => Err(ProtocolError::DataNotAnObject),
    }
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// `s` as a JSON string literal, quotes and escapes included. Frames are assembled from
/// these rather than from a `serde_json::Map`, which would sort the keys: the frames then read
/// `event, channel, data` as in the protocol's documentation, and building cannot fail.
fn json_string(s: &str) -> String {
    Value::from(s).to_string()
}

/// The first frame on a new socket.
///
/// `data` is a JSON *string*: the Java/Android clients cast it to a string and Pysher
/// `json.loads` it. `activity_timeout` is a numeric *string* as push1st sends it, the one
/// form every client reads: the AIPIX iOS SDK reads it only as a string (and otherwise
/// keeps its own 30 s), pusher-js multiplies it (JS coercion), Android parses either.
pub fn connection_established(socket_id: &str, activity_timeout_secs: u64) -> String {
    let data = format!(
        "{{\"socket_id\":{},\"activity_timeout\":\"{activity_timeout_secs}\"}}",
        json_string(socket_id)
    );
    format!(
        "{{\"event\":\"pusher:connection_established\",\"data\":{}}}",
        json_string(&data)
    )
}

/// The answer to `pusher:ping`. `data` is `{}`, never absent or empty: the Android SDK
/// parses the `data` of every frame as JSON.
pub fn pong() -> String {
    "{\"event\":\"pusher:pong\",\"data\":{}}".to_owned()
}

/// A `pusher:error` frame. `data` is always an object with a string `message` and an
/// integer or null `code`: pusher-websocket-swift requires the object and the string, the
/// Java/Android clients read `code` as a number, Pysher `int()`s it.
pub fn error(message: &str, code: Option<u16>) -> String {
    let code = code.map_or_else(|| "null".to_owned(), |c| c.to_string());
    format!(
        "{{\"event\":\"pusher:error\",\"data\":{{\"message\":{},\"code\":{code}}}}}",
        json_string(message)
    )
}

/// The answer to a successful subscribe. `data` is the string `"{}"`, as Pusher sends it:
/// upstream pusher-websocket-swift fires no success callback when `data` is absent.
pub fn subscription_succeeded(channel: &str) -> String {
    format!(
        "{{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":{},\"data\":\"{{}}\"}}",
        json_string(channel)
    )
}

/// An application event on `channel`; `data_json` (already JSON) travels as a JSON string,
/// which pusher-js decodes and the Java/Android clients and Pysher hand over as text.
pub fn event(channel: &str, event_name: &str, data_json: &str) -> String {
    format!(
        "{{\"event\":{},\"channel\":{},\"data\":{}}}",
        json_string(event_name),
        json_string(channel),
        json_string(data_json)
    )
}

/// What a subscribe to a channel of this name needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Subscribes without auth; vmsd publishes nothing on public channels.
    Public,
    /// `private-…`: needs the `auth` signature.
    Private,
    /// `presence-…` and `private-encrypted-…`: not offered.
    PresenceOrEncrypted,
}

/// A channel name Pusher itself would refuse: empty, over 164 characters, or with a
/// character outside `A-Z a-z 0-9 _ - = @ , . ;` (which also refuses pusher-js's reserved
/// `#server-to-user-…` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidChannelName;

impl std::fmt::Display for InvalidChannelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Invalid channel name")
    }
}

impl std::error::Error for InvalidChannelName {}

/// What subscribing to `channel` needs, or why no subscribe to it can succeed.
pub fn classify(channel: &str) -> Result<ChannelKind, InvalidChannelName> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b);
    if channel.is_empty() || channel.len() > MAX_CHANNEL_NAME_LEN || !channel.bytes().all(allowed) {
        return Err(InvalidChannelName);
    }
    // `private-encrypted-` first: it is also a `private-` name.
    Ok(
        if channel.starts_with("private-encrypted-") || channel.starts_with("presence-") {
            ChannelKind::PresenceOrEncrypted
        } else if channel.starts_with("private-") {
            ChannelKind::Private
        } else {
            ChannelKind::Public
        },
    )
}

/// The channel on which a session hears that it ended.
pub fn token_channel(access_token_id: &str) -> String {
    format!("private-token.{access_token_id}")
}

/// The channel on which an account hears of its permission and camera changes.
pub fn user_channel(account_id: u64) -> String {
    format!("private-user.{account_id}")
}

/// A new socket id, `<digits>.<digits>` from two random u32s: two ids collide with
/// probability 2⁻⁶⁴, and an id tells nothing about the next. Fails only when the OS has no
/// randomness to give.
pub fn new_socket_id() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)?;
    let [a0, a1, a2, a3, b0, b1, b2, b3] = bytes;
    Ok(format!(
        "{}.{}",
        u32::from_be_bytes([a0, a1, a2, a3]),
        u32::from_be_bytes([b0, b1, b2, b3])
    ))
}

/// `^\d+\.\d+$` with ASCII digits, as every Pusher HTTP library checks it, and at most 20
/// digits a side so that an attacker's id cannot be arbitrarily long.
pub fn valid_socket_id(s: &str) -> bool {
    let digits = |part: &str| {
        !part.is_empty()
            && part.len() <= MAX_SOCKET_ID_PART_LEN
            && part.bytes().all(|b| b.is_ascii_digit())
    };
    s.split_once('.')
        .is_some_and(|(left, right)| digits(left) && digits(right))
}

/// The `auth` a client must present to subscribe `socket_id` to the private `channel`:
/// `<app_key>:<lowercase hex HMAC-SHA256(app_secret, "<socket_id>:<channel>")>`.
pub fn sign(app_key: &str, app_secret: &[u8], socket_id: &str, channel: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, app_secret);
    let mac = ring::hmac::sign(&key, format!("{socket_id}:{channel}").as_bytes());
    format!("{app_key}:{}", hex::encode(mac.as_ref()))
}

/// Whether `auth` is [`sign`]'s answer. The key part must be vmsd's key (the whole string
/// is compared, as soketi does); the MAC is checked by ring in constant time. Upper-case
/// hex is accepted too: it carries the same MAC, and no client sends it.
pub fn verify(
    app_key: &str,
    app_secret: &[u8],
    socket_id: &str,
    channel: &str,
    auth: &str,
) -> bool {
    let Some(hex_mac) = auth
        .strip_prefix(app_key)
        .and_then(|rest| rest.strip_prefix(':'))
    else {
        return false;
    };
    let Ok(mac) = hex::decode(hex_mac) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, app_secret);
    ring::hmac::verify(&key, format!("{socket_id}:{channel}").as_bytes(), &mac).is_ok()
}

/// The `pusher:error` message for a missing or wrong signature, worded as Pusher words it
/// (its clients log it); the client's own string is quoted only up to a bound.
pub fn invalid_signature_message(socket_id: &str, channel: &str, got: Option<&str>) -> String {
    let got = got.unwrap_or("");
    let quoted = match got.char_indices().nth(MAX_QUOTED_SIGNATURE_LEN) {
        Some((end, _)) => &got[..end],
        None => got,
    };
    format!(
        "Invalid signature: Expected HMAC SHA256 hex digest of {socket_id}:{channel}, but got {quoted}"
    )
}

/// The two fields of a `POST /api/v1/broadcasting/auth` body; `None` where the field is
/// absent (or JSON `null`), for the route's `required` check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthRequestBody {
    pub socket_id: Option<String>,
    pub channel_name: Option<String>,
}

/// A `/broadcasting/auth` body that is too large, or starts with `{` and is not a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedAuthBody;

impl std::fmt::Display for MalformedAuthBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed broadcasting auth body")
    }
}

impl std::error::Error for MalformedAuthBody {}

/// Reads the auth route's body whatever its Content-Type says (the AIPIX iOS SDK sends
/// none): JSON when it starts with `{` after white space, otherwise a form
/// (`socket_id=…&channel_name=…`, in either order: Android sends `channel_name` first).
///
/// A JSON field that is not a string keeps its JSON text, so the route's format checks
/// refuse it rather than treating it as absent. A repeated form field keeps its last value,
/// as PHP (and so the AIPIX backend) reads forms.
pub fn parse_auth_body(body: &[u8]) -> Result<AuthRequestBody, MalformedAuthBody> {
    if body.len() > MAX_AUTH_BODY_BYTES {
        return Err(MalformedAuthBody);
    }
    let mut request = AuthRequestBody::default();
    if body.trim_ascii_start().starts_with(b"{") {
        let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
            return Err(MalformedAuthBody);
        };
        let mut field = |key: &str| match fields.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
        };
        request.socket_id = field("socket_id");
        request.channel_name = field("channel_name");
    } else {
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "socket_id" => request.socket_id = Some(value.into_owned()),
                "channel_name" => request.channel_name = Some(value.into_owned()),
                _ => {}
            }
        }
    }
    Ok(request)
}

/// Checks the upgrade URL's query for `protocol` 5, 6 or 7 (Android sends 5, Pysher 6,
/// pusher-js and Swift 7) and answers the close code otherwise.
///
/// SPEC §9 names only "another protocol → 4007". A URL with no `protocol` (or an empty one)
/// gets the protocol's own code for that case, 4008 "No protocol version supplied": every
/// known client sends one, and both codes are in the no-reconnect range, so the choice only
/// changes what a hand-made client reads. When `protocol` repeats, the first one counts.
pub fn accepted_protocol(query: Option<&str>) -> Result<(), u16> {
    let protocol = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(key, _)| key == "protocol")
            .map(|(_, value)| value)
    });
    match protocol.as_deref() {
        None | Some("") => Err(CLOSE_NO_PROTOCOL),
        Some("5" | "6" | "7") => Ok(()),
        Some(_) => Err(CLOSE_UNSUPPORTED_PROTOCOL),
    }
}

/// The reason text sent with a close code (pusher-js reports it as the error message).
/// Each is far below the 123-byte limit of a close frame's reason.
pub fn close_reason(code: u16) -> &'static str {
    match code {
        CLOSE_UNKNOWN_APP_KEY => "Application does not exist",
        CLOSE_UNSUPPORTED_PROTOCOL => "Unsupported protocol version",
        CLOSE_NO_PROTOCOL => "No protocol version supplied",
        CLOSE_SESSION_ENDED => "Session ended",
        CLOSE_OVER_CAPACITY => "Over capacity",
        CLOSE_RESTART => "Server restarting",
        CLOSE_PONG_NOT_RECEIVED => "Pong reply not received",
        _ => "",
    }
}

/// One SPEC §9 payload with empty innermost data; built by hand so the keys keep the
/// order the SPEC and the AIPIX backend show (`subject` first).
fn subject_data(subject: &str, inner_data: &str) -> String {
    format!(
        "{{\"subject\":\"{subject}\",\"data\":{{\"type\":\"{subject}\",\"status\":\"ok\",\"data\":{inner_data}}}}}"
    )
}

/// The `TokenPush` data when a session ends.
pub fn logout_data() -> String {
    subject_data("logout", "{}")
}

/// The `UserPush` data when an account's permission set changes.
pub fn permissions_updated_data() -> String {
    subject_data("permissions_updated", "{}")
}

/// The `UserPush` data when cameras are attached to or detached from an account.
pub fn cameras_updated_data(attached: &[u64], detached: &[u64]) -> String {
    let list = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    subject_data(
        "cameras_updated",
        &format!(
            "{{\"attached\":[{}],\"detached\":[{}]}}",
            list(attached),
            list(detached)
        ),
    )
}

#[cfg(test)]
mod tests {
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
}
