//! The engine proper: load an HF Llama directory with candle-transformers and
//! decode greedily the way candle's own `llama` example does (prefill the whole
//! prompt in one forward, then one token per step with the KV cache). The C ABI
//! in lib.rs and the Rust-only bench both call this, so they time the same loop.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::llama::{Cache, Config, Llama, LlamaConfig};

/// Error classes the C ABI maps to return codes.
#[derive(Debug)]
pub enum Error {
    /// The caller asked for something invalid (device, dtype, token ids, lengths).
    BadArg(String),
    /// The request is valid but this build cannot serve it (e.g. CUDA on a CPU build).
    Unsupported(String),
    /// Reading or building the model failed.
    Load(String),
    /// The device ran out of memory.
    Oom(String),
    /// Generation failed.
    Runtime(String),
    /// Generation was cancelled through Engine::cancel.
    Cancelled,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadArg(m) | Error::Unsupported(m) | Error::Load(m) | Error::Oom(m) | Error::Runtime(m) => {
                f.write_str(m)
            }
            Error::Cancelled => f.write_str("generation cancelled"),
        }
    }
}

impl std::error::Error for Error {}

fn is_oom(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("out of memory") || m.contains("out_of_memory")
}

/// load_err wraps a candle error met while loading, keeping OOM distinct.
fn load_err(ctx: &str, e: impl fmt::Display) -> Error {
    let msg = format!("{ctx}: {e}");
    if is_oom(&msg) {
        Error::Oom(msg)
    } else {
        Error::Load(msg)
    }
}

fn run_err(ctx: &str, e: impl fmt::Display) -> Error {
    let msg = format!("{ctx}: {e}");
    if is_oom(&msg) {
        Error::Oom(msg)
    } else {
        Error::Runtime(msg)
    }
}

/// Cold-start breakdown and facts about the loaded model. Durations in ns.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Device creation (CUDA context, stream, cuBLAS handle) in ns.
    pub context_init_ns: i64,
    /// Reading config.json, mapping the safetensors files and faulting every
    /// page of them into host memory, in ns.
    pub weights_to_host_ns: i64,
    /// Building the candle Llama from the (now resident) mapping: dtype
    /// conversion and host-to-device copies, synchronised, in ns.
    pub weights_to_device_ns: i64,
    /// Parameters in the checkpoint files.
    pub params: i64,
    /// Device as the driver names it ("cpu" on CPU).
    pub device_name: String,
    /// Settings in effect, as key=value pairs.
    pub settings: Vec<(String, String)>,
}

/// Engine holds one loaded model.
pub struct Engine {
    model: Llama,
    fresh_cache: Cache,
    device: Device,
    vocab: usize,
    max_seq: usize,
    cancel: AtomicBool,
}

/// parse_dtype maps the protocol dtype names to candle's.
pub fn parse_dtype(s: &str) -> Result<DType, Error> {
    match s {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        _ => Err(Error::BadArg(format!("dtype {s:?}: want f32, f16 or bf16"))),
    }
}

/// cuda_ordinal parses "cpu" (None) or "cuda" / "cuda:N" (Some(N)).
pub fn cuda_ordinal(s: &str) -> Result<Option<usize>, Error> {
    match s {
        "cpu" => Ok(None),
        "cuda" => Ok(Some(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(|n| Some(n))
            .ok_or_else(|| Error::BadArg(format!("device {s:?}: want cpu or cuda:N"))),
    }
}

/// weight_files lists the checkpoint's safetensors files: the shards named by
/// model.safetensors.index.json, else model.safetensors, else every
/// *.safetensors in the directory.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| load_err(&format!("read {}", index.display()), e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| load_err(&format!("parse {}", index.display()), e))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::Load(format!("{}: no weight_map object", index.display())))?;
        let mut files: Vec<PathBuf> = map.values().filter_map(|f| f.as_str()).map(|f| dir.join(f)).collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| load_err(&format!("read model dir {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Load(format!("{}: no *.safetensors files", dir.display())));
    }
    Ok(files)
}

fn elapsed_ns(t: Instant) -> i64 {
    t.elapsed().as_nanos() as i64
}

fn synchronize(device: &Device) -> Result<(), candle_core::Error> {
    device.synchronize()
}

impl Engine {
    /// load reads an HF Llama directory onto device ("cpu" or "cuda:N") in
    /// dtype. threads > 0 sets the CPU thread count (RAYON_NUM_THREADS) before
    /// candle starts its pools.
    pub fn load(dir: &Path, device: &str, dtype: &str, threads: usize) -> Result<(Engine, Loaded), Error> {
        let dtype = parse_dtype(dtype)?;
        let ordinal = cuda_ordinal(device)?;
        if threads > 0 {
            // Safe enough here: load runs before candle or rayon start threads.
            std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        }
        let mut loaded = Loaded::default();

        let t = Instant::now();
        let device = match ordinal {
            None => Device::Cpu,
            Some(n) => new_cuda(n)?,
        };
        loaded.context_init_ns = elapsed_ns(t);
        loaded.device_name = device_name(&device);

        let t = Instant::now();
        let config_path = dir.join("config.json");
        let text = std::fs::read(&config_path).map_err(|e| load_err(&format!("read {}", config_path.display()), e))?;
        let config: LlamaConfig =
            serde_json::from_slice(&text).map_err(|e| load_err(&format!("parse {}", config_path.display()), e))?;
        let config: Config = config.into_config(false);
        let files = weight_files(dir)?;
        loaded.params = fault_in(&files)?;
        loaded.weights_to_host_ns = elapsed_ns(t);

        let t = Instant::now();
        // Safety: the files are not modified while mapped (models are read-only inputs).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, dtype, &device) }
            .map_err(|e| load_err("map safetensors", e))?;
        let model = Llama::load(vb, &config).map_err(|e| load_err("build llama", e))?;
        let fresh_cache = Cache::new(true, dtype, &config, &device).map_err(|e| load_err("create kv cache", e))?;
        synchronize(&device).map_err(|e| load_err("synchronize after load", e))?;
        loaded.weights_to_device_ns = elapsed_ns(t);

        let threads_used = candle_core::utils::get_num_threads();
        loaded.settings = vec![
            ("model".into(), "candle-transformers models::llama::Llama".into()),
            (
                "kv_cache".into(),
                "candle llama Cache (use_kv_cache=true, Tensor::cat per step)".into(),
            ),
            (
                "attention".into(),
                "matmul + softmax in f32 (use_flash_attn=false)".into(),
            ),
            (
                "decode".into(),
                "prefill prompt in one forward, then 1 token/step; argmax on device, to_scalar".into(),
            ),
            ("weights".into(), "VarBuilder::from_mmaped_safetensors".into()),
            ("cpu_threads".into(), threads_used.to_string()),
        ];
        if device.is_cuda() {
            loaded
                .settings
                .push(("cuda_graphs".into(), "off (candle llama has none)".into()));
        }
        let engine = Engine {
            model,
            fresh_cache,
            device,
            vocab: config.vocab_size,
            max_seq: config.max_position_embeddings,
            cancel: AtomicBool::new(false),
        };
        Ok((engine, loaded))
    }

    /// vocab is the model's vocabulary size.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// cancel makes a running generate, and every later one, return
    /// Error::Cancelled (cancellation ends the process anyway).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// generate decodes n_new tokens greedily for batch copies of prompt.
    /// out_ids receives n_new*batch ids, step-major (step i, row r at
    /// i*batch+r); out_ns receives n_new offsets in ns from the call's start,
    /// each taken right after that step's ids reached the host.
    pub fn generate(
        &self,
        prompt: &[u32],
        n_new: usize,
        batch: usize,
        out_ids: &mut [u32],
        out_ns: &mut [i64],
    ) -> Result<(), Error> {
        let start = Instant::now();
        if prompt.is_empty() || n_new == 0 || batch == 0 {
            return Err(Error::BadArg(format!(
                "empty work: {} prompt tokens, {n_new} new tokens, batch {batch}",
                prompt.len()
            )));
        }
        if out_ids.len() < n_new * batch || out_ns.len() < n_new {
            return Err(Error::BadArg(format!(
                "output buffers too small: {} ids and {} times for {n_new} steps of batch {batch}",
                out_ids.len(),
                out_ns.len()
            )));
        }
        if let Some((i, t)) = prompt.iter().enumerate().find(|(_, &t)| t as usize >= self.vocab) {
            return Err(Error::BadArg(format!(
                "prompt token {i} = {t} is outside the vocabulary of {}",
                self.vocab
            )));
        }
        if prompt.len() + n_new > self.max_seq {
            return Err(Error::BadArg(format!(
                "{} prompt + {n_new} new tokens exceed max_position_embeddings {}",
                prompt.len(),
                self.max_seq
            )));
        }
        let mut cache = self.fresh_cache.clone();
        // Greedy, no repeat penalty: candle's example with temperature <= 0.
        let mut logits_processor = LogitsProcessor::from_sampling(0, Sampling::ArgMax);
        let mut index_pos = 0;
        let mut last: Vec<u32> = vec![0; batch];
        for index in 0..n_new {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let input = if index == 0 {
                let t = Tensor::new(prompt, &self.device).map_err(|e| run_err("prompt tensor", e))?;
                let t = t.unsqueeze(0).map_err(|e| run_err("prompt tensor", e))?;
                if batch == 1 {
                    t
                } else {
                    t.repeat((batch, 1)).map_err(|e| run_err("prompt batch", e))?
                }
            } else {
                Tensor::new(last.as_slice(), &self.device)
                    .and_then(|t| t.reshape((batch, 1)))
                    .map_err(|e| run_err("step tensor", e))?
            };
            let context_size = input.dim(1).map_err(|e| run_err("input shape", e))?;
            let context_index = if index == 0 { 0 } else { index_pos };
            let logits = self
                .model
                .forward(&input, context_index, &mut cache)
                .map_err(|e| run_err(&format!("forward step {index}"), e))?;
            index_pos += context_size;
            if batch == 1 {
                let logits = logits.squeeze(0).map_err(|e| run_err("logits", e))?;
                last[0] = logits_processor.sample(&logits).map_err(|e| run_err("argmax", e))?;
            } else {
                last = logits
                    .argmax(D::Minus1)
                    .and_then(|t| t.to_vec1::<u32>())
                    .map_err(|e| run_err("argmax", e))?;
            }
            out_ns[index] = elapsed_ns(start);
            out_ids[index * batch..(index + 1) * batch].copy_from_slice(&last);
        }
        Ok(())
    }
}

#[cfg(feature = "cuda")]
fn new_cuda(ordinal: usize) -> Result<Device, Error> {
    let d = Device::new_cuda(ordinal).map_err(|e| load_err(&format!("create cuda:{ordinal}"), e))?;
    // Force context, stream and cuBLAS creation into the context-init phase.
    let _ = d.as_cuda_device().map(|c| c.cublas_handle());
    d.synchronize()
        .map_err(|e| load_err(&format!("synchronize cuda:{ordinal}"), e))?;
    Ok(d)
}

#[cfg(not(feature = "cuda"))]
fn new_cuda(ordinal: usize) -> Result<Device, Error> {
    Err(Error::Unsupported(format!(
        "device cuda:{ordinal}: this candle bridge was built without the cuda feature"
    )))
}

#[cfg(feature = "cuda")]
fn device_name(device: &Device) -> String {
    match device.as_cuda_device() {
        Ok(c) => c
            .cuda_stream()
            .context()
            .name()
            .unwrap_or_else(|e| format!("cuda (name unknown: {e})")),
        Err(_) => "cpu".into(),
    }
}

#[cfg(not(feature = "cuda"))]
fn device_name(_: &Device) -> String {
    "cpu".into()
}

/// fault_in maps the weight files, touches every page so the weights sit in
/// host memory (page cache) before candle builds the model, and returns the
/// parameter count from the headers.
fn fault_in(files: &[PathBuf]) -> Result<i64, Error> {
    // Safety: read-only mapping of files nobody writes during the run.
    let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(files) }
        .map_err(|e| load_err("map safetensors", e))?;
    let mut params: i64 = 0;
    let mut sum: u8 = 0;
    for (_, view) in st.tensors() {
        params += view.shape().iter().product::<usize>() as i64;
        for b in view.data().iter().step_by(4096) {
            sum = sum.wrapping_add(*b);
        }
    }
    std::hint::black_box(sum);
    Ok(params)
}
