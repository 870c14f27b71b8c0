//! LiveKit for every feature: the settings (`livekit_api_url`,
//! `livekit_api_key`, `livekit_api_secret`, read once per request when
//! needed), participant tokens (livekit.md §2) and the server API (§3) over
//! the outbound HTTP port.
//!
//! * Tokens: `LiveKit::load(&services.settings())?` then
//!   [`LiveKit::participant`] for the `{"url", "room", "token"}` object.
//! * Server API: [`with_server_api`] runs a closure with a
//!   [`meet_livekit::ServerApi`] whose calls go through `services.http`
//!   (each network step bounded by [`SERVER_API_TIMEOUT`]):
//!
//! ```ignore
//! let running = crate::livekit::with_server_api(services, |api| api.room_is_running(&room))?;
//! match running { Ok(true) => …, Ok(false) => …, Err(error) => crate::livekit::describe(&error) … }
//! ```
//!
//! The outer `Result` is a misconfiguration (missing variable, invalid
//! URL); the inner one is the call's own outcome, for the feature to judge
//! (a Twirp error is often ignorable, a transport error rarely). Outbound
//! requests must be allowed by the component's `allowed_outbound_hosts`,
//! which lists `{{ livekit_api_origin }}`: [`describe`] names that variable
//! when the host refuses the request.

use std::time::Duration;

use serde_json::Value;

use meet_livekit::{
    participant_token, Caller as TokenCaller, LiveKitCredentials, LiveKitObject, ParticipantGrant,
    ServerApi, Transport, TransportError, TransportResponse,
};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::ports::{HttpClient, HttpError, OutboundRequest, Services};
use crate::settings::{SettingError, Settings};

/// The longest wait for each network step of a server API call (connect,
/// first byte, between bytes). Shorter than the Python SDK's 60 s: the calls
/// sit on request paths that browsers poll every second.
pub const SERVER_API_TIMEOUT: Duration = Duration::from_secs(10);

/// The variable whose value must allow the LiveKit server API in the
/// components' `allowed_outbound_hosts`.
pub const ORIGIN_VARIABLE: &str = "livekit_api_origin";

/// The LiveKit deployment of the settings.
#[derive(Debug, Clone)]
pub struct LiveKit {
    /// `livekit_api_url`: given to browsers, and the base of server calls.
    pub url: String,
    pub credentials: LiveKitCredentials,
}

impl LiveKit {
    pub fn load(settings: &Settings) -> Result<LiveKit, SettingError> {
        Ok(LiveKit {
            url: settings.required_string("livekit_api_url")?,
            credentials: LiveKitCredentials {
                api_key: settings.required_string("livekit_api_key")?,
                api_secret: settings.required_string("livekit_api_secret")?,
            },
        })
    }

    /// `{"url", "room", "token"}` for `caller` joining LiveKit room `room`
    /// (livekit.md §2.3–2.5): a fresh UUID identity for anonymous callers,
    /// the user's `sub` otherwise; `username` (when non-empty) as the name;
    /// `color` in the metadata, or the identity's colour when `None`.
    pub fn participant(
        &self,
        services: &Services,
        caller: &Caller,
        room: &str,
        username: Option<&str>,
        color: Option<&str>,
    ) -> Result<Value, ApiError> {
        let anonymous_identity;
        let token_caller = match caller.user() {
            Some(user) => TokenCaller::Authenticated {
                sub: user.sub.as_deref(),
                display_name: user.display_name(),
            },
            None => {
                anonymous_identity = services.new_uuid();
                TokenCaller::Anonymous {
                    identity: &anonymous_identity,
                }
            }
        };
        let grant = ParticipantGrant::for_caller(room, token_caller, username, color);
        let token = participant_token(&self.credentials, &grant, services.clock.now().into())
            .map_err(ApiError::internal)?;
        Ok(LiveKitObject {
            url: self.url.clone(),
            room: room.to_string(),
            token,
        }
        .to_json())
    }

    /// The server API of this deployment over `transport`, for calls made
    /// now, each step bounded by [`SERVER_API_TIMEOUT`].
    pub fn server_api<'a>(
        &'a self,
        transport: &'a HttpTransport<'a>,
        services: &Services,
    ) -> Result<ServerApi<'a>, ApiError> {
        ServerApi::new(
            transport,
            &self.credentials,
            &self.url,
            services.clock.now().into(),
        )
        .map(|api| api.with_timeout(SERVER_API_TIMEOUT))
        .map_err(|error| {
            ApiError::Misconfigured(SettingError::new("livekit_api_url", error.to_string()))
        })
    }
}

/// Loads the settings and runs `f` with the server API. `Err` only for a
/// misconfiguration; the call's own result is `f`'s to return.
pub fn with_server_api<R>(
    services: &Services,
    f: impl FnOnce(&ServerApi) -> R,
) -> Result<R, ApiError> {
    let livekit = LiveKit::load(&services.settings())?;
    let transport = HttpTransport::new(services.http);
    let api = livekit.server_api(&transport, services)?;
    Ok(f(&api))
}

/// A server API error as one log line: the error, and for a transport
/// failure the variable that lets the component reach LiveKit. Never
/// contains a secret (tokens are not part of errors).
pub fn describe(error: &meet_livekit::ApiError) -> String {
    match error {
        meet_livekit::ApiError::Transport { .. } => format!(
            "LiveKit server API: {error} (check `livekit_api_url` and that \
             `{ORIGIN_VARIABLE}` allows its origin)"
        ),
        other => format!("LiveKit server API: {other}"),
    }
}

/// [`meet_livekit::Transport`] over the core's outbound HTTP port.
pub struct HttpTransport<'a> {
    http: &'a dyn HttpClient,
}

impl<'a> HttpTransport<'a> {
    pub fn new(http: &'a dyn HttpClient) -> HttpTransport<'a> {
        HttpTransport { http }
    }
}

impl Transport for HttpTransport<'_> {
    fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<TransportResponse, TransportError> {
        let request = OutboundRequest {
            method: "POST".into(),
            url: url.to_string(),
            headers: headers.to_vec(),
            body,
            timeout: Some(timeout),
        };
        match self.http.send(request) {
            Ok(response) => Ok(TransportResponse {
                status: response.status,
                body: response.body,
            }),
            Err(error) if error.is_timeout() => Err(TransportError::Timeout),
            Err(HttpError { reason, .. }) => Err(TransportError::Failed(reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{OsRandom, ScriptedHttp, SqliteDatabase, SystemClock};
    use crate::settings::StaticVariables;

    #[test]
    fn server_calls_go_through_the_http_port_with_a_timeout() {
        let http = ScriptedHttp::default();
        http.answer(200, "application/json", r#"{"rooms": [{"name": "r1"}]}"#);
        let variables = StaticVariables::new(&[
            ("livekit_api_url", "wss://livekit.example/"),
            ("livekit_api_key", "key"),
            ("livekit_api_secret", "secret-that-is-long-enough-for-hs256"),
        ]);
        let db = SqliteDatabase::in_memory().unwrap();
        let services = Services {
            db: &db,
            http: &http,
            clock: &SystemClock,
            random: &OsRandom,
            variables: &variables,
        };
        let running = with_server_api(&services, |api| api.room_is_running("r1")).unwrap();
        assert!(matches!(running, Ok(true)));
        let sent = http.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].url,
            "https://livekit.example/twirp/livekit.RoomService/ListRooms"
        );
        assert_eq!(sent[0].timeout, Some(SERVER_API_TIMEOUT));
    }

    #[test]
    fn a_missing_setting_is_a_misconfiguration_naming_it() {
        let http = ScriptedHttp::default();
        let variables = StaticVariables::new(&[("livekit_api_url", "https://lk.example")]);
        let db = SqliteDatabase::in_memory().unwrap();
        let services = Services {
            db: &db,
            http: &http,
            clock: &SystemClock,
            random: &OsRandom,
            variables: &variables,
        };
        let error = with_server_api(&services, |_| ()).unwrap_err();
        assert!(error.to_string().contains("livekit_api_key"), "{error}");
        assert!(http.sent().is_empty());
    }

    #[test]
    fn timeouts_and_failures_keep_their_kind() {
        struct Failing(&'static str);
        impl HttpClient for Failing {
            fn send(
                &self,
                request: OutboundRequest,
            ) -> Result<crate::ports::OutboundResponse, HttpError> {
                Err(HttpError {
                    url: request.url,
                    reason: self.0.to_string(),
                })
            }
        }
        let timed_out = Failing("timed out waiting for the first byte");
        let result =
            HttpTransport::new(&timed_out).post("http://x/", &[], vec![], SERVER_API_TIMEOUT);
        assert_eq!(result, Err(TransportError::Timeout));
        let denied = Failing("HTTP request denied");
        let result = HttpTransport::new(&denied).post("http://x/", &[], vec![], SERVER_API_TIMEOUT);
        assert_eq!(
            result,
            Err(TransportError::Failed("HTTP request denied".into()))
        );
    }
}
