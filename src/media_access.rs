//! Who may watch which camera (SPEC §8): issuing a stream token for a caller's camera, and the
//! decision on a media server's authorization request (`MediaDecision`), from the stream
//! token, the store's reads and its in-memory caches only: no disk write, no HTTP.
//!
//! The decision, in order:
//! - an action vmsd never allows (publish, api, metrics, pprof, anything unknown), or a
//!   request that names no stream (`HookDecodeError`) → `Forbidden`;
//! - no token → `Unauthenticated` (so that MediaMTX and nginx ask the player for one);
//! - a token that is malformed, badly signed or expired, whose session is gone or expired, or
//!   whose account may no longer use tokens → `Unauthenticated`;
//! - a path that names no camera or another camera than the token's, a camera no longer
//!   assigned to the account, or playback without `archives-show` → `Forbidden`;
//! - otherwise `Allow`.

use std::cell::Cell;

use crate::app::App;
use crate::media_hook::{match_camera, HookCheck, HookDecodeError, MediaAction};
use crate::model::{now, UnixTime};
use crate::permissions::ARCHIVES_SHOW;
use crate::store::{Authenticated, StoreError};
use crate::stream_token::{InvalidClaims, StreamClaims, StreamTokenError};

/// What the hook answers (SPEC §8: 200, 401, 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaDecision {
    Allow,
    Unauthenticated(Unauthenticated),
    Forbidden(Forbidden),
}

/// Why a request was answered 401, for the debug log and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    NoToken,
    Token(StreamTokenError),
    /// The session was revoked, replaced, swept or has expired.
    SessionEnded,
    /// Disabled, locked by an admin, deleted, or a temporary user past `expired_at`.
    AccountInactive,
}

/// Why a request was answered 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// publish, api, metrics, pprof or anything else but read and playback.
    Action,
    /// The request could not be decoded or named no stream path.
    Undecodable,
    /// The path names no camera.
    UnknownPath,
    /// The path names another camera than the one the token is for.
    OtherCamera,
    /// The token's camera is not (or no longer) assigned to its account.
    NotAssigned,
    /// Playback without `archives-show`.
    NoArchivePermission,
}

/// A stream token for `camera_id`, bound to the caller's session, valid for
/// `media.stream_token_ttl` but never beyond the session itself. Writes nothing.
pub fn issue_token(
    app: &App,
    access_token_id: &str,
    session_expires_at: UnixTime,
    camera_id: u64,
) -> Result<String, InvalidClaims> {
    let ttl = i64::try_from(app.config.media.stream_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let expires_at = now().saturating_add(ttl).min(session_expires_at);
    app.stream_key.issue(&StreamClaims {
        access_token_id: access_token_id.to_owned(),
        camera_id,
        expires_at,
    })
}

/// The answer to one decoded hook request; counts refusals. Only a storage failure is an
/// error (the hook answers it 500, which every media server treats as a deny).
pub fn decide(
    app: &App,
    check: Result<HookCheck, HookDecodeError>,
) -> Result<MediaDecision, StoreError> {
    let decision = decide_uncounted(app, check)?;
    match decision {
        MediaDecision::Allow => {}
        MediaDecision::Unauthenticated(_) => app.media_refusals.count_unauthenticated(),
        MediaDecision::Forbidden(_) => app.media_refusals.count_forbidden(),
    }
    Ok(decision)
}

fn decide_uncounted(
    app: &App,
    check: Result<HookCheck, HookDecodeError>,
) -> Result<MediaDecision, StoreError> {
    use MediaDecision::{Allow, Forbidden as Deny, Unauthenticated as NoAuth};
    let check = match check {
        Ok(check) => check,
        Err(_) => return Ok(Deny(Forbidden::Undecodable)),
    };
    let playback = match &check.action {
        MediaAction::Read => false,
        MediaAction::Playback => true,
        MediaAction::Refused(_) => return Ok(Deny(Forbidden::Action)),
    };
    let Some(token) = check.token.as_deref() else {
        return Ok(NoAuth(Unauthenticated::NoToken));
    };
    let at = now();
    let claims = match app.stream_key.verify(token, at) {
        Ok(claims) => claims,
        Err(e) => return Ok(NoAuth(Unauthenticated::Token(e))),
    };
    let Some(Authenticated { session, account }) = app
        .store
        .authenticated_by_token_id(&claims.access_token_id)?
    else {
        return Ok(NoAuth(Unauthenticated::SessionEnded));
    };
    // The session, not its access token: one waiting to be refreshed still lives (SPEC §6).
    if session.ends_at() <= at {
        return Ok(NoAuth(Unauthenticated::SessionEnded));
    }
    if !account.may_use_tokens(at) {
        return Ok(NoAuth(Unauthenticated::AccountInactive));
    }
    // Lookups that fail in storage end the match; the failure is reported after it.
    let failure = Cell::new(None);
    // From memory while nothing was written (`Store::media_camera`): a default path
    // ("cam7") would otherwise read and decode the camera's record on every check.
    let camera = match_camera(&check.path, &app.config.media.low_suffix, |path| match app
        .store
        .media_camera(path)
    {
        Ok(found) => found,
        Err(e) => {
            failure.set(Some(e));
            None
        }
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    let Some(camera) = camera else {
        return Ok(Deny(Forbidden::UnknownPath));
    };
    if camera != claims.camera_id {
        return Ok(Deny(Forbidden::OtherCamera));
    }
    // Deleting a camera detaches it from every account in the same transaction, so this
    // also refuses a deleted camera.
    if !account.cameras.contains(&camera) {
        return Ok(Deny(Forbidden::NotAssigned));
    }
    if playback && !account.permissions.contains(&ARCHIVES_SHOW) {
        return Ok(Deny(Forbidden::NoArchivePermission));
    }
    Ok(Allow)
}
