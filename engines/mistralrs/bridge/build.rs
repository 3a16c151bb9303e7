//! Records component versions for `cib_mistralrs_versions`: the locked
//! mistralrs-core and candle-core versions, rustc, and the enabled features.
use std::process::Command;

fn locked(lock: &str, name: &str) -> String {
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("name = \"{name}\"") {
            if let Some(v) = lines.next() {
                return v.trim().trim_start_matches("version = ").trim_matches('"').to_string();
            }
        }
    }
    "unknown".to_string()
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let lock = std::fs::read_to_string(format!("{dir}/Cargo.lock")).unwrap_or_default();
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!(
        "cargo:rustc-env=CIB_MISTRALRS_VERSION={}",
        locked(&lock, "mistralrs-core")
    );
    println!("cargo:rustc-env=CIB_CANDLE_VERSION={}", locked(&lock, "candle-core"));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let v = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    println!("cargo:rustc-env=CIB_RUSTC_VERSION={}", v.trim());
    let features = if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        "cuda"
    } else {
        "cpu"
    };
    println!("cargo:rustc-env=CIB_FEATURES={features}");
}
