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
mod tests;
