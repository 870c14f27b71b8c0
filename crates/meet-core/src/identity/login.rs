//! The OIDC login endpoints of the identity component (auth.md §1):
//! `authenticate/`, `callback/`, `logout/` and `logout-callback/`.

use serde_json::{json, Map, Value};

use crate::auth::session::{
    csrf_set_cookie, is_secure, request_cookie, request_origin, session_clear_cookie,
    session_key_hash, session_set_cookie, SESSION_COOKIE,
};
use crate::auth::store::{self as session_store, Session, SessionRecord};
use crate::auth::{authenticate as resolve_caller, Caller};
use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse};
use crate::identity::oidc::{
    authorization_url, is_safe_redirect, parse_token_response, pkce_challenge, token_request,
    userinfo_is_jwt, userinfo_request, verify_id_token, verify_provider_jwt, OidcSettings,
    SignAlgorithm, TokenError,
};
use crate::identity::users::map_claims;
use crate::ports::{OutboundRequest, Services};
use crate::sql::{rows, timestamp};

/// mozilla-django-oidc keeps at most this many pending logins per session.
const MAX_PENDING_STATES: usize = 50;

struct Context<'a> {
    request: &'a ApiRequest,
    services: &'a Services<'a>,
    oidc: OidcSettings,
    session_age: u64,
}

impl<'a> Context<'a> {
    fn new(request: &'a ApiRequest, services: &'a Services<'a>) -> Result<Context<'a>, ApiError> {
        let settings = services.settings();
        Ok(Context {
            request,
            services,
            oidc: OidcSettings::load(&settings)?,
            session_age: settings.u64("session_cookie_age")?,
        })
    }

    fn absolute(&self, path: &str) -> String {
        format!("{}{path}", request_origin(self.request).unwrap_or_default())
    }

    fn secure(&self) -> bool {
        is_secure(self.request)
    }

    fn expires(&self) -> time::OffsetDateTime {
        self.services.clock.now()
            + time::Duration::seconds(i64::try_from(self.session_age).unwrap_or(i64::MAX))
    }

    /// The session of the cookie, logged in or not.
    fn session(&self) -> Result<Option<Session>, ApiError> {
        let Some(cookie) = request_cookie(self.request, SESSION_COOKIE) else {
            return Ok(None);
        };
        Ok(session_store::load(
            self.services.db,
            &session_key_hash(&cookie),
            self.services.clock.now(),
        )?)
    }

    fn new_session_key(&self) -> String {
        self.services.random.alphanumeric(64)
    }
}

/// `GET authenticate/`: remember a state (and nonce) in the session and send
/// the browser to the provider.
pub fn authenticate(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let context = Context::new(request, services)?;
    let oidc = &context.oidc;
    let random = services.random;
    let existing = context.session()?;
    let (cookie_value, key_hash, user_id, mut data, csrf) =
        match (existing, request_cookie(request, SESSION_COOKIE)) {
            (Some(session), Some(cookie)) => (
                cookie,
                session.key_hash,
                session.user.map(|user| user.id),
                session.data,
                session.csrf_token,
            ),
            _ => {
                let cookie = context.new_session_key();
                let hash = session_key_hash(&cookie);
                (cookie, hash, None, Map::new(), None)
            }
        };

    let state = random.alphanumeric(32);
    let nonce = oidc.use_nonce.then(|| random.alphanumeric(32));
    let verifier = oidc.use_pkce.then(|| random.alphanumeric(64));
    let states = data
        .entry("oidc_states")
        .or_insert_with(|| Value::Object(Map::new()));
    if !states.is_object() {
        *states = Value::Object(Map::new());
    }
    if let Value::Object(states) = states {
        states.insert(
            state.clone(),
            json!({"nonce": nonce, "code_verifier": verifier}),
        );
        while states.len() > MAX_PENDING_STATES {
            let oldest = states.keys().next().cloned().unwrap_or_default();
            states.shift_remove(&oldest);
        }
    }
    let host = request.header("host").unwrap_or_default();
    let next = request
        .query_param(&oidc.redirect_field_name)
        .filter(|target| {
            is_safe_redirect(
                target,
                host,
                &oidc.redirect_allowed_hosts,
                oidc.redirect_require_https,
            )
        });
    data.insert("oidc_login_next".into(), json!(next));
    let silent = request
        .query_param("silent")
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));
    if silent {
        data.insert("silent".into(), Value::Bool(true));
    } else {
        data.remove("silent");
    }

    let record = SessionRecord {
        key_hash: &key_hash,
        user_id: user_id.as_deref(),
        data: &data,
        csrf_token: csrf.as_deref(),
        expires_at: context.expires(),
    };
    session_store::save(services.db, &record, services.clock.now())?;
    let location = authorization_url(
        oidc,
        &context.absolute("/api/v1.0/callback/"),
        &state,
        nonce.as_deref(),
        silent,
        verifier.as_deref().map(pkce_challenge).as_deref(),
    )?;
    Ok(ApiResponse::redirect(302, &location).with_header(
        "set-cookie",
        &session_set_cookie(&cookie_value, context.session_age, context.secure()),
    ))
}

/// `GET callback/`: finish the login the provider sends back.
pub fn callback(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let context = Context::new(request, services)?;
    let session = context.session()?;
    let silent = session
        .as_ref()
        .is_some_and(|s| s.data.get("silent") == Some(&Value::Bool(true)));
    let success_url = session
        .as_ref()
        .and_then(|s| s.data.get("oidc_login_next"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| context.oidc.login_redirect_url.clone());
    // A failed silent login must look like "still logged out", not an error.
    let failure = |session: Option<&Session>| -> Result<ApiResponse, ApiError> {
        if let Some(session) = session {
            let mut data = session.data.clone();
            data.remove("silent");
            session_store::save_data(services.db, &session.key_hash, &data)?;
        }
        let target = if silent {
            &success_url
        } else {
            &context.oidc.login_redirect_url_failure
        };
        Ok(ApiResponse::redirect(302, target))
    };

    let state = request.query_param("state");
    if request.query_param("error").is_some() {
        if let Some(session) = &session {
            if session.user.is_some() {
                // The provider says no: end the current login too.
                session_store::delete(services.db, &session.key_hash)?;
                return Ok(ApiResponse::redirect(
                    302,
                    if silent {
                        &success_url
                    } else {
                        &context.oidc.login_redirect_url_failure
                    },
                )
                .with_header("set-cookie", &session_clear_cookie(context.secure())));
            }
            let mut session = session.clone();
            if let (Some(state), Some(Value::Object(states))) =
                (&state, session.data.get_mut("oidc_states"))
            {
                states.shift_remove(state);
            }
            return failure(Some(&session));
        }
        return failure(None);
    }
    let (Some(code), Some(state)) = (request.query_param("code"), state) else {
        return failure(session.as_ref());
    };
    let Some(mut session) = session else {
        return failure(None);
    };
    let Some(Value::Object(states)) = session.data.get_mut("oidc_states") else {
        return failure(Some(&session));
    };
    let Some(pending) = states.shift_remove(&state) else {
        return Err(ApiError::Custom {
            status: 400,
            body: json!({"detail": "OIDC callback state not found in session `oidc_states`!"}),
        });
    };
    // The state is spent whatever happens next: no replay.
    session_store::save_data(services.db, &session.key_hash, &session.data)?;

    let nonce = pending.get("nonce").and_then(Value::as_str);
    let verifier = pending.get("code_verifier").and_then(Value::as_str);
    match complete_login(&context, &code, nonce, verifier) {
        Ok(login) => {
            let mut data = session.data.clone();
            data.remove("silent");
            data.remove("oidc_login_next");
            if context.oidc.store_id_token {
                data.insert("oidc_id_token".into(), Value::String(login.id_token));
            }
            let now = services.clock.now();
            data.insert(
                "oidc_id_token_expiration".into(),
                json!((now + time::Duration::minutes(15)).unix_timestamp()),
            );
            let cookie = context.new_session_key();
            let csrf = services.random.alphanumeric(32);
            let record = SessionRecord {
                key_hash: &session_key_hash(&cookie),
                user_id: Some(&login.user_id),
                data: &data,
                csrf_token: Some(&csrf),
                expires_at: context.expires(),
            };
            session_store::start_login_session(services.db, Some(&session.key_hash), &record, now)?;
            Ok(ApiResponse::redirect(302, &success_url)
                .with_header(
                    "set-cookie",
                    &session_set_cookie(&cookie, context.session_age, context.secure()),
                )
                .with_header("set-cookie", &csrf_set_cookie(&csrf, context.secure())))
        }
        Err(reason) => {
            eprintln!("OIDC login failed: {reason}");
            failure(Some(&session))
        }
    }
}

struct CompletedLogin {
    user_id: String,
    id_token: String,
}

/// Token request, ID-token check, userinfo and user resolution. Any error is
/// a failed login, described for the logs only.
fn complete_login(
    context: &Context,
    code: &str,
    nonce: Option<&str>,
    verifier: Option<&str>,
) -> Result<CompletedLogin, String> {
    let services = context.services;
    let oidc = &context.oidc;
    let now = services.clock.now();
    let redirect_uri = context.absolute("/api/v1.0/callback/");
    let response = send_ok(services, token_request(oidc, code, &redirect_uri, verifier))?;
    let tokens = parse_token_response(&response.body)
        .ok_or("the token endpoint's answer has no id_token/access_token")?;
    let expected_nonce = if oidc.use_nonce {
        Some(nonce.ok_or("no nonce was stored for this state")?)
    } else {
        None
    };
    verify_with_key_set(context, |jwks| {
        verify_id_token(&tokens.id_token, oidc, jwks, expected_nonce, now)
    })?;
    let userinfo = send_ok(
        services,
        userinfo_request(&oidc.user_endpoint, &tokens.access_token),
    )?;
    let claims = if userinfo_is_jwt(oidc.user_endpoint_format, userinfo.header("content-type")) {
        let token = String::from_utf8_lossy(&userinfo.body).trim().to_string();
        verify_with_key_set(context, |jwks| verify_provider_jwt(&token, oidc, jwks, now))?
    } else {
        match serde_json::from_slice(&userinfo.body) {
            Ok(Value::Object(claims)) => claims,
            _ => return Err("userinfo is not a JSON object".into()),
        }
    };
    let claimed = map_claims(&claims, &oidc.claims).map_err(|e| e.to_string())?;
    let user = crate::identity::store::resolve_login(
        services.db,
        &claimed,
        oidc.fallback_to_email,
        oidc.create_user,
        &services.new_uuid(),
        now,
    )
    .map_err(|e| e.to_string())?
    .map_err(|refusal| refusal.to_string())?;
    Ok(CompletedLogin {
        user_id: user.id,
        id_token: tokens.id_token,
    })
}

fn send_ok(
    services: &Services,
    request: OutboundRequest,
) -> Result<crate::ports::OutboundResponse, String> {
    let url = request.url.clone();
    let response = services.http.send(request).map_err(|e| e.to_string())?;
    if !(200..300).contains(&response.status) {
        return Err(format!("{url} answered {}", response.status));
    }
    Ok(response)
}

/// Runs a verification against the provider's key set, cached in the
/// database and fetched again when the token names a key we do not hold.
fn verify_with_key_set<T>(
    context: &Context,
    verify: impl Fn(&Value) -> Result<T, TokenError>,
) -> Result<T, String> {
    let oidc = &context.oidc;
    let (SignAlgorithm::Rs256, Some(url)) = (oidc.sign_algorithm, oidc.jwks_endpoint.as_deref())
    else {
        return verify(&Value::Null).map_err(|e| e.to_string());
    };
    let db = context.services.db;
    let cached = db
        .execute(
            "SELECT jwks FROM meet_oidc_key_set WHERE jwks_url = ?",
            &[url.into()],
        )
        .map_err(|e| e.to_string())?;
    let cached: Option<Value> = rows(&cached)
        .next()
        .and_then(|row| row.text("jwks").ok())
        .and_then(|text| serde_json::from_str(&text).ok());
    if let Some(jwks) = &cached {
        match verify(jwks) {
            Err(TokenError::UnknownKey(_)) => {}
            other => return other.map_err(|e| e.to_string()),
        }
    }
    let response = send_ok(
        context.services,
        OutboundRequest {
            method: "GET".into(),
            url: url.to_string(),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            timeout: None,
        },
    )?;
    let jwks: Value =
        serde_json::from_slice(&response.body).map_err(|e| format!("bad JWKS: {e}"))?;
    db.execute(
        "INSERT INTO meet_oidc_key_set (jwks_url, jwks, fetched_at) VALUES (?, ?, ?) \
         ON CONFLICT (jwks_url) DO UPDATE SET jwks = excluded.jwks, fetched_at = excluded.fetched_at",
        &[
            url.into(),
            jwks.to_string().into(),
            timestamp(context.services.clock.now()).into(),
        ],
    )
    .map_err(|e| e.to_string())?;
    verify(&jwks).map_err(|e| e.to_string())
}

/// `GET|POST logout/`: end the session, through the provider's end-session
/// endpoint when there is one.
pub fn logout(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let context = Context::new(request, services)?;
    if request.method == crate::http::Method::GET && !context.oidc.allow_logout_get {
        return Err(ApiError::MethodNotAllowed("GET".into()));
    }
    let caller = resolve_caller(request, services)?;
    let logout_redirect = &context.oidc.logout_redirect_url;
    let Caller::Session(_, mut session) = caller else {
        if let Some(session) = context.session()? {
            session_store::delete(services.db, &session.key_hash)?;
        }
        return Ok(ApiResponse::redirect(302, logout_redirect)
            .with_header("set-cookie", &session_clear_cookie(context.secure())));
    };
    let id_token = session
        .data
        .get("oidc_id_token")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let (Some(endpoint), Some(id_token)) = (&context.oidc.logout_endpoint, id_token) {
        let state = services.random.alphanumeric(32);
        if let Value::Object(states) = session
            .data
            .entry("oidc_states")
            .or_insert_with(|| Value::Object(Map::new()))
        {
            states.insert(state.clone(), json!({"nonce": null, "code_verifier": null}));
        }
        session_store::save_data(services.db, &session.key_hash, &session.data)?;
        let mut url = url::Url::parse(endpoint).map_err(|_| {
            crate::settings::SettingError::new("oidc_op_logout_endpoint", "must be an absolute URL")
        })?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", &id_token)
            .append_pair("state", &state)
            .append_pair(
                "post_logout_redirect_uri",
                &context.absolute("/api/v1.0/logout-callback/"),
            );
        return Ok(ApiResponse::redirect(302, url.as_str()));
    }
    session_store::delete(services.db, &session.key_hash)?;
    Ok(ApiResponse::redirect(302, logout_redirect)
        .with_header("set-cookie", &session_clear_cookie(context.secure())))
}

/// `GET logout-callback/`: the provider has logged the user out; end our
/// session if the state is one we issued.
pub fn logout_callback(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let context = Context::new(request, services)?;
    let logout_redirect = &context.oidc.logout_redirect_url;
    let Caller::Session(_, session) = resolve_caller(request, services)? else {
        return Ok(ApiResponse::redirect(302, logout_redirect));
    };
    let known = request.query_param("state").is_some_and(|state| {
        session
            .data
            .get("oidc_states")
            .and_then(|states| states.get(&state))
            .is_some()
    });
    if !known {
        return Err(ApiError::Custom {
            status: 400,
            body: json!({"detail": "OIDC logout callback state not found in session `oidc_states`!"}),
        });
    }
    session_store::delete(services.db, &session.key_hash)?;
    Ok(ApiResponse::redirect(302, logout_redirect)
        .with_header("set-cookie", &session_clear_cookie(context.secure())))
}
