//! The integration tests: one binary that starts the real server over TLS on an ephemeral
//! port with a temporary data dir, and talks to it as clients do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/common.rs"]
mod common;

#[path = "api/foundation.rs"]
mod foundation;
