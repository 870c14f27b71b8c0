//! The users endpoints (api.md §3): `users/`, `users/me/`, `users/{id}/`,
//! and the API root that lists the routers' list routes (api.md §7).

use serde_json::json;

use crate::auth::session::request_origin;
use crate::auth::{authenticate, Caller};
use crate::body::parse_object;
use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::identity::store as user_store;
use crate::identity::users::parse_user_update;
use crate::pagination::{empty_page, paginate, PAGE_SIZE};
use crate::ports::Services;
use crate::routing::method_not_allowed;

/// Whether `zone` is an IANA time zone name.
pub fn is_valid_timezone(zone: &str) -> bool {
    zone.parse::<chrono_tz::Tz>().is_ok()
}

/// `GET /api/v1.0/`: DRF's API root (anyone), each registered list route as
/// an absolute URL built like the pagination links, in registration order.
pub fn api_root(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    // DRF authenticates first: a bad bearer token is still its 401.
    authenticate(request, services)?;
    if !matches!(request.method, Method::GET | Method::HEAD) {
        return Err(method_not_allowed(request));
    }
    let origin = request_origin(request).unwrap_or_default();
    let url = |name: &str| format!("{origin}/api/v1.0/{name}/");
    Ok(ApiResponse::json(
        200,
        &json!({
            "users": url("users"),
            "rooms": url("rooms"),
            "recordings": url("recordings"),
            "resource-accesses": url("resource-accesses"),
        }),
    ))
}

/// `/users/`: the list (empty unless unsecure listing is allowed).
pub fn users(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    caller.require_user()?;
    if !matches!(request.method, Method::GET | Method::HEAD) {
        return Err(method_not_allowed(request));
    }
    if !services.settings().bool("allow_unsecure_user_listing")? {
        return Ok(ApiResponse::json(200, &empty_page()));
    }
    let query = request.query_param("q").filter(|q| !q.is_empty());
    let page = paginate(
        request,
        PAGE_SIZE,
        |limit, offset| user_store::list(services.db, query.as_deref(), limit, offset),
        |user| user.to_json(),
    )?;
    Ok(ApiResponse::json(200, &page))
}

/// `/users/me/`: the caller.
pub fn me(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    let user = caller.require_user()?;
    if !matches!(request.method, Method::GET | Method::HEAD) {
        return Err(method_not_allowed(request));
    }
    Ok(ApiResponse::json(200, &user.to_json()))
}

/// `/users/{id}/`: only PUT and PATCH of one's own language and time zone.
pub fn user(request: &ApiRequest, services: &Services, id: &str) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    let me = caller.require_user()?;
    let partial = match request.method {
        Method::PUT => false,
        Method::PATCH => true,
        _ => return Err(method_not_allowed(request)),
    };
    let not_found = || ApiError::NotFound("User");
    let id = crate::ids::parse_uuid_like(id).ok_or_else(not_found)?;
    if id != me.id {
        let exists = user_store::find(services.db, &id)?.is_some();
        return Err(if exists { deny(&caller) } else { not_found() });
    }
    let body = parse_object(request)?;
    let update = parse_user_update(&body, partial, is_valid_timezone)?;
    let updated = user_store::update_preferences(services.db, &id, &update, services.clock.now())?
        .ok_or_else(not_found)?;
    Ok(ApiResponse::json(200, &updated.to_json()))
}

fn deny(caller: &Caller) -> ApiError {
    caller.deny(ApiError::permission_denied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anonymous(run: impl FnOnce(&Services)) {
        use crate::native::{migrated_database, FixedClock, OsRandom, ScriptedHttp};
        use crate::settings::StaticVariables;
        let db = migrated_database().unwrap();
        let clock = FixedClock::new(time::macros::datetime!(2025-06-30 12:00 UTC));
        let variables = StaticVariables::new(&[]);
        let http = ScriptedHttp::default();
        run(&Services {
            db: &db,
            http: &http,
            clock: &clock,
            random: &OsRandom,
            variables: &variables,
        });
    }

    #[test]
    fn the_api_root_lists_absolute_list_urls_in_router_order() {
        anonymous(|services| {
            let request = ApiRequest::new(Method::GET, "/api/v1.0/")
                .with_header("host", "meet.example:8443")
                .with_header("x-forwarded-proto", "https");
            let response = api_root(&request, services).unwrap();
            assert_eq!(response.status, 200);
            let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["users", "rooms", "recordings", "resource-accesses"]);
            assert_eq!(body["users"], "https://meet.example:8443/api/v1.0/users/");
            assert_eq!(body["rooms"], "https://meet.example:8443/api/v1.0/rooms/");
            assert_eq!(
                body["resource-accesses"],
                "https://meet.example:8443/api/v1.0/resource-accesses/"
            );

            let post = ApiRequest::new(Method::POST, "/api/v1.0/").with_header("host", "h");
            assert_eq!(api_root(&post, services).unwrap_err().status(), 405);
        });
    }

    #[test]
    fn time_zones_are_checked_against_the_iana_database() {
        assert!(is_valid_timezone("Europe/Paris"));
        assert!(is_valid_timezone("UTC"));
        assert!(is_valid_timezone("America/Argentina/Buenos_Aires"));
        assert!(!is_valid_timezone("Mars/Olympus"));
        assert!(!is_valid_timezone(""));
    }
}
