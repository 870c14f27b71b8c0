//! The rooms endpoints (api.md §2, §4): list, create, retrieve (with
//! unregistered rooms), update, delete and the room-creation callback.

use serde_json::{json, Map, Value};

use crate::auth::store::{CallerQuery, CallerRecord};
use crate::auth::{authenticate, csrf_token_to_match, Caller, Credential};
use crate::body::parse_object;
use crate::cache;
use crate::error::{ApiError, FieldErrors};
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::ids::parse_uuid_like;
use crate::livekit::LiveKit;
use crate::pagination::{empty_page, paginate, PageRequest, PAGE_SIZE};
use crate::ports::Services;
use crate::roles::{AccessLevel, Role};
use crate::rooms::slug::slugify;
use crate::rooms::store::{
    self as room_store, NewRoom, Room, RoomChanges, RoomKey, RoomView, RoomWriteError,
};
use crate::routing::{method_not_allowed_for, ViewPermission};
use crate::settings::SettingError;
use crate::telephony::pins::PinSettings;

const NAME_MAX: usize = 500;
const SLUG_MAX: usize = 100;

/// The `username` query parameter (the frontend always sends it, maybe empty).
fn username(request: &ApiRequest) -> Option<String> {
    request
        .query_param("username")
        .filter(|name| !name.is_empty())
}

/// The room object of api.md §2.4 as this caller sees it.
fn room_json(
    view: &RoomView,
    caller: &Caller,
    services: &Services,
    username: Option<&str>,
    livekit: &mut Option<LiveKit>,
) -> Result<Value, ApiError> {
    let room = &view.room;
    let administrable = view.role.is_some_and(Role::is_privileged);
    let mut object = Map::new();
    object.insert("id".into(), json!(room.id));
    object.insert("name".into(), json!(room.name));
    object.insert("slug".into(), json!(room.slug));
    if administrable {
        object.insert("configuration".into(), room.configuration.clone());
    }
    object.insert("access_level".into(), json!(room.access_level.as_str()));
    if administrable {
        object.insert(
            "accesses".into(),
            json!(view.accesses.clone().unwrap_or_default()),
        );
    }
    object.insert("is_administrable".into(), json!(administrable));
    if room
        .access_level
        .lets_join(caller.user().is_some(), view.role)
    {
        if livekit.is_none() {
            *livekit = Some(LiveKit::load(&services.settings())?);
        }
        if let Some(livekit) = livekit {
            object.insert(
                "livekit".into(),
                livekit.participant(services, caller, &room.id, username, None)?,
            );
        }
        // The PIN only for those who may join directly (not lobby waiters).
        if let Some((trunk, pin)) = &view.pin {
            object.insert("pin_code".into(), json!(pin));
            if !trunk.is_empty() && services.settings().list("room_telephony_trunks")?.len() > 1 {
                object.insert("pin_trunk".into(), json!(trunk));
            }
        }
    }
    Ok(Value::Object(object))
}

/// `/rooms/`: list (GET) and create (POST).
pub fn rooms(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let folded = match request.method {
        Method::GET | Method::HEAD => list_folded(request, services)?,
        Method::POST => create_folded(request, services)?,
        _ => None,
    };
    if let Some(response) = folded {
        return Ok(response);
    }
    let caller = authenticate(request, services)?;
    match request.method {
        Method::GET | Method::HEAD => list(request, services, &caller),
        Method::POST => create(request, services, &caller),
        _ => Err(method_not_allowed_for(
            request,
            &caller,
            ViewPermission::AuthenticatedUnlessSafe,
        )),
    }
}

/// The list in one statement (the caller folded in) for page numbers;
/// `None` sends the request to the full path (`page=last`, an invalid page,
/// a bearer token not cached yet).
fn list_folded(request: &ApiRequest, services: &Services) -> Result<Option<ApiResponse>, ApiError> {
    let credential = Credential::of(request)?;
    if credential == Credential::Anonymous {
        return Ok(Some(ApiResponse::json(200, &empty_page())));
    }
    let Ok(PageRequest::Number(number)) = PageRequest::from_request(request) else {
        return Ok(None);
    };
    let offset = (number - 1).saturating_mul(PAGE_SIZE);
    let found = room_store::list_with_caller(
        services.db,
        &caller_query(&credential, None, services),
        PAGE_SIZE,
        offset,
    )?;
    let (record, total, views) = match found {
        Some((record, total, views)) => (Some(record), total, views),
        None => (None, 0, Vec::new()),
    };
    let Some(caller) = credential.resolved(record) else {
        return Ok(None);
    };
    if caller.user().is_none() {
        return Ok(Some(ApiResponse::json(200, &empty_page())));
    }
    render_list(request, services, &caller, |_, _| {
        Ok((total, views.clone()))
    })
    .map(Some)
}

fn list(
    request: &ApiRequest,
    services: &Services,
    caller: &Caller,
) -> Result<ApiResponse, ApiError> {
    let Some(user) = caller.user() else {
        return Ok(ApiResponse::json(200, &empty_page()));
    };
    render_list(request, services, caller, |limit, offset| {
        room_store::list_for_user(services.db, &user.id, limit, offset).map_err(ApiError::from)
    })
}

/// The page of rooms `fetch(limit, offset)` loads, rendered for `caller`.
fn render_list(
    request: &ApiRequest,
    services: &Services,
    caller: &Caller,
    fetch: impl Fn(u64, u64) -> Result<(u64, Vec<RoomView>), ApiError>,
) -> Result<ApiResponse, ApiError> {
    let username = username(request);
    let mut livekit = None;
    let views = std::cell::RefCell::new(Vec::new());
    let mut page = paginate(
        request,
        PAGE_SIZE,
        |limit, offset| {
            let (total, found) = fetch(limit, offset)?;
            *views.borrow_mut() = found.clone();
            Ok::<_, ApiError>((total, found))
        },
        |_| Value::Null,
    )?;
    let results = views
        .borrow()
        .iter()
        .map(|view| room_json(view, caller, services, username.as_deref(), &mut livekit))
        .collect::<Result<Vec<_>, _>>()?;
    page["results"] = Value::Array(results);
    Ok(ApiResponse::json(200, &page))
}

/// The validated writable fields of a room.
struct RoomInput {
    name: Option<String>,
    access_level: Option<AccessLevel>,
    configuration: Option<Value>,
}

/// Field validation of the room serializer (api.md §2.2).
fn parse_room_input(body: &Map<String, Value>, partial: bool) -> Result<RoomInput, ApiError> {
    let mut errors = FieldErrors::new();
    let name = match body.get("name") {
        None if partial => None,
        None => {
            errors.add("name", "This field is required.");
            None
        }
        Some(Value::Null) => {
            errors.add("name", "This field may not be null.");
            None
        }
        Some(Value::String(name)) => {
            let name = name.trim();
            if name.is_empty() {
                errors.add("name", "This field may not be blank.");
            } else if name.chars().count() > NAME_MAX {
                errors.add(
                    "name",
                    format!("Ensure this field has no more than {NAME_MAX} characters."),
                );
            }
            Some(name.to_string())
        }
        Some(_) => {
            errors.add("name", "Not a valid string.");
            None
        }
    };
    let access_level = match body.get("access_level") {
        None => None,
        Some(Value::String(level)) => match level.parse() {
            Ok(level) => Some(level),
            Err(()) => {
                errors.add(
                    "access_level",
                    format!("\"{level}\" is not a valid choice."),
                );
                None
            }
        },
        Some(other) => {
            errors.add(
                "access_level",
                format!("\"{other}\" is not a valid choice."),
            );
            None
        }
    };
    let configuration = match body.get("configuration") {
        Some(Value::Null) => {
            errors.add("configuration", "This field may not be null.");
            None
        }
        other => other.cloned(),
    };
    errors.into_result()?;
    Ok(RoomInput {
        name,
        access_level,
        configuration,
    })
}

/// The model's checks on a name's slug: reserved, too long.
fn checked_slug(name: &str) -> Result<String, ApiError> {
    let slug = slugify(name);
    if slug.is_empty() {
        return Err(ApiError::Validation(FieldErrors::single(
            "name",
            format!("Room name \"{name}\" has no letter or digit to make a room address from."),
        )));
    }
    if parse_uuid_like(&slug).is_some() {
        return Err(ApiError::Validation(FieldErrors::single(
            "name",
            format!("Room name \"{name}\" is reserved."),
        )));
    }
    let length = slug.chars().count();
    if length > SLUG_MAX {
        return Err(ApiError::Validation(FieldErrors::single(
            "slug",
            format!("Ensure this value has at most {SLUG_MAX} characters (it has {length})."),
        )));
    }
    Ok(slug)
}

fn slug_taken() -> ApiError {
    ApiError::Validation(FieldErrors::single(
        "slug",
        "Room with this Slug already exists.",
    ))
}

/// A valid creation body, as the room will be written.
struct NewRoomInput {
    name: String,
    slug: String,
    access_level: AccessLevel,
    configuration: Value,
    callback_id: Option<String>,
}

fn new_room_input(request: &ApiRequest, services: &Services) -> Result<NewRoomInput, ApiError> {
    let body = parse_object(request)?;
    let input = parse_room_input(&body, false)?;
    let name = input.name.unwrap_or_default();
    let slug = checked_slug(&name)?;
    let access_level = match input.access_level {
        Some(level) => level,
        None => services
            .settings()
            .string("resource_default_access_level")?
            .parse()
            .map_err(|()| {
                SettingError::new(
                    "resource_default_access_level",
                    "must be public, trusted or restricted",
                )
            })?,
    };
    Ok(NewRoomInput {
        name,
        slug,
        access_level,
        configuration: input.configuration.unwrap_or_else(|| json!({})),
        callback_id: body
            .get("callback_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string),
    })
}

/// `POST rooms/` in one statement: the caller resolved by the creating
/// statement itself. `None` sends the request to the full path: an invalid
/// body or a refused caller (for their exact errors, in DRF's order), and
/// telephony, whose PIN counter is only taken once the caller is known.
fn create_folded(
    request: &ApiRequest,
    services: &Services,
) -> Result<Option<ApiResponse>, ApiError> {
    let credential = Credential::of(request)?;
    let Some(csrf_token) = folded_csrf(request, &credential, services)? else {
        return Ok(None);
    };
    if PinSettings::load(&services.settings())?.is_some() {
        return Ok(None);
    }
    let Ok(input) = new_room_input(request, services) else {
        return Ok(None);
    };
    let owner = caller_query(&credential, csrf_token.as_deref(), services);
    let Some((record, created)) = insert_room(services, &owner, &input, None)? else {
        return Ok(None);
    };
    let Some(caller) = credential.resolved(Some(record)) else {
        return Ok(None);
    };
    created_response(request, services, &caller, input, created).map(Some)
}

fn create(
    request: &ApiRequest,
    services: &Services,
    caller: &Caller,
) -> Result<ApiResponse, ApiError> {
    let user = caller.require_user()?;
    let input = new_room_input(request, services)?;
    let pins = PinSettings::load(&services.settings())?;
    let (_, created) = insert_room(
        services,
        &CallerQuery::user(&user.id),
        &input,
        pins.as_ref(),
    )?
    .ok_or_else(|| caller.deny(ApiError::permission_denied()))?;
    created_response(request, services, caller, input, created)
}

/// What [`insert_room`] wrote besides the input.
struct CreatedRoom {
    id: String,
    owner_access_id: String,
    pin: Option<(String, String)>,
}

/// Writes the room and its owner access for the caller of `owner` (with a
/// PIN unique by construction when telephony is on: one counter statement,
/// then the room; a PIN given to an older room before the counters existed
/// takes the next counter, a bounded number of times, domain.md §8).
/// `None` when `owner` names no caller: nothing was written.
fn insert_room(
    services: &Services,
    owner: &CallerQuery,
    input: &NewRoomInput,
    pins: Option<&PinSettings>,
) -> Result<Option<(CallerRecord, CreatedRoom)>, ApiError> {
    let room_id = services.new_uuid();
    let access_id = services.new_uuid();
    let now = services.clock.now();
    let mut pin = match pins {
        Some(pins) => Some(pins.allocate(services.db)?),
        None => None,
    };
    let mut collisions = 0;
    let record = loop {
        let new_room = NewRoom {
            id: &room_id,
            name: &input.name,
            slug: &input.slug,
            access_level: input.access_level,
            configuration: &input.configuration,
            pin: pin.as_ref().map(|p| (p.trunk.as_str(), p.pin.as_str())),
            owner_access_id: &access_id,
        };
        match room_store::create(services.db, owner, &new_room, now) {
            Ok(record) => break record,
            Err(RoomWriteError::PinTaken) => {
                let (Some(pins), Some(taken)) = (pins, &pin) else {
                    return Err(ApiError::internal("PIN conflict on a room without PIN"));
                };
                collisions += 1;
                if collisions > pins.max_collisions {
                    eprintln!(
                        "Failed to generate unique PIN code of length {} after {collisions} attempts",
                        pins.length
                    );
                    pin = None;
                } else {
                    eprintln!(
                        "telephony: PIN of counter {} on trunk {:?} is taken by an older room; \
                         taking the next counter",
                        taken.counter, taken.trunk
                    );
                    pin = Some(pins.allocate(services.db)?);
                }
            }
            Err(RoomWriteError::SlugTaken) => return Err(slug_taken()),
            Err(RoomWriteError::Db(error)) => return Err(error.into()),
        }
    };
    Ok(record.map(|record| {
        let created = CreatedRoom {
            id: room_id,
            owner_access_id: access_id,
            pin: pin.map(|p| (p.trunk, p.pin)),
        };
        (record, created)
    }))
}

/// The 201 of a created room, after the creation callback is stored.
fn created_response(
    request: &ApiRequest,
    services: &Services,
    caller: &Caller,
    input: NewRoomInput,
    created: CreatedRoom,
) -> Result<ApiResponse, ApiError> {
    let user = caller.require_user()?;
    if let Some(callback_id) = &input.callback_id {
        let now = services.clock.now();
        let ttl = services
            .settings()
            .u64("room_creation_callback_cache_timeout")?;
        cache::purge_expired(services.db, now)?;
        cache::set(
            services.db,
            &format!("room-creation-callback_{callback_id}"),
            &json!({"slug": input.slug}).to_string(),
            ttl,
            now,
        )?;
    }
    let view = RoomView {
        room: Room {
            id: created.id.clone(),
            name: input.name,
            slug: input.slug,
            access_level: input.access_level,
            configuration: input.configuration,
        },
        role: Some(Role::Owner),
        accesses: Some(vec![json!({
            "id": created.owner_access_id,
            "user": user.to_json(),
            "resource": created.id,
            "role": Role::Owner.as_str(),
        })]),
        pin: created.pin,
    };
    let body = room_json(
        &view,
        caller,
        services,
        username(request).as_deref(),
        &mut None,
    )?;
    Ok(ApiResponse::json(201, &body))
}

/// `/rooms/{id}/`: retrieve, update, delete.
pub fn room(
    request: &ApiRequest,
    services: &Services,
    path_value: &str,
) -> Result<ApiResponse, ApiError> {
    // One statement on the usual path: the caller's resolution is folded
    // into the read or the guarded write; anything else (a bearer token not
    // cached yet, a refused or invalid request) takes the full path below,
    // which gives the exact upstream error.
    let folded = match request.method {
        Method::GET | Method::HEAD => retrieve_folded(request, services, path_value)?,
        Method::PUT | Method::PATCH => update_folded(request, services, path_value)?,
        Method::DELETE => destroy_folded(request, services, path_value)?,
        _ => None,
    };
    if let Some(response) = folded {
        return Ok(response);
    }
    let caller = authenticate(request, services)?;
    match request.method {
        Method::GET | Method::HEAD => {
            let view = find(services, &caller, path_value)?;
            retrieve(request, services, &caller, path_value, view)
        }
        Method::PUT | Method::PATCH => update(request, services, &caller, path_value),
        Method::DELETE => destroy(services, &caller, path_value),
        _ => Err(method_not_allowed_for(
            request,
            &caller,
            ViewPermission::AuthenticatedUnlessSafe,
        )),
    }
}

fn find(
    services: &Services,
    caller: &Caller,
    path_value: &str,
) -> Result<Option<RoomView>, ApiError> {
    let user_id = caller.user().map(|user| user.id.as_str());
    Ok(room_store::find(
        services.db,
        &RoomKey::from_path(path_value),
        user_id,
    )?)
}

/// The caller of a folded statement, if its credential could be resolved.
fn caller_query(
    credential: &Credential,
    csrf_token: Option<&str>,
    services: &Services,
) -> CallerQuery {
    CallerQuery::of(credential, csrf_token, services.clock.now())
}

fn retrieve_folded(
    request: &ApiRequest,
    services: &Services,
    path_value: &str,
) -> Result<Option<ApiResponse>, ApiError> {
    let credential = Credential::of(request)?;
    let key = RoomKey::from_path(path_value);
    if credential == Credential::Anonymous {
        // No caller to resolve: the plain room read, without the caller's
        // join and role sub-queries.
        let view = room_store::find(services.db, &key, None)?;
        return retrieve(request, services, &Caller::Anonymous, path_value, view).map(Some);
    }
    let (record, view) = room_store::find_with_caller(
        services.db,
        &caller_query(&credential, None, services),
        &key,
    )?;
    let Some(caller) = credential.resolved(record) else {
        return Ok(None);
    };
    retrieve(request, services, &caller, path_value, view).map(Some)
}

fn retrieve(
    request: &ApiRequest,
    services: &Services,
    caller: &Caller,
    path_value: &str,
    view: Option<RoomView>,
) -> Result<ApiResponse, ApiError> {
    let username = username(request);
    if let Some(view) = view {
        let body = room_json(&view, caller, services, username.as_deref(), &mut None)?;
        return Ok(ApiResponse::json(200, &body));
    }
    // Unregistered rooms: a token for the slug, if the setting allows it.
    let livekit_room = slugify(path_value);
    if livekit_room.is_empty() || !services.settings().bool("allow_unregistered_rooms")? {
        return Err(ApiError::NotFound("Room"));
    }
    let livekit = LiveKit::load(&services.settings())?;
    let object = livekit.participant(services, caller, &livekit_room, username.as_deref(), None)?;
    Ok(ApiResponse::json(
        200,
        &json!({"id": null, "livekit": object}),
    ))
}

/// The changes of a valid update body; an invalid one is an error only
/// after the permission checks, so the caller decides when to report it.
fn room_changes(request: &ApiRequest) -> Result<RoomChanges, ApiError> {
    let body = parse_object(request)?;
    let input = parse_room_input(&body, request.method == Method::PATCH)?;
    let name_and_slug = match input.name {
        Some(name) => Some((name.clone(), checked_slug(&name)?)),
        None => None,
    };
    Ok(RoomChanges {
        name_and_slug,
        access_level: input.access_level,
        configuration: input.configuration,
    })
}

/// The CSRF token a folded unsafe request binds, or `None` when the request
/// must take the full path (anonymous, or a CSRF check that fails).
fn folded_csrf(
    request: &ApiRequest,
    credential: &Credential,
    services: &Services,
) -> Result<Option<Option<String>>, ApiError> {
    Ok(match credential {
        Credential::Anonymous => None,
        Credential::Bearer { .. } => Some(None),
        Credential::Session { .. } => csrf_token_to_match(request, services)?.map(Some),
    })
}

fn update_folded(
    request: &ApiRequest,
    services: &Services,
    path_value: &str,
) -> Result<Option<ApiResponse>, ApiError> {
    let credential = Credential::of(request)?;
    let Some(csrf_token) = folded_csrf(request, &credential, services)? else {
        return Ok(None);
    };
    let Ok(changes) = room_changes(request) else {
        return Ok(None);
    };
    let updated = room_store::update_as_caller(
        services.db,
        &caller_query(&credential, csrf_token.as_deref(), services),
        &RoomKey::from_path(path_value),
        &changes,
        services.clock.now(),
    );
    let (record, view) = match updated {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        // The statement only writes once every permission check passed.
        Err(RoomWriteError::SlugTaken) => return Err(slug_taken()),
        Err(other) => return Err(ApiError::internal(other)),
    };
    let Some(caller) = credential.resolved(record) else {
        return Ok(None);
    };
    let body = room_json(
        &view,
        &caller,
        services,
        username(request).as_deref(),
        &mut None,
    )?;
    Ok(Some(ApiResponse::json(200, &body)))
}

fn update(
    request: &ApiRequest,
    services: &Services,
    caller: &Caller,
    path_value: &str,
) -> Result<ApiResponse, ApiError> {
    let user = caller.require_user()?;
    let view = find(services, caller, path_value)?.ok_or(ApiError::NotFound("Room"))?;
    if !view.role.is_some_and(Role::is_privileged) {
        return Err(caller.deny(ApiError::permission_denied()));
    }
    let changes = room_changes(request)?;
    let updated = room_store::update_as_caller(
        services.db,
        &CallerQuery::user(&user.id),
        &RoomKey::Id(view.room.id.clone()),
        &changes,
        services.clock.now(),
    )
    .map_err(|error| match error {
        RoomWriteError::SlugTaken => slug_taken(),
        other => ApiError::internal(other),
    })?;
    // A role revoked since the read: the statement refused to write.
    let (_, view) = updated.ok_or_else(|| caller.deny(ApiError::permission_denied()))?;
    let body = room_json(
        &view,
        caller,
        services,
        username(request).as_deref(),
        &mut None,
    )?;
    Ok(ApiResponse::json(200, &body))
}

fn destroy_folded(
    request: &ApiRequest,
    services: &Services,
    path_value: &str,
) -> Result<Option<ApiResponse>, ApiError> {
    let credential = Credential::of(request)?;
    let Some(csrf_token) = folded_csrf(request, &credential, services)? else {
        return Ok(None);
    };
    let deleted = room_store::delete_as_caller(
        services.db,
        &caller_query(&credential, csrf_token.as_deref(), services),
        &RoomKey::from_path(path_value),
    )?;
    Ok(deleted.then(|| ApiResponse::empty(204)))
}

fn destroy(
    services: &Services,
    caller: &Caller,
    path_value: &str,
) -> Result<ApiResponse, ApiError> {
    let user = caller.require_user()?;
    let view = find(services, caller, path_value)?.ok_or(ApiError::NotFound("Room"))?;
    if view.role != Some(Role::Owner) {
        return Err(caller.deny(ApiError::permission_denied()));
    }
    let deleted = room_store::delete_as_caller(
        services.db,
        &CallerQuery::user(&user.id),
        &RoomKey::Id(view.room.id),
    )?;
    if !deleted {
        return Err(caller.deny(ApiError::permission_denied()));
    }
    Ok(ApiResponse::empty(204))
}

/// `/rooms/creation-callback/`: the slug of a room created in another
/// window, read once.
pub fn creation_callback(
    request: &ApiRequest,
    services: &Services,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    if request.method != Method::POST {
        return Err(method_not_allowed_for(
            request,
            &caller,
            ViewPermission::AllowAny,
        ));
    }
    if caller.user().is_none() {
        crate::throttle::check(
            request,
            services,
            "creation_callback",
            "creation_callback_throttle_rates",
        )?;
    }
    let body = parse_object(request)?;
    let callback_id = match body.get("callback_id") {
        None | Some(Value::Null) => {
            return Err(ApiError::Validation(FieldErrors::single(
                "callback_id",
                "This field is required.",
            )))
        }
        Some(Value::String(id)) => id.clone(),
        Some(other) => other.to_string(),
    };
    let now = services.clock.now();
    let stored = cache::take(
        services.db,
        &format!("room-creation-callback_{callback_id}"),
        now,
    )?;
    let room = stored
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .unwrap_or_else(|| json!({}));
    Ok(ApiResponse::json(
        200,
        &json!({"status": "success", "room": room}),
    ))
}
