//! The users endpoints (api.md §3): `users/`, `users/me/`, `users/{id}/`.

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

    #[test]
    fn time_zones_are_checked_against_the_iana_database() {
        assert!(is_valid_timezone("Europe/Paris"));
        assert!(is_valid_timezone("UTC"));
        assert!(is_valid_timezone("America/Argentina/Buenos_Aires"));
        assert!(!is_valid_timezone("Mars/Olympus"));
        assert!(!is_valid_timezone(""));
    }
}
