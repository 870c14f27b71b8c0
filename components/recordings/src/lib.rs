//! The recordings component: `recordings/` (list, retrieve, delete), the
//! storage hook, media-auth (api.md §6, recordings.md), direct downloads
//! under `/media/` and the maintenance run (`maintenance/run/`).

use meet_core::ports::Services;
use meet_core::recordings::{api, maintenance, media, storage_hook};
use meet_core::routing::{Resolution, Router};
use meet_core::{ApiError, ApiRequest, ApiResponse};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[derive(Debug, Clone, Copy)]
enum Route {
    Recordings,
    Recording,
    StorageHook,
    MediaAuth,
    Maintenance,
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
        .route("/api/v1.0/recordings/", Route::Recordings)
        .route("/api/v1.0/recordings/storage-hook/", Route::StorageHook)
        .route("/api/v1.0/recordings/media-auth/", Route::MediaAuth)
        .route("/api/v1.0/recordings/{id}/", Route::Recording)
        .route("/api/v1.0/maintenance/run/", Route::Maintenance)
}

fn route(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    // Downloads keep the file name's dot, which the API router refuses.
    if request.path.starts_with("/media/") {
        return media::download(request, services);
    }
    let (route, params) = match router().resolve(request)? {
        Resolution::Redirect(response) => return Ok(response),
        Resolution::Matched(route, params) => (route, params),
    };
    let mailer = meet_spin::SpinMailer;
    match route {
        Route::Recordings => api::list(request, services),
        Route::Recording => api::recording(request, services, &params[0]),
        Route::StorageHook => storage_hook::storage_hook(request, services, &mailer),
        Route::MediaAuth => media::media_auth(request, services),
        Route::Maintenance => maintenance::run(request, services, &mailer),
    }
}
