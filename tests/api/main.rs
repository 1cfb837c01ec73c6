//! The integration tests: one binary that starts the real server over TLS on an ephemeral
//! port with a temporary data dir, and talks to it as clients do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_misc;
mod admin_support;
mod auth;
mod authz;
mod brute_force;
mod cameras;
mod cli;
mod common;
mod console;
mod crash;
mod current_user;
mod devicehive_client;
#[cfg(feature = "directory")]
mod directory;
mod errors;
#[cfg(feature = "directory")]
mod fake_ad;
mod foundation;
mod hostile;
mod hostile_listener;
mod invariants;
mod licenses;
mod limits;
mod nginx;
mod pushes;
mod pushes_clients;
mod pushes_sessions;
mod recovery;
mod regular_users;
mod rehash;
mod secrets;
mod seed_shapes;
mod sessions;
#[cfg(feature = "directory")]
mod slapd;
mod special_users;
mod systemd;
mod video;
mod video_client;
mod video_revocation;
mod websocket;
mod websocket_devicehive;
mod websocket_limits;
mod websocket_users;
