//! What every component of `spin.toml` is built with.

use meet_e2e::{build_app, repo_root};
use wasmparser::{ConstExpr, DataKind, Operator, Parser, Payload};

/// `components/stack-size.rs` links each component with this stack.
const STACK_BYTES: u32 = 256 * 1024;

/// The linear-memory offsets of the active data segments of a component's
/// core modules (the stack comes first, so data starts where it ends).
fn data_offsets(wasm: &[u8]) -> Vec<u32> {
    let mut offsets = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::DataSection(section) = payload.expect("the component parses") {
            for data in section {
                if let DataKind::Active { offset_expr, .. } = data.expect("a data segment").kind {
                    offsets.push(constant(&offset_expr));
                }
            }
        }
    }
    offsets
}

fn constant(expression: &ConstExpr) -> u32 {
    match expression.get_operators_reader().read() {
        Ok(Operator::I32Const { value }) => value as u32,
        other => panic!("a data offset that is not an i32 constant: {other:?}"),
    }
}

#[test]
fn every_component_has_the_small_stack_below_its_data() {
    build_app();
    let manifest: toml::Table = std::fs::read_to_string(repo_root().join("spin.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let components = manifest["component"].as_table().unwrap();
    assert!(components.len() >= 7, "{} components", components.len());
    for (name, component) in components {
        let source = component["source"].as_str().unwrap();
        let wasm = std::fs::read(repo_root().join(source)).unwrap();
        let first = data_offsets(&wasm).into_iter().min();
        assert_eq!(
            first,
            Some(STACK_BYTES),
            "{name}: its data should start right after a {STACK_BYTES}-byte stack \
             (is `build = \"../stack-size.rs\"` in its Cargo.toml?)"
        );
    }
}
