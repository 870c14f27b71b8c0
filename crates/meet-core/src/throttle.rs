//! DRF-style throttles for anonymous callers (api.md §1.6), counted in the
//! database so that every instance shares them.

use crate::cache::count_request;
use crate::error::ApiError;
use crate::http::ApiRequest;
use crate::ports::Services;
use crate::settings::SettingError;

/// A rate such as `150/minute`: requests per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub requests: i64,
    pub period_seconds: u64,
}

impl Rate {
    /// DRF's format: `<n>/<s|m|h|d…>` (only the period's first letter counts).
    pub fn parse(variable: &str, text: &str) -> Result<Rate, SettingError> {
        let invalid = || SettingError::new(variable, "must be a rate like 100/minute");
        let (count, period) = text.trim().split_once('/').ok_or_else(invalid)?;
        let requests = count.trim().parse().map_err(|_| invalid())?;
        let period_seconds = match period.trim().chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86400,
            _ => return Err(invalid()),
        };
        Ok(Rate {
            requests,
            period_seconds,
        })
    }
}

/// The client address a throttle keys on. With `num_proxies` trusted
/// proxies in front, the address the nearest trusted proxy appended to
/// `X-Forwarded-For`; without, the connection's own address. Never a value
/// the client alone chooses (spec README, correction 7).
pub fn client_address(request: &ApiRequest, num_proxies: u64) -> String {
    let connection = request
        .header("spin-client-addr")
        .map(|addr| {
            addr.rsplit_once(':')
                .map_or(addr, |(ip, _)| ip)
                .trim_matches(['[', ']'])
                .to_string()
        })
        .unwrap_or_default();
    if num_proxies == 0 {
        return connection;
    }
    let forwarded: Vec<&str> = request
        .header("x-forwarded-for")
        .map(|value| value.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let index = usize::try_from(num_proxies).unwrap_or(usize::MAX);
    forwarded
        .len()
        .checked_sub(index)
        .and_then(|position| forwarded.get(position))
        .map_or(connection, |address| address.to_string())
}

/// Counts an anonymous request against `scope`; 429 once over the rate.
pub fn check(
    request: &ApiRequest,
    services: &Services,
    scope: &str,
    rate_variable: &str,
) -> Result<(), ApiError> {
    let settings = services.settings();
    let rate = Rate::parse(rate_variable, &settings.string(rate_variable)?)?;
    let address = client_address(request, settings.u64("num_proxies")?);
    let now = services.clock.now();
    let (count, window_ends) = count_request(
        services.db,
        &format!("throttle_{scope}_{address}"),
        rate.period_seconds,
        now,
    )?;
    if count > rate.requests {
        let wait = (window_ends - now).whole_seconds().max(1);
        return Err(ApiError::Throttled(u64::try_from(wait).unwrap_or(1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn rates_parse_like_drf() {
        assert_eq!(
            Rate::parse("r", "150/minute"),
            Ok(Rate {
                requests: 150,
                period_seconds: 60
            })
        );
        assert_eq!(Rate::parse("r", "5/s").unwrap().period_seconds, 1);
        assert!(Rate::parse("r", "many/minute").is_err());
        assert!(Rate::parse("r", "5/fortnight").is_err());
    }

    #[test]
    fn the_client_cannot_choose_its_bucket() {
        let request = ApiRequest::new(Method::POST, "/")
            .with_header("spin-client-addr", "10.0.0.9:5555")
            .with_header("x-forwarded-for", "6.6.6.6, 1.2.3.4");
        assert_eq!(client_address(&request, 0), "10.0.0.9");
        // One trusted proxy: the address it appended (the last one).
        assert_eq!(client_address(&request, 1), "1.2.3.4");
        assert_eq!(client_address(&request, 2), "6.6.6.6");
        assert_eq!(client_address(&request, 5), "10.0.0.9");
        let v6 = ApiRequest::new(Method::POST, "/").with_header("spin-client-addr", "[::1]:80");
        assert_eq!(client_address(&v6, 0), "::1");
    }
}
