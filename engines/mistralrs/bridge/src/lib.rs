//! C ABI bridge from the cuda-inference-benchmarks Go engine to mistral.rs.
//!
//! The Go side (engines/mistralrs/internal/bridge) calls four functions: load a
//! local HF model directory, generate exactly N greedy tokens from prompt token
//! ids (streaming, with per-token host timestamps taken here as each chunk
//! arrives), report versions, and free. mistral.rs runs its own engine thread
//! with its own tokio runtime; the handle keeps a small runtime of its own to
//! drive requests and receive responses. Nothing panics across the FFI
//! boundary: every entry point runs under `catch_unwind` and reports failures
//! as a return code plus a message.

use std::ffi::{c_char, c_int, CStr};
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use candle_core::{Device, Tensor};
use mistralrs_core::{
    Constraint, CustomLogitsProcessor, DefaultSchedulerMethod, DeviceMapSetting, MemoryGpuConfig, MistralRs,
    MistralRsBuilder, ModelDType, NormalLoaderBuilder, NormalLoaderType, NormalRequest, NormalSpecificConfig,
    PagedAttentionConfig, PagedCacheType, Request, RequestMessage, Response, SamplingParams, SchedulerConfig,
    TokenSource,
};

/// Return codes shared with the Go side.
const OK: c_int = 0;
const ERR_RUNTIME: c_int = 1;
const ERR_BAD_REQUEST: c_int = 2;
const ERR_OOM: c_int = 3;
const ERR_UNSUPPORTED: c_int = 4;
const ERR_LOAD: c_int = 5;

/// Maximum number of sequences the scheduler runs at once; mistral.rs's own
/// default for text models (`TextModelBuilder`).
const MAX_NUM_SEQS: usize = 32;

/// A failure with its class, turned into a return code at the boundary.
struct Failure {
    code: c_int,
    msg: String,
}

impl Failure {
    fn new(code: c_int, msg: impl Into<String>) -> Self {
        let msg = msg.into();
        let lower = msg.to_lowercase();
        let code = if code != ERR_BAD_REQUEST && lower.contains("out of memory") {
            ERR_OOM
        } else {
            code
        };
        Failure { code, msg }
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// Cold-start breakdown of `cib_mistralrs_load`, all in ns.
#[repr(C)]
pub struct CibLoadStats {
    /// Device/context creation (CUDA context on cuda, nothing on cpu).
    pub context_init_ns: i64,
    /// mistral.rs loading the model: reading safetensors, converting to the
    /// dtype and placing the weights on the device, which it does in one pass.
    pub weights_ns: i64,
    /// Starting mistral.rs's engine (scheduler thread, KV cache set-up).
    pub engine_start_ns: i64,
    /// Longest prompt + output the model accepts, in tokens.
    pub max_seq_len: i64,
}

/// mistral.rs's own accounting of one request (non-streaming requests only;
/// mistral.rs does not attach usage to streamed completion chunks).
#[repr(C)]
pub struct CibUsage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Prefill step time in ms, as mistral.rs measures it (integer ms).
    pub prompt_ms: f64,
    /// Time from the end of the prefill step to the last token, in ms.
    pub completion_ms: f64,
    /// Request arrival to last token, in ms.
    pub total_ms: f64,
    pub avg_prompt_tok_per_sec: f64,
    pub avg_compl_tok_per_sec: f64,
    /// Wall time of the whole request seen from this bridge, in ns.
    pub wall_ns: i64,
}

/// An opaque loaded model.
pub struct Handle {
    rt: tokio::runtime::Runtime,
    mistral: Arc<MistralRs>,
    max_seq_len: usize,
    info: String,
    /// Busy-poll the response channel instead of parking (cuda devices).
    spin: bool,
}

fn write_err(buf: *mut c_char, len: usize, msg: &str) {
    if buf.is_null() || len == 0 {
        return;
    }
    let bytes = msg.as_bytes();
    let n = bytes.len().min(len - 1);
    // SAFETY: the caller passes a writable buffer of `len` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, n);
        *buf.add(n) = 0;
    }
}

fn guard<F: FnOnce() -> Result<()>>(err: *mut c_char, err_len: usize, f: F) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => OK,
        Ok(Err(e)) => {
            write_err(err, err_len, &e.msg);
            e.code
        }
        Err(p) => {
            let msg = if let Some(s) = p.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = p.downcast_ref::<String>() {
                s.clone()
            } else {
                "unknown panic".to_string()
            };
            write_err(err, err_len, &format!("mistral.rs panicked: {msg}"));
            ERR_RUNTIME
        }
    }
}

fn cstr(p: *const c_char, what: &str) -> Result<String> {
    if p.is_null() {
        return Err(Failure::new(ERR_BAD_REQUEST, format!("{what}: null pointer")));
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(str::to_string)
        .map_err(|e| Failure::new(ERR_BAD_REQUEST, format!("{what}: not UTF-8: {e}")))
}

fn parse_device(dev: &str) -> Result<Device> {
    if dev == "cpu" {
        return Ok(Device::Cpu);
    }
    let Some(ord) = dev.strip_prefix("cuda:") else {
        return Err(Failure::new(
            ERR_BAD_REQUEST,
            format!("device {dev:?}: want cpu or cuda:N"),
        ));
    };
    let ord: usize = ord
        .parse()
        .map_err(|e| Failure::new(ERR_BAD_REQUEST, format!("device {dev:?}: {e}")))?;
    if !cfg!(feature = "cuda") {
        return Err(Failure::new(
            ERR_UNSUPPORTED,
            format!("device {dev}: this build of the mistral.rs bridge has no CUDA support"),
        ));
    }
    Device::new_cuda(ord).map_err(|e| Failure::new(ERR_LOAD, format!("create device {dev}: {e}")))
}

fn parse_dtype(dtype: &str) -> Result<ModelDType> {
    match dtype {
        "f32" => Ok(ModelDType::F32),
        "f16" => Ok(ModelDType::F16),
        "bf16" => Ok(ModelDType::BF16),
        _ => Err(Failure::new(
            ERR_BAD_REQUEST,
            format!("dtype {dtype:?}: want f32, f16 or bf16"),
        )),
    }
}

fn ns(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn load(
    model_dir: &str,
    device: &str,
    dtype: &str,
    threads: c_int,
    paged_attn: c_int,
    receiver: c_int,
    stats: &mut CibLoadStats,
) -> Result<Box<Handle>> {
    if threads > 0 {
        // candle's CPU kernels and rayon read this; it must be set before either
        // starts its thread pool, which nothing has done yet in this process.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    // No hub access, ever: the model is a local directory.
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let dir = Path::new(model_dir);
    if !dir.join("config.json").is_file() {
        return Err(Failure::new(ERR_LOAD, format!("model {model_dir}: no config.json")));
    }
    if !dir.join("tokenizer.json").is_file() {
        return Err(Failure::new(
            ERR_LOAD,
            format!("model {model_dir}: no tokenizer.json (mistral.rs needs one to build its pipeline)"),
        ));
    }
    let (tokenizer_json, tokenizer_note) = tokenizer_for_mistralrs(dir)?;
    let abs = std::fs::canonicalize(dir).map_err(|e| Failure::new(ERR_LOAD, format!("model {model_dir}: {e}")))?;
    let model_id = abs.to_string_lossy().into_owned();
    let dtype_m = parse_dtype(dtype)?;

    let t0 = Instant::now();
    let dev = parse_device(device)?;
    stats.context_init_ns = ns(t0.elapsed());
    // mistral.rs's own default (`--paged-attn auto`): on for CUDA, off elsewhere.
    let paged_attn = match paged_attn {
        0 => false,
        1 => true,
        _ => dev.is_cuda(),
    };
    if paged_attn && !dev.is_cuda() {
        return Err(Failure::new(
            ERR_UNSUPPORTED,
            "option paged_attention=on needs a cuda device",
        ));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("cib-mistralrs")
        .build()
        .map_err(|e| Failure::new(ERR_LOAD, format!("start tokio runtime: {e}")))?;

    let t1 = Instant::now();
    let loader = NormalLoaderBuilder::new(
        NormalSpecificConfig::default(),
        None,
        tokenizer_json.as_ref().map(|p| p.to_string_lossy().into_owned()),
        Some(model_id.clone()),
        false,
        None,
    )
    .build(Some(NormalLoaderType::Llama))
    .map_err(|e| Failure::new(ERR_LOAD, format!("build mistral.rs loader: {e:#}")))?;
    let paged_cfg = if paged_attn {
        Some(
            // mistral.rs's CLI defaults: block size 32, 90% of the free GPU memory
            // for the KV cache pool, KV cache in the model dtype.
            PagedAttentionConfig::new(Some(32), MemoryGpuConfig::Utilization(0.9), PagedCacheType::Auto)
                .map_err(|e| Failure::new(ERR_LOAD, format!("paged attention config: {e:#}")))?,
        )
    } else {
        None
    };
    let pipeline = loader
        .load_model_from_hf(
            None,
            TokenSource::None,
            &dtype_m,
            &dev,
            true,
            DeviceMapSetting::dummy(),
            None,
            paged_cfg,
        )
        .map_err(|e| Failure::new(ERR_LOAD, format!("load model {model_id}: {e:#}")));
    if let Some(p) = &tokenizer_json {
        let _ = std::fs::remove_file(p);
    }
    let pipeline = pipeline?;
    stats.weights_ns = ns(t1.elapsed());

    let t2 = Instant::now();
    let scheduler = if paged_attn {
        let cfg = rt.block_on(async { pipeline.lock().await.get_metadata().cache_config.clone() });
        match cfg {
            Some(config) => SchedulerConfig::PagedAttentionMeta {
                max_num_seqs: MAX_NUM_SEQS,
                config,
            },
            None => {
                return Err(Failure::new(
                    ERR_UNSUPPORTED,
                    "paged attention requested but mistral.rs set up no paged KV cache for this model",
                ))
            }
        }
    } else {
        SchedulerConfig::DefaultScheduler {
            method: DefaultSchedulerMethod::Fixed(NonZeroUsize::new(MAX_NUM_SEQS).unwrap()),
        }
    };
    let mistral = rt.block_on(async {
        MistralRsBuilder::new(pipeline, scheduler, false, None)
            .with_no_kv_cache(false)
            // Identical prompts repeat across iterations; a prefix cache would skip
            // their prefill and time something else than the workload.
            .with_no_prefix_cache(true)
            .with_disable_eos_stop(true)
            .build()
            .await
    });
    let max_seq_len = mistral
        .max_sequence_length(None)
        .map_err(|e| Failure::new(ERR_LOAD, format!("query max sequence length: {e:?}")))?
        .unwrap_or(0);
    stats.engine_start_ns = ns(t2.elapsed());
    stats.max_seq_len = i64::try_from(max_seq_len).unwrap_or(i64::MAX);

    let spin = match receiver {
        0 => false,
        1 => true,
        _ => dev.is_cuda(),
    };
    let info = serde_json::json!({
        "device": device_label(&dev),
        "device_name": device_name(&dev),
        "attention": if paged_attn {
            "paged attention (block 32, KV pool 90% of free GPU memory); no flash-attn"
        } else {
            "eager sdpa, contiguous KV cache (no paged attention, no flash-attn)"
        },
        "paged_attention": if paged_attn { "on" } else { "off" },
        "prefix_cache": "off",
        "scheduler": format!("default, fixed({MAX_NUM_SEQS})"),
        "threads": if threads > 0 { threads.to_string() } else { "default".to_string() },
        "tokenizer": tokenizer_note,
        "receiver": if spin {
            "spin: busy-polls the stream for exact chunk times"
        } else {
            "park: sleeps on the stream between chunks"
        },
    })
    .to_string();
    Ok(Box::new(Handle {
        rt,
        mistral,
        max_seq_len,
        info,
        spin,
    }))
}

/// mistral.rs builds a byte-level token trie (llguidance's toktrie) from
/// tokenizer.json and refuses a tokenizer whose decoder is neither ByteLevel nor
/// ByteFallback, e.g. the synthesized WordLevel tokenizers (decoder null). For
/// those this writes a copy with a ByteFallback decoder added, which changes
/// no token id (only how ids decode to text), and returns its path.
fn tokenizer_for_mistralrs(dir: &Path) -> Result<(Option<std::path::PathBuf>, String)> {
    fn has_byte_decoder(d: &serde_json::Value) -> bool {
        match d.get("type").and_then(|t| t.as_str()) {
            Some("ByteLevel") | Some("ByteFallback") => true,
            Some("Sequence") => d
                .get("decoders")
                .and_then(|v| v.as_array())
                .is_some_and(|v| v.iter().any(has_byte_decoder)),
            _ => false,
        }
    }
    let path = dir.join("tokenizer.json");
    let raw =
        std::fs::read_to_string(&path).map_err(|e| Failure::new(ERR_LOAD, format!("read {}: {e}", path.display())))?;
    let mut tok: serde_json::Value =
        serde_json::from_str(&raw).map_err(|e| Failure::new(ERR_LOAD, format!("parse {}: {e}", path.display())))?;
    let decoder = tok.get("decoder").cloned().unwrap_or(serde_json::Value::Null);
    if has_byte_decoder(&decoder) {
        return Ok((None, "as given".to_string()));
    }
    let fallback = serde_json::json!({"type": "ByteFallback"});
    tok["decoder"] = if decoder.is_null() {
        fallback
    } else {
        serde_json::json!({"type": "Sequence", "decoders": [fallback, decoder]})
    };
    let out = std::env::temp_dir().join(format!("cib-mistralrs-tokenizer-{}.json", std::process::id()));
    std::fs::write(&out, tok.to_string())
        .map_err(|e| Failure::new(ERR_LOAD, format!("write {}: {e}", out.display())))?;
    Ok((
        Some(out),
        "tokenizer.json with a ByteFallback decoder added (mistral.rs's token trie needs one; token ids unchanged)"
            .to_string(),
    ))
}

#[cfg(feature = "cuda")]
fn device_name(dev: &Device) -> String {
    match dev {
        Device::Cuda(d) => d.cuda_stream().context().name().unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(not(feature = "cuda"))]
fn device_name(_dev: &Device) -> String {
    String::new()
}

fn device_label(dev: &Device) -> String {
    match dev {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(_) => "cuda".to_string(),
        _ => "other".to_string(),
    }
}

/// Same scan as mistral.rs's sampler (`argmax_f32`): last maximum wins on ties.
fn argmax_f32(values: &[f32]) -> u32 {
    values
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal))
        .map(|(i, _)| i as u32)
        .unwrap_or(0)
}

/// Token ids as mistral.rs generates them. Streamed completion chunks carry only
/// text, so a logits processor reads the ids from the sequence context the
/// sampler passes it: at step k the context ends with token k-1. The last token
/// never appears in a context, so at the last step the processor takes the same
/// argmax the greedy sampler takes from the same logits. Reading the context
/// costs nothing; the one extra argmax runs once per request.
struct IdTap {
    prompt_len: usize,
    n_new: usize,
    ids: Mutex<Vec<Option<u32>>>,
}

impl IdTap {
    fn apply(&self, logits: &Tensor, ctx: &[u32]) -> candle_core::Result<Tensor> {
        let k = ctx.len().saturating_sub(self.prompt_len);
        let mut ids = self.ids.lock().unwrap();
        if k >= 1 && k <= self.n_new {
            ids[k - 1] = ctx.last().copied();
        }
        if k + 1 == self.n_new {
            let v: Vec<f32> = logits.to_vec1()?;
            ids[k] = Some(argmax_f32(&v));
        }
        Ok(logits.clone())
    }
}

impl Handle {
    fn generate(
        &self,
        prompt: &[u32],
        n_new: usize,
        stream: bool,
        out_ids: &mut [u32],
        out_ns: &mut [i64],
        usage: &mut CibUsage,
    ) -> Result<()> {
        let start = Instant::now();
        if prompt.is_empty() {
            return Err(Failure::new(ERR_BAD_REQUEST, "prompt: empty"));
        }
        if n_new == 0 {
            return Err(Failure::new(ERR_BAD_REQUEST, "max_new_tokens: 0"));
        }
        if self.max_seq_len > 0 && prompt.len() + n_new > self.max_seq_len {
            return Err(Failure::new(
                ERR_BAD_REQUEST,
                format!(
                    "prompt {} + new {} tokens exceeds the model's {} positions",
                    prompt.len(),
                    n_new,
                    self.max_seq_len
                ),
            ));
        }
        let tap = Arc::new(IdTap {
            prompt_len: prompt.len(),
            n_new,
            ids: Mutex::new(vec![None; n_new]),
        });
        let tap2 = tap.clone();
        let processor: Arc<dyn CustomLogitsProcessor> =
            Arc::new(move |logits: &Tensor, ctx: &[u32]| tap2.apply(logits, ctx));

        let mut params = SamplingParams::deterministic();
        params.temperature = Some(0.0);
        params.max_len = Some(n_new);
        params.stop_toks = None;

        let (tx, mut rx) = tokio::sync::mpsc::channel(n_new + 8);
        let id = self.mistral.next_request_id();
        let req = NormalRequest {
            messages: RequestMessage::CompletionTokens(prompt.to_vec()),
            sampling_params: params,
            response: tx,
            return_logprobs: false,
            is_streaming: stream,
            id,
            constraint: Constraint::None,
            suffix: None,
            tools: None,
            tool_choice: None,
            logits_processors: Some(vec![processor]),
            return_raw_logits: false,
            web_search_options: None,
            model_id: None,
            truncate_sequence: false,
        };
        let sender = self
            .mistral
            .get_sender(None)
            .map_err(|e| Failure::new(ERR_RUNTIME, format!("mistral.rs engine sender: {e:?}")))?;

        let mut chunks = 0usize;
        let mut times: Vec<i64> = Vec::with_capacity(n_new);
        let mut done_usage = None;
        self.rt
            .block_on(sender.send(Request::Normal(Box::new(req))))
            .map_err(|e| Failure::new(ERR_RUNTIME, format!("send request to mistral.rs: {e}")))?;
        loop {
            // Spinning sees a chunk the moment mistral.rs sends it and spares its
            // engine thread a wake-up syscall per token; parking leaves the cores
            // to the model, which needs them on the CPU.
            let resp = if self.spin {
                match rx.try_recv() {
                    Ok(r) => Some(r),
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                        std::hint::spin_loop();
                        continue;
                    }
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => None,
                }
            } else {
                rx.blocking_recv()
            };
            let Some(resp) = resp else { break };
            let t = ns(start.elapsed());
            match resp {
                Response::CompletionChunk(c) => {
                    chunks += 1;
                    times.push(t);
                    if c.choices.iter().any(|ch| ch.finish_reason.is_some()) {
                        break;
                    }
                }
                Response::CompletionDone(c) => {
                    done_usage = Some(c.usage);
                    break;
                }
                Response::InternalError(e) => {
                    return Err(Failure::new(ERR_RUNTIME, format!("mistral.rs internal error: {e}")))
                }
                Response::ValidationError(e) => {
                    return Err(Failure::new(
                        ERR_BAD_REQUEST,
                        format!("mistral.rs rejected the request: {e}"),
                    ))
                }
                Response::CompletionModelError(e, _) | Response::ModelError(e, _) => {
                    return Err(Failure::new(ERR_RUNTIME, format!("mistral.rs model error: {e}")))
                }
                _ => return Err(Failure::new(ERR_RUNTIME, "mistral.rs sent an unexpected response kind")),
            }
        }
        let wall = ns(start.elapsed());

        let ids = tap.ids.lock().unwrap();
        for (i, id) in ids.iter().enumerate() {
            match id {
                Some(v) => out_ids[i] = *v,
                None => {
                    return Err(Failure::new(
                        ERR_RUNTIME,
                        format!("mistral.rs stopped after {i} of {n_new} tokens"),
                    ))
                }
            }
        }
        if stream {
            if chunks != n_new {
                return Err(Failure::new(
                    ERR_RUNTIME,
                    format!(
                        "mistral.rs streamed {chunks} chunks for {n_new} tokens (it holds back tokens that end in a partial UTF-8 sequence), so per-token times are unknown"
                    ),
                ));
            }
            out_ns[..n_new].copy_from_slice(&times);
        } else {
            let u = done_usage.ok_or_else(|| Failure::new(ERR_RUNTIME, "mistral.rs sent no final response"))?;
            *usage = CibUsage {
                prompt_tokens: u.prompt_tokens as i64,
                completion_tokens: u.completion_tokens as i64,
                prompt_ms: f64::from(u.total_prompt_time_sec) * 1e3,
                completion_ms: f64::from(u.total_completion_time_sec) * 1e3,
                total_ms: f64::from(u.total_time_sec) * 1e3,
                avg_prompt_tok_per_sec: f64::from(u.avg_prompt_tok_per_sec),
                avg_compl_tok_per_sec: f64::from(u.avg_compl_tok_per_sec),
                wall_ns: wall,
            };
        }
        Ok(())
    }
}

/// Loads the model in `model_dir` on `device` ("cpu" or "cuda:N") as `dtype`
/// ("f32", "f16", "bf16"). `threads` > 0 sets the CPU thread count;
/// `paged_attn`: 1 on (CUDA only), 0 off, -1 auto (on for CUDA, mistral.rs's
/// own default).
/// `receiver` picks how streamed chunks are awaited: 0 park, 1 spin, -1 auto
/// (spin on cuda, park on cpu).
/// On success stores a handle in `*out` and returns 0.
///
/// # Safety
/// Pointers must be valid: strings NUL-terminated, `err` writable for `err_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn cib_mistralrs_load(
    model_dir: *const c_char,
    device: *const c_char,
    dtype: *const c_char,
    threads: c_int,
    paged_attn: c_int,
    receiver: c_int,
    out: *mut *mut Handle,
    stats: *mut CibLoadStats,
    err: *mut c_char,
    err_len: usize,
) -> c_int {
    guard(err, err_len, || {
        if out.is_null() || stats.is_null() {
            return Err(Failure::new(ERR_BAD_REQUEST, "load: null output pointer"));
        }
        let model_dir = cstr(model_dir, "model dir")?;
        let device = cstr(device, "device")?;
        let dtype = cstr(dtype, "dtype")?;
        let stats = &mut *stats;
        let h = load(&model_dir, &device, &dtype, threads, paged_attn, receiver, stats)?;
        *out = Box::into_raw(h);
        Ok(())
    })
}

/// Generates exactly `n_new` greedy tokens after `prompt` (EOS ignored).
/// With `stream` != 0 the request streams and `out_ns[i]` gets the offset in
/// ns, from this call's start, at which token i's chunk arrived here. With
/// `stream` == 0 the request is not streamed and `usage` gets mistral.rs's own
/// timing instead. `out_ids` gets the token ids either way.
///
/// # Safety
/// `h` from `cib_mistralrs_load`; `prompt` holds `n_prompt` ids; `out_ids` and
/// `out_ns` hold `n_new` entries; `usage` and `err` are writable.
#[no_mangle]
pub unsafe extern "C" fn cib_mistralrs_generate(
    h: *mut Handle,
    prompt: *const u32,
    n_prompt: usize,
    n_new: usize,
    stream: c_int,
    out_ids: *mut u32,
    out_ns: *mut i64,
    usage: *mut CibUsage,
    err: *mut c_char,
    err_len: usize,
) -> c_int {
    guard(err, err_len, || {
        if h.is_null() || prompt.is_null() || out_ids.is_null() || out_ns.is_null() || usage.is_null() {
            return Err(Failure::new(ERR_BAD_REQUEST, "generate: null pointer"));
        }
        let h = &*h;
        let prompt = std::slice::from_raw_parts(prompt, n_prompt);
        let out_ids = std::slice::from_raw_parts_mut(out_ids, n_new);
        let out_ns = std::slice::from_raw_parts_mut(out_ns, n_new);
        h.generate(prompt, n_new, stream != 0, out_ids, out_ns, &mut *usage)
    })
}

/// Writes the settings in effect for `h` as a JSON object into `buf`.
///
/// # Safety
/// `h` from `cib_mistralrs_load`; `buf` writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn cib_mistralrs_settings(h: *const Handle, buf: *mut c_char, len: usize) {
    if h.is_null() {
        write_err(buf, len, "{}");
        return;
    }
    write_err(buf, len, &(*h).info);
}

/// Releases a handle; the engine thread stops.
///
/// # Safety
/// `h` from `cib_mistralrs_load`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn cib_mistralrs_free(h: *mut Handle) {
    if h.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let h = Box::from_raw(h);
        let Handle { rt, mistral, .. } = *h;
        drop(mistral);
        rt.shutdown_background();
    }));
}

static VERSIONS: &str = concat!(
    "{\"mistralrs-core\":\"",
    env!("CIB_MISTRALRS_VERSION"),
    "\",\"candle-core\":\"",
    env!("CIB_CANDLE_VERSION"),
    "\",\"rustc\":\"",
    env!("CIB_RUSTC_VERSION"),
    "\",\"features\":\"",
    env!("CIB_FEATURES"),
    "\"}\0"
);

/// Returns a static JSON object with component versions.
#[no_mangle]
pub extern "C" fn cib_mistralrs_versions() -> *const c_char {
    VERSIONS.as_ptr() as *const c_char
}

/// Returns 1 when the bridge was built with CUDA support.
#[no_mangle]
pub extern "C" fn cib_mistralrs_has_cuda() -> c_int {
    c_int::from(cfg!(feature = "cuda"))
}
