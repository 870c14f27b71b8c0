//! `allowed_outbound_hosts`: which URLs a component may send requests to.
//!
//! Entries are `scheme://host[:port]` as in Spin: `*` may stand for the
//! scheme, the host (or a leading `*.` for any subdomain) or the port; a
//! missing port means the scheme's default port; `{{ var }}` templates are
//! resolved against application variables first.
//!
//! `tcp://<ip>:<port>` (and `udp://`) entries govern `wasi:sockets`, as in
//! Spin: the numeric address being connected must match; a host name in an
//! entry never matches, since name lookups are denied.

use crate::variables::Template;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com`.
    Subdomain(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Exact(u16),
    /// Inclusive range, `8000..8010` in the manifest (end exclusive there).
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// `None` means any scheme.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

/// The parsed allow-list of one component.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    allow_all: bool,
    entries: Vec<AllowedHost>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<Self> {
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("{entry:?} must be of the form scheme://host[:port]");
        };
        if scheme.is_empty() {
            bail!("{entry:?} has an empty scheme");
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            bail!("{entry:?} must not contain a path");
        }
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 literal `[::1]` has colons inside the brackets.
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (rest, None),
        };
        if host.is_empty() {
            bail!("{entry:?} has an empty host");
        }
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            HostPattern::Subdomain(domain.to_ascii_lowercase())
        } else if host.contains('*') {
            bail!("{entry:?}: `*` is only allowed as the whole host or as a leading `*.`");
        } else {
            HostPattern::Exact(host.to_ascii_lowercase())
        };
        let port = match port {
            Some("*") => PortPattern::Any,
            Some(port) => match port.split_once("..") {
                Some((start, end)) => {
                    let start: u16 = start
                        .parse()
                        .with_context(|| format!("{entry:?}: bad port range"))?;
                    let end: u16 = end
                        .parse()
                        .with_context(|| format!("{entry:?}: bad port range"))?;
                    if end <= start {
                        bail!("{entry:?}: empty port range");
                    }
                    PortPattern::Range(start, end - 1)
                }
                None => PortPattern::Exact(
                    port.parse()
                        .with_context(|| format!("{entry:?}: bad port {port:?}"))?,
                ),
            },
            None => match default_port(scheme) {
                Some(port) => PortPattern::Exact(port),
                None => bail!("{entry:?} needs an explicit port for scheme {scheme:?}"),
            },
        };
        let scheme = (scheme != "*").then(|| scheme.to_ascii_lowercase());
        Ok(Self { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(expected) => expected == host,
            HostPattern::Subdomain(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1),
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(expected) => expected == port,
            PortPattern::Range(start, end) => (start..=end).contains(&port),
        };
        scheme_ok && host_ok && port_ok
    }

    /// Whether a socket of `scheme` (`tcp` or `udp`) may reach `addr`: the
    /// host must be `*` or an IP literal equal to the address.
    fn allows_socket(&self, scheme: &str, addr: SocketAddr) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(expected) => parse_ip(expected) == Some(addr.ip()),
            HostPattern::Subdomain(_) => false,
        };
        let port = addr.port();
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(expected) => expected == port,
            PortPattern::Range(start, end) => (start..=end).contains(&port),
        };
        scheme_ok && host_ok && port_ok
    }
}

/// `127.0.0.1` or `[::1]` as an address; a name is `None`.
fn parse_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

impl AllowedHosts {
    /// Parses a component's entries, resolving templates against the
    /// application variables.
    pub fn parse(entries: &[String], app_values: &BTreeMap<String, String>) -> Result<Self> {
        let mut hosts = Self::default();
        for entry in entries {
            let rendered = Template::parse(entry)
                .and_then(|t| t.render(app_values))
                .with_context(|| format!("allowed_outbound_hosts entry {entry:?}"))?;
            if rendered == "insecure:allow-all" {
                hosts.allow_all = true;
                continue;
            }
            let parsed = AllowedHost::parse(&rendered)
                .with_context(|| format!("allowed_outbound_hosts entry {entry:?}"))?;
            hosts.entries.push(parsed);
        }
        Ok(hosts)
    }

    /// Whether a request to `uri` may be sent.
    pub fn allows_uri(&self, uri: &http::Uri) -> bool {
        if self.allow_all {
            return true;
        }
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let Some(port) = uri.port_u16().or_else(|| default_port(&scheme)) else {
            return false;
        };
        self.entries.iter().any(|e| e.allows(&scheme, &host, port))
    }

    /// Whether a socket of `scheme` (`tcp` or `udp`) may connect or send to
    /// `addr`.
    pub fn allows_socket(&self, scheme: &str, addr: SocketAddr) -> bool {
        self.allow_all || self.entries.iter().any(|e| e.allows_socket(scheme, addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        let values = BTreeMap::from([
            ("api_host".to_string(), "api.example.com".to_string()),
            ("livekit_port".to_string(), "7880".to_string()),
        ]);
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        AllowedHosts::parse(&entries, &values).unwrap()
    }

    fn allowed(hosts: &AllowedHosts, url: &str) -> bool {
        hosts.allows_uri(&url.parse().unwrap())
    }

    #[test]
    fn exact_entries_and_default_ports() {
        let h = hosts(&["https://example.com", "http://127.0.0.1:17880"]);
        assert!(allowed(&h, "https://example.com/x?y=1"));
        assert!(allowed(&h, "https://example.com:443/"));
        assert!(!allowed(&h, "https://example.com:8443/"));
        assert!(!allowed(&h, "http://example.com/"));
        assert!(allowed(&h, "http://127.0.0.1:17880/twirp"));
        assert!(!allowed(&h, "http://127.0.0.1:17881/"));
        assert!(!allowed(&h, "https://evil.example.org/"));
    }

    #[test]
    fn wildcards() {
        let h = hosts(&[
            "http://localhost:*",
            "https://*.example.org",
            "*://db.local:5000",
        ]);
        assert!(allowed(&h, "http://localhost:1234/"));
        assert!(allowed(&h, "http://localhost/"));
        assert!(!allowed(&h, "https://localhost:1234/"));
        assert!(allowed(&h, "https://a.example.org/"));
        assert!(allowed(&h, "https://a.b.example.org/"));
        assert!(!allowed(&h, "https://example.org/"));
        assert!(!allowed(&h, "https://badexample.org/"));
        assert!(allowed(&h, "http://db.local:5000/"));
        assert!(allowed(&h, "https://db.local:5000/"));
        assert!(!allowed(&h, "https://db.local:5001/"));
        let ranged = hosts(&["http://127.0.0.1:8000..8002"]);
        assert!(allowed(&ranged, "http://127.0.0.1:8001/"));
        assert!(!allowed(&ranged, "http://127.0.0.1:8002/"));
    }

    #[test]
    fn templates_are_resolved() {
        let h = hosts(&[
            "https://{{ api_host }}",
            "http://127.0.0.1:{{livekit_port}}",
        ]);
        assert!(allowed(&h, "https://api.example.com/users"));
        assert!(allowed(&h, "http://127.0.0.1:7880/"));
        assert!(!allowed(&h, "http://127.0.0.1:7881/"));
        let err = AllowedHosts::parse(&["https://{{ missing }}".to_string()], &BTreeMap::new())
            .unwrap_err();
        assert!(format!("{err:#}").contains("missing"));
    }

    fn socket_allowed(hosts: &AllowedHosts, scheme: &str, addr: &str) -> bool {
        hosts.allows_socket(scheme, addr.parse().unwrap())
    }

    #[test]
    fn tcp_entries_match_numeric_addresses_only() {
        let values = BTreeMap::from([
            ("email_host".to_string(), "127.0.0.1".to_string()),
            ("email_port".to_string(), "2525".to_string()),
        ]);
        let entries: Vec<String> = [
            "tcp://{{ email_host }}:{{ email_port }}",
            "tcp://[::1]:25",
            "tcp://*:587",
            "tcp://localhost:26",
            "https://127.0.0.1:443",
        ]
        .iter()
        .map(|e| e.to_string())
        .collect();
        let h = AllowedHosts::parse(&entries, &values).unwrap();
        assert!(socket_allowed(&h, "tcp", "127.0.0.1:2525"));
        assert!(!socket_allowed(&h, "tcp", "127.0.0.1:2526"));
        assert!(!socket_allowed(&h, "tcp", "127.0.0.2:2525"));
        assert!(socket_allowed(&h, "tcp", "[::1]:25"));
        assert!(socket_allowed(&h, "tcp", "10.1.2.3:587"));
        assert!(socket_allowed(&h, "tcp", "[2001:db8::1]:587"));
        // A name never matches: the guest cannot resolve it anyway.
        assert!(!socket_allowed(&h, "tcp", "127.0.0.1:26"));
        // HTTP entries do not open raw sockets, and TCP is not UDP.
        assert!(!socket_allowed(&h, "tcp", "127.0.0.1:443"));
        assert!(!socket_allowed(&h, "udp", "127.0.0.1:2525"));
        // `tcp://` entries never allow HTTP requests.
        assert!(!allowed(&h, "http://127.0.0.1:2525/"));
        assert!(AllowedHosts::parse(&["tcp://127.0.0.1".to_string()], &values).is_err());
        assert!(!socket_allowed(&hosts(&[]), "tcp", "127.0.0.1:2525"));
    }

    #[test]
    fn empty_list_denies_everything_and_bad_entries_fail() {
        let h = hosts(&[]);
        assert!(!allowed(&h, "https://example.com/"));
        let none = BTreeMap::new();
        for bad in [
            "example.com",
            "https://",
            "https://a.com/path",
            "ftp://a.com",
            "https://a*.com",
        ] {
            assert!(
                AllowedHosts::parse(&[bad.to_string()], &none).is_err(),
                "{bad}"
            );
        }
    }
}
