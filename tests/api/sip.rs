//! LiveKit SIP over HTTP (issue 11, items 4 and 5): webhooks signed with
//! LiveKit's SDK make the backend keep one direct dispatch rule per running
//! room in the fake LiveKit, and hold SIP callers of lobby rooms muted until
//! an administrator decides with `enter/`; LiveKit errors answer 500 so that
//! LiveKit delivers again, and the retry does the work once.

use meet_e2e::livekit_server::{Call, FakeLiveKit, Fault};
use meet_e2e::oidc_provider::OidcProvider;
use meet_e2e::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

use crate::rooms::{rooms_app, Person, LIVEKIT_KEY, LIVEKIT_SECRET};
use crate::webhooks::{deliver, sign};

const LIST: &str = "SIP/ListSIPDispatchRule";
const CREATE: &str = "SIP/CreateSIPDispatchRule";
const DELETE: &str = "SIP/DeleteSIPDispatchRule";
const UPDATE: &str = "RoomService/UpdateParticipant";
const REMOVE: &str = "RoomService/RemoveParticipant";

struct Sip {
    livekit: FakeLiveKit,
    provider: OidcProvider,
    app: TestApp,
}

/// An app talking to a fake LiveKit, telephony on unless `extra` says
/// otherwise.
fn sip_app(extra: &[(&str, &str)]) -> Sip {
    let livekit = FakeLiveKit::start(LIVEKIT_KEY, LIVEKIT_SECRET);
    let url = livekit.url();
    let mut variables = vec![
        ("livekit_api_url", url.as_str()),
        ("livekit_api_origin", url.as_str()),
        ("room_telephony_enabled", "true"),
        ("room_telephony_pin_secret", "a-pin-secret"),
        ("room_telephony_pin_length", "6"),
    ];
    variables.extend_from_slice(extra);
    let (provider, app) = rooms_app(&variables);
    Sip {
        livekit,
        provider,
        app,
    }
}

/// Delivers `event` signed as LiveKit does: the status the endpoint answers.
fn send(app: &TestApp, event: &Value) -> u16 {
    let body = event.to_string();
    deliver(app, &body, Some(&sign(&body, LIVEKIT_SECRET)))
        .status()
        .as_u16()
}

fn room_event(kind: &str, id: &str, room: &str) -> Value {
    json!({"event": kind, "id": id, "createdAt": "1700000000",
           "room": {"sid": format!("RM_{id}"), "name": room}})
}

/// `participant_joined` as LiveKit writes it (protobuf JSON, camelCase).
fn joined(id: &str, room: &str, participant: Value) -> Value {
    let mut event = room_event("participant_joined", id, room);
    event["participant"] = participant;
    event
}

/// A SIP participant as LiveKit's SIP service creates it.
fn sip_participant(identity: &str, number: &str) -> Value {
    json!({
        "sid": format!("PA_{identity}"),
        "identity": identity,
        "state": "ACTIVE",
        "name": format!("Phone {number}"),
        "kind": "SIP",
        "permission": {"canSubscribe": true, "canPublish": true, "canPublishData": true},
        "attributes": {"sip.phoneNumber": number, "sip.callStatus": "active"},
    })
}

fn waiting(app: &TestApp, owner: &Person, room: &str) -> Value {
    let response = owner
        .request(
            app,
            Method::GET,
            &format!("/api/v1.0/rooms/{room}/waiting-participants/"),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().unwrap()["participants"].clone()
}

fn enter(app: &TestApp, owner: &Person, room: &str, participant: &str, allow: bool) -> u16 {
    owner
        .request(app, Method::POST, &format!("/api/v1.0/rooms/{room}/enter/"))
        .json(&json!({"participant_id": participant, "allow_entry": allow}))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn id_of(room: &Value) -> String {
    room["id"].as_str().unwrap().to_string()
}

/// Every call was authorized by the fake with the SIP admin grant LiveKit
/// requires for dispatch rules (`sip.admin`).
fn assert_sip_admin(calls: &[Call]) {
    for call in calls {
        assert!(call.authorized, "{}: {}", call.method, call.grant);
        assert_eq!(call.grant["sip"]["admin"], true, "{}", call.grant);
        assert!(call.header("authorization").unwrap().starts_with("Bearer "));
    }
}

/// Every call was authorized with `roomAdmin` for `room`.
fn assert_room_admin(calls: &[Call], room: &str) {
    for call in calls {
        assert!(call.authorized, "{}: {}", call.method, call.grant);
        assert_eq!(call.grant["video"]["roomAdmin"], true, "{}", call.grant);
        assert_eq!(call.grant["video"]["room"], room);
    }
}

fn permission(call: &Call) -> (bool, bool, bool) {
    let flag = |name: &str| call.body["permission"][name].as_bool().unwrap();
    (
        flag("can_publish"),
        flag("can_subscribe"),
        flag("can_publish_data"),
    )
}

#[test]
fn room_started_ensures_one_dispatch_rule_and_room_finished_deletes_it() {
    let sip = sip_app(&[]);
    let (app, livekit) = (&sip.app, &sip.livekit);
    let owner = Person::new(&sip.provider, app, "owner");
    let room = owner.create_room(app, "sip room", "public");
    let other = owner.create_room(app, "other room", "restricted");
    let (room_id, other_id) = (id_of(&room), id_of(&other));
    let pin = room["pin_code"].as_str().unwrap();

    assert_eq!(
        send(app, &room_event("room_started", "EV_1", &room_id)),
        200
    );
    let created = livekit.calls_to(CREATE);
    assert_eq!(created.len(), 1);
    // One trunk: no trunk ids, the rule applies to every trunk.
    assert_eq!(
        created[0].body,
        json!({"rule": {"dispatch_rule_direct": {"room_name": room_id, "pin": pin}},
               "name": format!("SIP_{room_id}")})
    );
    let rules = livekit.dispatch_rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["name"], format!("SIP_{room_id}"));
    assert_eq!(rules[0]["rule"]["dispatch_rule_direct"]["pin"], pin);
    assert_sip_admin(&livekit.calls());
    // Listed first: the rule is created only when absent.
    let methods: Vec<String> = livekit.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, [LIST, CREATE]);

    // A second `room_started` (new event id): listed, not created again.
    assert_eq!(
        send(app, &room_event("room_started", "EV_2", &room_id)),
        200
    );
    assert_eq!(livekit.calls_to(LIST).len(), 2);
    assert_eq!(livekit.calls_to(CREATE).len(), 1);
    // A retried delivery (same event id): nothing is called at all.
    let before = livekit.calls().len();
    assert_eq!(
        send(app, &room_event("room_started", "EV_1", &room_id)),
        200
    );
    assert_eq!(livekit.calls().len(), before);
    assert_eq!(livekit.dispatch_rules().len(), 1);

    // Another room gets its own rule, with its own PIN.
    assert_eq!(
        send(app, &room_event("room_started", "EV_3", &other_id)),
        200
    );
    let rules = livekit.dispatch_rules();
    assert_eq!(rules.len(), 2);
    let other_rule = rules
        .iter()
        .find(|rule| rule["name"] == format!("SIP_{other_id}"))
        .expect("the other room's rule");
    assert_eq!(
        other_rule["rule"]["dispatch_rule_direct"],
        json!({"room_name": other_id, "pin": other["pin_code"]})
    );
    let room_rule_id = rules
        .iter()
        .find(|rule| rule["name"] == format!("SIP_{room_id}"))
        .unwrap()["sip_dispatch_rule_id"]
        .clone();

    // `room_finished` deletes that room's rule by id, and only it.
    assert_eq!(
        send(app, &room_event("room_finished", "EV_4", &room_id)),
        200
    );
    let deleted = livekit.calls_to(DELETE);
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        deleted[0].body,
        json!({"sip_dispatch_rule_id": room_rule_id})
    );
    assert_eq!(livekit.dispatch_rules(), vec![other_rule.clone()]);
    // A later `room_finished` finds nothing to delete.
    assert_eq!(
        send(app, &room_event("room_finished", "EV_5", &room_id)),
        200
    );
    assert_eq!(livekit.calls_to(DELETE).len(), 1);
    assert_sip_admin(&livekit.calls());

    // The room starts again: a fresh rule.
    assert_eq!(
        send(app, &room_event("room_started", "EV_6", &room_id)),
        200
    );
    assert_eq!(livekit.dispatch_rules().len(), 2);
    assert_eq!(livekit.calls_to(CREATE).len(), 3);
}

#[test]
fn dispatch_rules_name_the_rooms_trunk_when_there_are_several() {
    let sip = sip_app(&[("room_telephony_trunks", "ST_a,ST_b")]);
    let app = &sip.app;
    let owner = Person::new(&sip.provider, app, "owner");
    let mut trunks = Vec::new();
    for (index, name) in ["first", "second"].into_iter().enumerate() {
        let room = owner.create_room(app, name, "public");
        let room_id = id_of(&room);
        let event = room_event("room_started", &format!("EV_{index}"), &room_id);
        assert_eq!(send(app, &event), 200);
        let created = sip.livekit.calls_to(CREATE);
        let body = &created[index].body;
        assert_eq!(body["trunk_ids"], json!([room["pin_trunk"]]));
        assert_eq!(
            body["rule"]["dispatch_rule_direct"],
            json!({"room_name": room_id, "pin": room["pin_code"]})
        );
        trunks.push(room["pin_trunk"].as_str().unwrap().to_string());
    }
    trunks.sort();
    assert_eq!(trunks, ["ST_a", "ST_b"]);
    assert_sip_admin(&sip.livekit.calls());
}

#[test]
fn telephony_disabled_calls_nothing() {
    let sip = sip_app(&[("room_telephony_enabled", "false")]);
    let app = &sip.app;
    let owner = Person::new(&sip.provider, app, "owner");
    let room = owner.create_room(app, "no phone", "restricted");
    let room_id = id_of(&room);
    sip.livekit.set_room_running(&room_id, true);
    assert_eq!(
        send(app, &room_event("room_started", "EV_1", &room_id)),
        200
    );
    let caller = sip_participant("sip_+15550001111", "+15550001111");
    assert_eq!(send(app, &joined("EV_2", &room_id, caller)), 200);
    assert_eq!(
        send(app, &room_event("room_finished", "EV_3", &room_id)),
        200
    );
    assert!(sip.livekit.calls().is_empty(), "{:?}", sip.livekit.calls());
    assert_eq!(waiting(app, &owner, &room_id), json!([]));
}

#[test]
fn livekit_errors_answer_500_and_the_retry_works_once() {
    let sip = sip_app(&[]);
    let (app, livekit) = (&sip.app, &sip.livekit);
    let owner = Person::new(&sip.provider, app, "owner");
    let room_id = id_of(&owner.create_room(app, "flaky", "public"));
    let started = room_event("room_started", "EV_1", &room_id);

    // Creating fails: 500, so LiveKit delivers the same event again.
    livekit.fail_next(CREATE, Fault::twirp(503, "unavailable"));
    assert_eq!(send(app, &started), 500);
    assert!(livekit.dispatch_rules().is_empty());
    assert!(app.logs().contains("unavailable"), "{}", app.logs());
    // Listing fails: the same.
    livekit.fail_next(LIST, Fault::twirp(500, "internal"));
    assert_eq!(send(app, &started), 500);
    assert_eq!(livekit.calls_to(CREATE).len(), 1);
    // LiveKit unreachable mid-call (connection reset): the same.
    livekit.fail_next(LIST, Fault::Reset);
    assert_eq!(send(app, &started), 500);
    // The redelivery of the same event is processed (the failures did not
    // mark it as seen) and creates exactly one rule.
    assert_eq!(send(app, &started), 200);
    assert_eq!(livekit.dispatch_rules().len(), 1);
    assert_eq!(livekit.calls_to(CREATE).len(), 2);
    // Once it succeeded, it is a duplicate.
    let before = livekit.calls().len();
    assert_eq!(send(app, &started), 200);
    assert_eq!(livekit.calls().len(), before);
    assert_eq!(livekit.dispatch_rules().len(), 1);

    // Deleting fails: 500 and the rule stays; the retry deletes it.
    let finished = room_event("room_finished", "EV_2", &room_id);
    livekit.fail_next(DELETE, Fault::twirp(503, "unavailable"));
    assert_eq!(send(app, &finished), 500);
    assert_eq!(livekit.dispatch_rules().len(), 1);
    assert_eq!(send(app, &finished), 200);
    assert!(livekit.dispatch_rules().is_empty());
    assert_eq!(livekit.calls_to(DELETE).len(), 2);
    assert_sip_admin(&livekit.calls());

    // A SIP caller of a lobby room while UpdateParticipant fails: 500 and
    // the caller is not listed yet; the retry mutes and lists it once.
    let lobby_room = id_of(&owner.create_room(app, "flaky lobby", "restricted"));
    livekit.set_room_running(&lobby_room, true);
    let event = joined(
        "EV_3",
        &lobby_room,
        sip_participant("sip_+15550002222", "+15550002222"),
    );
    livekit.fail_next(UPDATE, Fault::twirp(503, "unavailable"));
    assert_eq!(send(app, &event), 500);
    assert_eq!(waiting(app, &owner, &lobby_room), json!([]));
    assert_eq!(send(app, &event), 200);
    let listed = waiting(app, &owner, &lobby_room);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let updates = livekit.calls_to(UPDATE);
    assert_eq!(updates.len(), 2);
    assert_eq!(permission(&updates[1]), (false, false, false));
    assert_eq!(send(app, &event), 200);
    assert_eq!(livekit.calls_to(UPDATE).len(), 2);
    assert_eq!(
        waiting(app, &owner, &lobby_room).as_array().unwrap().len(),
        1
    );
}

#[test]
fn sip_callers_of_lobby_rooms_are_muted_then_admitted_or_removed() {
    let sip = sip_app(&[]);
    let (app, livekit) = (&sip.app, &sip.livekit);
    let owner = Person::new(&sip.provider, app, "owner");

    // Restricted room: held, listed under the masked number, admitted.
    let room_id = id_of(&owner.create_room(app, "restricted line", "restricted"));
    livekit.set_room_running(&room_id, true);
    let identity = "sip_+15551234567";
    let caller = sip_participant(identity, "+1 555 123 4567");
    assert_eq!(send(app, &joined("EV_1", &room_id, caller)), 200);
    let held = livekit.calls_to(UPDATE);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].body["room"], room_id.as_str());
    assert_eq!(held[0].body["identity"], identity);
    assert_eq!(permission(&held[0]), (false, false, false));
    assert_room_admin(&held, &room_id);
    // The admins are told someone waits, as for a web guest.
    let told = livekit.calls_to("RoomService/SendData");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].body["room"], room_id.as_str());
    assert_eq!(told[0].data().unwrap(), br#"{"type":"participantWaiting"}"#);
    assert_room_admin(&told, &room_id);

    let listed = waiting(app, &owner, &room_id);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["username"], "Phone ••• 4567");
    assert_eq!(listed[0]["status"], "waiting");
    assert!(!listed[0].to_string().contains("555"), "{}", listed[0]);
    let participant_id = listed[0]["id"].as_str().unwrap().to_string();
    assert_eq!(participant_id.len(), 32);

    assert_eq!(enter(app, &owner, &room_id, &participant_id, true), 200);
    let updates = livekit.calls_to(UPDATE);
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[1].body["identity"], identity);
    assert_eq!(permission(&updates[1]), (true, true, true));
    assert_room_admin(&updates, &room_id);
    assert!(livekit.calls_to(REMOVE).is_empty());
    assert_eq!(waiting(app, &owner, &room_id), json!([]));

    // Trusted room: held, then refused, which removes the caller.
    let trusted_id = id_of(&owner.create_room(app, "trusted line", "trusted"));
    livekit.set_room_running(&trusted_id, true);
    let refused = "sip_+33612345678";
    let caller = sip_participant(refused, "+33612345678");
    assert_eq!(send(app, &joined("EV_2", &trusted_id, caller)), 200);
    let updates = livekit.calls_to(UPDATE);
    assert_eq!(updates.len(), 3);
    assert_eq!(updates[2].body["room"], trusted_id.as_str());
    assert_eq!(permission(&updates[2]), (false, false, false));
    let listed = waiting(app, &owner, &trusted_id);
    assert_eq!(listed[0]["username"], "Phone ••• 5678");
    let participant_id = listed[0]["id"].as_str().unwrap().to_string();
    assert_eq!(enter(app, &owner, &trusted_id, &participant_id, false), 200);
    let removed = livekit.calls_to(REMOVE);
    assert_eq!(removed.len(), 1);
    assert_eq!(
        removed[0].body,
        json!({"room": trusted_id, "identity": refused})
    );
    assert_room_admin(&removed, &trusted_id);
    assert_eq!(livekit.calls_to(UPDATE).len(), 3);
    assert_eq!(waiting(app, &owner, &trusted_id), json!([]));

    // A web guest's decision calls LiveKit for nothing more.
    let guest = "33333333333333333333333333333333";
    let response = reqwest::blocking::Client::new()
        .post(app.url(&format!("/api/v1.0/rooms/{room_id}/request-entry/")))
        .header("cookie", format!("lobbyParticipantId={guest}"))
        .json(&json!({"username": "Web guest"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let before = (
        livekit.calls_to(UPDATE).len(),
        livekit.calls_to(REMOVE).len(),
    );
    assert_eq!(enter(app, &owner, &room_id, guest, false), 200);
    assert_eq!(
        (
            livekit.calls_to(UPDATE).len(),
            livekit.calls_to(REMOVE).len()
        ),
        before
    );
}

#[test]
fn public_rooms_and_web_participants_are_left_alone() {
    let sip = sip_app(&[]);
    let (app, livekit) = (&sip.app, &sip.livekit);
    let owner = Person::new(&sip.provider, app, "owner");

    // A SIP caller of a public room keeps its permissions.
    let public_id = id_of(&owner.create_room(app, "public line", "public"));
    livekit.set_room_running(&public_id, true);
    let caller = sip_participant("sip_+15559990000", "+15559990000");
    assert_eq!(send(app, &joined("EV_1", &public_id, caller)), 200);

    // Web participants of a restricted room (kind STANDARD, or no kind at
    // all, which protobuf JSON leaves out for the zero value).
    let restricted_id = id_of(&owner.create_room(app, "restricted", "restricted"));
    livekit.set_room_running(&restricted_id, true);
    let mut web = sip_participant("web-user", "+15559990001");
    web["kind"] = json!("STANDARD");
    assert_eq!(send(app, &joined("EV_2", &restricted_id, web.clone())), 200);
    web.as_object_mut().unwrap().remove("kind");
    assert_eq!(send(app, &joined("EV_3", &restricted_id, web)), 200);
    // An unregistered room (not a UUID of ours) with a SIP caller.
    let stranger = sip_participant("sip_+15559990002", "+15559990002");
    assert_eq!(
        send(
            app,
            &joined("EV_4", "6f1e0000-0000-4000-8000-000000000000", stranger)
        ),
        200
    );

    assert!(livekit.calls_to(UPDATE).is_empty(), "{:?}", livekit.calls());
    assert!(livekit.calls_to(REMOVE).is_empty());
    assert_eq!(waiting(app, &owner, &restricted_id), json!([]));
}

#[test]
fn a_decision_on_a_caller_who_hung_up_still_succeeds() {
    let sip = sip_app(&[]);
    let (app, livekit) = (&sip.app, &sip.livekit);
    let owner = Person::new(&sip.provider, app, "owner");
    let room_id = id_of(&owner.create_room(app, "hung up", "restricted"));
    livekit.set_room_running(&room_id, true);
    for (index, allow) in [(1, true), (2, false)] {
        let identity = format!("sip_+1555000000{index}");
        let caller = sip_participant(&identity, &format!("+1555000000{index}"));
        assert_eq!(
            send(app, &joined(&format!("EV_{index}"), &room_id, caller)),
            200
        );
        let listed = waiting(app, &owner, &room_id);
        let participant_id = listed[0]["id"].as_str().unwrap().to_string();
        // The caller left before the decision: LiveKit no longer knows it.
        let method = if allow { UPDATE } else { REMOVE };
        livekit.fail_next(method, Fault::twirp(404, "not_found"));
        assert_eq!(enter(app, &owner, &room_id, &participant_id, allow), 200);
        assert_eq!(
            livekit.calls_to(method).last().unwrap().body["identity"],
            identity
        );
        assert_eq!(waiting(app, &owner, &room_id), json!([]));
    }
    // Any other LiveKit error is a 500 (the admin may decide again).
    let caller = sip_participant("sip_+15550000003", "+15550000003");
    assert_eq!(send(app, &joined("EV_3", &room_id, caller)), 200);
    let participant_id = waiting(app, &owner, &room_id)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    livekit.fail_next(REMOVE, Fault::twirp(503, "unavailable"));
    assert_eq!(enter(app, &owner, &room_id, &participant_id, false), 500);
    assert_eq!(enter(app, &owner, &room_id, &participant_id, false), 200);
    assert_eq!(livekit.calls_to(REMOVE).len(), 3);
}

#[test]
fn a_caller_who_hangs_up_while_waiting_leaves_the_list() {
    let sip = sip_app(&[]);
    let (app, livekit) = (&sip.app, &sip.livekit);
    let owner = Person::new(&sip.provider, app, "owner");
    let room_id = id_of(&owner.create_room(app, "short call", "restricted"));
    livekit.set_room_running(&room_id, true);
    let stays = sip_participant("sip_+15550004444", "+15550004444");
    let leaves = sip_participant("sip_+15550005555", "+15550005555");
    assert_eq!(send(app, &joined("EV_1", &room_id, stays.clone())), 200);
    assert_eq!(send(app, &joined("EV_2", &room_id, leaves.clone())), 200);
    let listed = waiting(app, &owner, &room_id);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let gone = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["username"] == "Phone ••• 5555")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let calls = livekit.calls().len();
    let mut left = room_event("participant_left", "EV_3", &room_id);
    left["participant"] = leaves;
    assert_eq!(send(app, &left), 200);
    let listed = waiting(app, &owner, &room_id);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["username"], "Phone ••• 4444");
    assert_eq!(enter(app, &owner, &room_id, &gone, true), 404);
    // A web participant leaving changes nothing; LiveKit is not called.
    let mut web = room_event("participant_left", "EV_4", &room_id);
    web["participant"] = json!({"identity": "web-user", "kind": "STANDARD"});
    assert_eq!(send(app, &web), 200);
    assert_eq!(waiting(app, &owner, &room_id).as_array().unwrap().len(), 1);
    assert_eq!(livekit.calls().len(), calls);
}
