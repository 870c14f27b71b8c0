//! The accesses component: who holds which role on which room (api.md §5).

use meet_core::accesses::api as accesses;
use meet_core::ports::Services;
use meet_core::routing::{Resolution, Router};
use meet_core::{ApiError, ApiRequest, ApiResponse};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[derive(Debug, Clone, Copy)]
enum Route {
    Accesses,
    Access,
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
        .route("/api/v1.0/resource-accesses/", Route::Accesses)
        .route("/api/v1.0/resource-accesses/{id}/", Route::Access)
}

fn route(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let (route, params) = match router().resolve(request)? {
        Resolution::Redirect(response) => return Ok(response),
        Resolution::Matched(route, params) => (route, params),
    };
    match (route, params.as_slice()) {
        (Route::Accesses, _) => accesses::accesses(request, services),
        (Route::Access, [id]) => accesses::access(request, services, id),
        (Route::Access, _) => Err(ApiError::internal("the access route has one parameter")),
    }
}
