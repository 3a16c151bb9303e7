//! C ABI of the lmrs engine bridge (header: include/cib_lmrs.h). Every
//! exported function catches panics, so none crosses into Go; failures come
//! back as a return code plus a message written into the caller's buffer.

pub mod format;
pub mod hf;
pub mod kernels;
pub mod model;
pub mod quant;

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use model::{Engine, Error};

/// Return codes.
pub const CIB_OK: i32 = 0;
pub const CIB_ERR_BAD_ARG: i32 = 1;
pub const CIB_ERR_UNSUPPORTED: i32 = 2;
pub const CIB_ERR_LOAD: i32 = 3;
pub const CIB_ERR_OOM: i32 = 4;
pub const CIB_ERR_RUNTIME: i32 = 5;
pub const CIB_ERR_CANCELLED: i32 = 6;
pub const CIB_ERR_PANIC: i32 = 7;

/// Cold-start breakdown filled by cib_lmrs_load. Durations in ns.
#[repr(C)]
pub struct CibLoaded {
    pub context_init_ns: i64,
    pub weights_to_host_ns: i64,
    pub convert_ns: i64,
    pub params: i64,
    pub vocab: i64,
    pub max_seq: i64,
    /// NUL-terminated settings, "key=value" lines.
    pub settings: [c_char; 2048],
}

fn code(e: &Error) -> i32 {
    match e {
        Error::BadArg(_) => CIB_ERR_BAD_ARG,
        Error::Unsupported(_) => CIB_ERR_UNSUPPORTED,
        Error::Load(_) => CIB_ERR_LOAD,
        Error::Oom(_) => CIB_ERR_OOM,
        Error::Runtime(_) => CIB_ERR_RUNTIME,
        Error::Cancelled => CIB_ERR_CANCELLED,
    }
}

/// write_str copies s into a C buffer of len bytes, truncating and always
/// NUL-terminating (when len > 0).
unsafe fn write_str(buf: *mut c_char, len: usize, s: &str) {
    if buf.is_null() || len == 0 {
        return;
    }
    let n = s.len().min(len - 1);
    std::ptr::copy_nonoverlapping(s.as_ptr() as *const c_char, buf, n);
    *buf.add(n) = 0;
}

fn write_array<const N: usize>(dst: &mut [c_char; N], s: &str) {
    // Safety: dst is a valid array of N bytes.
    unsafe { write_str(dst.as_mut_ptr(), N, s) }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".into()
    }
}

/// guard runs f, turning its error or panic into a return code and a message.
unsafe fn guard(err: *mut c_char, err_len: usize, f: impl FnOnce() -> Result<(), Error>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CIB_OK,
        Ok(Err(e)) => {
            write_str(err, err_len, &e.to_string());
            code(&e)
        }
        Err(p) => {
            write_str(err, err_len, &format!("panic in lmrs bridge: {}", panic_message(p)));
            CIB_ERR_PANIC
        }
    }
}

unsafe fn cstr<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::BadArg(format!("{what}: null pointer")));
    }
    CStr::from_ptr(p)
        .to_str()
        .map_err(|e| Error::BadArg(format!("{what}: not UTF-8: {e}")))
}

/// Version information as a JSON object: bridge, format version, rustc, kernel instruction set.
fn info_json() -> String {
    let mut m = serde_json::Map::new();
    m.insert("bridge".into(), env!("CARGO_PKG_VERSION").into());
    m.insert("format".into(), format::VERSION.into());
    m.insert("rustc".into(), env!("CIB_RUSTC_VERSION").into());
    m.insert("isa".into(), kernels::Isa::detect().name().into());
    serde_json::Value::Object(m).to_string()
}

/// cib_lmrs_info writes the version JSON into buf.
///
/// # Safety
/// buf must point to len writable bytes.
#[no_mangle]
pub unsafe extern "C" fn cib_lmrs_info(buf: *mut c_char, len: usize) -> i32 {
    guard(buf, len, || {
        let s = info_json();
        if s.len() + 1 > len {
            return Err(Error::BadArg(format!(
                "info buffer of {len} bytes too small for {}",
                s.len() + 1
            )));
        }
        write_str(buf, len, &s);
        Ok(())
    })
}

/// cib_lmrs_load loads model (an lmrs file, a directory holding model.lmrs, or an HF Llama directory converted
/// in memory to quant with group_size, 0 = default) with threads CPU threads (0 = one per core), and stores a
/// handle in *out_handle.
///
/// # Safety
/// String arguments must be NUL-terminated; out pointers valid; err points to err_len writable bytes.
#[no_mangle]
pub unsafe extern "C" fn cib_lmrs_load(
    model: *const c_char,
    quant: *const c_char,
    group_size: i32,
    threads: i32,
    out_handle: *mut *mut Engine,
    out_loaded: *mut CibLoaded,
    err: *mut c_char,
    err_len: usize,
) -> i32 {
    guard(err, err_len, || {
        if out_handle.is_null() || out_loaded.is_null() {
            return Err(Error::BadArg("load: null output pointer".into()));
        }
        *out_handle = std::ptr::null_mut();
        let model = cstr(model, "model")?;
        let quant = cstr(quant, "quant")?;
        let gs = u32::try_from(group_size).map_err(|_| Error::BadArg(format!("group_size {group_size} < 0")))?;
        let threads = usize::try_from(threads).map_err(|_| Error::BadArg(format!("threads {threads} < 0")))?;
        let (engine, loaded) = Engine::load(Path::new(model), quant, gs, threads)?;
        let out = &mut *out_loaded;
        out.context_init_ns = loaded.context_init_ns;
        out.weights_to_host_ns = loaded.weights_to_host_ns;
        out.convert_ns = loaded.convert_ns;
        out.params = loaded.params;
        out.vocab = engine.vocab() as i64;
        out.max_seq = engine.max_seq() as i64;
        let settings: String = loaded.settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        write_array(&mut out.settings, &settings);
        *out_handle = Box::into_raw(Box::new(engine));
        Ok(())
    })
}

/// cib_lmrs_generate decodes n_new tokens greedily for batch copies of the
/// prompt. out_ids gets n_new*batch ids (step-major), out_ns n_new offsets in
/// ns from the call's start, each taken once that step's ids are on the host.
///
/// # Safety
/// handle comes from cib_lmrs_load and is not freed; prompt points to
/// n_prompt ids; out_ids to n_new*batch and out_ns to n_new writable slots.
#[no_mangle]
pub unsafe extern "C" fn cib_lmrs_generate(
    handle: *const Engine,
    prompt: *const u32,
    n_prompt: usize,
    n_new: usize,
    batch: usize,
    out_ids: *mut u32,
    out_ns: *mut i64,
    err: *mut c_char,
    err_len: usize,
) -> i32 {
    guard(err, err_len, || {
        if handle.is_null() || prompt.is_null() || out_ids.is_null() || out_ns.is_null() {
            return Err(Error::BadArg("generate: null pointer argument".into()));
        }
        let engine = &*handle;
        let prompt = std::slice::from_raw_parts(prompt, n_prompt);
        let ids = std::slice::from_raw_parts_mut(out_ids, n_new * batch);
        let ns = std::slice::from_raw_parts_mut(out_ns, n_new);
        engine.generate(prompt, n_new, batch, ids, ns)
    })
}

/// cib_lmrs_cancel asks a running cib_lmrs_generate on handle to stop
/// (it returns CIB_ERR_CANCELLED). Safe to call from another thread.
///
/// # Safety
/// handle comes from cib_lmrs_load and is not freed.
#[no_mangle]
pub unsafe extern "C" fn cib_lmrs_cancel(handle: *const Engine) {
    if !handle.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| (*handle).cancel()));
    }
}

/// cib_lmrs_free releases a handle from cib_lmrs_load; null is ignored.
///
/// # Safety
/// handle comes from cib_lmrs_load, is freed once, and no call uses it after.
#[no_mangle]
pub unsafe extern "C" fn cib_lmrs_free(handle: *mut Engine) {
    if !handle.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(handle))));
    }
}
