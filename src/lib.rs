//! vmsd — the user and access daemon of an on-prem VMS/NVR appliance.
//!
//! Map of the crate (one file per concern; a folder where a concern has several files):
//!
//! Running the daemon
//! - `daemon`       — `Daemon::open` + `Daemon::run`: everything `vmsd serve` does once its
//!   listeners are open (TLS, the store, background tasks, systemd, drain, final flush).
//! - `server`       — the accept loop: TLS handshake, hyper HTTP/1.1 connections, limits, drain.
//! - `hook_server`  — the media hook's plain-HTTP loopback listener (SPEC §8): limits, drain.
//! - `tls`          — rustls server config (ring provider), PEM, self-signed certificate, reload.
//! - `systemd`      — sd_notify, watchdog, socket activation.
//! - `logging`      — journald or stderr, never both.
//! - `shutdown`     — the shutdown signal shared by the server, sockets and background tasks.
//! - `housekeeping` — last-use times, the session sweep, audit pruning, idle hash memory.
//! - `config/`      — the TOML configuration, defaults (`mod.rs`), the all-at-once walk that
//!   validates a file (`parse.rs`, exit 78).
//! - `backup`       — `vmsd backup` / `vmsd restore`: the versioned export file.
//! - `offline`      — `vmsd admin reset-password`, with the daemon stopped.
//! - `files`        — files and directories created private (or with their mode) from the start.
//!
//! The core (typed domain errors, no HTTP)
//! - `app`          — `App`, shared as `Arc<App>`.
//! - `store/`       — everything that touches sled: trees, transactions + group flush, caches.
//! - `model`        — the stored records and their own rules.
//! - `permissions`  — the permission catalogue and the analytics licence rules.
//! - `accounts`     — creating, changing and deleting accounts (`AccountError`), audited.
//! - `auth`         — tokens and the caller behind one (`AuthError`).
//! - `login`        — login, logout and session revocation (`LoginError`).
//! - `directory/`   — directory accounts (SPEC §10, feature `directory`): the LDAP client,
//!   the group → role mapping, directory accounts' writes and the background sync.
//! - `throttle`     — per-account lockout and per-IP login throttling, in memory.
//! - `password`     — argon2id hashing off the runtime behind a bounded queue.
//! - `gate`         — that bounded queue (`max_concurrent` + `queue_limit`), also the directory's.
//! - `sockets`      — the registry of open WebSockets.
//! - `stream_token` — the signed stream tokens of stream URLs (SPEC §8).
//! - `media_hook`   — decoding a media server's authorization request; camera matching by path.
//! - `media_access` — who may watch which camera: issuing stream tokens, the hook's decision.
//! - `push_protocol/` — the Pusher Channels protocol: frames, channel auth, event payloads (SPEC §9).
//! - `pushes`       — the push hub: live Pusher sockets, their channels and authorizing
//!   sessions, and the fan-out of the store's change notices to them.
//!
//! The wire
//! - `router`       — maps method + path to an endpoint; 404/405.
//! - `handlers/`    — one file per REST area, `handlers/websocket/` (DeviceHive protocol),
//!   `handlers/pusher.rs` (the Pusher socket).
//! - `console`      — the built-in admin console (`src/console/`: HTML, CSS, JS modules),
//!   embedded and served at `/` and `/console/...` with its security headers.
//! - `error`        — `ApiError`: the one mapping from every error to status + Laravel body.
//! - `validate`     — Laravel-style field validation and messages (`FieldErrors`).
//! - `views`        — the JSON shapes the API renders (the seeds' objects).
#![forbid(unsafe_code)]

pub(crate) mod accounts;
pub mod app;
pub mod auth;
pub mod backup;
pub mod config;
pub mod console;
pub mod daemon;
#[cfg(feature = "directory")]
pub mod directory;
pub mod error;
pub(crate) mod files;
pub mod gate;
pub mod handlers;
pub mod hook_server;
pub mod housekeeping;
pub mod logging;
pub mod login;
pub mod media_access;
pub mod media_hook;
pub mod model;
pub mod offline;
pub mod password;
pub mod permissions;
pub mod push_protocol;
pub mod pushes;
pub mod router;
pub(crate) mod server;
pub mod shutdown;
pub mod sockets;
pub mod store;
pub mod stream_token;
pub mod systemd;
pub mod throttle;
pub mod tls;
pub mod validate;
pub mod views;

pub use app::App;
