//! C ABI over a Llama forward written in Burn: load(model dir, device, dtype, threads)
//! → handle; generate(handle, prompt ids, n) → ids + per-token host offsets (ns);
//! info/describe as JSON strings; free. Errors are return codes plus a message
//! written into the caller's buffer; panics are caught and never cross the FFI.

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

pub mod model;

pub use model::{AttnMode, Model};

/// Return codes of every `cib_burn_*` call.
pub const OK: i32 = 0;
pub const ERR_BAD_REQUEST: i32 = 1;
pub const ERR_LOAD: i32 = 2;
pub const ERR_RUNTIME: i32 = 3;
pub const ERR_OOM: i32 = 4;
pub const ERR_UNSUPPORTED: i32 = 5;
pub const ERR_PANIC: i32 = 6;
pub const ERR_BUFFER: i32 = 7;

/// An error with the code the Go side maps to a protocol error class.
#[derive(Debug)]
pub struct Error {
    pub code: i32,
    pub msg: String,
}

impl Error {
    pub fn bad_request(msg: String) -> Self {
        Error {
            code: ERR_BAD_REQUEST,
            msg,
        }
    }
    pub fn load(msg: String) -> Self {
        Error { code: ERR_LOAD, msg }
    }
    pub fn runtime(msg: String) -> Self {
        let code = if msg.to_lowercase().contains("out of memory") {
            ERR_OOM
        } else {
            ERR_RUNTIME
        };
        Error { code, msg }
    }
    pub fn unsupported(msg: String) -> Self {
        Error {
            code: ERR_UNSUPPORTED,
            msg,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

/// Versions baked in at build time from Cargo.lock (see build.rs).
pub const BURN_VERSION: &str = env!("CIB_BURN_VERSION");
pub const CUBECL_VERSION: &str = env!("CIB_CUBECL_VERSION");
pub const RUSTC_VERSION: &str = env!("CIB_RUSTC_VERSION");

/// Whether this build carries the CUDA backend.
pub const CUDA: bool = cfg!(feature = "cuda");

/// Whether burn's autotune is compiled in (CUDA builds; scripts/build-burn.sh --cuda
/// --no-autotune leaves it out).
pub const AUTOTUNE: bool = cfg!(feature = "autotune");

/// The fixed, build-time description of the bridge, as JSON.
pub fn info_json() -> String {
    let mut backends = vec!["flex"];
    if CUDA {
        backends.push("cuda");
    }
    serde_json::json!({
        "burn": BURN_VERSION,
        "cubecl": CUBECL_VERSION,
        "rustc": RUSTC_VERSION,
        "backends": backends,
        "cuda": CUDA,
        "fusion": CUDA,
        "autotune": AUTOTUNE,
    })
    .to_string()
}

/// Settings in effect for a loaded model, as JSON (`device_name`, `dtype`, `settings`).
pub fn describe_json(m: &Model) -> String {
    let autotune_level = std::env::var("CUBECL_AUTOTUNE_LEVEL").unwrap_or_else(|_| "balanced (cubecl default)".into());
    let mut settings = serde_json::Map::new();
    let mut set = |k: &str, v: String| {
        settings.insert(k.to_string(), serde_json::Value::String(v));
    };
    set("backend", m.backend.to_string());
    set("burn", BURN_VERSION.to_string());
    set("cubecl", CUBECL_VERSION.to_string());
    set("attention", m.attn.name().to_string());
    set(
        "weights",
        "HF [out,in] layout via burn SafetensorsStore + FloatCastAdapter; matmul x·Wᵀ (transposed view)".into(),
    );
    set(
        "kv_cache",
        "preallocated per layer [kv_heads, cap, head_dim], slice_assign; cap = the request's prompt + new tokens rounded up to 256, one set per cap kept for later requests".into(),
    );
    set(
        "rope",
        "HF rotate_half with precomputed cos/sin tables (llama3 scaling as HF _compute_llama3_parameters)".into(),
    );
    set(
        "norm_softmax_precision",
        "RMSNorm and attention softmax in f32, cast back (as HF)".into(),
    );
    set(
        "sampling",
        "greedy argmax on device, token id read with into_data (host sync) per token".into(),
    );
    if m.backend == "cuda" {
        set("fusion", "on (burn feature fusion)".into());
        if AUTOTUNE {
            set(
                "autotune",
                format!(
                    "on (burn features autotune + persistence, burn-cuda's defaults), level {autotune_level}; results persist in cubecl's environment store (the user cache dir, e.g. ~/.cache/cubecl, unless a Cargo workspace encloses the working directory), so only the first process on a machine pays the tuning, inside its warm-up"
                ),
            );
        } else {
            set(
                "autotune",
                "off (built without burn feature autotune): burn-cubecl's default kernel per op, no tuning pass".into(),
            );
        }
        set(
            "kernels",
            "cubecl CUDA C++ compiled by NVRTC at first use (cubecl-cuda feature cpp; cubecl 0.11's default pliron/LLVM compiler needs an LLVM bundle downloaded at build time, not available to this build); warm-up covers compilation and autotune".into(),
        );
    } else {
        set("fusion", "off (flex is eager)".into());
        set("autotune", "n/a (flex)".into());
        set("threads", m.threads.to_string());
        set("flex_features", "simd, rayon".into());
    }
    serde_json::json!({
        "device_name": m.device_name,
        "dtype": match m.dtype {
            burn::tensor::FloatDType::F16 => "f16",
            burn::tensor::FloatDType::BF16 => "bf16",
            _ => "f32",
        },
        "settings": settings,
    })
    .to_string()
}

fn write_str(s: &str, buf: *mut c_char, cap: usize) -> bool {
    if buf.is_null() || cap == 0 {
        return false;
    }
    let bytes = s.as_bytes();
    let n = bytes.len().min(cap - 1);
    // SAFETY: buf points to at least cap writable bytes (caller contract).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, n);
        *buf.add(n) = 0;
    }
    n == bytes.len()
}

fn guard(err: *mut c_char, errcap: usize, f: impl FnOnce() -> Result<(), Error>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => OK,
        Ok(Err(e)) => {
            write_str(&e.msg, err, errcap);
            e.code
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            let code = if msg.to_lowercase().contains("out of memory") {
                ERR_OOM
            } else {
                ERR_PANIC
            };
            write_str(&format!("burn panicked: {msg}"), err, errcap);
            code
        }
    }
}

unsafe fn cstr<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::bad_request(format!("{what}: null")));
    }
    // SAFETY: p is a NUL-terminated string (caller contract).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|e| Error::bad_request(format!("{what}: not UTF-8: {e}")))
}

/// Cold-start breakdown returned by `cib_burn_load`, in ns.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct CibBurnLoaded {
    pub context_init_ns: i64,
    pub weights_to_host_ns: i64,
    pub weights_to_device_ns: i64,
    pub compile_ns: i64,
    pub params: i64,
}

/// What cubecl's persistent store (the active environment) holds, as JSON: `{"environment": name, "namespaces":
/// [{"namespace", "entries", "bytes"}]}` — autotune results under `autotune/…` namespaces, compiled kernels under the
/// others. Meaningful once a CUDA model is loaded (the runtime activates the environment its config names, e.g.
/// CUBECL_ENVIRONMENT); builds without autotune keep nothing between processes: no namespaces.
pub fn store_json() -> String {
    #[cfg(all(feature = "cuda", feature = "autotune"))]
    {
        use burn::cubecl::environment;
        let ns: Vec<serde_json::Value> = environment::namespaces()
            .into_iter()
            .map(|n| serde_json::json!({"namespace": n.namespace, "entries": n.entries, "bytes": n.bytes}))
            .collect();
        serde_json::json!({"environment": environment::active().to_string(), "namespaces": ns}).to_string()
    }
    #[cfg(not(all(feature = "cuda", feature = "autotune")))]
    {
        serde_json::json!({"environment": "", "namespaces": []}).to_string()
    }
}

/// Writes cubecl's store summary (JSON, store_json) into buf. Returns OK, ERR_BUFFER if it did not fit, or
/// ERR_PANIC.
#[unsafe(no_mangle)]
pub extern "C" fn cib_burn_store(buf: *mut c_char, cap: usize) -> i32 {
    match catch_unwind(store_json) {
        Ok(s) if write_str(&s, buf, cap) => OK,
        Ok(_) => ERR_BUFFER,
        Err(_) => ERR_PANIC,
    }
}

/// Writes the build description (JSON) into buf. Returns OK or ERR_BUFFER if it did not fit.
#[unsafe(no_mangle)]
pub extern "C" fn cib_burn_info(buf: *mut c_char, cap: usize) -> i32 {
    if write_str(&info_json(), buf, cap) {
        OK
    } else {
        ERR_BUFFER
    }
}

/// Loads a model. `attention` may be NULL or "" (grouped) or "grouped"/"padded"/"fused".
///
/// # Safety
/// String arguments are NUL-terminated; out pointers are valid; err has errcap bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cib_burn_load(
    model_dir: *const c_char,
    device: *const c_char,
    dtype: *const c_char,
    threads: i32,
    attention: *const c_char,
    out_handle: *mut *mut Model,
    out_loaded: *mut CibBurnLoaded,
    err: *mut c_char,
    errcap: usize,
) -> i32 {
    guard(err, errcap, || {
        let dir = unsafe { cstr(model_dir, "model dir") }?;
        let device = unsafe { cstr(device, "device") }?;
        let dtype = unsafe { cstr(dtype, "dtype") }?;
        let attn = if attention.is_null() {
            ""
        } else {
            unsafe { cstr(attention, "attention") }?
        };
        if out_handle.is_null() || out_loaded.is_null() {
            return Err(Error::bad_request("load: null out pointer".into()));
        }
        let m = Model::load(
            Path::new(dir),
            device,
            dtype,
            threads.max(0) as usize,
            AttnMode::parse(attn)?,
        )?;
        let t = m.times;
        unsafe {
            *out_loaded = CibBurnLoaded {
                context_init_ns: t.context_init_ns,
                weights_to_host_ns: t.weights_to_host_ns,
                weights_to_device_ns: t.weights_to_device_ns,
                compile_ns: t.compile_ns,
                params: m.cfg.params(),
            };
            *out_handle = Box::into_raw(Box::new(m));
        }
        Ok(())
    })
}

/// Writes the loaded model's settings (JSON) into buf.
///
/// # Safety
/// h comes from cib_burn_load and was not freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cib_burn_describe(h: *const Model, buf: *mut c_char, cap: usize) -> i32 {
    if h.is_null() {
        return ERR_BAD_REQUEST;
    }
    let r = catch_unwind(AssertUnwindSafe(|| describe_json(unsafe { &*h })));
    match r {
        Ok(s) => {
            if write_str(&s, buf, cap) {
                OK
            } else {
                ERR_BUFFER
            }
        }
        Err(_) => ERR_PANIC,
    }
}

/// Greedy-generates exactly n_new tokens after the prompt into out_ids, with each
/// token's offset in ns from this call's start in out_ns (taken once the id is on
/// the host). peak_bytes receives the allocator's reserved bytes (0 if unknown).
///
/// # Safety
/// h is live; prompt has n_prompt ids; out_ids and out_ns have n_new slots.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cib_burn_generate(
    h: *mut Model,
    prompt: *const i32,
    n_prompt: usize,
    n_new: usize,
    out_ids: *mut i32,
    out_ns: *mut i64,
    peak_bytes: *mut i64,
    err: *mut c_char,
    errcap: usize,
) -> i32 {
    guard(err, errcap, || {
        if h.is_null() || prompt.is_null() || out_ids.is_null() || out_ns.is_null() {
            return Err(Error::bad_request("generate: null pointer".into()));
        }
        let m = unsafe { &mut *h };
        let prompt = unsafe { std::slice::from_raw_parts(prompt, n_prompt) };
        let ids = unsafe { std::slice::from_raw_parts_mut(out_ids, n_new) };
        let times = unsafe { std::slice::from_raw_parts_mut(out_ns, n_new) };
        m.generate(prompt, ids, times)?;
        if !peak_bytes.is_null() {
            unsafe { *peak_bytes = m.reserved_bytes() };
        }
        Ok(())
    })
}

/// Frees a model from cib_burn_load. NULL is a no-op.
///
/// # Safety
/// h comes from cib_burn_load and is freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cib_burn_free(h: *mut Model) {
    if !h.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(h) })));
    }
}
