//! The identity component: `config/` today, users and login as they come.
//! It also owns every `/api/v1.0/` path no other component claims, so that
//! unknown API paths get a JSON 404.

use meet_core::config::frontend_config;
use meet_core::routing::{Resolution, Router};
use meet_core::settings::Settings;
use meet_core::{ApiError, ApiRequest, ApiResponse, Method};
use meet_spin::SpinVariables;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[derive(Debug, Clone, Copy)]
enum Route {
    Config,
}

#[http_component]
fn handle(request: Request) -> Response {
    meet_spin::serve(request, route)
}

fn route(request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let router = Router::new().route("/api/v1.0/config/", Route::Config);
    match router.resolve(request)? {
        Resolution::Redirect(response) => Ok(response),
        Resolution::Matched(Route::Config, _) => match request.method {
            Method::Get | Method::Head => config(),
            ref other => Err(ApiError::MethodNotAllowed(other.as_str().to_string())),
        },
    }
}

fn config() -> Result<ApiResponse, ApiError> {
    let payload = frontend_config(&Settings::new(&SpinVariables))?;
    Ok(ApiResponse::json(200, &payload))
}
