//! Stream tokens (SPEC §8): the signed, self-contained tokens put into stream URLs, which bind a
//! session, a camera and an expiry. Issuing one writes nothing; checking one needs only the key.
//!
//! Wire form: base64url without padding of
//! `version (1) | camera_id (u64 BE) | expires_at (i64 BE) | access_token_id (40 raw bytes) |
//! HMAC-SHA256 tag (32)`, the tag covering everything before it: 89 bytes, 119 characters.
//! Every field has a fixed size, so a token of any other length is malformed before any
//! cryptography runs.
//!
//! What this module does not check, because it needs the store: that the session is still
//! valid and that the camera is still assigned to its account. The caller does both.

use std::fmt;

use data_encoding::BASE64URL_NOPAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// SPEC §8's bound on a stream token; longer input is refused before it is decoded.
pub const MAX_TOKEN_CHARS: usize = 200;

/// Length of the secret a `StreamKey` is built from.
pub const KEY_BYTES: usize = 32;

/// Bumped when the layout changes, so that an old token is refused as malformed rather than
/// read with the wrong layout.
const VERSION: u8 = 1;
const ACCESS_TOKEN_ID_HEX_CHARS: usize = 80;
const ACCESS_TOKEN_ID_BYTES: usize = ACCESS_TOKEN_ID_HEX_CHARS / 2;
const CAMERA_ID_AT: usize = 1;
const EXPIRES_AT_AT: usize = CAMERA_ID_AT + 8;
const ACCESS_TOKEN_ID_AT: usize = EXPIRES_AT_AT + 8;
const SIGNED_BYTES: usize = ACCESS_TOKEN_ID_AT + ACCESS_TOKEN_ID_BYTES;
/// The full HMAC-SHA256 tag. Truncating it to 16 bytes would save 22 characters, but the token
/// is far under the 200-character bound anyway, and `ring::hmac::verify` compares only a full
/// tag in constant time; a truncated one would need a hand-written comparison.
const TAG_BYTES: usize = 32;
const TOKEN_BYTES: usize = SIGNED_BYTES + TAG_BYTES;

/// What a stream token asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamClaims {
    /// The public id of the issuing session: 80 lowercase hex characters.
    pub access_token_id: String,
    pub camera_id: u64,
    /// Unix seconds; the token is valid while `now < expires_at`, as sessions are.
    pub expires_at: i64,
}

/// Why a token was refused. All three mean 401 at the hook (SPEC §8); they are told apart for
/// the debug log and the refusal counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamTokenError {
    /// Not a token of this format: wrong length, alphabet, encoding or version.
    Malformed,
    /// Well-formed, but not signed with this key (forged, tampered, or the key changed).
    BadSignature,
    Expired,
}

impl fmt::Display for StreamTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamTokenError::Malformed => "malformed stream token",
            StreamTokenError::BadSignature => "stream token signature does not verify",
            StreamTokenError::Expired => "stream token expired",
        })
    }
}

impl std::error::Error for StreamTokenError {}

/// Claims that cannot be put into a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidClaims {
    /// `access_token_id` is not 80 lowercase hex characters.
    AccessTokenId,
}

impl fmt::Display for InvalidClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidClaims::AccessTokenId => {
                f.write_str("access_token_id is not 80 lowercase hex characters")
            }
        }
    }
}

impl std::error::Error for InvalidClaims {}

/// Why a `StreamKey` could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKeyError {
    /// The stored secret has this many bytes instead of 32.
    WrongLength(usize),
    NoRandomness,
}

impl fmt::Display for StreamKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamKeyError::WrongLength(n) => {
                write!(f, "stream token key has {n} bytes, expected {KEY_BYTES}")
            }
            StreamKeyError::NoRandomness => {
                f.write_str("the OS gave no randomness for a stream token key")
            }
        }
    }
}

impl std::error::Error for StreamKeyError {}

/// The HMAC-SHA256 key that signs and checks stream tokens.
pub struct StreamKey {
    key: hmac::Key,
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret never reaches a log.
        f.write_str("StreamKey(..)")
    }
}

impl StreamKey {
    /// The key from its stored secret, which must be exactly 32 bytes: a shorter one would be
    /// a weaker key, a longer one a sign that something else was stored there.
    pub fn from_bytes(secret: &[u8]) -> Result<StreamKey, StreamKeyError> {
        if secret.len() != KEY_BYTES {
            return Err(StreamKeyError::WrongLength(secret.len()));
        }
        Ok(StreamKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// A new random key, with the secret the caller keeps in the store.
    pub fn generate() -> Result<([u8; KEY_BYTES], StreamKey), StreamKeyError> {
        let mut secret = [0u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| StreamKeyError::NoRandomness)?;
        let key = StreamKey::from_bytes(&secret)?;
        Ok((secret, key))
    }

    /// The token for `claims`: 119 characters of `[A-Za-z0-9_-]`.
    pub fn issue(&self, claims: &StreamClaims) -> Result<String, InvalidClaims> {
        let id = claims.access_token_id.as_bytes();
        // Lowercase only, so that one session id has exactly one token form and a token
        // round-trips to the id the store knows.
        if id.len() != ACCESS_TOKEN_ID_HEX_CHARS
            || !id.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(InvalidClaims::AccessTokenId);
        }
        let mut raw_id = [0u8; ACCESS_TOKEN_ID_BYTES];
        hex::decode_to_slice(id, &mut raw_id).map_err(|_| InvalidClaims::AccessTokenId)?;

        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.push(VERSION);
        bytes.extend_from_slice(&claims.camera_id.to_be_bytes());
        bytes.extend_from_slice(&claims.expires_at.to_be_bytes());
        bytes.extend_from_slice(&raw_id);
        let tag = hmac::sign(&self.key, &bytes);
        bytes.extend_from_slice(tag.as_ref());
        Ok(BASE64URL_NOPAD.encode(&bytes))
    }

    /// The claims of `token` if it is well-formed, signed with this key and unexpired at
    /// `now` (unix seconds). Whether its session and camera assignment still hold is the
    /// caller's to check.
    pub fn verify(&self, token: &str, now: i64) -> Result<StreamClaims, StreamTokenError> {
        // Bounded before decoding, so hostile input costs nothing beyond its length check.
        if token.len() > MAX_TOKEN_CHARS {
            return Err(StreamTokenError::Malformed);
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        match BASE64URL_NOPAD.decode_len(token.len()) {
            Ok(TOKEN_BYTES) => {}
            _ => return Err(StreamTokenError::Malformed),
        }
        // Strict decoding: non-canonical trailing bits are refused, so one byte string has
        // exactly one token form and no altered character decodes to the same bytes.
        BASE64URL_NOPAD
            .decode_mut(token.as_bytes(), &mut bytes)
            .map_err(|_| StreamTokenError::Malformed)?;
        let (signed, tag) = bytes.split_at(SIGNED_BYTES);
        if signed.first() != Some(&VERSION) {
            return Err(StreamTokenError::Malformed);
        }
        hmac::verify(&self.key, signed, tag).map_err(|_| StreamTokenError::BadSignature)?;

        let camera_id = u64::from_be_bytes(field(signed, CAMERA_ID_AT)?);
        let expires_at = i64::from_be_bytes(field(signed, EXPIRES_AT_AT)?);
        let raw_id: [u8; ACCESS_TOKEN_ID_BYTES] = field(signed, ACCESS_TOKEN_ID_AT)?;
        if now >= expires_at {
            return Err(StreamTokenError::Expired);
        }
        Ok(StreamClaims {
            access_token_id: hex::encode(raw_id),
            camera_id,
            expires_at,
        })
    }
}

/// The `N` bytes of `signed` at `at`. The layout is fixed and the length checked before, so
/// this cannot fail on a decoded token; it still answers `Malformed` rather than panic.
fn field<const N: usize>(signed: &[u8], at: usize) -> Result<[u8; N], StreamTokenError> {
    signed
        .get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(StreamTokenError::Malformed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000;

    fn key(fill: u8) -> StreamKey {
        StreamKey::from_bytes(&[fill; KEY_BYTES]).unwrap()
    }

    fn claims() -> StreamClaims {
        StreamClaims {
            access_token_id: "0123456789abcdef".repeat(5),
            camera_id: 42,
            expires_at: NOW + 3600,
        }
    }

    fn url_safe(token: &str) -> bool {
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    #[test]
    fn round_trip() {
        let k = key(7);
        let token = k.issue(&claims()).unwrap();
        assert_eq!(token.len(), 119);
        assert!(url_safe(&token), "{token}");
        assert_eq!(k.verify(&token, NOW).unwrap(), claims());
        assert_eq!(k.verify(&token, NOW + 3599).unwrap(), claims());
    }

    #[test]
    fn layout_is_stable() {
        // Tokens in flight must survive an upgrade: a layout change shows up here first. The
        // expected value was computed independently, with Python's hmac and base64 modules.
        let token = key(7).issue(&claims()).unwrap();
        assert_eq!(
            token,
            "AQAAAAAAAAAqAAAAAGhO75ABI0VniavN7wEjRWeJq83vASNFZ4mrze8BI0VniavN7wEjRWeJq83v\
             Sd9bjGJ9GR9T9m6UoV_eJd9Z7yNXiqB4o4UcQx7vf5M"
        );
    }

    #[test]
    fn generated_keys_differ_and_work() {
        let (secret_a, a) = StreamKey::generate().unwrap();
        let (secret_b, b) = StreamKey::generate().unwrap();
        assert_ne!(secret_a, secret_b);
        let token = a.issue(&claims()).unwrap();
        assert_eq!(a.verify(&token, NOW).unwrap(), claims());
        assert_eq!(b.verify(&token, NOW), Err(StreamTokenError::BadSignature));
        let reloaded = StreamKey::from_bytes(&secret_a).unwrap();
        assert_eq!(reloaded.verify(&token, NOW).unwrap(), claims());
        assert_eq!(format!("{a:?}"), "StreamKey(..)");
    }

    #[test]
    fn key_length_is_exactly_32() {
        for n in [0, 16, 31, 33, 64] {
            assert_eq!(
                StreamKey::from_bytes(&vec![1; n]).unwrap_err(),
                StreamKeyError::WrongLength(n)
            );
        }
    }

    #[test]
    fn extreme_values_fit_and_round_trip() {
        let k = key(1);
        for (camera_id, expires_at, id) in [
            (u64::MAX, i64::MAX, "f".repeat(80)),
            (0, i64::MIN + 1, "0".repeat(80)),
            (u64::MAX, -1, "a0".repeat(40)),
        ] {
            let c = StreamClaims {
                access_token_id: id,
                camera_id,
                expires_at,
            };
            let token = k.issue(&c).unwrap();
            assert!(token.len() <= MAX_TOKEN_CHARS, "{}", token.len());
            assert!(url_safe(&token), "{token}");
            assert!(!token.contains('.'));
            if expires_at > NOW {
                assert_eq!(k.verify(&token, NOW).unwrap(), c);
            } else {
                assert_eq!(k.verify(&token, NOW), Err(StreamTokenError::Expired));
            }
        }
    }

    #[test]
    fn invalid_access_token_ids_are_not_issued() {
        let k = key(1);
        for id in [
            String::new(),
            "a".repeat(79),
            "a".repeat(81),
            "A".repeat(80),
            "g".repeat(80),
            format!("{}é", "a".repeat(78)),
        ] {
            let c = StreamClaims {
                access_token_id: id.clone(),
                ..claims()
            };
            assert_eq!(k.issue(&c), Err(InvalidClaims::AccessTokenId), "{id:?}");
        }
    }

    #[test]
    fn expiry_is_exclusive() {
        let k = key(3);
        let token = k.issue(&claims()).unwrap();
        let expires_at = claims().expires_at;
        assert!(k.verify(&token, expires_at - 1).is_ok());
        assert_eq!(k.verify(&token, expires_at), Err(StreamTokenError::Expired));
        assert_eq!(k.verify(&token, i64::MAX), Err(StreamTokenError::Expired));
    }

    #[test]
    fn another_key_is_bad_signature() {
        let token = key(1).issue(&claims()).unwrap();
        assert_eq!(
            key(2).verify(&token, NOW),
            Err(StreamTokenError::BadSignature)
        );
    }

    #[test]
    fn every_single_character_change_is_refused() {
        let k = key(9);
        let token = k.issue(&claims()).unwrap();
        let replacements: Vec<char> =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. %é\0"
                .chars()
                .collect();
        let original: Vec<char> = token.chars().collect();
        let mut tried = 0;
        for at in 0..original.len() {
            for &c in &replacements {
                if c == original[at] {
                    continue;
                }
                let mut tampered = original.clone();
                tampered[at] = c;
                let tampered: String = tampered.into_iter().collect();
                match k.verify(&tampered, NOW) {
                    Err(StreamTokenError::Malformed | StreamTokenError::BadSignature) => {}
                    other => panic!("{tampered:?} at {at}: {other:?}"),
                }
                tried += 1;
            }
        }
        assert!(tried > 119 * 60, "{tried}");
    }

    #[test]
    fn truncations_and_extensions_are_malformed() {
        let k = key(9);
        let token = k.issue(&claims()).unwrap();
        for end in 0..token.len() {
            assert_eq!(
                k.verify(&token[..end], NOW),
                Err(StreamTokenError::Malformed),
                "{end}"
            );
        }
        for extra in ["A", "AA", "=", ".x", "AAAA"] {
            assert_eq!(
                k.verify(&format!("{token}{extra}"), NOW),
                Err(StreamTokenError::Malformed),
                "{extra}"
            );
        }
    }

    #[test]
    fn another_version_is_malformed() {
        // A version-2 token signed with the right key: its layout is unknown, so it is
        // refused before the signature could be taken as proof of anything.
        let k = key(5);
        let token = k.issue(&claims()).unwrap();
        let mut bytes = BASE64URL_NOPAD.decode(token.as_bytes()).unwrap();
        bytes[0] = 2;
        bytes.truncate(SIGNED_BYTES);
        let tag = hmac::sign(&k.key, &bytes);
        bytes.extend_from_slice(tag.as_ref());
        let v2 = BASE64URL_NOPAD.encode(&bytes);
        assert_eq!(k.verify(&v2, NOW), Err(StreamTokenError::Malformed));
    }

    #[test]
    fn garbage_is_malformed() {
        let k = key(4);
        let huge = "A".repeat(10 * 1024);
        let non_ascii = "é".repeat(59) + "A";
        let inputs = [
            "",
            " ",
            "token",
            "Bearer abc",
            huge.as_str(),
            &huge[..201],
            &huge[..200],
            &huge[..119],
            non_ascii.as_str(),
            "日本語",
            "\0\0\0\0",
        ];
        for input in inputs {
            assert_eq!(
                k.verify(input, NOW),
                Err(StreamTokenError::Malformed),
                "{:?}",
                input.get(..20)
            );
        }
    }
}
