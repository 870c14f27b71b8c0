//! HTTP route matching with Spin's semantics: exact paths, `:name` segments
//! and a trailing `/...` wildcard; the most specific matching route wins.

use anyhow::{bail, Result};
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Named(String),
}

/// One `[[trigger.http]]` route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route as written in the manifest (`spin-raw-component-route`).
    pub raw: String,
    pub component: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

/// The result of routing one request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub component: &'a str,
    pub raw_route: &'a str,
    /// The route with its trailing slash removed, as Spin reports it in
    /// `spin-matched-route` (the application base is always `/` here).
    pub based_route: String,
    /// The route without its `/...` suffix (`spin-component-route`).
    pub component_route: String,
    /// The part of the path matched by `/...` (`spin-path-info`).
    pub path_info: String,
    /// `:name` captures, in route order.
    pub captures: Vec<(String, String)>,
}

impl Route {
    pub fn parse(raw: &str, component: &str) -> Result<Self> {
        if !raw.starts_with('/') {
            bail!("route {raw:?} must start with `/`");
        }
        // Spin strips one trailing slash: `/foo/` is the route `/foo`.
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        let (body, wildcard) = match trimmed.strip_suffix("/...") {
            Some(prefix) => (prefix, true),
            None if trimmed == "..." => ("", true),
            None => (trimmed, false),
        };
        let mut segments = Vec::new();
        for part in body.split('/').skip(1) {
            if part == "..." {
                bail!("route {raw:?}: `...` is only allowed as the last segment");
            }
            if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() {
                    bail!("route {raw:?}: `:` must be followed by a name");
                }
                segments.push(Segment::Named(name.to_string()));
            } else {
                segments.push(Segment::Literal(part.to_string()));
            }
        }
        Ok(Self {
            raw: raw.to_string(),
            component: component.to_string(),
            segments,
            wildcard,
        })
    }

    /// Matches a request path (no query string); returns the `:name`
    /// captures and the wildcard remainder.
    fn matches(&self, path: &str) -> Option<Matched> {
        let mut rest = path;
        let mut captures = Vec::new();
        for segment in &self.segments {
            let after_slash = rest.strip_prefix('/')?;
            let end = after_slash.find('/').unwrap_or(after_slash.len());
            let value = &after_slash[..end];
            match segment {
                Segment::Literal(literal) if literal == value => {}
                Segment::Literal(_) => return None,
                Segment::Named(_) if value.is_empty() => return None,
                Segment::Named(name) => captures.push((name.clone(), value.to_string())),
            }
            rest = &after_slash[end..];
        }
        if self.wildcard {
            // `/foo/...` matches `/foo`, `/foo/` and anything below.
            if rest.is_empty() || rest.starts_with('/') {
                return Some((captures, rest.to_string()));
            }
            return None;
        }
        // An exact route tolerates one trailing slash, like Spin's router.
        if rest.is_empty() || rest == "/" {
            return Some((captures, String::new()));
        }
        None
    }

    /// Orders routes by specificity, most specific first: segment by
    /// segment a literal beats a `:name`, which beats the wildcard; a route
    /// that ends exactly beats one that continues with a wildcard.
    fn specificity(&self, other: &Route) -> Ordering {
        fn rank(route: &Route, i: usize) -> u8 {
            match route.segments.get(i) {
                Some(Segment::Literal(_)) => 3,
                Some(Segment::Named(_)) => 2,
                None if route.wildcard => 1,
                None => 4,
            }
        }
        let len = self.segments.len().max(other.segments.len());
        for i in 0..=len {
            let (a, b) = (rank(self, i), rank(other, i));
            if a != b {
                return b.cmp(&a);
            }
            if a == 1 || a == 4 {
                break;
            }
        }
        Ordering::Equal
    }
}

/// `:name` captures and the wildcard remainder of one match.
type Matched = (Vec<(String, String)>, String);

/// All routes of the application.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Builds the router; a later duplicate of a route replaces the earlier
    /// one, as in Spin.
    pub fn new(routes: Vec<Route>) -> Self {
        let mut unique: Vec<Route> = Vec::new();
        for route in routes {
            let key = |r: &Route| r.raw.strip_suffix('/').unwrap_or(&r.raw).to_string();
            match unique.iter_mut().find(|r| key(r) == key(&route)) {
                Some(existing) => *existing = route,
                None => unique.push(route),
            }
        }
        Self { routes: unique }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let mut best: Option<(&Route, Matched)> = None;
        for route in &self.routes {
            let Some(matched) = route.matches(path) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((current, _)) => route.specificity(current) == Ordering::Less,
            };
            if better {
                best = Some((route, matched));
            }
        }
        let (route, (captures, path_info)) = best?;
        let based_route = route
            .raw
            .strip_suffix('/')
            .unwrap_or(&route.raw)
            .to_string();
        let component_route = route
            .raw
            .strip_suffix("/...")
            .unwrap_or(&route.raw)
            .to_string();
        Some(RouteMatch {
            component: &route.component,
            raw_route: &route.raw,
            based_route,
            component_route,
            path_info,
            captures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::new(
            routes
                .iter()
                .map(|(route, component)| Route::parse(route, component).unwrap())
                .collect(),
        )
    }

    fn component<'a>(router: &'a Router, path: &str) -> Option<&'a str> {
        router.route(path).map(|m| m.component)
    }

    #[test]
    fn exact_routes() {
        let r = router(&[("/foo", "foo"), ("/foo/bar", "foobar")]);
        assert_eq!(component(&r, "/foo"), Some("foo"));
        assert_eq!(component(&r, "/foo/"), Some("foo"));
        assert_eq!(component(&r, "/foo/bar"), Some("foobar"));
        assert_eq!(component(&r, "/foo/baz"), None);
        assert_eq!(component(&r, "/foobar"), None);
        assert_eq!(component(&r, "/"), None);
    }

    #[test]
    fn wildcard_matches_its_base_and_below() {
        let r = router(&[("/api/v1.0/...", "api")]);
        for (path, info) in [
            ("/api/v1.0", ""),
            ("/api/v1.0/", "/"),
            ("/api/v1.0/config", "/config"),
            ("/api/v1.0/users/me/", "/users/me/"),
        ] {
            let m = r.route(path).unwrap();
            assert_eq!(m.component, "api");
            assert_eq!(m.path_info, info, "path {path}");
            assert_eq!(m.raw_route, "/api/v1.0/...");
            assert_eq!(m.based_route, "/api/v1.0/...");
            assert_eq!(m.component_route, "/api/v1.0");
        }
        assert_eq!(component(&r, "/api/v1.01"), None);
        assert_eq!(component(&r, "/api"), None);
    }

    #[test]
    fn root_wildcard_matches_everything() {
        let r = router(&[("/...", "all")]);
        let m = r.route("/").unwrap();
        assert_eq!((m.component, m.path_info.as_str()), ("all", "/"));
        assert_eq!(m.component_route, "");
        assert_eq!(r.route("/env/api").unwrap().path_info, "/env/api");
    }

    #[test]
    fn most_specific_wins() {
        let r = router(&[
            ("/...", "root"),
            ("/one/...", "one"),
            ("/one/two/three/...", "three"),
            ("/one/two/...", "two"),
            ("/one", "one_exact"),
            ("/one/:id/x", "named"),
            ("/one/two/x", "literal"),
        ]);
        assert_eq!(component(&r, "/one"), Some("one_exact"));
        assert_eq!(component(&r, "/one/"), Some("one_exact"));
        assert_eq!(component(&r, "/one/z"), Some("one"));
        assert_eq!(component(&r, "/one/two"), Some("two"));
        assert_eq!(component(&r, "/one/two/three/four"), Some("three"));
        assert_eq!(component(&r, "/one/two/x"), Some("literal"));
        assert_eq!(component(&r, "/one/seven/x"), Some("named"));
        assert_eq!(component(&r, "/other"), Some("root"));
    }

    #[test]
    fn named_segments_are_captured() {
        let r = router(&[("/rooms/:room_id/accesses/...", "rooms")]);
        let m = r.route("/rooms/42/accesses/7").unwrap();
        assert_eq!(m.captures, vec![("room_id".to_string(), "42".to_string())]);
        assert_eq!(m.path_info, "/7");
        assert_eq!(m.component_route, "/rooms/:room_id/accesses");
        assert!(r.route("/rooms//accesses").is_none());
    }

    #[test]
    fn later_duplicate_wins_and_bad_routes_are_rejected() {
        let r = router(&[("/foo", "first"), ("/foo/", "second")]);
        assert_eq!(r.routes().len(), 1);
        assert_eq!(component(&r, "/foo"), Some("second"));
        assert!(Route::parse("foo", "c").is_err());
        assert!(Route::parse("/a/.../b", "c").is_err());
        assert!(Route::parse("/a/:/b", "c").is_err());
    }
}
