//! The webhooks component: `POST /api/v1.0/rooms/webhooks-livekit/`, called
//! by the LiveKit server (livekit.md §5). No session, bearer or CSRF: the
//! LiveKit JWT is the only authentication; events go through the dispatch
//! table of `meet_core::webhooks::dispatch`.

use meet_core::ports::Services;
use meet_core::routing::{Resolution, Router};
use meet_core::webhooks::api as webhooks_api;
use meet_core::{ApiError, ApiRequest, ApiResponse};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[derive(Debug, Clone, Copy)]
enum Route {
    LiveKit,
}

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    meet_spin::serve(request, response_out, |request| {
        meet_spin::with_services(|services| route(request, services))
    })
    .await
}

fn router() -> Router<Route> {
    Router::new().route("/api/v1.0/rooms/webhooks-livekit/", Route::LiveKit)
}

fn route(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    match router().resolve(request)? {
        Resolution::Redirect(response) => Ok(response),
        Resolution::Matched(Route::LiveKit, _) => webhooks_api::livekit_webhook(request, services),
    }
}
