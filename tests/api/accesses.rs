//! Resource accesses over HTTP (api.md §5): every route, rule and error body.
//! Rooms and extra users are written straight into the database, so these
//! tests only depend on the identity component (for bearer users) and the
//! accesses component.

use meet_e2e::oidc_provider::OidcProvider;
use meet_e2e::{api_user, spawn_app_with, AppOptions, TestApp};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use serde_json::{json, Value};

const LIST: &str = "/api/v1.0/resource-accesses/";
const NOT_AUTHENTICATED: &str = "Authentication credentials were not provided.";
const DENIED: &str = "You do not have permission to perform this action.";
const NOT_ADMINISTRATOR: &str =
    "You must be administrator or owner of a room to add accesses to it.";
const OWNERS_ONLY: &str = "Only owners of a room can assign other users as owners.";
const LAST_OWNER: &str = "A resource should keep at least one owner.";
const NOT_FOUND: &str = "No ResourceAccess matches the given query.";
const NOT_UNIQUE: &str = "The fields user, resource must make a unique set.";
const T0: &str = "2025-01-01T00:00:00.000000Z";

fn detail(id: &str) -> String {
    format!("{LIST}{id}/")
}

struct World {
    provider: OidcProvider,
    app: TestApp,
    /// Makes ids and timestamps unique and increasing.
    counter: std::cell::Cell<u32>,
}

/// A user calling the API with a bearer token.
struct Person {
    token: String,
    id: String,
}

impl World {
    fn new() -> World {
        let provider = OidcProvider::start();
        let app = spawn_app_with(AppOptions::default().variables(&provider.variables()));
        World {
            provider,
            app,
            counter: std::cell::Cell::new(0),
        }
    }

    fn next(&self) -> u32 {
        self.counter.set(self.counter.get() + 1);
        self.counter.get()
    }

    fn uuid(&self) -> String {
        format!("00000000-0000-4000-8000-{:012}", self.next())
    }

    /// A user who has called the API once (which created them).
    fn person(&self, name: &str) -> Person {
        let (token, me) = api_user(
            &self.provider,
            &self.app,
            &format!("sub-{name}"),
            &format!("{name}@example.org"),
        );
        Person {
            token,
            id: me["id"].as_str().unwrap().to_string(),
        }
    }

    /// A user who never called the API.
    fn stored_user(&self) -> String {
        let id = self.uuid();
        self.app
            .db()
            .execute(
                "INSERT INTO meet_user (id, created_at, updated_at, sub) VALUES (?1, ?2, ?2, ?1)",
                (&id, T0),
            )
            .unwrap();
        id
    }

    fn room(&self) -> String {
        let id = self.uuid();
        self.app
            .db()
            .execute(
                "INSERT INTO meet_room (id, created_at, updated_at, name, slug, access_level) \
                 VALUES (?1, ?2, ?2, ?1, ?1, 'public')",
                (&id, T0),
            )
            .unwrap();
        id
    }

    /// Gives `user` a role on `room`; each grant is newer than the last.
    fn grant(&self, room: &str, user: &str, role: &str) -> String {
        let id = self.uuid();
        let at = format!("2025-01-01T00:{:02}:00.000000Z", self.next() % 60);
        self.app
            .db()
            .execute(
                "INSERT INTO meet_resource_access (id, created_at, updated_at, resource_id, user_id, role) \
                 VALUES (?1, ?2, ?2, ?3, ?4, ?5)",
                (&id, &at, room, user, role),
            )
            .unwrap();
        id
    }

    fn stored_role(&self, access: &str) -> Option<String> {
        self.app
            .db()
            .query_row(
                "SELECT role FROM meet_resource_access WHERE id = ?",
                [access],
                |row| row.get(0),
            )
            .ok()
    }

    fn count(&self) -> i64 {
        self.app
            .db()
            .query_row("SELECT count(*) FROM meet_resource_access", [], |row| {
                row.get(0)
            })
            .unwrap()
    }

    fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        Client::new().request(method, self.app.url(path))
    }

    fn as_(&self, person: &Person, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path).bearer_auth(&person.token)
    }
}

/// The status and JSON body of a response.
fn read(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}

fn detail_body(text: &str) -> Value {
    json!({ "detail": text })
}

#[test]
fn anonymous_callers_get_401_on_every_route_and_method() {
    let world = World::new();
    let room = world.room();
    let owner = world.stored_user();
    let access = world.grant(&room, &owner, "owner");

    for (method, path) in [
        (Method::GET, LIST.to_string()),
        (Method::POST, LIST.to_string()),
        (Method::PUT, LIST.to_string()),
        (Method::GET, detail(&access)),
        (Method::PUT, detail(&access)),
        (Method::PATCH, detail(&access)),
        (Method::DELETE, detail(&access)),
        (Method::POST, detail(&access)),
        (Method::GET, detail("unknown")),
    ] {
        let response = world
            .anonymous(method.clone(), &path)
            .json(&json!({"user": owner, "resource": room, "role": "member"}))
            .send()
            .unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"api\"",
            "{method} {path}"
        );
        assert_eq!(
            read(response),
            (401, detail_body(NOT_AUTHENTICATED)),
            "{method} {path}"
        );
    }
    assert_eq!(world.count(), 1);
}

#[test]
fn unsupported_methods_are_405_once_authenticated_and_urls_follow_conventions() {
    let world = World::new();
    let jane = world.person("jane");

    for (method, path, verb) in [
        (Method::PUT, LIST.to_string(), "PUT"),
        (Method::PATCH, LIST.to_string(), "PATCH"),
        (Method::DELETE, LIST.to_string(), "DELETE"),
        (Method::POST, detail(&world.uuid()), "POST"),
    ] {
        let response = world.as_(&jane, method, &path).send().unwrap();
        assert_eq!(
            read(response),
            (405, detail_body(&format!("Method \"{verb}\" not allowed."))),
            "{verb} {path}"
        );
    }

    // The app's own client does not follow redirects.
    let response = world
        .app
        .client
        .get(world.app.url("/api/v1.0/resource-accesses?page=2"))
        .bearer_auth(&jane.token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 301);
    assert_eq!(
        response.headers()["location"],
        "/api/v1.0/resource-accesses/?page=2"
    );
}

#[test]
fn the_list_shows_every_access_of_administered_rooms_newest_first() {
    let world = World::new();
    let jane = world.person("jane");
    let stranger = world.person("stranger");
    let (owned, administered, joined, unrelated) =
        (world.room(), world.room(), world.room(), world.room());
    let mut expected = Vec::new();
    for (room, role) in [(&owned, "owner"), (&administered, "administrator")] {
        expected.push(world.grant(room, &jane.id, role));
        for other_role in ["member", "administrator", "owner"] {
            expected.push(world.grant(room, &world.stored_user(), other_role));
        }
    }
    world.grant(&joined, &jane.id, "member");
    world.grant(&joined, &world.stored_user(), "owner");
    world.grant(&unrelated, &world.stored_user(), "owner");
    expected.reverse();

    let (status, page) = read(world.as_(&jane, Method::GET, LIST).send().unwrap());
    assert_eq!(status, 200);
    assert_eq!(page["count"], 8);
    assert_eq!(page["next"], Value::Null);
    assert_eq!(page["previous"], Value::Null);
    let ids: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|access| access["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(
        page["results"][7],
        json!({"id": expected[7], "user": jane.id, "resource": owned, "role": "owner"})
    );

    let (status, page) = read(world.as_(&stranger, Method::GET, LIST).send().unwrap());
    assert_eq!(
        (status, page),
        (
            200,
            json!({"count": 0, "next": null, "previous": null, "results": []})
        )
    );
}

#[test]
fn the_list_is_paginated_by_20() {
    let world = World::new();
    let jane = world.person("jane");
    let room = world.room();
    world.grant(&room, &jane.id, "administrator");
    for _ in 0..21 {
        world.grant(&room, &world.stored_user(), "member");
    }

    let (_, first) = read(world.as_(&jane, Method::GET, LIST).send().unwrap());
    assert_eq!(first["count"], 22);
    assert_eq!(first["results"].as_array().unwrap().len(), 20);
    assert_eq!(
        first["next"],
        format!("{}?page=2", world.app.url(LIST)).as_str()
    );
    let (_, second) = read(
        world
            .as_(&jane, Method::GET, &format!("{LIST}?page=2&page_size=50"))
            .send()
            .unwrap(),
    );
    assert_eq!(second["results"].as_array().unwrap().len(), 2);
    assert_eq!(second["next"], Value::Null);
    assert_eq!(
        second["previous"],
        format!("{}?page_size=50", world.app.url(LIST)).as_str()
    );
    let response = world
        .as_(&jane, Method::GET, &format!("{LIST}?page=3"))
        .send()
        .unwrap();
    assert_eq!(read(response), (404, detail_body("Invalid page.")));
}

#[test]
fn retrieving_needs_administrator_or_owner_of_the_room() {
    let world = World::new();
    let (owner, admin, member, stranger) = (
        world.person("owner"),
        world.person("admin"),
        world.person("member"),
        world.person("stranger"),
    );
    let room = world.room();
    world.grant(&room, &owner.id, "owner");
    world.grant(&room, &admin.id, "administrator");
    world.grant(&room, &member.id, "member");

    for role in ["member", "administrator", "owner"] {
        let access = world.grant(&room, &world.stored_user(), role);
        for person in [&owner, &admin] {
            let response = world.as_(person, Method::GET, &detail(&access)).send();
            assert_eq!(
                read(response.unwrap()),
                (
                    200,
                    json!({"id": access, "user": world_user(&world, &access), "resource": room, "role": role})
                )
            );
        }
        for person in [&member, &stranger] {
            let response = world.as_(person, Method::GET, &detail(&access)).send();
            assert_eq!(read(response.unwrap()), (403, detail_body(DENIED)));
        }
    }

    // Unknown ids and ids that are no UUID name nothing; any UUID spelling
    // Python accepts names the access.
    let access = world.grant(&room, &world.stored_user(), "member");
    for path in [detail(&world.uuid()), detail("not-a-uuid")] {
        let response = world.as_(&owner, Method::GET, &path).send().unwrap();
        assert_eq!(read(response), (404, detail_body(NOT_FOUND)), "{path}");
    }
    let braced = format!("{{{}}}", access.to_uppercase());
    let response = world.as_(&owner, Method::GET, &detail(&braced)).send();
    assert_eq!(read(response.unwrap()).1["id"], access.as_str());
}

/// The user of an access, read from the database.
fn world_user(world: &World, access: &str) -> String {
    world
        .app
        .db()
        .query_row(
            "SELECT user_id FROM meet_resource_access WHERE id = ?",
            [access],
            |row| row.get(0),
        )
        .unwrap()
}

#[test]
fn creating_needs_administrator_and_owner_to_grant_owner() {
    let world = World::new();
    let (owner, admin, member, stranger) = (
        world.person("owner"),
        world.person("admin"),
        world.person("member"),
        world.person("stranger"),
    );
    let room = world.room();
    world.grant(&room, &owner.id, "owner");
    world.grant(&room, &admin.id, "administrator");
    world.grant(&room, &member.id, "member");
    let post = |person: &Person, body: Value| {
        read(
            world
                .as_(person, Method::POST, LIST)
                .json(&body)
                .send()
                .unwrap(),
        )
    };

    for person in [&member, &stranger] {
        for role in ["member", "administrator", "owner"] {
            let newcomer = world.stored_user();
            assert_eq!(
                post(
                    person,
                    json!({"user": newcomer, "resource": room, "role": role})
                ),
                (403, detail_body(NOT_ADMINISTRATOR))
            );
        }
    }
    let newcomer = world.stored_user();
    assert_eq!(
        post(
            &admin,
            json!({"user": newcomer, "resource": room, "role": "owner"})
        ),
        (403, detail_body(OWNERS_ONLY))
    );
    assert_eq!(world.count(), 3);

    for (person, role) in [
        (&admin, "member"),
        (&admin, "administrator"),
        (&owner, "member"),
        (&owner, "administrator"),
        (&owner, "owner"),
    ] {
        let newcomer = world.stored_user();
        let (status, created) = post(
            person,
            json!({"user": newcomer, "resource": room, "role": role}),
        );
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap();
        assert_eq!(
            created,
            json!({"id": id, "user": newcomer, "resource": room, "role": role})
        );
        assert_eq!(world.stored_role(id).as_deref(), Some(role));
    }

    // The role defaults to member; multipart bodies work as JSON ones do.
    let newcomer = world.stored_user();
    let response = crate::conformance::with_fields(
        world.as_(&admin, Method::POST, LIST),
        &[("user", newcomer.as_str()), ("resource", room.as_str())],
    )
    .send()
    .unwrap();
    let (status, created) = read(response);
    assert_eq!((status, created["role"].clone()), (201, json!("member")));
}

#[test]
fn create_validation_errors_are_drf_bodies() {
    let world = World::new();
    let admin = world.person("admin");
    let member = world.person("member");
    let room = world.room();
    world.grant(&room, &admin.id, "administrator");
    let taken = world.grant(&room, &member.id, "member");
    let newcomer = world.stored_user();
    let missing = world.uuid();
    let post = |person: &Person, body: Value| {
        read(
            world
                .as_(person, Method::POST, LIST)
                .json(&body)
                .send()
                .unwrap(),
        )
    };

    assert_eq!(
        post(&admin, json!({})),
        (
            400,
            json!({"user": ["This field is required."], "resource": ["This field is required."]})
        )
    );
    assert_eq!(
        post(
            &admin,
            json!({"user": missing, "resource": missing, "role": "boss"})
        ),
        (
            400,
            json!({
                "user": [format!("Invalid pk \"{missing}\" - object does not exist.")],
                "resource": [format!("Invalid pk \"{missing}\" - object does not exist.")],
                "role": ["\"boss\" is not a valid choice."],
            })
        )
    );
    assert_eq!(
        post(
            &admin,
            json!({"user": "nope", "resource": null, "role": null})
        ),
        (
            400,
            json!({
                "user": ["“nope” is not a valid UUID."],
                "resource": ["This field may not be null."],
                "role": ["This field may not be null."],
            })
        )
    );
    assert_eq!(
        post(&admin, json!({"user": true, "resource": room})),
        (
            400,
            json!({"user": ["Incorrect type. Expected pk value, received bool."]})
        )
    );
    // A room the caller does not administer is refused as soon as the
    // `resource` field is read, before the errors of later fields.
    assert_eq!(
        post(
            &member,
            json!({"user": "nope", "resource": room, "role": "boss"})
        ),
        (403, detail_body(NOT_ADMINISTRATOR))
    );
    // The unique pair is checked before the owner rule (DRF runs the
    // serializer's validators before `validate()`).
    for role in ["member", "owner"] {
        assert_eq!(
            post(
                &admin,
                json!({"user": member.id, "resource": room, "role": role})
            ),
            (400, json!({"non_field_errors": [NOT_UNIQUE]}))
        );
    }
    assert_eq!(world.stored_role(&taken).as_deref(), Some("member"));

    // Bodies that are not objects of JSON.
    let response = world
        .as_(&admin, Method::POST, LIST)
        .json(&json!([newcomer]))
        .send()
        .unwrap();
    assert_eq!(
        read(response),
        (
            400,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        )
    );
    let response = world
        .as_(&admin, Method::POST, LIST)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .unwrap();
    let (status, body) = read(response);
    assert_eq!(status, 400);
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .starts_with("JSON parse error - "));
    let response = world
        .as_(&admin, Method::POST, LIST)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(
        read(response),
        (
            415,
            detail_body("Unsupported media type \"text/plain\" in request.")
        )
    );
    assert_eq!(world.count(), 2);
}

#[test]
fn updates_change_only_the_role_within_the_owner_rules() {
    let world = World::new();
    let (owner, admin, member, stranger) = (
        world.person("owner"),
        world.person("admin"),
        world.person("member"),
        world.person("stranger"),
    );
    let room = world.room();
    let other_room = world.room();
    let owner_access = world.grant(&room, &owner.id, "owner");
    world.grant(&room, &admin.id, "administrator");
    world.grant(&room, &member.id, "member");
    world.grant(&other_room, &admin.id, "administrator");
    world.grant(&other_room, &member.id, "member");
    let target_user = world.stored_user();
    let target = world.grant(&room, &target_user, "member");
    let put = |person: &Person, access: &str, body: Value| {
        read(
            world
                .as_(person, Method::PUT, &detail(access))
                .json(&body)
                .send()
                .unwrap(),
        )
    };
    let full = |role: &str| json!({"user": target_user, "resource": room, "role": role});

    // Members and strangers are refused before their body is read.
    for person in [&member, &stranger] {
        assert_eq!(put(person, &target, json!([])), (403, detail_body(DENIED)));
    }
    assert_eq!(
        put(&owner, &world.uuid(), full("member")),
        (404, detail_body(NOT_FOUND))
    );
    // PUT wants user and resource; PATCH does not.
    assert_eq!(
        put(&admin, &target, json!({"role": "administrator"})),
        (
            400,
            json!({"user": ["This field is required."], "resource": ["This field is required."]})
        )
    );
    // The resource given must be administered by the caller…
    let not_administered = world.room();
    assert_eq!(
        put(
            &admin,
            &target,
            json!({"user": target_user, "resource": not_administered, "role": "member"})
        ),
        (403, detail_body(NOT_ADMINISTRATOR))
    );
    // …but user and resource never change.
    let (status, updated) = put(
        &admin,
        &target,
        json!({"user": world.stored_user(), "resource": other_room, "role": "administrator"}),
    );
    assert_eq!(
        (status, updated),
        (
            200,
            json!({"id": target, "user": target_user, "resource": room, "role": "administrator"})
        )
    );
    // An unknown role is a field error.
    assert_eq!(
        put(&admin, &target, full("boss")),
        (400, json!({"role": ["\"boss\" is not a valid choice."]}))
    );

    // Administrators neither grant owner nor touch owner accesses.
    assert_eq!(
        put(&admin, &target, full("owner")),
        (403, detail_body(OWNERS_ONLY))
    );
    assert_eq!(
        put(
            &admin,
            &owner_access,
            json!({"user": owner.id, "resource": room, "role": "member"})
        ),
        (403, detail_body(OWNERS_ONLY))
    );
    // The only owner cannot step down.
    assert_eq!(
        put(
            &owner,
            &owner_access,
            json!({"user": owner.id, "resource": room, "role": "administrator"})
        ),
        (403, detail_body(LAST_OWNER))
    );
    // Owners grant owner, but then cannot edit that owner.
    let (status, _) = put(&owner, &target, full("owner"));
    assert_eq!(status, 200);
    assert_eq!(
        put(&owner, &target, full("member")),
        (403, detail_body(OWNERS_ONLY))
    );
    // With a second owner, the first may step down (PATCH, role only).
    let response = world
        .as_(&owner, Method::PATCH, &detail(&owner_access))
        .json(&json!({"role": "member"}))
        .send()
        .unwrap();
    assert_eq!(
        read(response),
        (
            200,
            json!({"id": owner_access, "user": owner.id, "resource": room, "role": "member"})
        )
    );
    assert_eq!(world.stored_role(&target).as_deref(), Some("owner"));
}

#[test]
fn update_refuses_a_pair_that_another_access_holds() {
    let world = World::new();
    let admin = world.person("admin");
    let room = world.room();
    world.grant(&room, &admin.id, "administrator");
    let first_user = world.stored_user();
    world.grant(&room, &first_user, "member");
    let second = world.grant(&room, &world.stored_user(), "member");

    // DRF's unique-together validator judges the (ignored) pair sent.
    let response = world
        .as_(&admin, Method::PUT, &detail(&second))
        .json(&json!({"user": first_user, "resource": room, "role": "administrator"}))
        .send()
        .unwrap();
    assert_eq!(
        read(response),
        (400, json!({"non_field_errors": [NOT_UNIQUE]}))
    );
    assert_eq!(world.stored_role(&second).as_deref(), Some("member"));
}

#[test]
fn deleting_follows_the_owner_rules() {
    let world = World::new();
    let (owner, admin, member, stranger) = (
        world.person("owner"),
        world.person("admin"),
        world.person("member"),
        world.person("stranger"),
    );
    let room = world.room();
    let owner_access = world.grant(&room, &owner.id, "owner");
    let admin_access = world.grant(&room, &admin.id, "administrator");
    world.grant(&room, &member.id, "member");
    let delete = |person: &Person, access: &str| {
        read(
            world
                .as_(person, Method::DELETE, &detail(access))
                .send()
                .unwrap(),
        )
    };

    let target = world.grant(&room, &world.stored_user(), "member");
    for person in [&member, &stranger] {
        assert_eq!(delete(person, &target), (403, detail_body(DENIED)));
    }
    assert_eq!(delete(&admin, &target), (204, Value::Null));
    assert_eq!(world.stored_role(&target), None);
    assert_eq!(delete(&admin, &target), (404, detail_body(NOT_FOUND)));
    assert_eq!(delete(&admin, "nope"), (404, detail_body(NOT_FOUND)));
    let target = world.grant(&room, &world.stored_user(), "administrator");
    assert_eq!(delete(&owner, &target), (204, Value::Null));

    // Owner accesses: only their own user deletes them, never the last one.
    let other_owner = world.grant(&room, &world.stored_user(), "owner");
    assert_eq!(delete(&admin, &other_owner), (403, detail_body(DENIED)));
    assert_eq!(delete(&owner, &other_owner), (403, detail_body(DENIED)));
    assert_eq!(delete(&owner, &owner_access), (204, Value::Null));
    let lone_room = world.room();
    let lone = world.grant(&lone_room, &owner.id, "owner");
    assert_eq!(delete(&owner, &lone), (403, detail_body(LAST_OWNER)));
    assert_eq!(world.stored_role(&lone).as_deref(), Some("owner"));
    // Anyone privileged may leave a room.
    assert_eq!(delete(&admin, &admin_access), (204, Value::Null));
}

#[test]
fn of_two_owners_stepping_down_at_once_exactly_one_succeeds() {
    let world = World::new();
    let first = world.person("first");
    let second = world.person("second");
    let room = world.room();
    let first_access = world.grant(&room, &first.id, "owner");
    let second_access = world.grant(&room, &second.id, "owner");

    let requests = [(&first, &first_access), (&second, &second_access)].map(|(person, access)| {
        world
            .as_(person, Method::PATCH, &detail(access))
            .json(&json!({"role": "member"}))
    });
    let barrier = std::sync::Barrier::new(2);
    let outcomes: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    read(request.send().unwrap())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });

    let statuses: Vec<u16> = outcomes.iter().map(|(status, _)| *status).collect();
    assert!(
        statuses == [200, 403] || statuses == [403, 200],
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&(403, detail_body(LAST_OWNER))));
    let owners: i64 = world
        .app
        .db()
        .query_row(
            "SELECT count(*) FROM meet_resource_access WHERE resource_id = ? AND role = 'owner'",
            [&room],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(owners, 1);
}
