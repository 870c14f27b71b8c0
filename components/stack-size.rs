//! Build script of every component (`build = "../stack-size.rs"`): links the
//! component with a 256 KiB stack instead of Rust's 1 MiB default for wasm.
//!
//! The stack is the first region of linear memory, and Spin's pooling
//! allocator resets the lowest 2 MiB of a slot's memory in place after every
//! request, whatever the request touched: each byte of stack costs every
//! request a `memset` (1 MiB was about a fifth of a `config/` request). The
//! end-to-end tests all pass with 64 KiB; the shadow stack holds only what
//! wasm locals cannot. An overflow runs below address 0 and traps: it never
//! overwrites data.

/// Checked by `tests/api/components.rs` (the components' data start there).
const STACK_BYTES: u32 = 256 * 1024;

fn main() {
    println!("cargo:rerun-if-changed=../stack-size.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size={STACK_BYTES}");
    }
}
