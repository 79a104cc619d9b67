//! Carries the prebuilt shim into `ff-rust` when `FF_RUST_SHIM` names it (`make cli` builds
//! it for glibc 2.17 first); otherwise the tool builds the shim from the framework's source
//! when it packages.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=FF_RUST_SHIM");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = out.join("shim.node");
    match std::env::var_os("FF_RUST_SHIM") {
        Some(shim) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&shim).display());
            std::fs::copy(&shim, &target)
                .unwrap_or_else(|e| panic!("FF_RUST_SHIM={}: {e}", PathBuf::from(&shim).display()));
        }
        None => std::fs::write(&target, b"").expect("OUT_DIR is writable"),
    }
}
