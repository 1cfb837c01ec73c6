//! Unauthenticated endpoints: `GET /healthz` and `GET /api/v1/static/basic`.

use serde_json::json;

use super::{ok, HandlerResult};
use crate::app::App;
use crate::error::ApiError;

/// 200 when the store answers a read, 503 otherwise (and while shutting down).
pub async fn healthz(app: &App) -> HandlerResult {
    if app.is_shutting_down() {
        return Err(ApiError::Unavailable { retry_after: 5 });
    }
    match app.store.probe() {
        Ok(()) => ok(&json!({"status": "ok"})),
        Err(e) => {
            tracing::error!(error = %e, "health probe: the store does not answer");
            Err(ApiError::Unavailable { retry_after: 5 })
        }
    }
}

pub fn static_basic(app: &App) -> HandlerResult {
    ok(&json!({
        "available_locales": app.config.locales.available,
        "is_captcha_available": false,
        "is_external_auth_enabled": false,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
