//! Property tests of every parser that sees untrusted input: whatever the
//! bytes, they return (an error at worst) and never panic. Cases per
//! property: `PROPTEST_CASES` (default 256 here; `meet-fuzz` runs millions).

#[path = "../fuzz/targets.rs"]
mod targets;

use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes that are often almost valid: JSON-ish, header-ish, or anything.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        "[ -~]{0,128}".prop_map(String::into_bytes),
        r#"\{("[a-z_]{1,12}": ?(null|true|[0-9]{1,3}|"[^"]{0,20}"|\[\]|\{\}),? ?){0,4}\}"#
            .prop_map(String::into_bytes),
        r"(Bearer|bearer|Basic)( [A-Za-z0-9._-]{0,40}){0,3}".prop_map(String::into_bytes),
        r"([a-z]{1,9}=[^;]{0,12}; ?){0,4}".prop_map(String::into_bytes),
        r"[0-9]{0,4}/[a-z]{0,8}".prop_map(String::into_bytes),
        r"(([0-9]{1,3}\.){3}[0-9]{1,3}(:[0-9]{1,5})?, ?){0,4}".prop_map(String::into_bytes),
        r"[0-9a-fA-F{}-]{0,40}".prop_map(String::into_bytes),
        r"[A-Za-z0-9_-]{0,30}\.[A-Za-z0-9_-]{0,60}\.[A-Za-z0-9_-]{0,43}"
            .prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pure_parsers_never_panic(bytes in input()) {
        for (_, target) in targets::TARGETS {
            target(&bytes);
        }
    }
}

#[test]
fn endpoint_bodies_never_panic() {
    let endpoints = targets::Endpoints::new();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&input(), |bytes| {
            endpoints.run(&bytes);
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_endpoint_fixture_reaches_the_parsers() {
    let endpoints = targets::Endpoints::new();
    // Valid bodies pass authentication and reach validation and the store.
    let statuses = endpoints.statuses(br#"{"name": "Fuzz Two", "callback_id": "c"}"#);
    assert_eq!((statuses[0], statuses[4]), (201, 200), "{statuses:?}");
    let statuses = endpoints.statuses(br#"{"access_level": "trusted"}"#);
    assert_eq!(statuses[..3], [400, 200, 200], "{statuses:?}");
    // An invalid one is a validation error, not a refusal before parsing.
    let statuses = endpoints.statuses(b"[1]");
    assert_eq!(statuses[..4], [400, 400, 400, 400], "{statuses:?}");
}
