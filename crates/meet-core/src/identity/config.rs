//! `GET /api/v1.0/config/`: the frontend's configuration, built from settings.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::settings::{BundledVariables, SettingError, Settings, Variables};

/// The identity component's variable that bundles [`FRONTEND_CONFIG_SETTINGS`]
/// (see [`BundledVariables`]): `config/` reads its 17 settings with one get.
pub const FRONTEND_CONFIG_BUNDLE: &str = "frontend_config_settings";

/// The settings of the `config/` payload, in the bundle's order.
pub const FRONTEND_CONFIG_SETTINGS: &[&str] = &[
    "language_code",
    "recording_enable",
    "recording_worker_classes",
    "recording_expiration_days",
    "frontend_custom_css_url",
    "frontend_analytics",
    "frontend_support",
    "frontend_silence_livekit_debug",
    "frontend_is_silent_login_enabled",
    "frontend_feedback",
    "frontend_use_french_gov_footer",
    "frontend_use_proconnect_button",
    "frontend_transcript",
    "frontend_manifest_link",
    "room_telephony_enabled",
    "room_telephony_phone_number",
    "room_telephony_default_country",
];

/// The `config/` payload from the component's variables, through the bundle.
pub fn bundled_frontend_config(variables: &dyn Variables) -> Result<FrontendConfig, SettingError> {
    let bundled =
        BundledVariables::read(variables, FRONTEND_CONFIG_BUNDLE, FRONTEND_CONFIG_SETTINGS)?;
    frontend_config(&Settings::new(&bundled))
}

/// The egress services a recording mode can be handed to, named as the
/// upstream worker classes are (the dotted module path is optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingWorker {
    VideoCompositeEgress,
    AudioCompositeEgress,
}

impl RecordingWorker {
    fn from_class_path(path: &str) -> Option<RecordingWorker> {
        match path.rsplit('.').next()? {
            "VideoCompositeEgressService" => Some(RecordingWorker::VideoCompositeEgress),
            "AudioCompositeEgressService" => Some(RecordingWorker::AudioCompositeEgress),
            _ => None,
        }
    }
}

const RECORDING_MODES: [&str; 2] = ["screen_recording", "transcript"];

/// `RECORDING_WORKER_CLASSES`: recording mode → worker, in configured order.
pub fn recording_workers(
    settings: &Settings,
) -> Result<Vec<(String, RecordingWorker)>, SettingError> {
    const NAME: &str = "recording_worker_classes";
    settings
        .dict(NAME)?
        .into_iter()
        .map(|(mode, class)| {
            if !RECORDING_MODES.contains(&mode.as_str()) {
                return Err(SettingError::new(
                    NAME,
                    format!("has an unknown recording mode {mode:?} (expected one of {RECORDING_MODES:?})"),
                ));
            }
            let worker = class
                .as_str()
                .and_then(RecordingWorker::from_class_path)
                .ok_or_else(|| {
                    SettingError::new(
                        NAME,
                        format!("maps {mode:?} to an unknown worker class (expected VideoCompositeEgressService or AudioCompositeEgressService)"),
                    )
                })?;
            Ok((mode, worker))
        })
        .collect()
}

/// The payload of `GET /config/`; fields serialize in upstream key order.
/// Typed rather than a `Value` tree: serialized straight into the body, with
/// no map of its own to build and hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontendConfig {
    #[serde(rename = "LANGUAGE_CODE")]
    pub language_code: String,
    pub recording: RecordingConfig,
    pub custom_css_url: Option<String>,
    pub analytics: Map<String, Value>,
    pub support: Map<String, Value>,
    pub silence_livekit_debug_logs: bool,
    pub is_silent_login_enabled: bool,
    pub feedback: Map<String, Value>,
    pub use_french_gov_footer: bool,
    pub use_proconnect_button: bool,
    pub transcript: Map<String, Value>,
    pub manifest_link: Option<String>,
    pub telephony: TelephonyConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingConfig {
    pub is_enabled: bool,
    pub available_modes: Vec<String>,
    pub expiration_days: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TelephonyConfig {
    pub enabled: bool,
    pub phone_number: Option<String>,
    pub default_country: String,
}

/// The payload of `GET /config/` from `settings`.
pub fn frontend_config(settings: &Settings) -> Result<FrontendConfig, SettingError> {
    let available_modes = recording_workers(settings)?
        .into_iter()
        .map(|(mode, _)| mode)
        .collect();
    Ok(FrontendConfig {
        language_code: settings.string("language_code")?,
        recording: RecordingConfig {
            is_enabled: settings.bool("recording_enable")?,
            available_modes,
            expiration_days: settings.optional_u64("recording_expiration_days")?,
        },
        custom_css_url: settings.optional_string("frontend_custom_css_url")?,
        analytics: settings.dict("frontend_analytics")?,
        support: settings.dict("frontend_support")?,
        silence_livekit_debug_logs: settings.bool("frontend_silence_livekit_debug")?,
        is_silent_login_enabled: settings.bool("frontend_is_silent_login_enabled")?,
        feedback: settings.dict("frontend_feedback")?,
        use_french_gov_footer: settings.bool("frontend_use_french_gov_footer")?,
        use_proconnect_button: settings.bool("frontend_use_proconnect_button")?,
        transcript: settings.dict("frontend_transcript")?,
        manifest_link: settings.optional_string("frontend_manifest_link")?,
        telephony: TelephonyConfig {
            enabled: settings.bool("room_telephony_enabled")?,
            phone_number: settings.optional_string("room_telephony_phone_number")?,
            default_country: settings.string("room_telephony_default_country")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::StaticVariables;
    use serde_json::json;

    fn payload(vars: &StaticVariables) -> Value {
        serde_json::to_value(frontend_config(&Settings::new(vars)).unwrap()).unwrap()
    }

    fn upstream_defaults() -> StaticVariables {
        StaticVariables::new(&[
            ("language_code", "en-us"),
            ("recording_enable", "false"),
            (
                "recording_worker_classes",
                r#"{"screen_recording": "core.recording.worker.services.VideoCompositeEgressService", "transcript": "core.recording.worker.services.AudioCompositeEgressService"}"#,
            ),
            ("recording_expiration_days", ""),
            ("frontend_custom_css_url", ""),
            ("frontend_analytics", "{}"),
            ("frontend_support", "{}"),
            ("frontend_silence_livekit_debug", "false"),
            ("frontend_is_silent_login_enabled", "true"),
            ("frontend_feedback", "{}"),
            ("frontend_use_french_gov_footer", "false"),
            ("frontend_use_proconnect_button", "false"),
            ("frontend_transcript", "{}"),
            ("frontend_manifest_link", ""),
            ("room_telephony_enabled", "false"),
            ("room_telephony_phone_number", ""),
            ("room_telephony_default_country", "US"),
        ])
    }

    #[test]
    fn the_manifest_bundles_exactly_the_settings_the_payload_reads() {
        let manifest: toml::Table = include_str!("../../../../spin.toml").parse().unwrap();
        let bundle = &manifest["component"]["identity"]["variables"][FRONTEND_CONFIG_BUNDLE];
        assert_eq!(
            bundle.as_str(),
            Some(BundledVariables::template(FRONTEND_CONFIG_SETTINGS).as_str())
        );
        // Read through the bundle, the defaults give the same payload.
        let vars = upstream_defaults();
        let values: Vec<String> = FRONTEND_CONFIG_SETTINGS
            .iter()
            .map(|name| vars.get(name).unwrap())
            .collect();
        let mut bundled = vars.clone();
        bundled.set(FRONTEND_CONFIG_BUNDLE, &values.join("\u{1F}"));
        assert_eq!(
            bundled_frontend_config(&bundled).unwrap(),
            frontend_config(&Settings::new(&vars)).unwrap()
        );
    }

    #[test]
    fn defaults_give_the_upstream_payload() {
        let vars = upstream_defaults();
        let body = serde_json::to_string(&frontend_config(&Settings::new(&vars)).unwrap()).unwrap();
        let expected = json!({
            "LANGUAGE_CODE": "en-us",
            "recording": {"is_enabled": false, "available_modes": ["screen_recording", "transcript"], "expiration_days": null},
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
        });
        // Same keys and values, in the same order as upstream.
        assert_eq!(body, expected.to_string());
    }

    #[test]
    fn modes_follow_the_configured_order_and_unknown_ones_are_refused() {
        let mut vars = upstream_defaults();
        vars.set(
            "recording_worker_classes",
            r#"{"transcript": "AudioCompositeEgressService"}"#,
        );
        assert_eq!(
            payload(&vars)["recording"]["available_modes"],
            json!(["transcript"])
        );

        vars.set(
            "recording_worker_classes",
            r#"{"podcast": "AudioCompositeEgressService"}"#,
        );
        let error = frontend_config(&Settings::new(&vars)).unwrap_err();
        assert_eq!(error.variable, "recording_worker_classes");

        vars.set("recording_worker_classes", r#"{"transcript": "MyEgress"}"#);
        assert!(frontend_config(&Settings::new(&vars)).is_err());
    }

    #[test]
    fn overrides_are_typed() {
        let mut vars = upstream_defaults();
        vars.set("recording_enable", "true");
        vars.set("recording_expiration_days", "7");
        vars.set(
            "frontend_feedback",
            r#"{"url": "https://feedback.example"}"#,
        );
        vars.set("frontend_custom_css_url", "https://x.example/a.css");
        let payload = payload(&vars);
        assert_eq!(payload["recording"]["is_enabled"], json!(true));
        assert_eq!(payload["recording"]["expiration_days"], json!(7));
        assert_eq!(
            payload["feedback"]["url"],
            json!("https://feedback.example")
        );
        assert_eq!(payload["custom_css_url"], json!("https://x.example/a.css"));
    }
}
