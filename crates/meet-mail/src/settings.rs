//! The email settings, read from Spin variables (upstream names in lower case).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Every variable [`EmailSettings::from_lookup`] reads, for the manifest.
pub const VARIABLES: &[&str] = &[
    "email_host",
    "email_port",
    "email_host_user",
    "email_host_password",
    "email_use_tls",
    "email_use_ssl",
    "email_from",
    "email_brand_name",
    "email_support_email",
    "email_logo_img",
    "email_domain",
    "email_app_base_url",
    "email_tls_server_name",
    "email_timeout",
];

/// Upstream's `EMAIL_FROM` default.
pub const DEFAULT_FROM: &str = "from@example.com";
/// Seconds allowed for each SMTP step when `email_timeout` is unset.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;

/// A setting that could not be parsed; names the variable, never echoes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for the variable `{variable}`: {message}")]
pub struct SettingsError {
    pub variable: &'static str,
    pub message: String,
}

impl SettingsError {
    fn new(variable: &'static str, message: impl Into<String>) -> SettingsError {
        SettingsError {
            variable,
            message: message.into(),
        }
    }
}

/// A value that must not show up in logs or errors (`Debug` prints `***`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

/// A display name and an address, as in `Meet <noreply@example.org>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

impl Mailbox {
    /// Parses `address` or `Name <address>` (Django's `DEFAULT_FROM_EMAIL` forms).
    pub fn parse(value: &str) -> Result<Mailbox, String> {
        let value = value.trim();
        let (name, address) = match (value.rfind('<'), value.ends_with('>')) {
            (Some(open), true) => {
                let name = value[..open].trim().trim_matches('"').trim();
                (
                    (!name.is_empty()).then(|| name.to_string()),
                    &value[open + 1..value.len() - 1],
                )
            }
            _ => (None, value),
        };
        check_address(address)?;
        Ok(Mailbox {
            name,
            address: address.to_string(),
        })
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain)
    }
}

/// A plausible envelope address: one `@`, something either side, and nothing
/// that could break an SMTP command or a header (spaces, controls, `<>`).
pub fn check_address(address: &str) -> Result<(), String> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(format!("{address:?} is not an email address"));
    };
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>');
    if local.is_empty() || domain.is_empty() || address.contains(forbidden) {
        return Err(format!("{address:?} is not an email address"));
    }
    if address.len() > 254 {
        return Err("the address is longer than 254 characters".to_string());
    }
    Ok(())
}

/// Where and how to send email, and what the messages show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// `email_host`: the SMTP server's IP address; `None` (empty variable) = email not configured.
    /// Spin cannot look up names, so a name is refused when parsing.
    pub host: Option<IpAddr>,
    /// `email_port`: default 25, or 465 with `email_use_ssl` (what Django's smtplib does).
    pub port: u16,
    /// `email_host_user`: empty = no AUTH.
    pub host_user: String,
    /// `email_host_password`.
    pub host_password: Secret,
    /// `email_use_tls`: STARTTLS after EHLO (refuses to go on in clear if not offered).
    pub use_tls: bool,
    /// `email_use_ssl`: TLS from the first byte (usually port 465).
    pub use_ssl: bool,
    /// `email_from`: sender of every message, `address` or `Name <address>`.
    pub from: Mailbox,
    pub brand_name: String,
    pub support_email: String,
    pub logo_img: String,
    /// `email_domain`: shown as the room link's text (`<email_domain>/<slug>`).
    pub domain: String,
    /// `email_app_base_url`: the room link's target (`<email_app_base_url>/<slug>`).
    pub app_base_url: String,
    /// `email_tls_server_name` (ours): the name the server's certificate must
    /// carry, sent as SNI. `email_host` is an IP address, which certificates
    /// rarely name; empty = verify against the IP address itself.
    pub tls_server_name: String,
    /// `email_timeout` (Django's `EMAIL_TIMEOUT`, in seconds): the bound on
    /// connecting and on each SMTP step.
    pub timeout: Duration,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            host: None,
            port: 25,
            host_user: String::new(),
            host_password: Secret::default(),
            use_tls: false,
            use_ssl: false,
            from: Mailbox {
                name: None,
                address: DEFAULT_FROM.to_string(),
            },
            brand_name: String::new(),
            support_email: String::new(),
            logo_img: String::new(),
            domain: String::new(),
            app_base_url: String::new(),
            tls_server_name: String::new(),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
        }
    }
}

impl EmailSettings {
    /// Reads every setting through `lookup` (a Spin variable by its name);
    /// `None` or an empty string means unset.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<EmailSettings, SettingsError> {
        let get = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let text = |name: &str| get(name).unwrap_or_default();

        let host = get("email_host")
            .map(|value| parse_ip(&value))
            .transpose()
            .map_err(|message| SettingsError::new("email_host", message))?;
        let use_tls = parse_bool("email_use_tls", get("email_use_tls"))?;
        let use_ssl = parse_bool("email_use_ssl", get("email_use_ssl"))?;
        if use_tls && use_ssl {
            return Err(SettingsError::new(
                "email_use_ssl",
                "email_use_tls and email_use_ssl are mutually exclusive; set only one to true",
            ));
        }
        let port = match get("email_port") {
            None => {
                if use_ssl {
                    465
                } else {
                    25
                }
            }
            Some(value) => value
                .parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| {
                    SettingsError::new(
                        "email_port",
                        format!("{value:?} is not a port number (1-65535)"),
                    )
                })?,
        };
        let from = match get("email_from") {
            None => EmailSettings::default().from,
            Some(value) => Mailbox::parse(&value)
                .map_err(|message| SettingsError::new("email_from", message))?,
        };
        let timeout = match get("email_timeout") {
            None => Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
            Some(value) => value
                .parse::<f64>()
                .ok()
                .filter(|seconds| seconds.is_finite() && *seconds > 0.0 && *seconds <= 3600.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    SettingsError::new(
                        "email_timeout",
                        format!("{value:?} is not a number of seconds between 0 and 3600"),
                    )
                })?,
        };
        let tls_server_name = text("email_tls_server_name");
        if !tls_server_name.is_empty()
            && rustls::pki_types::ServerName::try_from(tls_server_name.as_str()).is_err()
        {
            return Err(SettingsError::new(
                "email_tls_server_name",
                format!("{tls_server_name:?} is not a DNS name or an IP address"),
            ));
        }
        Ok(EmailSettings {
            host,
            port,
            host_user: text("email_host_user"),
            // Not trimmed: a password may end with a space.
            host_password: Secret::new(lookup("email_host_password").unwrap_or_default()),
            use_tls,
            use_ssl,
            from,
            brand_name: text("email_brand_name"),
            support_email: text("email_support_email"),
            logo_img: text("email_logo_img"),
            domain: text("email_domain"),
            app_base_url: text("email_app_base_url"),
            tls_server_name,
            timeout,
        })
    }

    /// The server's socket address, or `None` when email is not configured.
    pub fn server_address(&self) -> Option<SocketAddr> {
        self.host.map(|ip| SocketAddr::new(ip, self.port))
    }

    /// The `allowed_outbound_hosts` entry Spin needs for this server,
    /// e.g. `tcp://192.0.2.10:587`.
    pub fn outbound_host(&self) -> Option<String> {
        self.server_address()
            .map(|address| format!("tcp://{address}"))
    }
}

fn parse_ip(value: &str) -> Result<IpAddr, String> {
    let bare = value
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(value);
    bare.parse::<IpAddr>().map_err(|_| {
        format!(
            "{value:?} is not an IP address; Spin components cannot look up host names, \
             so give the SMTP server's IP address (and allow tcp://<ip>:<port> in \
             allowed_outbound_hosts)"
        )
    })
}

fn parse_bool(variable: &'static str, value: Option<String>) -> Result<bool, SettingsError> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") | Some("0") | Some("no") | Some("off") => Ok(false),
        Some("true") | Some("1") | Some("yes") | Some("on") => Ok(true),
        Some(other) => Err(SettingsError::new(
            variable,
            format!("{other:?} is not a boolean (true or false)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<EmailSettings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EmailSettings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_upstream() {
        let parsed = settings(&[]).unwrap();
        assert_eq!(parsed, EmailSettings::default());
        assert_eq!(parsed.from.address, "from@example.com");
        assert_eq!(parsed.port, 25);
        assert_eq!(parsed.host, None);
        assert_eq!(parsed.outbound_host(), None);
        assert_eq!(parsed.timeout, Duration::from_secs(10));
    }

    #[test]
    fn reads_every_variable() {
        let parsed = settings(&[
            ("email_host", "192.0.2.10"),
            ("email_port", "587"),
            ("email_host_user", "meet"),
            ("email_host_password", "s3cret "),
            ("email_use_tls", "true"),
            ("email_from", "Visio <noreply@example.org>"),
            ("email_brand_name", "Visio"),
            ("email_support_email", "help@example.org"),
            ("email_logo_img", "https://example.org/logo.png"),
            ("email_domain", "visio.example.org"),
            ("email_app_base_url", "https://visio.example.org"),
            ("email_tls_server_name", "smtp.example.org"),
            ("email_timeout", "2.5"),
        ])
        .unwrap();
        assert_eq!(parsed.host, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(parsed.port, 587);
        assert_eq!(parsed.host_password.expose(), "s3cret ");
        assert!(parsed.use_tls && !parsed.use_ssl);
        assert_eq!(parsed.from.name.as_deref(), Some("Visio"));
        assert_eq!(parsed.from.address, "noreply@example.org");
        assert_eq!(parsed.from.domain(), "example.org");
        assert_eq!(parsed.tls_server_name, "smtp.example.org");
        assert_eq!(parsed.timeout, Duration::from_millis(2500));
        assert_eq!(parsed.outbound_host().unwrap(), "tcp://192.0.2.10:587");
        assert!(!format!("{parsed:?}").contains("s3cret"));
    }

    #[test]
    fn a_host_name_is_refused_without_a_lookup() {
        let error = settings(&[("email_host", "smtp.example.org")]).unwrap_err();
        assert_eq!(error.variable, "email_host");
        assert!(
            error.message.contains("cannot look up host names"),
            "{error}"
        );
        let ipv6 = settings(&[("email_host", "[::1]")]).unwrap();
        assert_eq!(ipv6.outbound_host().unwrap(), "tcp://[::1]:25");
    }

    #[test]
    fn ssl_defaults_to_port_465_and_excludes_tls() {
        assert_eq!(settings(&[("email_use_ssl", "true")]).unwrap().port, 465);
        let error = settings(&[("email_use_ssl", "true"), ("email_use_tls", "true")]).unwrap_err();
        assert_eq!(error.variable, "email_use_ssl");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (variable, value) in [
            ("email_port", "0"),
            ("email_port", "smtp"),
            ("email_use_tls", "maybe"),
            ("email_from", "not an address"),
            ("email_timeout", "-1"),
            ("email_tls_server_name", "bad name!"),
        ] {
            let error = settings(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
            assert!(error.to_string().contains(variable));
        }
    }

    #[test]
    fn addresses_that_could_inject_commands_are_refused() {
        assert!(check_address("a@b.example").is_ok());
        for bad in ["a b@c", "a@b\r\nRCPT TO:<x@y>", "<a@b>", "@b", "a@", "ab"] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
    }
}
