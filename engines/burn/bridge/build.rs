//! Bakes the resolved burn/cubecl versions (from Cargo.lock) and the rustc version
//! into the library, so `info` reports what was actually linked.
use std::process::Command;

fn locked(lock: &str, name: &str) -> String {
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle)
        .map(|i| {
            let rest = &lock[i + needle.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let lock = std::fs::read_to_string(format!("{dir}/Cargo.lock")).unwrap_or_default();
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rustc-env=CIB_BURN_VERSION={}", locked(&lock, "burn"));
    println!("cargo:rustc-env=CIB_CUBECL_VERSION={}", locked(&lock, "cubecl"));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let v = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    println!("cargo:rustc-env=CIB_RUSTC_VERSION={}", v.trim());
}
