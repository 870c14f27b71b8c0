//! `POST rooms/webhooks-livekit/` (livekit.md §5): no session, bearer or
//! CSRF; the LiveKit JWT in `Authorization` is the only authentication.

use serde_json::json;

use meet_livekit::{receive_webhook, WebhookError};

use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::livekit::LiveKit;
use crate::ports::Services;
use crate::routing::method_not_allowed;
use crate::webhooks::{dispatch, store};

fn failure(status: u16, message: &str) -> ApiError {
    ApiError::Custom {
        status,
        body: json!({"status": "error", "message": message}),
    }
}

pub fn livekit_webhook(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    if request.method != Method::POST {
        return Err(method_not_allowed(request));
    }
    let livekit = LiveKit::load(&services.settings())?;
    let now = services.clock.now();
    let event = match receive_webhook(
        &request.body,
        request.header("authorization"),
        &livekit.credentials,
        now.into(),
    ) {
        Ok(event) => event,
        Err(WebhookError::MissingAuthorization) => {
            return Err(failure(401, "Authorization header missing"))
        }
        Err(error) => {
            eprintln!("LiveKit webhook refused: {error}");
            return Err(failure(400, "Invalid webhook payload"));
        }
    };
    if !event.is_known() {
        return Err(failure(
            422,
            &format!("Unknown webhook type: {}", event.event),
        ));
    }
    // A redelivered event (same id) has already had its effect.
    if !event.id.is_empty() && !store::first_delivery(services.db, &event.id, now)? {
        return Ok(success());
    }
    if let Err(error) = dispatch::dispatch(services, &event) {
        if !event.id.is_empty() {
            store::forget(services.db, &event.id)?;
        }
        return Err(error);
    }
    Ok(success())
}

fn success() -> ApiResponse {
    ApiResponse::json(200, &json!({"status": "success"}))
}
