//! OIDC login, sessions, CSRF, bearer tokens and the users API, against the
//! fake provider, driven as a browser and as an API client would.

use meet_e2e::oidc_provider::OidcProvider;
use meet_e2e::{spawn_app_with, AppOptions, TestApp};
use serde_json::{json, Value};

fn login_app(extra: &[(&str, &str)]) -> (OidcProvider, TestApp) {
    let provider = OidcProvider::start();
    let mut options = AppOptions::default()
        .variables(&provider.variables())
        .variable("login_redirect_url", "/home")
        .variable("login_redirect_url_failure", "/login-failed")
        .variable("logout_redirect_url", "/bye");
    for (name, value) in extra {
        options = options.variable(name, value);
    }
    (provider, spawn_app_with(options))
}

/// Logs in through the provider as a browser does; returns the URLs visited.
fn log_in(app: &TestApp, return_to: &str) -> Vec<String> {
    let (visited, _) = app.browse(&format!(
        "/api/v1.0/authenticate?silent=false&returnTo={}",
        url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
    ));
    visited
}

fn me(app: &TestApp) -> reqwest::blocking::Response {
    app.get("/api/v1.0/users/me/")
}

#[test]
fn a_browser_logs_in_updates_its_preferences_and_logs_out() {
    let (provider, app) = login_app(&[]);
    assert_eq!(me(&app).status(), 401);

    let room = app.url("/room/abc-defg-hij");
    let visited = log_in(&app, &room);

    assert_eq!(visited.last(), Some(&room), "{visited:?}");
    assert!(visited.iter().any(|url| url.starts_with(&provider.base)));
    let response = me(&app);
    assert_eq!(response.status(), 200);
    let user: Value = response.json().unwrap();
    assert_eq!(user["email"], "jane@example.org");
    assert_eq!(user["full_name"], "Jane Doe");
    assert_eq!(user["short_name"], "Jane");
    assert_eq!(user["language"], "en-us");
    assert_eq!(user["timezone"], "UTC");
    let token_request = provider.last_token_request().unwrap();
    assert_eq!(token_request["client_secret"], provider.client_secret);
    assert_eq!(
        token_request["redirect_uri"],
        app.url("/api/v1.0/callback/")
    );

    // The frontend copies the CSRF cookie into X-CSRFToken.
    let csrf = app.cookie("csrftoken").expect("a csrftoken cookie");
    let id = user["id"].as_str().unwrap();
    let updated = app
        .client
        .put(app.url(&format!("/api/v1.0/users/{id}/")))
        .header("X-CSRFToken", &csrf)
        .json(&json!({"timezone": "Europe/Paris", "language": "fr-fr"}))
        .send()
        .unwrap();
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().unwrap();
    assert_eq!(
        (updated["timezone"].as_str(), updated["language"].as_str()),
        (Some("Europe/Paris"), Some("fr-fr"))
    );

    let session = app.cookie("sessionid").expect("a session cookie");
    let (visited, _) = app.browse("/api/v1.0/logout");
    assert!(visited
        .iter()
        .any(|url| url.starts_with(&format!("{}/logout", provider.base))));
    assert!(visited
        .iter()
        .any(|url| url.contains("/api/v1.0/logout-callback/")));
    assert_eq!(visited.last(), Some(&app.url("/bye")));

    // The old cookie no longer opens the session, even if replayed.
    let replayed = reqwest::blocking::Client::new()
        .get(app.url("/api/v1.0/users/me/"))
        .header("cookie", format!("sessionid={session}"))
        .send()
        .unwrap();
    assert_eq!(replayed.status(), 401);
    assert_eq!(me(&app).status(), 401);
}

#[test]
fn unsafe_requests_need_the_csrf_header_but_anonymous_ones_do_not() {
    let (_provider, app) = login_app(&[]);
    log_in(&app, &app.url("/"));
    let id = me(&app).json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = app.url(&format!("/api/v1.0/users/{id}/"));

    let missing = app
        .client
        .patch(&url)
        .json(&json!({"language": "de-de"}))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 403);
    assert_eq!(
        missing.json::<Value>().unwrap(),
        json!({"detail": "CSRF Failed: CSRF token missing."})
    );

    let wrong = app
        .client
        .patch(&url)
        .header("X-CSRFToken", "not-the-token")
        .json(&json!({"language": "de-de"}))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 403);
    assert!(wrong.json::<Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .starts_with("CSRF Failed:"));

    // Anonymous unsafe requests are not CSRF-checked: they get the 401.
    let anonymous = reqwest::blocking::Client::new()
        .patch(&url)
        .json(&json!({"language": "de-de"}))
        .send()
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[test]
fn a_silent_login_that_fails_returns_to_the_page_logged_out() {
    let (provider, app) = login_app(&[]);
    provider.behave(|b| b.logged_in = false);
    let room = app.url("/room/xyz");

    let (visited, _) = app.browse(&format!(
        "/api/v1.0/authenticate/?silent=true&returnTo={}",
        url::form_urlencoded::byte_serialize(room.as_bytes()).collect::<String>()
    ));

    assert!(
        visited.iter().any(|u| u.contains("prompt=none")),
        "{visited:?}"
    );
    assert_eq!(visited.last(), Some(&room));
    assert_eq!(me(&app).status(), 401);
}

#[test]
fn forged_id_tokens_and_wrong_nonces_do_not_log_in() {
    for change in [
        (|b: &mut meet_e2e::oidc_provider::Behaviour| b.sign_with_rogue_key = true)
            as fn(&mut meet_e2e::oidc_provider::Behaviour),
        |b| b.nonce_override = Some("another-nonce".into()),
        |b| b.token_endpoint_status = Some(500),
    ] {
        let (provider, app) = login_app(&[]);
        provider.behave(change);
        let visited = log_in(&app, &app.url("/room/a"));
        assert_eq!(
            visited.last(),
            Some(&app.url("/login-failed")),
            "{visited:?}"
        );
        assert_eq!(me(&app).status(), 401);
        let users: i64 = app
            .db()
            .query_row("SELECT count(*) FROM meet_user", [], |row| row.get(0))
            .unwrap();
        assert_eq!(users, 0);
    }
}

#[test]
fn a_replayed_state_is_refused() {
    let (provider, app) = login_app(&[]);
    let start = app
        .client
        .get(app.url("/api/v1.0/authenticate/"))
        .send()
        .unwrap();
    let authorize = start.headers()["location"].to_str().unwrap().to_string();
    let back = app.client.get(&authorize).send().unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_string();
    assert!(callback.starts_with(&app.url("/api/v1.0/callback/")));
    assert!(provider.hits("/authorize") == 1);

    let first = app.client.get(&callback).send().unwrap();
    assert_eq!(first.status(), 302);
    assert_eq!(first.headers()["location"], "/home");

    let replay = app.client.get(&callback).send().unwrap();
    assert_eq!(replay.status(), 400);
}

#[test]
fn return_to_only_accepts_this_site_and_allowed_hosts() {
    let (_provider, app) = login_app(&[("oidc_redirect_allowed_hosts", "trusted.example")]);
    for (target, expected) in [
        ("https://evil.example/steal", "/home"),
        ("//evil.example/steal", "/home"),
        ("javascript:alert(1)", "/home"),
        ("https://trusted.example/ok", "https://trusted.example/ok"),
        ("/room/relative", "/room/relative"),
    ] {
        let start = app
            .client
            .get(app.url("/api/v1.0/authenticate/"))
            .query(&[("returnTo", target)])
            .send()
            .unwrap();
        let authorize = start.headers()["location"].to_str().unwrap().to_string();
        let back = app.client.get(&authorize).send().unwrap();
        let callback = back.headers()["location"].to_str().unwrap().to_string();
        let done = app.client.get(&callback).send().unwrap();
        assert_eq!(done.headers()["location"], expected, "{target}");
    }
}

#[test]
fn logout_without_an_end_session_endpoint_ends_the_session_here() {
    let (_provider, app) = login_app(&[("oidc_op_logout_endpoint", "")]);
    log_in(&app, &app.url("/"));
    assert_eq!(me(&app).status(), 200);

    let response = app.client.get(app.url("/api/v1.0/logout/")).send().unwrap();

    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "/bye");
    assert_eq!(me(&app).status(), 401);
}

#[test]
fn userinfo_as_a_signed_jwt_and_key_rotation() {
    let (provider, app) = login_app(&[]);
    provider.behave(|b| b.userinfo_as_jwt = true);
    log_in(&app, &app.url("/"));
    assert_eq!(
        me(&app).json::<Value>().unwrap()["email"],
        "jane@example.org"
    );
    assert_eq!(provider.hits("/jwks"), 1, "the key set is cached");

    provider.rotate_keys();
    let other = app_client_logs_in_again(&app);
    assert_eq!(other, 200);
    assert_eq!(
        provider.hits("/jwks"),
        2,
        "an unknown kid fetches the key set again"
    );
}

fn app_client_logs_in_again(app: &TestApp) -> u16 {
    log_in(app, &app.url("/"));
    me(app).status().as_u16()
}

#[test]
fn pkce_can_be_turned_on() {
    let (provider, app) = login_app(&[("oidc_use_pkce", "true")]);
    let visited = log_in(&app, &app.url("/"));
    assert!(
        visited
            .iter()
            .any(|u| u.contains("code_challenge_method=S256")),
        "{visited:?}"
    );
    assert!(provider
        .last_token_request()
        .unwrap()
        .contains_key("code_verifier"));
    assert_eq!(me(&app).status(), 200);
}

#[test]
fn concurrent_first_logins_create_one_user() {
    let (provider, app) = login_app(&[]);
    let app = std::sync::Arc::new(app);
    let callbacks: Vec<String> = (0..6)
        .map(|_| {
            let client = reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .unwrap();
            let start = client
                .get(app.url("/api/v1.0/authenticate/"))
                .send()
                .unwrap();
            let cookie = start.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string();
            let authorize = start.headers()["location"].to_str().unwrap().to_string();
            let back = client.get(&authorize).send().unwrap();
            format!("{}|{cookie}", back.headers()["location"].to_str().unwrap())
        })
        .collect();
    let threads: Vec<_> = callbacks
        .into_iter()
        .map(|entry| {
            let app = app.clone();
            std::thread::spawn(move || {
                let (url, cookie) = entry.split_once('|').unwrap();
                let response = reqwest::blocking::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap()
                    .get(url)
                    .header("cookie", cookie)
                    .send()
                    .unwrap();
                assert_eq!(response.headers()["location"], "/home");
                drop(app);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let users: i64 = app
        .db()
        .query_row("SELECT count(*) FROM meet_user", [], |row| row.get(0))
        .unwrap();
    assert_eq!(users, 1);
    assert!(provider.hits("/token") >= 6);
}

#[test]
fn bearer_tokens_authenticate_api_clients_with_a_short_cache() {
    let (provider, app) = login_app(&[]);
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!("api-user"));
    claims.insert("email".into(), json!("robot@example.org"));
    let token = provider.issue_access_token(claims);
    let client = reqwest::blocking::Client::new();
    for _ in 0..3 {
        let response = client
            .get(app.url("/api/v1.0/users/me/"))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<Value>().unwrap()["email"],
            "robot@example.org"
        );
    }
    assert_eq!(
        provider.hits("/userinfo"),
        1,
        "the user is cached under the token"
    );

    let bad = client
        .get(app.url("/api/v1.0/users/me/"))
        .bearer_auth("nope")
        .send()
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(bad.headers()["www-authenticate"], "Bearer realm=\"api\"");
    assert_eq!(
        bad.json::<Value>().unwrap(),
        json!({"detail": "The access token is invalid or expired"})
    );
    let spaced = client
        .get(app.url("/api/v1.0/users/me/"))
        .header("authorization", "Bearer a b")
        .send()
        .unwrap();
    assert_eq!(
        spaced.json::<Value>().unwrap(),
        json!({"detail": "Invalid \"bearer\" header: Credentials string should not contain spaces."})
    );
}

#[test]
fn users_endpoints_answer_the_spec_statuses() {
    let (_provider, app) = login_app(&[]);
    let anonymous = reqwest::blocking::Client::new();
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1.0/users/"),
        (reqwest::Method::GET, "/api/v1.0/users/"),
        (reqwest::Method::DELETE, "/api/v1.0/users/"),
    ] {
        let response = anonymous.request(method, app.url(path)).send().unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(
            response.json::<Value>().unwrap(),
            json!({"detail": "Authentication credentials were not provided."})
        );
    }
    log_in(&app, &app.url("/"));
    let csrf = app.cookie("csrftoken").unwrap();
    let me_json: Value = me(&app).json().unwrap();
    let id = me_json["id"].as_str().unwrap();

    let listing = app.get("/api/v1.0/users/");
    assert_eq!(
        listing.json::<Value>().unwrap(),
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
    let post = app
        .client
        .post(app.url("/api/v1.0/users/"))
        .header("X-CSRFToken", &csrf)
        .send()
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(
        post.json::<Value>().unwrap(),
        json!({"detail": "Method \"POST\" not allowed."})
    );
    assert_eq!(app.get(&format!("/api/v1.0/users/{id}/")).status(), 405);

    let other = "7d0fd6c1-4ea9-4a5f-9d39-6a8a6c3f2b10";
    let unknown = app
        .client
        .put(app.url(&format!("/api/v1.0/users/{other}/")))
        .header("X-CSRFToken", &csrf)
        .json(&json!({"timezone": "UTC"}))
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().unwrap(),
        json!({"detail": "No User matches the given query."})
    );

    let put_without_timezone = app
        .client
        .put(app.url(&format!("/api/v1.0/users/{id}/")))
        .header("X-CSRFToken", &csrf)
        .json(&json!({"language": "nl-nl"}))
        .send()
        .unwrap();
    assert_eq!(put_without_timezone.status(), 400);
    assert_eq!(
        put_without_timezone.json::<Value>().unwrap(),
        json!({"timezone": ["This field is required."]})
    );

    let bad_values = app
        .client
        .patch(app.url(&format!("/api/v1.0/users/{id}/")))
        .header("X-CSRFToken", &csrf)
        .json(&json!({"language": "xx-yy", "timezone": "Moon/Base"}))
        .send()
        .unwrap();
    assert_eq!(
        bad_values.json::<Value>().unwrap(),
        json!({"language": ["\"xx-yy\" is not a valid choice."], "timezone": ["A valid timezone is required."]})
    );
}

#[test]
fn the_user_list_can_be_opened_and_searched() {
    let (provider, app) = login_app(&[("allow_unsecure_user_listing", "true")]);
    for (sub, email) in [
        ("u1", "frank_poole@example.org"),
        ("u2", "nicole_foole@example.org"),
        ("u3", "dave@example.org"),
    ] {
        meet_e2e::api_user(&provider, &app, sub, email);
    }
    log_in(&app, &app.url("/"));

    let all: Value = app.get("/api/v1.0/users/").json().unwrap();
    assert_eq!(all["count"], 4);
    assert_eq!(
        all["results"][0]["email"], "jane@example.org",
        "newest first"
    );
    let found: Value = app.get("/api/v1.0/users/?q=oole").json().unwrap();
    let emails: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["nicole_foole@example.org", "frank_poole@example.org"]
    );
}
