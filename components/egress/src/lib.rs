//! The egress component: `rooms/{id}/start-recording/` and
//! `rooms/{id}/stop-recording/` (api.md §4, livekit.md §4).

use meet_core::ports::Services;
use meet_core::recordings::egress;
use meet_core::routing::{Resolution, Router};
use meet_core::{ApiError, ApiRequest, ApiResponse};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[derive(Debug, Clone, Copy)]
enum Route {
    Start,
    Stop,
}

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    meet_spin::serve(request, response_out, |request| {
        meet_spin::with_services(|services| route(request, services))
    })
    .await
}

fn router() -> Router<Route> {
    Router::new()
        .route("/api/v1.0/rooms/{id}/start-recording/", Route::Start)
        .route("/api/v1.0/rooms/{id}/stop-recording/", Route::Stop)
}

fn route(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let (route, params) = match router().resolve(request)? {
        Resolution::Redirect(response) => return Ok(response),
        Resolution::Matched(route, params) => (route, params),
    };
    match route {
        Route::Start => egress::start_recording(request, services, &params[0]),
        Route::Stop => egress::stop_recording(request, services, &params[0]),
    }
}
