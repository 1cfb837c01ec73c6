//! The integration tests: one binary that starts the real server over TLS on an ephemeral
//! port with a temporary data dir, and talks to it as clients do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/common.rs"]
mod common;

#[path = "api/foundation.rs"]
mod foundation;

#[path = "api/auth.rs"]
mod auth;

#[path = "api/current_user.rs"]
mod current_user;

#[path = "api/errors.rs"]
mod errors;

#[path = "api/limits.rs"]
mod limits;

#[path = "api/websocket.rs"]
mod websocket;

#[path = "api/admin.rs"]
mod admin;

#[path = "api/systemd.rs"]
mod systemd;

#[path = "api/cli.rs"]
mod cli;

#[path = "api/invariants.rs"]
mod invariants;

#[path = "api/crash.rs"]
mod crash;

#[path = "api/hostile.rs"]
mod hostile;

#[path = "api/authz.rs"]
mod authz;

#[path = "api/brute_force.rs"]
mod brute_force;

#[path = "api/recovery.rs"]
mod recovery;

#[path = "api/secrets.rs"]
mod secrets;
