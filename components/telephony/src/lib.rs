//! The telephony component: SIP gateways look up the room of a PIN, get a
//! LiveKit token for the caller or wait in the lobby (issue 11).

use meet_core::ports::Services;
use meet_core::routing::{Resolution, Router};
use meet_core::telephony::api as telephony_api;
use meet_core::{ApiError, ApiRequest, ApiResponse};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[derive(Debug, Clone, Copy)]
enum Route {
    Lookup,
}

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    meet_spin::serve(request, response_out, |request| {
        meet_spin::with_services(|services| route(request, services))
    })
    .await
}

fn router() -> Router<Route> {
    Router::new().route("/api/v1.0/telephony/lookup/", Route::Lookup)
}

fn route(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    match router().resolve(request)? {
        Resolution::Redirect(response) => Ok(response),
        Resolution::Matched(Route::Lookup, _) => telephony_api::lookup(request, services),
    }
}
