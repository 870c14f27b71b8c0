//! The identity component: frontend configuration, OIDC login and users.
//! It also owns every `/api/v1.0/` path no other component claims, so that
//! unknown API paths get a JSON 404, and the API root `/api/v1.0/`.

use meet_core::identity::config::bundled_frontend_config;
use meet_core::identity::{api as users_api, login};
use meet_core::ports::Services;
use meet_core::routing::{method_not_allowed, Resolution, Router};
use meet_core::{ApiError, ApiRequest, ApiResponse, Method};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[derive(Debug, Clone, Copy)]
enum Route {
    Root,
    Config,
    Authenticate,
    Callback,
    Logout,
    LogoutCallback,
    Users,
    Me,
    User,
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
        .route("/api/v1.0/", Route::Root)
        .route("/api/v1.0/config/", Route::Config)
        .route("/api/v1.0/authenticate/", Route::Authenticate)
        .route("/api/v1.0/callback/", Route::Callback)
        .route("/api/v1.0/logout/", Route::Logout)
        .route("/api/v1.0/logout-callback/", Route::LogoutCallback)
        .route("/api/v1.0/users/", Route::Users)
        .route("/api/v1.0/users/me/", Route::Me)
        .route("/api/v1.0/users/{id}/", Route::User)
}

fn route(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let (route, params) = match router().resolve(request)? {
        Resolution::Redirect(response) => return Ok(response),
        Resolution::Matched(route, params) => (route, params),
    };
    let safe_only =
        |handler: fn(&ApiRequest, &Services) -> Result<ApiResponse, ApiError>| match request.method
        {
            Method::GET | Method::HEAD => handler(request, services),
            _ => Err(method_not_allowed(request)),
        };
    match route {
        Route::Root => users_api::api_root(request, services),
        Route::Config => safe_only(config),
        Route::Authenticate => safe_only(login::authenticate),
        Route::Callback => safe_only(login::callback),
        Route::LogoutCallback => safe_only(login::logout_callback),
        Route::Logout => match request.method {
            Method::GET | Method::HEAD | Method::POST => login::logout(request, services),
            _ => Err(method_not_allowed(request)),
        },
        Route::Users => users_api::users(request, services),
        Route::Me => users_api::me(request, services),
        Route::User => users_api::user(request, services, &params[0]),
    }
}

fn config(_request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let payload = bundled_frontend_config(services.variables)?;
    Ok(ApiResponse::json(200, &payload))
}
