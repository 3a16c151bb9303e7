//! Records the versions the bridge reports in `info`: the candle-core version
//! from Cargo.lock, rustc, and (with the cuda feature) nvcc.
use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let lock = format!("{dir}/Cargo.lock");
    println!("cargo:rerun-if-changed={lock}");
    println!("cargo:rerun-if-changed=build.rs");
    let candle = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|s| locked_version(&s, "candle-core"))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CIB_CANDLE_VERSION={candle}");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    println!("cargo:rustc-env=CIB_RUSTC_VERSION={}", first_line(&rustc, "--version"));

    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
        let out = Command::new(&nvcc).arg("--version").output().ok();
        let v = out
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().find(|l| l.contains("release")).map(|l| l.trim().to_string()))
            .unwrap_or_else(|| "unknown".into());
        println!("cargo:rustc-env=CIB_NVCC_VERSION={v}");
        println!(
            "cargo:rustc-env=CIB_CUDA_COMPUTE_CAP={}",
            std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "detected".into())
        );
        println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    }
}

fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("name = \"{name}\"") {
            let v = lines.next()?.trim();
            return v.strip_prefix("version = \"")?.strip_suffix('"').map(str::to_string);
        }
    }
    None
}

fn first_line(cmd: &str, arg: &str) -> String {
    Command::new(cmd)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}
