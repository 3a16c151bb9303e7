//! A Llama-family decoder written in Burn tensor ops, loaded from HF safetensors
//! with Burn's own store (`burn::store::SafetensorsStore`).
//!
//! Weights keep the HF layout (`[out, in]` for projections): the matmuls use the
//! transposed view `x · Wᵀ`, which is the layout cubecl's vec-mat kernels prefer
//! ("col-major vec mat") and which needs no host-side transpose at load.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, Param, ParamId};
use burn::store::{FloatCastAdapter, ModuleSnapshot, SafetensorsStore};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Device, FloatDType, Int, IntDType, Shape, Tensor, TensorData};

use crate::Error;

/// Llama hyper-parameters read from config.json.
#[derive(Debug, Clone)]
pub struct Config {
    pub vocab: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f64,
    pub rms_eps: f64,
    pub max_pos: usize,
    pub tied: bool,
    pub llama3: Option<Llama3Scaling>,
}

/// HF `rope_scaling` with `rope_type: llama3`.
#[derive(Debug, Clone, Copy)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_pos: f64,
}

fn num(v: &serde_json::Value, key: &str) -> Option<f64> {
    v.get(key).and_then(|x| x.as_f64())
}

impl Config {
    pub fn from_dir(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::load(format!("read {}: {e}", path.display())))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::load(format!("parse {}: {e}", path.display())))?;
        let req = |k: &str| -> Result<usize, Error> {
            v.get(k)
                .and_then(|x| x.as_u64())
                .map(|x| x as usize)
                .ok_or_else(|| Error::load(format!("config.json: missing integer {k}")))
        };
        let hidden = req("hidden_size")?;
        let heads = req("num_attention_heads")?;
        let kv_heads = v
            .get("num_key_value_heads")
            .and_then(|x| x.as_u64())
            .map(|x| x as usize)
            .unwrap_or(heads);
        let head_dim = v
            .get("head_dim")
            .and_then(|x| x.as_u64())
            .map(|x| x as usize)
            .unwrap_or(hidden / heads);
        let llama3 = match v.get("rope_scaling") {
            Some(rs) if !rs.is_null() => {
                let kind = rs
                    .get("rope_type")
                    .or_else(|| rs.get("type"))
                    .and_then(|x| x.as_str())
                    .unwrap_or("");
                if kind != "llama3" {
                    return Err(Error::unsupported(format!(
                        "config.json: rope_scaling type {kind:?} (only llama3 is implemented)"
                    )));
                }
                Some(Llama3Scaling {
                    factor: num(rs, "factor").unwrap_or(8.0),
                    low_freq_factor: num(rs, "low_freq_factor").unwrap_or(1.0),
                    high_freq_factor: num(rs, "high_freq_factor").unwrap_or(4.0),
                    original_max_pos: num(rs, "original_max_position_embeddings").unwrap_or(8192.0),
                })
            }
            _ => None,
        };
        let cfg = Config {
            vocab: req("vocab_size")?,
            hidden,
            intermediate: req("intermediate_size")?,
            layers: req("num_hidden_layers")?,
            heads,
            kv_heads,
            head_dim,
            rope_theta: num(&v, "rope_theta").unwrap_or(10000.0),
            rms_eps: num(&v, "rms_norm_eps").unwrap_or(1e-5),
            max_pos: req("max_position_embeddings")?,
            tied: v.get("tie_word_embeddings").and_then(|x| x.as_bool()).unwrap_or(false),
            llama3,
        };
        if cfg.heads % cfg.kv_heads != 0 || cfg.head_dim % 2 != 0 {
            return Err(Error::load(format!(
                "config.json: heads {} / kv heads {} / head_dim {} not a Llama shape",
                cfg.heads, cfg.kv_heads, cfg.head_dim
            )));
        }
        Ok(cfg)
    }

    /// Number of parameters in the checkpoint (embedding counted once when tied).
    pub fn params(&self) -> i64 {
        let (h, i, kv) = (self.hidden, self.intermediate, self.kv_heads * self.head_dim);
        let q = self.heads * self.head_dim;
        let layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h;
        let head = if self.tied { 0 } else { self.vocab * h };
        (self.vocab * h + self.layers * layer + h + head) as i64
    }

    /// Inverse RoPE frequencies exactly as HF computes them (float32 `base ** (2i/d)`,
    /// then `_compute_llama3_parameters` when rope_scaling is llama3).
    pub fn inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim;
        let base = self.rope_theta as f32;
        let mut inv: Vec<f32> = (0..d / 2)
            .map(|i| 1.0f32 / base.powf((2 * i) as f32 / d as f32))
            .collect();
        if let Some(s) = self.llama3 {
            let (factor, low, high, old) = (
                s.factor as f32,
                s.low_freq_factor as f32,
                s.high_freq_factor as f32,
                s.original_max_pos as f32,
            );
            let low_wavelen = old / low;
            let high_wavelen = old / high;
            for f in inv.iter_mut() {
                let wavelen = 2.0 * PI as f32 / *f;
                let scaled = if wavelen > low_wavelen { *f / factor } else { *f };
                let smooth = (old / wavelen - low) / (high - low);
                let smoothed = (1.0 - smooth) * scaled / factor + smooth * scaled;
                let medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
                *f = if medium { smoothed } else { scaled };
            }
        }
        inv
    }
}

/// A projection with the HF `[out, in]` weight.
#[derive(Module, Debug)]
pub struct Proj {
    pub weight: Param<Tensor<2>>,
}

/// An RMSNorm scale.
#[derive(Module, Debug)]
pub struct Norm {
    pub weight: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct Embed {
    pub weight: Param<Tensor<2>>,
}

#[derive(Module, Debug)]
pub struct SelfAttn {
    pub q_proj: Proj,
    pub k_proj: Proj,
    pub v_proj: Proj,
    pub o_proj: Proj,
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub gate_proj: Proj,
    pub up_proj: Proj,
    pub down_proj: Proj,
}

#[derive(Module, Debug)]
pub struct Layer {
    pub self_attn: SelfAttn,
    pub mlp: Mlp,
    pub input_layernorm: Norm,
    pub post_attention_layernorm: Norm,
}

#[derive(Module, Debug)]
pub struct Body {
    pub embed_tokens: Embed,
    pub layers: Vec<Layer>,
    pub norm: Norm,
}

/// The module tree mirrors the HF tensor names (`model.layers.0.self_attn.q_proj.weight`),
/// so the safetensors store matches keys without remapping.
#[derive(Module, Debug)]
pub struct Weights {
    pub model: Body,
    pub lm_head: Option<Proj>,
}

fn lazy<const D: usize>(shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    // Never materialised when the checkpoint provides the tensor: loading replaces it.
    Param::uninitialized(
        ParamId::new(),
        move |dev, _| Tensor::zeros(shape, dev),
        device.clone(),
        false,
        Shape::from(shape),
    )
}

impl Weights {
    fn skeleton(c: &Config, device: &Device) -> Self {
        let (h, q, kv) = (c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let proj = |o: usize, i: usize| Proj {
            weight: lazy([o, i], device),
        };
        let norm = || Norm {
            weight: lazy([h], device),
        };
        let layers = (0..c.layers)
            .map(|_| Layer {
                self_attn: SelfAttn {
                    q_proj: proj(q, h),
                    k_proj: proj(kv, h),
                    v_proj: proj(kv, h),
                    o_proj: proj(h, q),
                },
                mlp: Mlp {
                    gate_proj: proj(c.intermediate, h),
                    up_proj: proj(c.intermediate, h),
                    down_proj: proj(h, c.intermediate),
                },
                input_layernorm: norm(),
                post_attention_layernorm: norm(),
            })
            .collect();
        Weights {
            model: Body {
                embed_tokens: Embed {
                    weight: lazy([c.vocab, h], device),
                },
                layers,
                norm: norm(),
            },
            lm_head: if c.tied { None } else { Some(proj(c.vocab, h)) },
        }
    }
}

/// How attention is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttnMode {
    /// Grouped-query matmuls over the KV cache (no K/V head repetition); softmax in f32.
    Grouped,
    /// As Grouped, but decode steps attend over the whole fixed-size cache with a position
    /// mask, so every step has the same shapes (what static-cache loops such as gpt-fast do).
    Padded,
    /// Burn's fused `attention` module op (flash attention on CUDA) with K/V heads repeated.
    Fused,
}

impl AttnMode {
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "" | "grouped" => Ok(AttnMode::Grouped),
            "padded" => Ok(AttnMode::Padded),
            "fused" => Ok(AttnMode::Fused),
            _ => Err(Error::bad_request(format!(
                "option attention={s:?}: want grouped, padded or fused"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            AttnMode::Grouped => "grouped",
            AttnMode::Padded => "padded",
            AttnMode::Fused => "fused",
        }
    }
}

/// Cold-start breakdown in ns.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadTimes {
    pub context_init_ns: i64,
    pub weights_to_host_ns: i64,
    pub weights_to_device_ns: i64,
    pub compile_ns: i64,
}

pub struct Model {
    pub cfg: Config,
    pub device: Device,
    pub dtype: FloatDType,
    pub attn: AttnMode,
    pub device_name: String,
    pub backend: &'static str,
    pub times: LoadTimes,
    pool: Option<rayon::ThreadPool>,
    pub threads: usize,
    w: Weights,
    inv_freq: Vec<f32>,
    cap: usize,
    cos: Option<Tensor<2>>,
    sin: Option<Tensor<2>>,
    /// 0..cap on the device: the decode mask of AttnMode::Padded is `span > pos`.
    span: Option<Tensor<1, Int>>,
    k_cache: Vec<Option<Tensor<3>>>,
    v_cache: Vec<Option<Tensor<3>>>,
    /// The tables and caches of other capacities, kept for their next request (see ensure_capacity).
    parked: std::collections::HashMap<usize, CapSet>,
}

/// One capacity's RoPE tables, span and KV caches.
struct CapSet {
    cos: Option<Tensor<2>>,
    sin: Option<Tensor<2>>,
    span: Option<Tensor<1, Int>>,
    k_cache: Vec<Option<Tensor<3>>>,
    v_cache: Vec<Option<Tensor<3>>>,
}

fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text =
            std::fs::read_to_string(&index).map_err(|e| Error::load(format!("read {}: {e}", index.display())))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::load(format!("parse {}: {e}", index.display())))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::load(format!("{}: no weight_map", index.display())))?;
        let mut files: Vec<String> = map.values().filter_map(|f| f.as_str().map(String::from)).collect();
        files.sort();
        files.dedup();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    Err(Error::load(format!(
        "{}: no model.safetensors or model.safetensors.index.json",
        dir.display()
    )))
}

/// Parses "cpu" / "cuda" / "cuda:N".
fn make_device(device: &str) -> Result<(Device, &'static str), Error> {
    if device == "cpu" {
        return Ok((Device::flex(), "flex"));
    }
    #[cfg(feature = "wgpu")]
    if device == "wgpu" {
        return Ok((Device::wgpu(burn::tensor::DeviceKind::DefaultDevice), "wgpu"));
    }
    let ordinal = if device == "cuda" {
        Some(0usize)
    } else {
        device.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok())
    };
    match ordinal {
        #[cfg(feature = "cuda")]
        Some(n) => Ok((Device::cuda(n), "cuda")),
        #[cfg(not(feature = "cuda"))]
        Some(_) => Err(Error::unsupported(format!(
            "device {device}: this build of the burn bridge has no CUDA backend (build with --cuda)"
        ))),
        None => Err(Error::bad_request(format!("device {device:?}: want cpu or cuda:N"))),
    }
}

fn parse_dtype(s: &str) -> Result<FloatDType, Error> {
    match s {
        "f32" => Ok(FloatDType::F32),
        "f16" => Ok(FloatDType::F16),
        "bf16" => Ok(FloatDType::BF16),
        _ => Err(Error::bad_request(format!("dtype {s:?}: want f32, f16 or bf16"))),
    }
}

fn dt(f: FloatDType) -> DType {
    match f {
        FloatDType::F64 => DType::F64,
        FloatDType::F32 | FloatDType::Flex32 => DType::F32,
        FloatDType::F16 => DType::F16,
        FloatDType::BF16 => DType::BF16,
    }
}

fn ns(t: Instant) -> i64 {
    t.elapsed().as_nanos() as i64
}

impl Model {
    pub fn load(dir: &Path, device: &str, dtype: &str, threads: usize, attn: AttnMode) -> Result<Self, Error> {
        let cfg = Config::from_dir(dir)?;
        let dtype = parse_dtype(dtype)?;
        let t0 = Instant::now();
        let (mut device, backend) = make_device(device)?;
        if backend == "flex" && dtype != FloatDType::F32 {
            return Err(Error::unsupported(format!(
                "dtype {dtype:?} on cpu: the burn engine runs f32 on the CPU (flex backend)"
            )));
        }
        if !device.supports_dtype(dtype) {
            return Err(Error::unsupported(format!(
                "dtype {dtype:?}: not supported by {backend}"
            )));
        }
        // Default dtypes can be set once per device and process; a second load with the
        // same dtype reuses them.
        if let Err(e) = device.configure((dtype, IntDType::I32)) {
            if device.settings().float_dtype != dtype {
                return Err(Error::load(format!("configure device for {dtype:?}: {e:?}")));
            }
        }
        let pool = if backend == "flex" {
            let n = if threads == 0 {
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
            } else {
                threads
            };
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| Error::load(format!("rayon pool: {e}")))?,
            )
        } else {
            None
        };
        let threads = pool.as_ref().map(|p| p.current_num_threads()).unwrap_or(0);
        // Touch the device so context creation is timed here, not inside the first load.
        let probe = Tensor::<1>::zeros([1], &device);
        let _ = probe.into_data();
        #[cfg(feature = "cuda")]
        let device_name = match device.identity() {
            Some(id) => id.name,
            None => backend.to_string(),
        };
        #[cfg(not(feature = "cuda"))]
        let device_name = backend.to_string();
        let context_init_ns = ns(t0);

        let t1 = Instant::now();
        let mut w = Weights::skeleton(&cfg, &device);
        let files = safetensors_files(dir)?;
        let multi = files.len() > 1;
        let mut applied = std::collections::HashSet::new();
        for f in &files {
            let mut store = SafetensorsStore::from_file(f)
                .with_from_adapter(FloatCastAdapter::to(dt(dtype)))
                .allow_partial(multi);
            let res = w
                .load_from(&mut store)
                .map_err(|e| Error::load(format!("load {}: {e}", f.display())))?;
            if !res.errors.is_empty() {
                return Err(Error::load(format!("load {}: {:?}", f.display(), res.errors)));
            }
            applied.extend(res.applied);
        }
        // 9 tensors per layer + embedding + final norm (+ lm_head when untied).
        let expected = cfg.layers * 9 + 2 + usize::from(!cfg.tied);
        if applied.len() != expected {
            return Err(Error::load(format!(
                "{}: loaded {} of {} tensors",
                dir.display(),
                applied.len(),
                expected
            )));
        }
        device
            .sync()
            .map_err(|e| Error::load(format!("sync after load: {e:?}")))?;
        let weights_to_device_ns = ns(t1);

        let inv_freq = cfg.inv_freq();
        Ok(Model {
            cfg,
            device,
            dtype,
            attn,
            device_name,
            backend,
            times: LoadTimes {
                context_init_ns,
                weights_to_host_ns: 0,
                weights_to_device_ns,
                compile_ns: 0,
            },
            pool,
            threads,
            w,
            inv_freq,
            cap: 0,
            cos: None,
            sin: None,
            span: None,
            k_cache: Vec::new(),
            v_cache: Vec::new(),
            parked: std::collections::HashMap::new(),
        })
    }

    /// Sizes the RoPE tables and KV cache for a request of `n` positions (rounded up to 256): each request gets a
    /// capacity of its own size, kept for the next request of that size, so a short request never runs over a
    /// longer one's cache — the padded attention reads the whole capacity every step, and before 2026-12-03 the
    /// cache only grew, so a p128-n256 case after a p2032-n16 one decoded over 2048 positions.
    fn ensure_capacity(&mut self, n: usize) {
        let cap = n.div_ceil(256) * 256;
        let cap = cap.min(self.cfg.max_pos).max(n);
        if cap == self.cap {
            return;
        }
        if self.cap > 0 {
            let active = CapSet {
                cos: self.cos.take(),
                sin: self.sin.take(),
                span: self.span.take(),
                k_cache: std::mem::take(&mut self.k_cache),
                v_cache: std::mem::take(&mut self.v_cache),
            };
            self.parked.insert(self.cap, active);
        }
        if let Some(set) = self.parked.remove(&cap) {
            self.cos = set.cos;
            self.sin = set.sin;
            self.span = set.span;
            self.k_cache = set.k_cache;
            self.v_cache = set.v_cache;
            self.cap = cap;
            return;
        }
        let d = self.cfg.head_dim;
        let half = d / 2;
        let mut cos = vec![0f32; cap * d];
        let mut sin = vec![0f32; cap * d];
        for p in 0..cap {
            for (i, f) in self.inv_freq.iter().enumerate() {
                let a = (p as f32 * *f) as f64; // HF: float32 position × float32 inv_freq
                let (s, c) = (a.sin() as f32, a.cos() as f32);
                cos[p * d + i] = c;
                cos[p * d + i + half] = c;
                // rotate_half(x) = cat(-x2, x1); with swap(x) = cat(x2, x1), rotate_half(x)·sin
                // equals swap(x)·[-sin, sin].
                sin[p * d + i] = -s;
                sin[p * d + i + half] = s;
            }
        }
        let mk = |v: Vec<f32>| {
            Tensor::<2>::from_data(TensorData::new(v, [cap, d]), (&self.device, DType::F32)).cast(self.dtype)
        };
        self.cos = Some(mk(cos));
        self.sin = Some(mk(sin));
        self.span = Some(Tensor::<1, Int>::arange(0..cap as i64, &self.device));
        let kv = self.cfg.kv_heads;
        self.k_cache = (0..self.cfg.layers)
            .map(|_| Some(Tensor::zeros([kv, cap, d], &self.device)))
            .collect();
        self.v_cache = (0..self.cfg.layers)
            .map(|_| Some(Tensor::zeros([kv, cap, d], &self.device)))
            .collect();
        self.cap = cap;
    }

    fn rms_norm(&self, x: Tensor<2>, w: &Norm) -> Tensor<2> {
        // HF LlamaRMSNorm: in float32, then cast back and scale.
        let x32 = x.cast(FloatDType::F32);
        let var = x32.clone().square().mean_dim(1);
        let y = x32 * (var + self.cfg.rms_eps).sqrt().recip();
        y.cast(self.dtype) * w.weight.val().unsqueeze_dim::<2>(0)
    }

    fn rope(&self, x: Tensor<3>, pos: usize, s: usize) -> Tensor<3> {
        let d = self.cfg.head_dim;
        let half = d / 2;
        let cos = self
            .cos
            .clone()
            .unwrap()
            .slice([pos..pos + s, 0..d])
            .unsqueeze_dim::<3>(0);
        let sin = self
            .sin
            .clone()
            .unwrap()
            .slice([pos..pos + s, 0..d])
            .unsqueeze_dim::<3>(0);
        let n = x.dims()[0];
        let x1 = x.clone().slice([0..n, 0..s, 0..half]);
        let x2 = x.clone().slice([0..n, 0..s, half..d]);
        let swapped = Tensor::cat(vec![x2, x1], 2);
        x * cos + swapped * sin
    }

    /// `future` is the padded decode step's additive mask ([1, 1, cap]), built once per step.
    fn attend(
        &self,
        q: Tensor<3>,
        keys: Tensor<3>,
        values: Tensor<3>,
        pos: usize,
        s: usize,
        future: Option<&Tensor<3>>,
    ) -> Tensor<2> {
        let (nh, nkv, d) = (self.cfg.heads, self.cfg.kv_heads, self.cfg.head_dim);
        let g = nh / nkv;
        let l = keys.dims()[1];
        if self.attn == AttnMode::Fused && (s == 1 || pos == 0) {
            let rep = |t: Tensor<3>| -> Tensor<4> {
                if g == 1 {
                    t.unsqueeze_dim::<4>(0)
                } else {
                    t.unsqueeze_dim::<4>(1).expand([nkv, g, l, d]).reshape([1, nh, l, d])
                }
            };
            let out = attention(
                q.unsqueeze_dim::<4>(0),
                rep(keys),
                rep(values),
                None,
                None,
                AttentionModuleOptions {
                    scale: None,
                    softcap: None,
                    is_causal: s > 1,
                },
            ); // [1, nh, s, d]
            return out.reshape([nh, s, d]).swap_dims(0, 1).reshape([s, nh * d]);
        }
        // Grouped-query attention: q heads h = kv·g + j share KV head kv (HF repeat_kv order).
        let scale = 1.0 / (d as f64).sqrt();
        let q = q.reshape([nkv, g * s, d]);
        let scores = q.matmul(keys.swap_dims(1, 2)) * scale; // [nkv, g*s, l]
        let mut scores = scores.cast(FloatDType::F32);
        if let Some(future) = future {
            scores = scores + future.clone();
        } else if s > 1 {
            let mut mask = vec![0f32; g * s * l];
            for j in 0..g {
                for i in 0..s {
                    for k in (pos + i + 1)..l {
                        mask[(j * s + i) * l + k] = f32::NEG_INFINITY;
                    }
                }
            }
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [g * s, l]), (&self.device, DType::F32));
            scores = scores + mask.unsqueeze_dim::<3>(0);
        }
        let p = softmax(scores, 2).cast(self.dtype);
        let out = p.matmul(values); // [nkv, g*s, d]
        out.reshape([nh, s, d]).swap_dims(0, 1).reshape([s, nh * d])
    }

    /// Runs the decoder over `ids` placed at positions pos..pos+len and returns the
    /// argmax token of the last position, still on the device.
    fn forward(&mut self, ids: Tensor<1, Int>, pos: usize) -> Tensor<1, Int> {
        let s = ids.dims()[0];
        let c = &self.cfg;
        let (nh, nkv, d, h) = (c.heads, c.kv_heads, c.head_dim, c.hidden);
        let mut x = self.w.model.embed_tokens.weight.val().select(0, ids); // [s, h]
        // Padded decode: keys span the whole cache (cap), so hide the positions after pos, once
        // per step for every layer. A large finite negative rather than -inf keeps 0·(-inf) out of
        // the arithmetic; exp() gives 0 all the same.
        let future = (self.attn == AttnMode::Padded && s == 1).then(|| {
            let later = self.span.clone().expect("span allocated").greater_elem(pos as i64);
            (later.float().cast(FloatDType::F32) * -1e30).reshape([1, 1, self.cap])
        });
        for li in 0..self.cfg.layers {
            let layer = &self.w.model.layers[li];
            let hn = self.rms_norm(x.clone(), &layer.input_layernorm);
            let a = &layer.self_attn;
            let q = hn.clone().matmul(a.q_proj.weight.val().transpose());
            let k = hn.clone().matmul(a.k_proj.weight.val().transpose());
            let v = hn.matmul(a.v_proj.weight.val().transpose());
            let q = q.reshape([s, nh, d]).swap_dims(0, 1); // [nh, s, d]
            let k = k.reshape([s, nkv, d]).swap_dims(0, 1);
            let v = v.reshape([s, nkv, d]).swap_dims(0, 1);
            let q = self.rope(q, pos, s);
            let k = self.rope(k, pos, s);
            // Taken out so the cache handle is uniquely owned and slice_assign can write in place.
            let kc = self.k_cache[li].take().expect("kv cache allocated");
            let vc = self.v_cache[li].take().expect("kv cache allocated");
            let kc = kc.slice_assign([0..nkv, pos..pos + s, 0..d], k);
            let vc = vc.slice_assign([0..nkv, pos..pos + s, 0..d], v);
            let span = if self.attn == AttnMode::Padded && s == 1 {
                self.cap
            } else {
                pos + s
            };
            let keys = kc.clone().slice([0..nkv, 0..span, 0..d]);
            let values = vc.clone().slice([0..nkv, 0..span, 0..d]);
            self.k_cache[li] = Some(kc);
            self.v_cache[li] = Some(vc);
            let layer = &self.w.model.layers[li];
            let attn = self.attend(q, keys, values, pos, s, future.as_ref());
            let o = attn.matmul(layer.self_attn.o_proj.weight.val().transpose());
            x = x + o;
            let hn = self.rms_norm(x.clone(), &layer.post_attention_layernorm);
            let m = &layer.mlp;
            let gate = silu(hn.clone().matmul(m.gate_proj.weight.val().transpose()));
            let up = hn.matmul(m.up_proj.weight.val().transpose());
            x = x + (gate * up).matmul(m.down_proj.weight.val().transpose());
        }
        let last = x.slice([s - 1..s, 0..h]);
        let last = self.rms_norm(last, &self.w.model.norm);
        let head = match &self.w.lm_head {
            Some(p) => p.weight.val(),
            None => self.w.model.embed_tokens.weight.val(),
        };
        let logits = last.matmul(head.transpose()); // [1, vocab]
        logits.argmax(1).reshape([1])
    }

    /// Greedy generation of exactly `out_ids.len()` tokens after `prompt`. Each token's
    /// offset from the call's start (ns) is taken right after its id reaches the host.
    pub fn generate(&mut self, prompt: &[i32], out_ids: &mut [i32], out_ns: &mut [i64]) -> Result<(), Error> {
        let n = out_ids.len();
        if n == 0 || out_ns.len() != n {
            return Err(Error::bad_request(format!(
                "generate: {n} new tokens, {} time slots",
                out_ns.len()
            )));
        }
        if prompt.is_empty() {
            return Err(Error::bad_request("generate: empty prompt".into()));
        }
        if let Some(bad) = prompt.iter().find(|&&t| t < 0 || t as usize >= self.cfg.vocab) {
            return Err(Error::bad_request(format!(
                "prompt token {bad} outside the vocabulary (size {})",
                self.cfg.vocab
            )));
        }
        let total = prompt.len() + n - 1;
        if total > self.cfg.max_pos {
            return Err(Error::bad_request(format!(
                "prompt {} + {} new tokens needs {} positions, model has {}",
                prompt.len(),
                n,
                total,
                self.cfg.max_pos
            )));
        }
        match self.pool.take() {
            Some(pool) => {
                let r = pool.install(|| self.generate_inner(prompt, out_ids, out_ns));
                self.pool = Some(pool);
                r
            }
            None => self.generate_inner(prompt, out_ids, out_ns),
        }
    }

    fn generate_inner(&mut self, prompt: &[i32], out_ids: &mut [i32], out_ns: &mut [i64]) -> Result<(), Error> {
        let start = Instant::now();
        let n = out_ids.len();
        self.ensure_capacity(prompt.len() + n);
        let ids = Tensor::<1, Int>::from_data(TensorData::new(prompt.to_vec(), [prompt.len()]), &self.device);
        let mut next = self.forward(ids, 0);
        let mut pos = prompt.len();
        // CIB_BURN_TRACE=1: one stderr line per token (diagnosing JIT/autotune stalls).
        let trace = std::env::var_os("CIB_BURN_TRACE").is_some();
        for i in 0..n {
            let id = read_id(next.clone())?;
            out_ns[i] = ns(start);
            out_ids[i] = id;
            if trace {
                let prev = if i == 0 { 0 } else { out_ns[i - 1] };
                eprintln!(
                    "burn-trace: token {i} pos {pos} at {:.1} ms (+{:.1} ms)",
                    out_ns[i] as f64 / 1e6,
                    (out_ns[i] - prev) as f64 / 1e6
                );
            }
            if i + 1 < n {
                next = self.forward(next, pos);
                pos += 1;
            }
        }
        Ok(())
    }

    /// Bytes the device allocator holds (its pool high-water mark unless cleaned);
    /// 0 where the backend does not report it.
    pub fn reserved_bytes(&self) -> i64 {
        self.device
            .memory_pool_usage()
            .map(|u| u.bytes_reserved as i64)
            .unwrap_or(0)
    }
}

fn read_id(t: Tensor<1, Int>) -> Result<i32, Error> {
    let data = t
        .try_into_data()
        .map_err(|e| Error::runtime(format!("read token id: {e:?}")))?;
    data.iter::<i64>()
        .next()
        .map(|v| v as i32)
        .ok_or_else(|| Error::runtime("read token id: empty tensor".into()))
}
