use meet_e2e::{spawn_app, spawn_app_with, AppOptions};
use serde_json::{json, Value};

#[test]
fn config_serves_the_upstream_defaults() {
    let app = spawn_app();

    let response = app.get("/api/v1.0/config/");

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: Value = response.json().unwrap();
    assert_eq!(
        body,
        json!({
            "LANGUAGE_CODE": "en-us",
            "recording": {
                "is_enabled": false,
                "available_modes": ["screen_recording", "transcript"],
                "expiration_days": null
            },
            "custom_css_url": null,
            "analytics": {},
            "support": {},
            "silence_livekit_debug_logs": false,
            "is_silent_login_enabled": true,
            "feedback": {},
            "use_french_gov_footer": false,
            "use_proconnect_button": false,
            "transcript": {},
            "manifest_link": null,
            "telephony": {"enabled": false, "phone_number": null, "default_country": "US"}
        })
    );
}

#[test]
fn config_follows_variable_overrides() {
    let app = spawn_app_with(
        AppOptions::default()
            .variable("recording_enable", "true")
            .variable("recording_expiration_days", "30")
            .variable(
                "recording_worker_classes",
                r#"{"transcript": "core.recording.worker.services.AudioCompositeEgressService"}"#,
            )
            .variable("frontend_use_proconnect_button", "true")
            .variable("frontend_is_silent_login_enabled", "false")
            .variable(
                "frontend_feedback",
                r#"{"url": "https://feedback.example/form"}"#,
            )
            .variable(
                "frontend_analytics",
                "id=phc_123,host=https://analytics.example",
            )
            .variable("frontend_custom_css_url", "https://cdn.example/theme.css")
            .variable("language_code", "fr-fr"),
    );

    let body: Value = app.get("/api/v1.0/config/").json().unwrap();

    assert_eq!(body["LANGUAGE_CODE"], "fr-fr");
    assert_eq!(
        body["recording"],
        json!({"is_enabled": true, "available_modes": ["transcript"], "expiration_days": 30})
    );
    assert_eq!(body["use_proconnect_button"], true);
    assert_eq!(body["is_silent_login_enabled"], false);
    assert_eq!(
        body["feedback"],
        json!({"url": "https://feedback.example/form"})
    );
    assert_eq!(
        body["analytics"],
        json!({"id": "phc_123", "host": "https://analytics.example"})
    );
    assert_eq!(body["custom_css_url"], "https://cdn.example/theme.css");
}

#[test]
fn an_invalid_variable_is_a_500_that_names_it() {
    let app = spawn_app_with(AppOptions::default().variable("recording_enable", "sometimes"));

    let response = app.get("/api/v1.0/config/");

    assert_eq!(response.status(), 500);
    let body: Value = response.json().unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("recording_enable"), "{detail}");
    assert!(app.logs().contains("recording_enable"));
}

#[test]
fn head_answers_like_get_without_a_body() {
    let app = spawn_app();

    let response = app
        .client
        .head(app.url("/api/v1.0/config/"))
        .send()
        .unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.bytes().unwrap().is_empty());
}
