//! DeviceHive-compatible WebSocket API (SPEC §6). Being written; until then the route is 404.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::ApiError;
use crate::App;

pub async fn upgrade(
    _app: Arc<App>,
    _req: hyper::Request<hyper::body::Incoming>,
    _peer: SocketAddr,
) -> Result<http::Response<crate::error::Body>, ApiError> {
    Err(ApiError::NotFound)
}
