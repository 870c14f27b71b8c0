//! Host bindings for the `fermyon:spin@2.0.0` interfaces declared in
//! `host/wit/spin.wit`.

wasmtime::component::bindgen!({
    path: "wit",
    world: "fermyon:spin/host",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/sqlite.connection": crate::sqlite::Connection,
    },
});

pub use fermyon::spin::{sqlite, variables};
