//! The engine: load an lmrs image (from a file, or converted in memory from an HF directory) and decode greedily
//! with a KV cache. The forward pass follows lm.rs's transformer.rs (one residual stream, RMSNorm, GQA attention
//! over an f32 KV cache, SwiGLU MLP), with what lm.rs lacks for this benchmark: batches of rows, a prompt
//! prefilled as one batched matmul per layer (chunks of at most PREFILL_ROWS rows), HF's rotate-half RoPE with
//! Llama-3 scaling, and the reference engine's numerics for norms, softmax and SiLU (f64 sums and exp).

use std::f64::consts::PI;
use std::fmt;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::format::{self, cast, Header, Image, LayerSlots, Layout, Quant, Slot};
use crate::hf;
use crate::kernels::{self, Isa, Rows, W, X};
use crate::quant;

/// PREFILL_ROWS bounds the rows (batch × positions) of one forward chunk.
const PREFILL_ROWS: usize = 64;

/// Error classes the C ABI maps to return codes.
#[derive(Debug)]
pub enum Error {
    BadArg(String),
    Unsupported(String),
    Load(String),
    Oom(String),
    Runtime(String),
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

/// Loaded is the cold-start breakdown, durations in ns.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Creating the thread pool.
    pub context_init_ns: i64,
    /// An lmrs file: mapping it and reading every byte for the checksum. An HF directory: mapping the
    /// safetensors files and faulting their pages in.
    pub weights_to_host_ns: i64,
    /// Converting an HF directory into the lmrs layout in memory (0 for an lmrs file).
    pub convert_ns: i64,
    pub params: i64,
    pub settings: Vec<(String, String)>,
}

/// Engine holds one loaded model.
pub struct Engine {
    h: Header,
    layout: Layout,
    image: Image,
    inv_freq: Vec<f32>,
    pool: rayon::ThreadPool,
    threads: usize,
    isa: Isa,
    cancel: AtomicBool,
    prof: Option<Prof>,
}

/// isa_from_env is Isa::detect(), or a lower instruction set named by CIB_LMRS_ISA (avx2, generic), to measure
/// the kernels against each other in the same binary.
fn isa_from_env() -> Result<Isa, Error> {
    let best = Isa::detect();
    match std::env::var("CIB_LMRS_ISA").as_deref() {
        Err(_) | Ok("") => Ok(best),
        Ok("generic") => Ok(Isa::Generic),
        Ok("avx2") if best != Isa::Generic => Ok(Isa::Avx2),
        Ok("avx512") if best == Isa::Avx512 => Ok(Isa::Avx512),
        Ok(v) => Err(Error::BadArg(format!(
            "CIB_LMRS_ISA={v}: want avx512, avx2 or generic, at most this CPU's best ({})",
            best.name()
        ))),
    }
}

/// PHASES names forward's phases for CIB_LMRS_PROFILE.
const PHASES: [&str; 9] = [
    "embed+rope tables",
    "norms+residual",
    "qkv matmul",
    "rope+kv+attention",
    "o matmul",
    "gate/up matmul",
    "swiglu",
    "down matmul",
    "lm_head",
];

/// Prof accumulates ns per phase (CIB_LMRS_PROFILE=1 at load; off otherwise: no clock reads).
struct Prof([std::sync::atomic::AtomicU64; 9]);

impl Prof {
    fn from_env() -> Option<Prof> {
        (std::env::var("CIB_LMRS_PROFILE").as_deref() == Ok("1")).then(|| Prof(Default::default()))
    }
}

/// Tick marks phase boundaries in forward.
struct Tick<'a>(Option<(&'a Prof, Instant)>);

impl Tick<'_> {
    fn lap(&mut self, phase: usize) {
        if let Some((p, t)) = &mut self.0 {
            let now = Instant::now();
            p.0[phase].fetch_add((now - *t).as_nanos() as u64, Ordering::Relaxed);
            *t = now;
        }
    }
}

fn ns(t: Instant) -> i64 {
    t.elapsed().as_nanos() as i64
}

/// inv_freq is the rotary inverse frequencies as transformers computes them in f32, with Llama-3 scaling
/// (the same steps as engines/reference's InvFreq).
pub fn inv_freq(h: &Header) -> Vec<f32> {
    let d = h.head_dim as usize;
    let mut inv: Vec<f32> = (0..d / 2)
        .map(|i| {
            let e = (2 * i) as f32 / d as f32;
            1.0f32 / (h.rope_theta.powf(e as f64) as f32)
        })
        .collect();
    if let Some(r) = h.rope {
        let old = r.original_max_position_embeddings as f64;
        let low_wavelen = old / r.low_freq_factor;
        let high_wavelen = old / r.high_freq_factor;
        for v in inv.iter_mut() {
            let f = *v as f64;
            let wavelen = 2.0 * PI / f;
            if wavelen < high_wavelen {
            } else if wavelen > low_wavelen {
                *v = (f / r.factor) as f32;
            } else {
                let smooth = (old / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
                *v = ((1.0 - smooth) * f / r.factor + smooth * f) as f32;
            }
        }
    }
    inv
}

impl Engine {
    /// load opens model: an lmrs file, a directory with model.lmrs, or an HF Llama directory converted in memory
    /// to quant (group size gs, 0 = default). threads 0 means one per available core.
    pub fn load(model: &Path, quant: &str, gs: u32, threads: usize) -> Result<(Engine, Loaded), Error> {
        let q = Quant::parse(quant).ok_or_else(|| Error::BadArg(format!("quant {quant:?}: want f32, q8_0 or q4_0")))?;
        let mut loaded = Loaded::default();
        let t = Instant::now();
        let threads = if threads > 0 {
            threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("lmrs-{i}"))
            .build()
            .map_err(|e| Error::Load(format!("create thread pool of {threads}: {e}")))?;
        loaded.context_init_ns = ns(t);

        let file = if model.is_dir() {
            model.join("model.lmrs")
        } else {
            model.to_path_buf()
        };
        let source;
        let t = Instant::now();
        let image = if file.is_file() {
            let f = File::open(&file).map_err(|e| Error::Load(format!("open {}: {e}", file.display())))?;
            // Safety: model files are read-only inputs nobody writes during the run.
            let m =
                unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::Load(format!("map {}: {e}", file.display())))?;
            let img = Image::Mapped(m);
            let h = pool
                .install(|| format::verify(img.bytes()))
                .map_err(|e| Error::Load(format!("{}: {e}", file.display())))?;
            if quant != "" && q != h.0.quant {
                return Err(Error::BadArg(format!(
                    "quant {quant}: {} holds {} weights (convert again to change it)",
                    file.display(),
                    h.0.quant.name()
                )));
            }
            if gs != 0 && gs != h.0.group_size {
                return Err(Error::BadArg(format!(
                    "group_size {gs}: {} has group size {}",
                    file.display(),
                    h.0.group_size
                )));
            }
            loaded.weights_to_host_ns = ns(t);
            source = format!("lmrs file {} (checksum verified at load)", file.display());
            img
        } else if model.is_dir() {
            let h = hf::header_from_config(model, q, gs).map_err(Error::Load)?;
            let ck = hf::Checkpoint::open(model).map_err(Error::Load)?;
            ck.fault_in();
            loaded.weights_to_host_ns = ns(t);
            let t = Instant::now();
            let img = pool.install(|| hf::convert(&ck, &h)).map_err(Error::Load)?;
            loaded.convert_ns = ns(t);
            source = format!(
                "HF directory {}, converted in memory at load to {} (compile_ns is the conversion)",
                model.display(),
                q.name()
            );
            img
        } else {
            return Err(Error::Load(format!("{}: no such file or directory", model.display())));
        };
        let b = image.bytes();
        let h = Header::decode(b).map_err(|e| Error::Load(e.to_string()))?;
        let layout = h.layout();
        let isa = isa_from_env()?;
        let stored = format::stored_checksum(b);
        loaded.params = params(&h);
        loaded.settings = vec![
            ("source".into(), source),
            ("weights".into(), h.quant.name().into()),
            ("group_size".into(), h.group_size.to_string()),
            ("checksum".into(), format!("{stored:08x}")),
            ("format".into(), format!("lmrs v{}", format::VERSION)),
            (
                "activations".into(),
                if h.quant == Quant::F32 {
                    "f32".into()
                } else {
                    "int8 per group of group_size at every matmul input (integer dot products)".into()
                },
            ),
            (
                "kv_cache".into(),
                "f32, [layer][row][position][kv_dim], allocated per generation".into(),
            ),
            ("cpu_threads".into(), threads.to_string()),
            ("isa".into(), isa.name().into()),
            (
                "decode".into(),
                format!("prefill in chunks of <= {PREFILL_ROWS} rows, then 1 token/step; greedy argmax"),
            ),
        ];
        let engine = Engine {
            inv_freq: inv_freq(&h),
            h,
            layout,
            image,
            pool,
            threads,
            isa,
            cancel: AtomicBool::new(false),
            prof: Prof::from_env(),
        };
        Ok((engine, loaded))
    }

    /// from_image builds an engine on an image already in memory (benchmarks: examples/decode.rs).
    pub fn from_image(image: Image, threads: usize) -> Result<Engine, Error> {
        let h = Header::decode(image.bytes()).map_err(|e| Error::Load(e.to_string()))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::Load(format!("create thread pool of {threads}: {e}")))?;
        Ok(Engine {
            inv_freq: inv_freq(&h),
            layout: h.layout(),
            h,
            image,
            pool,
            threads,
            isa: isa_from_env()?,
            cancel: AtomicBool::new(false),
            prof: Prof::from_env(),
        })
    }

    /// into_image gives the image back (benchmarks: one image, several thread counts).
    pub fn into_image(self) -> Image {
        self.image
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// profile is the time forward spent per phase since load, in ns, when CIB_LMRS_PROFILE=1 was set at load.
    pub fn profile(&self) -> Option<Vec<(&'static str, u64)>> {
        self.prof.as_ref().map(|p| {
            PHASES
                .iter()
                .zip(&p.0)
                .map(|(n, v)| (*n, v.load(Ordering::Relaxed)))
                .collect()
        })
    }

    pub fn vocab(&self) -> usize {
        self.h.vocab as usize
    }

    pub fn max_seq(&self) -> usize {
        self.h.max_seq as usize
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// generate decodes n_new tokens greedily for batch copies of prompt; out_ids gets n_new*batch ids,
    /// step-major, out_ns n_new offsets in ns from the call's start.
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
            return Err(Error::BadArg("output buffers too small".into()));
        }
        if let Some((i, t)) = prompt.iter().enumerate().find(|(_, &t)| t >= self.h.vocab) {
            return Err(Error::BadArg(format!(
                "prompt token {i} = {t} is outside the vocabulary of {}",
                self.h.vocab
            )));
        }
        let cap = prompt.len() + n_new;
        if cap > self.max_seq() {
            return Err(Error::BadArg(format!(
                "{} prompt + {n_new} new tokens exceed max_position_embeddings {}",
                prompt.len(),
                self.h.max_seq
            )));
        }
        self.pool.install(|| {
            let t = prompt.len();
            let chunk = (PREFILL_ROWS / batch).clamp(1, t);
            let mut st = State::new(&self.h, batch, chunk, cap)?;
            let mut toks = vec![0u32; batch * chunk];
            let mut c0 = 0;
            while c0 < t {
                let c1 = (c0 + chunk).min(t);
                let ct = c1 - c0;
                for b in 0..batch {
                    toks[b * ct..(b + 1) * ct].copy_from_slice(&prompt[c0..c1]);
                }
                self.forward(&mut st, &toks[..batch * ct], ct, c0, c1 == t);
                c0 = c1;
            }
            let mut last = vec![0u32; batch];
            for step in 0..n_new {
                if step > 0 {
                    if self.cancel.load(Ordering::Relaxed) {
                        return Err(Error::Cancelled);
                    }
                    self.forward(&mut st, &last, 1, t + step - 1, true);
                }
                let v = self.vocab();
                for (b, id) in last.iter_mut().enumerate() {
                    *id = argmax(&st.logits[b * v..(b + 1) * v])
                        .map_err(|i| Error::Runtime(format!("step {step}: logit {i} of row {b} is NaN")))?;
                }
                out_ns[step] = ns(start);
                out_ids[step * batch..(step + 1) * batch].copy_from_slice(&last);
            }
            if let Some(p) = self.profile() {
                let ms: Vec<String> = p.iter().map(|(n, v)| format!("{n} {:.1}", *v as f64 / 1e6)).collect();
                eprintln!("lmrs profile (ms since load): {}", ms.join("; "));
            }
            Ok(())
        })
    }

    fn vec(&self, s: &Slot) -> &[f32] {
        // Safety: slots come from the image's own validated layout.
        unsafe { cast::<f32>(self.image.bytes(), s.data, s.cols) }
    }

    fn mat(&self, s: &Slot) -> W<'_> {
        let b = self.image.bytes();
        let n = s.rows * s.cols;
        let gs = self.h.group_size as usize;
        // Safety: as vec.
        unsafe {
            match self.h.quant {
                Quant::F32 => W::F32(cast(b, s.data, n)),
                Quant::Q8_0 => W::Q8 {
                    q: cast(b, s.data, n),
                    s: cast(b, s.scales, n / gs),
                    gs,
                },
                Quant::Q4_0 => W::Q4 {
                    q: cast(b, s.data, n / 2),
                    s: cast(b, s.scales, n / gs),
                    gs,
                },
            }
        }
    }

    /// embed writes the f32 embedding of token id into out.
    fn embed(&self, id: usize, out: &mut [f32]) {
        let d = self.h.dim as usize;
        let gs = self.h.group_size as usize;
        match self.mat(&self.layout.embed) {
            W::F32(w) => out.copy_from_slice(&w[id * d..(id + 1) * d]),
            W::Q8 { q, s, .. } => quant::dequantize_q8(&q[id * d..(id + 1) * d], &s[id * d / gs..], gs, out),
            W::Q4 { q, s, .. } => quant::dequantize_q4(&q[id * d / 2..(id + 1) * d / 2], &s[id * d / gs..], gs, out),
        }
    }

    /// matmul computes out_i[b][r] = Σ_k x[b][k]·W_i[r][k] for every (W_i, out_i) of segs, over n input rows of
    /// width cols, as one parallel region: tasks are blocks of weight rows, several per thread.
    fn matmul(&self, st: &mut Scratch, x: &[f32], n: usize, cols: usize, segs: &mut [(&Slot, &mut [f32])]) {
        let gs = self.h.group_size as usize;
        let isa = self.isa;
        let xin = if self.h.quant == Quant::F32 {
            X::F32(&x[..n * cols])
        } else {
            let sc = &mut *st;
            let (q, s) = (&mut sc.xq[..n * cols], &mut sc.xs[..n * cols / gs]);
            let (u, s8) = (&mut sc.xu[..n * cols], &mut sc.x8[..n * cols / gs]);
            if n * cols >= 1 << 15 {
                let g = cols / gs;
                q.par_chunks_mut(cols)
                    .zip(s.par_chunks_mut(g))
                    .zip(u.par_chunks_mut(cols).zip(s8.par_chunks_mut(g)))
                    .zip(x.par_chunks(cols))
                    .for_each(|(((q, s), (u, s8)), x)| kernels::quantize_act(isa, x, gs, q, s, u, s8));
            } else {
                kernels::quantize_act(isa, &x[..n * cols], gs, q, s, u, s8);
            }
            X::Q8 { q, s, u, sum8: s8 }
        };
        let total: usize = segs.iter().map(|(s, _)| s.rows).sum();
        let block = total.div_ceil(self.threads * 4).next_multiple_of(4).max(4);
        let mut tasks: Vec<(W, Rows)> = Vec::with_capacity(total / block + segs.len());
        for (slot, out) in segs.iter_mut() {
            assert!(out.len() >= n * slot.rows && slot.cols == cols);
            let w = self.mat(slot);
            let mut r0 = 0;
            while r0 < slot.rows {
                let r1 = (r0 + block).min(slot.rows);
                tasks.push((
                    w,
                    Rows {
                        r0,
                        r1,
                        n,
                        cols,
                        out: out.as_mut_ptr(),
                        out_stride: slot.rows,
                    },
                ));
                r0 = r1;
            }
        }
        let tasks = SendTasks(tasks);
        tasks.0.par_iter().for_each(|(w, t)| {
            // Safety: tasks write disjoint output rows of buffers that outlive the parallel region.
            unsafe { kernels::rows(isa, *w, xin, *t) }
        });
    }

    /// forward runs rows tokens (batch rows of ct positions each, row b*ct+j at cache position start+j)
    /// through every layer; with last, it leaves each row's final-position logits in st.logits.
    fn forward(&self, st: &mut State, tokens: &[u32], ct: usize, start: usize, last: bool) {
        let h = &self.h;
        let (d, hd, hid) = (h.dim as usize, h.head_dim as usize, h.hidden as usize);
        let (nh, nkv) = (h.n_heads as usize, h.n_kv_heads as usize);
        let (qd, kvd) = (nh * hd, nkv * hd);
        let rows = tokens.len();
        let batch = rows / ct;
        let half = hd / 2;
        let eps = h.rms_eps as f32;
        let mut tk = Tick(self.prof.as_ref().map(|p| (p, Instant::now())));
        for (r, &id) in tokens.iter().enumerate() {
            self.embed(id as usize, &mut st.x[r * d..(r + 1) * d]);
        }
        for j in 0..ct {
            let p = (start + j) as f32;
            for (i, &f) in self.inv_freq.iter().enumerate() {
                let a = f * p;
                st.cos[j * half + i] = (a as f64).cos() as f32;
                st.sin[j * half + i] = (a as f64).sin() as f32;
            }
        }
        tk.lap(0);
        for (li, l) in self.layout.layers.iter().enumerate() {
            let l: &LayerSlots = l;
            rms_norm(
                &mut st.xn[..rows * d],
                &st.x[..rows * d],
                self.vec(&l.attn_norm),
                d,
                eps,
            );
            tk.lap(1);
            self.matmul(
                &mut st.scratch,
                &st.xn,
                rows,
                d,
                &mut [(&l.wq, &mut st.q[..]), (&l.wk, &mut st.k[..]), (&l.wv, &mut st.v[..])],
            );
            tk.lap(2);
            for r in 0..rows {
                let (b, j) = (r / ct, r % ct);
                let (cs, sn) = (&st.cos[j * half..(j + 1) * half], &st.sin[j * half..(j + 1) * half]);
                for hh in 0..nh {
                    rope(&mut st.q[r * qd + hh * hd..r * qd + (hh + 1) * hd], cs, sn);
                }
                for hh in 0..nkv {
                    rope(&mut st.k[r * kvd + hh * hd..r * kvd + (hh + 1) * hd], cs, sn);
                }
                let off = (b * st.cap + start + j) * kvd;
                st.kc[li][off..off + kvd].copy_from_slice(&st.k[r * kvd..(r + 1) * kvd]);
                st.vc[li][off..off + kvd].copy_from_slice(&st.v[r * kvd..(r + 1) * kvd]);
            }
            self.attention(st, li, rows, ct, start);
            tk.lap(3);
            self.matmul(&mut st.scratch, &st.att, rows, qd, &mut [(&l.wo, &mut st.tmp[..])]);
            tk.lap(4);
            add(&mut st.x[..rows * d], &st.tmp[..rows * d]);

            rms_norm(&mut st.xn[..rows * d], &st.x[..rows * d], self.vec(&l.mlp_norm), d, eps);
            tk.lap(1);
            self.matmul(
                &mut st.scratch,
                &st.xn,
                rows,
                d,
                &mut [(&l.gate, &mut st.gate[..]), (&l.up, &mut st.up[..])],
            );
            tk.lap(5);
            swiglu(&mut st.gate[..rows * hid], &st.up[..rows * hid]);
            tk.lap(6);
            self.matmul(&mut st.scratch, &st.gate, rows, hid, &mut [(&l.down, &mut st.tmp[..])]);
            tk.lap(7);
            add(&mut st.x[..rows * d], &st.tmp[..rows * d]);
        }
        if !last {
            tk.lap(1);
            return;
        }
        for b in 0..batch {
            let r = b * ct + ct - 1;
            rms_norm(
                &mut st.last[b * d..(b + 1) * d],
                &st.x[r * d..(r + 1) * d],
                self.vec(&self.layout.norm),
                d,
                eps,
            );
        }
        let lm_head = self.layout.lm_head;
        self.matmul(
            &mut st.scratch,
            &st.last,
            batch,
            d,
            &mut [(&lm_head, &mut st.logits[..])],
        );
        tk.lap(8);
    }

    /// attention is causal attention over the KV cache for every (row, head), in parallel, with the reference
    /// engine's softmax (f64 exp and sum).
    fn attention(&self, st: &mut State, li: usize, rows: usize, ct: usize, start: usize) {
        let h = &self.h;
        let (hd, nh, nkv) = (h.head_dim as usize, h.n_heads as usize, h.n_kv_heads as usize);
        let (qd, kvd) = (nh * hd, nkv * hd);
        let group = nh / nkv;
        let scale = (1.0 / (hd as f64).sqrt()) as f32;
        let (kc, vc, q, cap) = (&st.kc[li], &st.vc[li], &st.q, st.cap);
        let isa = self.isa;
        st.att[..rows * qd].par_chunks_mut(hd).enumerate().for_each_init(
            || vec![0f32; cap],
            |sc, (item, out)| {
                let (r, hh) = (item / nh, item % nh);
                let (b, j) = (r / ct, r % ct);
                let n = start + j + 1;
                let qv = &q[r * qd + hh * hd..r * qd + (hh + 1) * hd];
                let kv_off = b * cap * kvd + (hh / group) * hd;
                let sc = &mut sc[..n];
                let mut mx = f32::NEG_INFINITY;
                for (p, s) in sc.iter_mut().enumerate() {
                    let k = &kc[kv_off + p * kvd..kv_off + p * kvd + hd];
                    *s = dot(isa, qv, k) * scale;
                    mx = mx.max(*s);
                }
                let mut sum = 0f64;
                for s in sc.iter_mut() {
                    let e = ((*s - mx) as f64).exp();
                    *s = e as f32;
                    sum += e;
                }
                let inv = (1.0 / sum) as f32;
                out.fill(0.0);
                for (p, &e) in sc.iter().enumerate() {
                    let w = e * inv;
                    let v = &vc[kv_off + p * kvd..kv_off + p * kvd + hd];
                    for (o, &vv) in out.iter_mut().zip(v) {
                        *o += w * vv;
                    }
                }
            },
        );
    }
}

struct SendTasks<'a>(Vec<(W<'a>, Rows)>);
// Safety: the raw output pointers in Rows are written at disjoint indices only (see Engine::matmul).
unsafe impl Sync for SendTasks<'_> {}
unsafe impl Send for SendTasks<'_> {}
unsafe impl Sync for Rows {}
unsafe impl Send for Rows {}

fn dot(_isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    kernels::dot_f32(a, b)
}

/// params is the parameter count of the model the header describes.
pub fn params(h: &Header) -> i64 {
    let (d, hid, v) = (h.dim as i64, h.hidden as i64, h.vocab as i64);
    let (qd, kvd) = ((h.n_heads * h.head_dim) as i64, (h.n_kv_heads * h.head_dim) as i64);
    let layer = d * qd * 2 + d * kvd * 2 + 3 * d * hid + 2 * d;
    v * d * if h.tied { 1 } else { 2 } + h.n_layers as i64 * layer + d
}

/// Scratch is the int8 copy of a matmul's input.
struct Scratch {
    xq: Vec<i8>,
    xs: Vec<f32>,
    xu: Vec<u8>,
    x8: Vec<i32>,
}

/// State is one generation's KV cache and activations, allocated up front.
struct State {
    cap: usize,
    kc: Vec<Vec<f32>>,
    vc: Vec<Vec<f32>>,
    x: Vec<f32>,
    xn: Vec<f32>,
    tmp: Vec<f32>,
    q: Vec<f32>,
    att: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    last: Vec<f32>,
    logits: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    scratch: Scratch,
}

impl State {
    fn new(h: &Header, batch: usize, chunk: usize, cap: usize) -> Result<State, Error> {
        let (d, hd, hid) = (h.dim as usize, h.head_dim as usize, h.hidden as usize);
        let (qd, kvd) = ((h.n_heads as usize) * hd, (h.n_kv_heads as usize) * hd);
        let rows = batch * chunk;
        let kv = batch
            .checked_mul(cap)
            .and_then(|n| n.checked_mul(kvd))
            .ok_or_else(|| Error::Oom("kv cache size overflows".into()))?;
        let widest = d.max(qd).max(hid);
        let z = |n: usize| vec![0f32; n];
        Ok(State {
            cap,
            kc: (0..h.n_layers).map(|_| z(kv)).collect(),
            vc: (0..h.n_layers).map(|_| z(kv)).collect(),
            x: z(rows * d),
            xn: z(rows * d),
            tmp: z(rows * d),
            q: z(rows * qd),
            att: z(rows * qd),
            k: z(rows * kvd),
            v: z(rows * kvd),
            gate: z(rows * hid),
            up: z(rows * hid),
            last: z(batch * d),
            logits: z(batch * h.vocab as usize),
            cos: z(chunk * hd / 2),
            sin: z(chunk * hd / 2),
            scratch: Scratch {
                xq: vec![0; rows * widest],
                xs: vec![0.0; rows * widest / 16],
                xu: vec![0; rows * widest],
                x8: vec![0; rows * widest / 16],
            },
        })
    }
}

/// rms_norm is LlamaRMSNorm in f32 with the mean of squares summed in f64, as the reference engine does.
fn rms_norm(dst: &mut [f32], x: &[f32], w: &[f32], h: usize, eps: f32) {
    for (dr, xr) in dst.chunks_exact_mut(h).zip(x.chunks_exact(h)) {
        let ss: f64 = xr.iter().map(|&v| v as f64 * v as f64).sum();
        let inv = (1.0 / (((ss / h as f64) as f32 + eps) as f64).sqrt()) as f32;
        for ((d, &v), &g) in dr.iter_mut().zip(xr).zip(w) {
            *d = g * (v * inv);
        }
    }
}

/// rope rotates one head with transformers' rotate_half convention.
fn rope(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = x.len() / 2;
    let (x1, x2) = x.split_at_mut(half);
    for i in 0..half {
        let (a, b) = (x1[i], x2[i]);
        x1[i] = a * cos[i] - b * sin[i];
        x2[i] = b * cos[i] + a * sin[i];
    }
}

fn add(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// swiglu computes gate ← silu(gate)·up with silu(x) = x/(1+e^−x) in f64, as the reference engine does.
fn swiglu(gate: &mut [f32], up: &[f32]) {
    // Two chunks per thread (f64 exp is slow: one token's 5632 of a TinyLlama layer took ~45 µs on 2 chunks).
    let chunk = (gate.len() / (2 * rayon::current_num_threads())).max(256);
    gate.par_chunks_mut(chunk).zip(up.par_chunks(chunk)).for_each(|(g, u)| {
        for (gv, &uv) in g.iter_mut().zip(u) {
            let v = *gv as f64;
            *gv = (v / (1.0 + (-v).exp())) as f32 * uv;
        }
    });
}

/// argmax is the index of the largest value, the lowest on ties; Err(i) for a NaN at i.
pub fn argmax(v: &[f32]) -> Result<u32, usize> {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x.is_nan() {
            return Err(i);
        }
        if x > v[best] {
            best = i;
        }
    }
    Ok(best as u32)
}
