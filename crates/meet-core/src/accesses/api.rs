//! The resource-access endpoints (api.md §5): `resource-accesses/` and
//! `resource-accesses/{id}/`.
//!
//! Checks run in the order of the upstream view and serializer, because it
//! decides which error wins: authentication, method, object lookup and
//! object permission, then the body field by field (`user`, `resource` —
//! whose "must be administrator" 403 is raised as soon as it is met —
//! `role`), the collected field errors, the unique (user, resource) pair,
//! the owner rules, and last the write, where the database refuses to leave
//! a room without an owner.

use serde_json::{json, Map, Value};

use crate::accesses::store::{
    self as access_store, Access, AccessView, AccessWriteError, NewAccess, References, WriteContext,
};
use crate::auth::authenticate;
use crate::body::parse_object;
use crate::error::{ApiError, FieldErrors};
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::identity::users::User;
use crate::ids::parse_uuid_like;
use crate::pagination::{paginate, PAGE_SIZE};
use crate::ports::Services;
use crate::roles::Role;
use crate::routing::method_not_allowed;

const MODEL: &str = "ResourceAccess";
const NOT_ADMINISTRATOR: &str =
    "You must be administrator or owner of a room to add accesses to it.";
const OWNERS_ONLY: &str = "Only owners of a room can assign other users as owners.";
const LAST_OWNER: &str = "A resource should keep at least one owner.";
const NOT_UNIQUE: &str = "The fields user, resource must make a unique set.";

fn denied(message: &str) -> ApiError {
    ApiError::PermissionDenied(message.to_string())
}

impl Access {
    /// The access object of api.md §5.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "user": self.user_id,
            "resource": self.resource_id,
            "role": self.role.as_str(),
        })
    }
}

/// `/resource-accesses/`: list (GET) and create (POST).
pub fn accesses(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    let user = caller.require_user()?;
    match request.method {
        Method::GET | Method::HEAD => list(request, services, user),
        Method::POST => create(request, services, user),
        _ => Err(method_not_allowed(request)),
    }
}

/// `/resource-accesses/{id}/`: retrieve, update (PUT, PATCH), delete.
pub fn access(
    request: &ApiRequest,
    services: &Services,
    path_value: &str,
) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    let user = caller.require_user()?;
    match request.method {
        Method::GET | Method::HEAD => retrieve(services, user, path_value),
        Method::PUT => update(request, services, user, path_value, false),
        Method::PATCH => update(request, services, user, path_value, true),
        Method::DELETE => destroy(services, user, path_value),
        _ => Err(method_not_allowed(request)),
    }
}

fn list(request: &ApiRequest, services: &Services, user: &User) -> Result<ApiResponse, ApiError> {
    let page = paginate(
        request,
        PAGE_SIZE,
        |limit, offset| access_store::list_administered(services.db, &user.id, limit, offset),
        Access::to_json,
    )?;
    Ok(ApiResponse::json(200, &page))
}

/// The id of a detail URL; one that is no UUID names nothing.
fn access_id(path_value: &str) -> Result<String, ApiError> {
    parse_uuid_like(path_value).ok_or(ApiError::NotFound(MODEL))
}

fn is_privileged(role: Option<Role>) -> bool {
    role.is_some_and(Role::is_privileged)
}

fn retrieve(services: &Services, user: &User, path_value: &str) -> Result<ApiResponse, ApiError> {
    let id = access_id(path_value)?;
    let view = access_store::find(services.db, &id, &user.id)?.ok_or(ApiError::NotFound(MODEL))?;
    if !is_privileged(view.caller_role) {
        return Err(ApiError::permission_denied());
    }
    Ok(ApiResponse::json(200, &view.access.to_json()))
}

fn create(request: &ApiRequest, services: &Services, user: &User) -> Result<ApiResponse, ApiError> {
    let body = parse_object(request)?;
    let input = AccessInput::parse(&body, false);
    let context = access_store::write_context(services.db, &user.id, None, input.references())?;
    let valid = input.validate(&context)?;
    let (Some(user_id), Some(resource_id)) = (valid.user_id, valid.resource_id) else {
        // Both are required on create: validation reported them missing.
        return Err(ApiError::internal("create without user or resource"));
    };
    if context.duplicate {
        return Err(not_unique());
    }
    let role = valid.role.unwrap_or(Role::Member);
    if role == Role::Owner && context.role_on_resource != Some(Role::Owner) {
        return Err(denied(OWNERS_ONLY));
    }
    let id = services.new_uuid();
    let new = NewAccess {
        id: &id,
        user_id: &user_id,
        resource_id: &resource_id,
        role,
    };
    match access_store::create(services.db, &user.id, &new, services.clock.now()) {
        Ok(Some(access)) => Ok(ApiResponse::json(201, &access.to_json())),
        // The caller's role, the user or the room went away since the checks.
        Ok(None) => Err(denied(NOT_ADMINISTRATOR)),
        Err(error) => Err(write_error(error)),
    }
}

fn update(
    request: &ApiRequest,
    services: &Services,
    user: &User,
    path_value: &str,
    partial: bool,
) -> Result<ApiResponse, ApiError> {
    let id = access_id(path_value)?;
    // The body is read now so that one statement loads everything, but its
    // errors only count after the lookup and the permission check.
    let body = parse_object(request);
    let input = match &body {
        Ok(body) => AccessInput::parse(body, partial),
        Err(_) => AccessInput::default(),
    };
    let context =
        access_store::write_context(services.db, &user.id, Some(&id), input.references())?;
    let AccessView {
        access: target,
        caller_role,
    } = context.target.clone().ok_or(ApiError::NotFound(MODEL))?;
    if !is_privileged(caller_role) {
        return Err(ApiError::permission_denied());
    }
    body?;
    // `user` and `resource` are validated but never change.
    let role = input.validate(&context)?.role;
    if context.duplicate {
        return Err(not_unique());
    }
    let grants_owner = role == Some(Role::Owner) && caller_role != Some(Role::Owner);
    let edits_other_owner = target.role == Role::Owner && target.user_id != user.id;
    if grants_owner || edits_other_owner {
        return Err(denied(OWNERS_ONLY));
    }
    match access_store::update_role(services.db, &user.id, &id, role, services.clock.now()) {
        Ok(Some(access)) => Ok(ApiResponse::json(200, &access.to_json())),
        // The caller lost their role (or the access vanished) meanwhile.
        Ok(None) => Err(ApiError::permission_denied()),
        Err(error) => Err(write_error(error)),
    }
}

fn destroy(services: &Services, user: &User, path_value: &str) -> Result<ApiResponse, ApiError> {
    let id = access_id(path_value)?;
    let view = access_store::find(services.db, &id, &user.id)?.ok_or(ApiError::NotFound(MODEL))?;
    // An owner access is only ever given up by its own user.
    let allowed = if view.access.role == Role::Owner {
        view.access.user_id == user.id
    } else {
        is_privileged(view.caller_role)
    };
    if !allowed {
        return Err(ApiError::permission_denied());
    }
    match access_store::delete(services.db, &user.id, &id) {
        Ok(true) => Ok(ApiResponse::empty(204)),
        Ok(false) => Err(ApiError::permission_denied()),
        Err(error) => Err(write_error(error)),
    }
}

fn not_unique() -> ApiError {
    ApiError::Validation(FieldErrors::single("non_field_errors", NOT_UNIQUE))
}

fn write_error(error: AccessWriteError) -> ApiError {
    match error {
        AccessWriteError::LastOwner => denied(LAST_OWNER),
        AccessWriteError::Duplicate => not_unique(),
        AccessWriteError::Db(error) => ApiError::internal(error),
    }
}

/// The body once validated: what it gave, canonical.
struct Validated {
    user_id: Option<String>,
    resource_id: Option<String>,
    role: Option<Role>,
}

/// A `user` or `resource` value that is a well-formed UUID, with the text
/// the client sent (quoted back in "Invalid pk" messages).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pk {
    id: String,
    sent: String,
}

/// The body's fields, each absent (`None`), parsed, or refused with a
/// message; existence and permissions are judged later against the
/// database.
#[derive(Debug, Clone, Default, PartialEq)]
struct AccessInput {
    user: Option<Result<Pk, String>>,
    resource: Option<Result<Pk, String>>,
    role: Option<Result<Role, String>>,
}

impl AccessInput {
    fn parse(body: &Map<String, Value>, partial: bool) -> AccessInput {
        let required = |field: &str| match body.get(field) {
            None if partial => None,
            None => Some(Err("This field is required.".to_string())),
            Some(value) => Some(parse_pk(value)),
        };
        AccessInput {
            user: required("user"),
            resource: required("resource"),
            role: body.get("role").map(parse_role),
        }
    }

    fn references(&self) -> References<'_> {
        fn id(field: &Option<Result<Pk, String>>) -> Option<&str> {
            match field {
                Some(Ok(pk)) => Some(pk.id.as_str()),
                _ => None,
            }
        }
        References {
            user_id: id(&self.user),
            resource_id: id(&self.resource),
        }
    }

    /// Field validation as DRF runs it: errors are collected in field order,
    /// except that a resource the caller does not administer is refused at
    /// once (upstream raises PermissionDenied from `validate_resource`).
    fn validate(&self, context: &WriteContext) -> Result<Validated, ApiError> {
        let mut errors = FieldErrors::new();
        let user = match &self.user {
            Some(Ok(pk)) if context.user_exists => Some(pk.id.clone()),
            Some(Ok(pk)) => {
                errors.add("user", does_not_exist(pk));
                None
            }
            Some(Err(message)) => {
                errors.add("user", message.clone());
                None
            }
            None => None,
        };
        let resource = match &self.resource {
            Some(Ok(pk)) if !context.resource_exists => {
                errors.add("resource", does_not_exist(pk));
                None
            }
            Some(Ok(_)) if !is_privileged(context.role_on_resource) => {
                return Err(denied(NOT_ADMINISTRATOR));
            }
            Some(Ok(pk)) => Some(pk.id.clone()),
            Some(Err(message)) => {
                errors.add("resource", message.clone());
                None
            }
            None => None,
        };
        let role = match &self.role {
            Some(Ok(role)) => Some(*role),
            Some(Err(message)) => {
                errors.add("role", message.clone());
                None
            }
            None => None,
        };
        errors.into_result()?;
        Ok(Validated {
            user_id: user,
            resource_id: resource,
            role,
        })
    }
}

fn does_not_exist(pk: &Pk) -> String {
    format!("Invalid pk \"{}\" - object does not exist.", pk.sent)
}

/// A primary key as DRF's `PrimaryKeyRelatedField` reads it for a UUID
/// model: empty strings count as null, integers are UUIDs by value (Django's
/// `UUID(int=…)`), strings go through Python's `UUID(hex=…)`.
fn parse_pk(value: &Value) -> Result<Pk, String> {
    let not_a_uuid = |text: &str| format!("“{text}” is not a valid UUID.");
    match value {
        Value::Null => Err("This field may not be null.".into()),
        Value::String(text) if text.is_empty() => Err("This field may not be null.".into()),
        Value::Bool(_) => Err("Incorrect type. Expected pk value, received bool.".into()),
        Value::String(text) => match parse_uuid_like(text) {
            Some(id) => Ok(Pk {
                id,
                sent: text.clone(),
            }),
            None => Err(not_a_uuid(text)),
        },
        Value::Number(number) => match number.as_u64() {
            Some(int) => {
                let hex = format!("{int:032x}");
                let id = format!(
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..32]
                );
                Ok(Pk {
                    id,
                    sent: int.to_string(),
                })
            }
            // Negative integers and floats are refused by `UUID()`.
            None => Err(not_a_uuid(&number.to_string())),
        },
        other => Err(not_a_uuid(&other.to_string())),
    }
}

/// A `role` as DRF's `ChoiceField` reads it: compared as `str(value)`.
fn parse_role(value: &Value) -> Result<Role, String> {
    let text = match value {
        Value::Null => return Err("This field may not be null.".into()),
        Value::String(text) => text.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    };
    text.parse()
        .map_err(|()| format!("\"{text}\" is not a valid choice."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{migrated_database, FixedClock, OsRandom, ScriptedHttp, SqliteDatabase};
    use crate::settings::StaticVariables;
    use sha2::{Digest, Sha256};
    use time::macros::datetime;

    #[test]
    fn primary_keys_are_read_as_drf_reads_them() {
        let id = "918689fb-038e-4e81-bf09-efd5902c5f0b";
        assert_eq!(
            parse_pk(&json!("918689FB038E4E81BF09EFD5902C5F0B")),
            Ok(Pk {
                id: id.into(),
                sent: "918689FB038E4E81BF09EFD5902C5F0B".into()
            })
        );
        assert_eq!(
            parse_pk(&json!("nope")),
            Err("“nope” is not a valid UUID.".into())
        );
        assert_eq!(
            parse_pk(&json!(1)).map(|pk| pk.id),
            Ok("00000000-0000-0000-0000-000000000001".into())
        );
        assert_eq!(
            parse_pk(&json!(-1)),
            Err("“-1” is not a valid UUID.".into())
        );
        assert_eq!(
            parse_pk(&json!(true)),
            Err("Incorrect type. Expected pk value, received bool.".into())
        );
        for null in [json!(null), json!("")] {
            assert_eq!(parse_pk(&null), Err("This field may not be null.".into()));
        }
    }

    #[test]
    fn roles_are_choices() {
        assert_eq!(parse_role(&json!("owner")), Ok(Role::Owner));
        assert_eq!(
            parse_role(&json!("boss")),
            Err("\"boss\" is not a valid choice.".into())
        );
        assert_eq!(
            parse_role(&json!("")),
            Err("\"\" is not a valid choice.".into())
        );
        assert_eq!(
            parse_role(&json!(true)),
            Err("\"True\" is not a valid choice.".into())
        );
        assert_eq!(
            parse_role(&json!(null)),
            Err("This field may not be null.".into())
        );
    }

    #[test]
    fn required_fields_are_only_required_on_full_writes() {
        let body = Map::new();
        let full = AccessInput::parse(&body, false);
        assert_eq!(full.user, Some(Err("This field is required.".into())));
        assert_eq!(full.resource, Some(Err("This field is required.".into())));
        assert_eq!(full.role, None);
        assert_eq!(AccessInput::parse(&body, true), AccessInput::default());
    }

    /// A database with users 1–4 and room 10, and a caller per user who
    /// authenticates with the bearer token `token-<n>` (already cached, so
    /// no provider is needed).
    struct World {
        db: SqliteDatabase,
        clock: FixedClock,
        http: ScriptedHttp,
        variables: StaticVariables,
    }

    const ROOM: &str = "00000000-0000-4000-8000-000000000010";

    fn uuid(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    impl World {
        fn new() -> World {
            let db = migrated_database().unwrap();
            db.execute_batch(&format!(
                "INSERT INTO meet_room (id, created_at, updated_at, name, slug) \
                 VALUES ('{ROOM}', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', 'Room', 'room');"
            ))
            .unwrap();
            for n in 1..=4 {
                let hash = hex::encode(Sha256::digest(format!("token-{n}").as_bytes()));
                db.execute_batch(&format!(
                    "INSERT INTO meet_user (id, created_at, updated_at, sub) \
                     VALUES ('{id}', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', 'sub-{n}'); \
                     INSERT INTO meet_bearer_token (token_hash, user_id, expires_at) \
                     VALUES ('{hash}', '{id}', '2999-01-01T00:00:00.000000Z');",
                    id = uuid(n)
                ))
                .unwrap();
            }
            World {
                db,
                clock: FixedClock::new(datetime!(2025-06-30 12:00 UTC)),
                http: ScriptedHttp::default(),
                variables: StaticVariables::new(&[]),
            }
        }

        fn grant(&self, n: u32, user: u32, role: Role) -> String {
            let id = uuid(n);
            self.db
                .execute_batch(&format!(
                    "INSERT INTO meet_resource_access (id, created_at, updated_at, resource_id, user_id, role) \
                     VALUES ('{id}', '2025-01-01T00:00:{n:02}.000000Z', '2025-01-01T00:00:00.000000Z', '{ROOM}', '{}', '{}');",
                    uuid(user),
                    role.as_str()
                ))
                .unwrap();
            id
        }

        /// Calls the API as user `caller` (0: anonymous).
        fn call(
            &self,
            caller: u32,
            method: Method,
            path: &str,
            body: Option<Value>,
        ) -> ApiResponse {
            let mut request = ApiRequest::new(method, path).with_header("host", "testserver");
            if caller > 0 {
                request = request.with_header("authorization", &format!("Bearer token-{caller}"));
            }
            if let Some(body) = body {
                request = request
                    .with_header("content-type", "application/json")
                    .with_body(body.to_string());
            }
            let services = Services {
                db: &self.db,
                http: &self.http,
                clock: &self.clock,
                random: &OsRandom,
                variables: &self.variables,
            };
            let result = match path.strip_prefix("/api/v1.0/resource-accesses/") {
                Some("") => accesses(&request, &services),
                Some(rest) => access(&request, &services, rest.trim_end_matches('/')),
                None => panic!("not an access path: {path}"),
            };
            result.unwrap_or_else(|error| error.to_response())
        }
    }

    fn body(response: &ApiResponse) -> Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    fn detail(path_id: &str) -> String {
        format!("/api/v1.0/resource-accesses/{path_id}/")
    }

    const LIST: &str = "/api/v1.0/resource-accesses/";

    #[test]
    fn anonymous_callers_get_401_before_405() {
        let world = World::new();
        let response = world.call(0, Method::PATCH, LIST, None);
        assert_eq!(response.status, 401);
        assert_eq!(
            body(&response),
            json!({"detail": "Authentication credentials were not provided."})
        );
        let response = world.call(1, Method::PATCH, LIST, None);
        assert_eq!(response.status, 405);
        assert_eq!(
            body(&response),
            json!({"detail": "Method \"PATCH\" not allowed."})
        );
    }

    #[test]
    fn create_checks_in_upstream_order() {
        let world = World::new();
        world.grant(20, 1, Role::Owner);
        world.grant(21, 2, Role::Administrator);
        world.grant(22, 3, Role::Member);
        let post = |caller, body: Value| world.call(caller, Method::POST, LIST, Some(body));

        // Field errors are collected in field order…
        let response = post(2, json!({"user": "x", "role": "boss"}));
        assert_eq!(response.status, 400);
        assert_eq!(
            body(&response),
            json!({
                "user": ["“x” is not a valid UUID."],
                "resource": ["This field is required."],
                "role": ["\"boss\" is not a valid choice."],
            })
        );
        // …but a room the caller does not administer is refused at once.
        let response = post(3, json!({"user": "x", "resource": ROOM, "role": "boss"}));
        assert_eq!(response.status, 403);
        assert_eq!(body(&response), json!({"detail": NOT_ADMINISTRATOR}));
        let missing = uuid(99);
        let response = post(2, json!({"user": missing, "resource": missing}));
        assert_eq!(
            body(&response),
            json!({
                "user": [format!("Invalid pk \"{missing}\" - object does not exist.")],
                "resource": [format!("Invalid pk \"{missing}\" - object does not exist.")],
            })
        );
        // The unique pair is checked before the owner rule, as DRF runs
        // its validators before `validate()`.
        let response = post(
            2,
            json!({"user": uuid(3), "resource": ROOM, "role": "owner"}),
        );
        assert_eq!(response.status, 400);
        assert_eq!(body(&response), json!({"non_field_errors": [NOT_UNIQUE]}));
        let response = post(
            2,
            json!({"user": uuid(4), "resource": ROOM, "role": "owner"}),
        );
        assert_eq!(response.status, 403);
        assert_eq!(body(&response), json!({"detail": OWNERS_ONLY}));

        let response = post(2, json!({"user": uuid(4), "resource": ROOM}));
        assert_eq!(response.status, 201);
        let created = body(&response);
        assert_eq!(created["user"], uuid(4));
        assert_eq!(created["resource"], ROOM);
        assert_eq!(created["role"], "member");
        let id = created["id"].as_str().unwrap();
        assert_eq!(world.call(1, Method::GET, &detail(id), None).status, 200);
    }

    #[test]
    fn retrieve_and_delete_need_a_role_that_allows_them() {
        let world = World::new();
        let owner = world.grant(20, 1, Role::Owner);
        let admin = world.grant(21, 2, Role::Administrator);
        let member = world.grant(22, 3, Role::Member);

        assert_eq!(
            world.call(3, Method::GET, &detail(&admin), None).status,
            403
        );
        assert_eq!(
            world.call(4, Method::GET, &detail(&admin), None).status,
            403
        );
        let response = world.call(2, Method::GET, &detail(&owner), None);
        assert_eq!(
            body(&response),
            json!({"id": owner, "user": uuid(1), "resource": ROOM, "role": "owner"})
        );
        for missing in [uuid(98), "not-a-uuid".to_string()] {
            let response = world.call(1, Method::DELETE, &detail(&missing), None);
            assert_eq!(response.status, 404);
            assert_eq!(
                body(&response),
                json!({"detail": "No ResourceAccess matches the given query."})
            );
        }

        assert_eq!(
            world.call(2, Method::DELETE, &detail(&owner), None).status,
            403
        );
        let response = world.call(1, Method::DELETE, &detail(&owner), None);
        assert_eq!(response.status, 403);
        assert_eq!(body(&response), json!({"detail": LAST_OWNER}));
        assert_eq!(
            world.call(3, Method::DELETE, &detail(&admin), None).status,
            403
        );
        assert_eq!(
            world.call(2, Method::DELETE, &detail(&member), None).status,
            204
        );
    }

    #[test]
    fn updates_change_only_the_role_within_the_owner_rules() {
        let world = World::new();
        let owner = world.grant(20, 1, Role::Owner);
        let admin = world.grant(21, 2, Role::Administrator);
        let member = world.grant(22, 3, Role::Member);
        let put = |caller, id: &str, role: &str| {
            world.call(
                caller,
                Method::PUT,
                &detail(id),
                Some(json!({"user": uuid(4), "resource": ROOM, "role": role})),
            )
        };

        // Members are refused before their body is even read.
        let response = world.call(3, Method::PUT, &detail(&member), Some(json!([])));
        assert_eq!(response.status, 403);
        let response = world.call(2, Method::PUT, &detail(&member), Some(json!({})));
        assert_eq!(
            body(&response),
            json!({"user": ["This field is required."], "resource": ["This field is required."]})
        );
        let response = put(2, &member, "administrator");
        assert_eq!(response.status, 200);
        assert_eq!(
            body(&response),
            json!({"id": member, "user": uuid(3), "resource": ROOM, "role": "administrator"})
        );
        assert_eq!(
            body(&put(2, &member, "owner")),
            json!({"detail": OWNERS_ONLY})
        );
        assert_eq!(
            body(&put(2, &owner, "member")),
            json!({"detail": OWNERS_ONLY})
        );
        let response = put(1, &owner, "member");
        assert_eq!(response.status, 403);
        assert_eq!(body(&response), json!({"detail": LAST_OWNER}));
        assert_eq!(put(1, &admin, "owner").status, 200);
        // With a second owner, the first may step down.
        let response = world.call(
            1,
            Method::PATCH,
            &detail(&owner),
            Some(json!({"role": "member"})),
        );
        assert_eq!(response.status, 200);
        assert_eq!(body(&response)["role"], "member");
    }
}
