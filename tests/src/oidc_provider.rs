//! A fake OpenID Connect provider on loopback, speaking the real protocol:
//! authorization redirects, the token endpoint, userinfo as JSON or as a
//! signed JWT, a JWKS with key rotation, and end-session. RS256 keys are
//! generated when it starts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jwt_compact::alg::{Rsa, RsaPrivateKey, RsaPublicKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde_json::{json, Map, Value};

/// What the provider does on the next requests; tests change it.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Claims of the user who logs in (`sub`, `email`, `given_name`, …).
    pub claims: Map<String, Value>,
    /// Whether the user has a session at the provider (else `prompt=none`
    /// answers `login_required`).
    pub logged_in: bool,
    /// Answer userinfo as a signed JWT (`application/jwt`).
    pub userinfo_as_jwt: bool,
    /// Put this nonce in ID tokens instead of the one asked for.
    pub nonce_override: Option<String>,
    /// Sign ID tokens with a key that is not in the JWKS.
    pub sign_with_rogue_key: bool,
    /// Answer the token endpoint with this status instead.
    pub token_endpoint_status: Option<u16>,
}

struct Key {
    kid: String,
    private: RsaPrivateKey,
}

#[derive(Debug, Clone)]
struct PendingCode {
    nonce: Option<String>,
    redirect_uri: String,
    claims: Map<String, Value>,
    code_challenge: Option<String>,
}

struct State {
    behaviour: Behaviour,
    keys: Vec<Key>,
    rogue_key: Key,
    codes: HashMap<String, PendingCode>,
    access_tokens: HashMap<String, Map<String, Value>>,
    counter: u64,
    /// Path of each request received, for assertions.
    requests: Vec<String>,
    /// The form bodies sent to the token endpoint.
    token_requests: Vec<HashMap<String, String>>,
}

pub struct OidcProvider {
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
    state: Arc<Mutex<State>>,
}

fn new_key(kid: &str) -> Key {
    let mut rng = rand::rngs::OsRng;
    let private = RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
    Key {
        kid: kid.to_string(),
        private,
    }
}

impl OidcProvider {
    pub fn start() -> OidcProvider {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind loopback");
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let base = format!("http://127.0.0.1:{port}");
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("user-1"));
        claims.insert("email".into(), json!("jane@example.org"));
        claims.insert("given_name".into(), json!("Jane"));
        claims.insert("usual_name".into(), json!("Doe"));
        let state = Arc::new(Mutex::new(State {
            behaviour: Behaviour {
                claims,
                logged_in: true,
                userinfo_as_jwt: false,
                nonce_override: None,
                sign_with_rogue_key: false,
                token_endpoint_status: None,
            },
            keys: vec![new_key("key-1")],
            rogue_key: new_key("key-1"),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            counter: 0,
            requests: Vec::new(),
            token_requests: Vec::new(),
        }));
        let provider = OidcProvider {
            base: base.clone(),
            client_id: "meet".into(),
            client_secret: "fake-provider-secret".into(),
            state: state.clone(),
        };
        let client_id = provider.client_id.clone();
        let client_secret = provider.client_secret.clone();
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                handle(request, &state, &base, &client_id, &client_secret);
            }
        });
        provider
    }

    /// The Spin variables that point the app at this provider.
    pub fn variables(&self) -> Vec<(String, String)> {
        [
            ("oidc_op_origin", self.base.clone()),
            (
                "oidc_op_authorization_endpoint",
                format!("{}/authorize", self.base),
            ),
            ("oidc_op_token_endpoint", format!("{}/token", self.base)),
            ("oidc_op_user_endpoint", format!("{}/userinfo", self.base)),
            ("oidc_op_jwks_endpoint", format!("{}/jwks", self.base)),
            ("oidc_op_logout_endpoint", format!("{}/logout", self.base)),
            ("oidc_rp_client_id", self.client_id.clone()),
            ("oidc_rp_client_secret", self.client_secret.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    pub fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.state.lock().expect("provider state").behaviour);
    }

    /// Replaces the signing key by a new one with a new `kid`.
    pub fn rotate_keys(&self) {
        let mut state = self.state.lock().expect("provider state");
        let kid = format!("key-{}", state.keys.len() + 1);
        state.keys = vec![new_key(&kid)];
    }

    /// An access token the provider accepts at userinfo for `claims`.
    pub fn issue_access_token(&self, claims: Map<String, Value>) -> String {
        let mut state = self.state.lock().expect("provider state");
        state.counter += 1;
        let token = format!("access-{}-{}", state.counter, random_text());
        state.access_tokens.insert(token.clone(), claims);
        token
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        let state = self.state.lock().expect("provider state");
        state.requests.iter().filter(|p| p.as_str() == path).count()
    }

    pub fn last_token_request(&self) -> Option<HashMap<String, String>> {
        let state = self.state.lock().expect("provider state");
        state.token_requests.last().cloned()
    }
}

fn random_text() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

fn query_map(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn redirect(location: &str) -> tiny_http::Response<std::io::Empty> {
    tiny_http::Response::empty(302)
        .with_header(tiny_http::Header::from_bytes("location", location).expect("valid header"))
}

fn json_response(status: u16, body: &Value) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    tiny_http::Response::from_data(body.to_string().into_bytes())
        .with_status_code(status)
        .with_header(
            tiny_http::Header::from_bytes("content-type", "application/json").expect("valid"),
        )
}

fn sign(key: &Key, claims: Map<String, Value>) -> String {
    let header = Header::empty()
        .with_key_id(key.kid.clone())
        .with_token_type("JWT");
    let claims = Claims::new(claims).set_duration_and_issuance(
        &jwt_compact::TimeOptions::default(),
        chrono::Duration::minutes(10),
    );
    Rsa::rs256()
        .token(&header, &claims, &key.private)
        .expect("signing")
}

fn with_url(mut url: url::Url, pairs: &[(&str, &str)]) -> String {
    url.query_pairs_mut().extend_pairs(pairs);
    url.into()
}

fn handle(
    mut request: tiny_http::Request,
    state: &Arc<Mutex<State>>,
    base: &str,
    client_id: &str,
    client_secret: &str,
) {
    let url = request.url().to_string();
    let path = url.split('?').next().unwrap_or("").to_string();
    let mut body = String::new();
    let _ = request.as_reader().read_to_string(&mut body);
    let authorization = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("authorization"))
        .map(|h| h.value.as_str().to_string());
    let mut state = state.lock().expect("provider state");
    state.requests.push(path.clone());
    let _ = match path.as_str() {
        "/authorize" => {
            let query = query_map(&url);
            let redirect_uri = query.get("redirect_uri").cloned().unwrap_or_default();
            let Ok(target) = url::Url::parse(&redirect_uri) else {
                return drop(
                    request.respond(json_response(400, &json!({"error": "invalid_request"}))),
                );
            };
            let state_param = query.get("state").cloned().unwrap_or_default();
            if query.get("client_id").map(String::as_str) != Some(client_id) {
                return drop(
                    request.respond(json_response(400, &json!({"error": "unauthorized_client"}))),
                );
            }
            if query.get("prompt").map(String::as_str) == Some("none") && !state.behaviour.logged_in
            {
                let location = with_url(
                    target,
                    &[("error", "login_required"), ("state", &state_param)],
                );
                return drop(request.respond(redirect(&location)));
            }
            state.counter += 1;
            let code = format!("code-{}-{}", state.counter, random_text());
            let pending = PendingCode {
                nonce: query.get("nonce").cloned(),
                redirect_uri: redirect_uri.clone(),
                claims: state.behaviour.claims.clone(),
                code_challenge: query.get("code_challenge").cloned(),
            };
            state.codes.insert(code.clone(), pending);
            let location = with_url(target, &[("code", &code), ("state", &state_param)]);
            request.respond(redirect(&location))
        }
        "/token" => {
            let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
            state.token_requests.push(form.clone());
            if let Some(status) = state.behaviour.token_endpoint_status {
                return drop(
                    request.respond(json_response(status, &json!({"error": "server_error"}))),
                );
            }
            let client_ok = form.get("client_id").map(String::as_str) == Some(client_id)
                && form.get("client_secret").map(String::as_str) == Some(client_secret);
            let pending = form.get("code").and_then(|code| state.codes.remove(code));
            let Some(pending) = pending.filter(|p| {
                client_ok
                    && form.get("redirect_uri") == Some(&p.redirect_uri)
                    && form.get("grant_type").map(String::as_str) == Some("authorization_code")
            }) else {
                return drop(
                    request.respond(json_response(400, &json!({"error": "invalid_grant"}))),
                );
            };
            if let Some(challenge) = &pending.code_challenge {
                use base64::Engine;
                use sha2::Digest;
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(verifier.as_bytes()));
                if &computed != challenge {
                    return drop(
                        request.respond(json_response(400, &json!({"error": "invalid_grant"}))),
                    );
                }
            }
            let mut id_claims = pending.claims.clone();
            id_claims.insert("iss".into(), json!(base));
            id_claims.insert("aud".into(), json!(client_id));
            let nonce = state
                .behaviour
                .nonce_override
                .clone()
                .or(pending.nonce.clone());
            if let Some(nonce) = nonce {
                id_claims.insert("nonce".into(), json!(nonce));
            }
            let key = if state.behaviour.sign_with_rogue_key {
                &state.rogue_key
            } else {
                &state.keys[0]
            };
            let id_token = sign(key, id_claims);
            state.counter += 1;
            let access_token = format!("access-{}-{}", state.counter, random_text());
            state
                .access_tokens
                .insert(access_token.clone(), pending.claims);
            request.respond(json_response(
                200,
                &json!({"access_token": access_token, "id_token": id_token, "token_type": "Bearer", "expires_in": 300}),
            ))
        }
        "/userinfo" => {
            let token = authorization
                .as_deref()
                .and_then(|h| h.strip_prefix("Bearer "))
                .unwrap_or("");
            let Some(claims) = state.access_tokens.get(token).cloned() else {
                let response = json_response(401, &json!({"error": "invalid_token"})).with_header(
                    tiny_http::Header::from_bytes(
                        "www-authenticate",
                        r#"Bearer error="invalid_token", error_description="The access token is invalid or expired""#,
                    )
                    .expect("valid"),
                );
                return drop(request.respond(response));
            };
            if state.behaviour.userinfo_as_jwt {
                let jwt = sign(&state.keys[0], claims);
                request.respond(
                    tiny_http::Response::from_data(jwt.into_bytes()).with_header(
                        tiny_http::Header::from_bytes("content-type", "application/jwt")
                            .expect("valid"),
                    ),
                )
            } else {
                request.respond(json_response(200, &Value::Object(claims)))
            }
        }
        "/jwks" => {
            let keys: Vec<Value> = state
                .keys
                .iter()
                .map(|key| {
                    let public = RsaPublicKey::from(&key.private);
                    let mut jwk = serde_json::to_value(JsonWebKey::from(&public)).expect("JWK");
                    jwk["kid"] = json!(key.kid);
                    jwk["use"] = json!("sig");
                    jwk["alg"] = json!("RS256");
                    jwk
                })
                .collect();
            request.respond(json_response(200, &json!({"keys": keys})))
        }
        "/logout" => {
            let query = query_map(&url);
            match query
                .get("post_logout_redirect_uri")
                .and_then(|u| url::Url::parse(u).ok())
            {
                Some(target) => {
                    let state_param = query.get("state").cloned().unwrap_or_default();
                    request.respond(redirect(&with_url(target, &[("state", &state_param)])))
                }
                None => request.respond(redirect(base)),
            }
        }
        _ => request.respond(json_response(404, &json!({"error": "not_found"}))),
    };
}
