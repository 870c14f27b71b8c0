//! The rooms component: rooms, their LiveKit tokens and the room-creation
//! callback, invitations by email (api.md §4).

use meet_core::invitations::api as invitations_api;
use meet_core::lobby::api as lobby_api;
use meet_core::ports::Services;
use meet_core::rooms::api as rooms_api;
use meet_core::routing::{Resolution, Router};
use meet_core::{ApiError, ApiRequest, ApiResponse};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[derive(Debug, Clone, Copy)]
enum Route {
    Rooms,
    CreationCallback,
    Room,
    Invite,
    RequestEntry,
    WaitingParticipants,
    Enter,
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
        .route("/api/v1.0/rooms/", Route::Rooms)
        .route(
            "/api/v1.0/rooms/creation-callback/",
            Route::CreationCallback,
        )
        .route("/api/v1.0/rooms/{id}/", Route::Room)
        .route("/api/v1.0/rooms/{id}/invite/", Route::Invite)
        .route("/api/v1.0/rooms/{id}/request-entry/", Route::RequestEntry)
        .route(
            "/api/v1.0/rooms/{id}/waiting-participants/",
            Route::WaitingParticipants,
        )
        .route("/api/v1.0/rooms/{id}/enter/", Route::Enter)
}

fn route(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let (route, params) = match router().resolve(request)? {
        Resolution::Redirect(response) => return Ok(response),
        Resolution::Matched(route, params) => (route, params),
    };
    match route {
        Route::Rooms => rooms_api::rooms(request, services),
        Route::CreationCallback => rooms_api::creation_callback(request, services),
        Route::Room => rooms_api::room(request, services, &params[0]),
        Route::Invite => {
            invitations_api::invite(request, services, &meet_spin::SpinMailer, &params[0])
        }
        Route::RequestEntry => lobby_api::request_entry(request, services, &params[0]),
        Route::WaitingParticipants => {
            lobby_api::waiting_participants(request, services, &params[0])
        }
        Route::Enter => lobby_api::enter(request, services, &params[0]),
    }
}
