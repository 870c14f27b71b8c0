//! The recordings endpoints (api.md §6): list, retrieve and delete, with the
//! recording abilities of domain.md §4.1 (the caller's role on the
//! recording, not on its room).

use serde_json::{json, Value};

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::ids::parse_uuid_like;
use crate::pagination::{paginate, PAGE_SIZE};
use crate::ports::Services;
use crate::recordings::model::{
    api_datetime, expiration_days, expired_at, output_folder, recording_key,
};
use crate::recordings::store::{self, RecordingView};
use crate::roles::Role;
use crate::routing::method_not_allowed;

/// Largest `page_size` of the list.
pub const MAX_PAGE_SIZE: u64 = 100;

/// What rendering a recording needs from the settings, read once.
pub struct RenderSettings {
    pub folder: String,
    pub expiration_days: Option<u64>,
}

impl RenderSettings {
    pub fn load(services: &Services) -> Result<RenderSettings, ApiError> {
        let settings = services.settings();
        Ok(RenderSettings {
            folder: output_folder(&settings)?,
            expiration_days: expiration_days(&settings)?,
        })
    }
}

/// The recording object of api.md §6.
pub fn recording_json(
    view: &RecordingView,
    settings: &RenderSettings,
    now: time::OffsetDateTime,
) -> Value {
    let expires = expired_at(view.created_at, settings.expiration_days);
    json!({
        "id": view.id,
        "room": {
            "id": view.room_id,
            "name": view.room_name,
            "slug": view.room_slug,
            "access_level": view.room_access_level,
        },
        "created_at": api_datetime(view.created_at),
        "updated_at": api_datetime(view.updated_at),
        "status": view.status.as_str(),
        "mode": view.mode.as_str(),
        "key": recording_key(&settings.folder, &view.id, view.mode),
        "is_expired": expires.is_some_and(|at| at < now),
        "expired_at": expires.map(api_datetime),
    })
}

/// `page_size`: 20 by default, at most 100; invalid values fall back to 20.
fn page_size(request: &ApiRequest) -> u64 {
    match request
        .query_param("page_size")
        .and_then(|text| text.parse::<u64>().ok())
    {
        Some(size) if size >= 1 => size.min(MAX_PAGE_SIZE),
        _ => PAGE_SIZE,
    }
}

/// `GET /recordings/`: the caller's recordings, newest first.
pub fn list(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    let user = caller.require_user()?;
    if !matches!(request.method, Method::GET | Method::HEAD) {
        return Err(method_not_allowed(request));
    }
    let render = RenderSettings::load(services)?;
    let now = services.clock.now();
    let page = paginate(
        request,
        page_size(request),
        |limit, offset| store::list_for_user(services.db, &user.id, limit, offset),
        |view| recording_json(view, &render, now),
    )?;
    Ok(ApiResponse::json(200, &page))
}

/// `GET` / `DELETE /recordings/{id}/`.
pub fn recording(
    request: &ApiRequest,
    services: &Services,
    id: &str,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    let user = caller.require_user()?;
    let not_found = ApiError::NotFound("Recording");
    if !matches!(request.method, Method::GET | Method::HEAD | Method::DELETE) {
        return Err(method_not_allowed(request));
    }
    let Some(id) = parse_uuid_like(id) else {
        return Err(not_found);
    };
    // Invisible (no access at all) is 404; visible as member only is 403.
    let view = store::find_for_user(services.db, &id, &user.id)?
        .filter(|view| view.role.is_some())
        .ok_or(not_found)?;
    let privileged = view.role.is_some_and(Role::is_privileged);
    if request.method == Method::DELETE {
        if !privileged || !view.status.is_final() {
            return Err(ApiError::permission_denied());
        }
        // Guarded: a recording whose status moved on meanwhile stays.
        if !store::delete_final(services.db, &id)? {
            return Err(ApiError::permission_denied());
        }
        return Ok(ApiResponse::empty(204));
    }
    if !privileged {
        return Err(ApiError::permission_denied());
    }
    let render = RenderSettings::load(services)?;
    Ok(ApiResponse::json(
        200,
        &recording_json(&view, &render, services.clock.now()),
    ))
}
