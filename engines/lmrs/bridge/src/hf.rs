//! Converting a Hugging Face Llama directory (config.json + safetensors) into an lmrs image in memory, at load:
//! the same bytes `runner models convert --to lmrs` writes, so a model behaves the same from either source.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

use crate::format::{self, Header, Image, Llama3Rope, Quant, Slot, HEADER_LEN};
use crate::quant;

/// header_from_config reads config.json with transformers' LlamaConfig defaults and returns the header of an
/// lmrs file in quant with group size gs (0: the default for this shape).
pub fn header_from_config(dir: &Path, q: Quant, gs: u32) -> Result<Header, String> {
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| format!("parse {}: {e}", path.display()))?;
    let name = path.display().to_string();
    let int = |k: &str, def: Option<u64>| -> Result<u32, String> {
        match v.get(k) {
            None | Some(Value::Null) => def.map(|d| d as u32).ok_or_else(|| format!("{name}: {k}: missing")),
            Some(x) => x
                .as_u64()
                .filter(|&n| n > 0 && n <= u32::MAX as u64)
                .map(|n| n as u32)
                .ok_or_else(|| format!("{name}: {k}: want a positive integer, got {x}")),
        }
    };
    let float = |obj: &Value, k: &str, def: f64| -> Result<f64, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(def),
            Some(x) => x.as_f64().ok_or_else(|| format!("{name}: {k}: want a number, got {x}")),
        }
    };
    let s = |k: &str, def: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or(def).to_string();
    if s("model_type", "llama") != "llama" {
        return Err(format!(
            "{name}: model_type {:?}: only llama is supported",
            s("model_type", "")
        ));
    }
    if s("hidden_act", "silu") != "silu" {
        return Err(format!(
            "{name}: hidden_act {:?}: only silu is supported",
            s("hidden_act", "")
        ));
    }
    for k in ["attention_bias", "mlp_bias"] {
        if v.get(k).and_then(|x| x.as_bool()) == Some(true) {
            return Err(format!("{name}: {k}: biases are not supported"));
        }
    }
    let n_heads = int("num_attention_heads", None)?;
    let dim = int("hidden_size", None)?;
    let head_dim = int("head_dim", Some((dim / n_heads.max(1)) as u64))?;
    let mut rope_theta = float(&v, "rope_theta", 10000.0)?;
    let mut scaling = v.get("rope_scaling").filter(|x| !x.is_null()).cloned();
    if let Some(rp) = v.get("rope_parameters").filter(|x| x.is_object()) {
        // transformers 5: rope_theta and the scaling rule live in rope_parameters; legacy keys win.
        if v.get("rope_theta").is_none_or(|x| x.is_null()) {
            rope_theta = float(rp, "rope_theta", rope_theta)?;
        }
        if scaling.is_none() {
            scaling = Some(rp.clone());
        }
    }
    let rope = match &scaling {
        None => None,
        Some(r) => {
            let kind = r
                .get("rope_type")
                .or_else(|| r.get("type"))
                .and_then(|x| x.as_str())
                .unwrap_or("default");
            match kind {
                "default" => None,
                "llama3" => {
                    let l = Llama3Rope {
                        factor: float(r, "factor", 0.0)?,
                        low_freq_factor: float(r, "low_freq_factor", 0.0)?,
                        high_freq_factor: float(r, "high_freq_factor", 0.0)?,
                        original_max_position_embeddings: r
                            .get("original_max_position_embeddings")
                            .and_then(|x| x.as_u64())
                            .unwrap_or(0) as u32,
                    };
                    if !(l.factor > 0.0
                        && l.low_freq_factor > 0.0
                        && l.high_freq_factor > l.low_freq_factor
                        && l.original_max_position_embeddings > 0)
                    {
                        return Err(format!("{name}: rope_scaling llama3: incomplete parameters {r}"));
                    }
                    Some(l)
                }
                k => return Err(format!("{name}: rope_scaling type {k:?}: only llama3 is supported")),
            }
        }
    };
    let mut h = Header {
        quant: q,
        group_size: 0,
        vocab: int("vocab_size", None)?,
        dim,
        hidden: int("intermediate_size", None)?,
        n_layers: int("num_hidden_layers", None)?,
        n_heads,
        n_kv_heads: int("num_key_value_heads", Some(n_heads as u64))?,
        head_dim,
        max_seq: int("max_position_embeddings", Some(2048))?,
        tied: v.get("tie_word_embeddings").and_then(|x| x.as_bool()).unwrap_or(false),
        rope_theta,
        rms_eps: float(&v, "rms_norm_eps", 1e-6)?,
        rope,
        payload_bytes: 0,
    };
    if q != Quant::F32 {
        h.group_size = if gs == 0 {
            format::default_group_size(&h.row_lengths())?
        } else {
            gs
        };
    } else if gs != 0 {
        return Err(format!("group size {gs} given for f32 weights"));
    }
    h.validate().map_err(|e| format!("{name}: {e}"))?;
    h.payload_bytes = (h.layout().end - HEADER_LEN) as u64;
    Ok(h)
}

/// Tensor is one safetensors tensor, mapped.
struct Tensor {
    file: usize,
    dtype: String,
    shape: Vec<usize>,
    begin: usize,
    end: usize,
}

/// Checkpoint is the mapped safetensors files of a model directory.
pub struct Checkpoint {
    maps: Vec<memmap2::Mmap>,
    tensors: HashMap<String, Tensor>,
}

/// weight_files lists the shards named by model.safetensors.index.json, else model.safetensors.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| format!("read {}: {e}", index.display()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("parse {}: {e}", index.display()))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| format!("{}: no weight_map object", index.display()))?;
        let mut files: Vec<PathBuf> = map.values().filter_map(|f| f.as_str()).map(|f| dir.join(f)).collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    Err(format!(
        "{}: no model.safetensors, model.safetensors.index.json or model.lmrs",
        dir.display()
    ))
}

impl Checkpoint {
    /// open maps every safetensors file of dir and reads their headers.
    pub fn open(dir: &Path) -> Result<Checkpoint, String> {
        let mut maps = Vec::new();
        let mut tensors = HashMap::new();
        for (fi, path) in weight_files(dir)?.iter().enumerate() {
            let f = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
            // Safety: model files are read-only inputs nobody writes during the run.
            let m = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| format!("map {}: {e}", path.display()))?;
            if m.len() < 8 {
                return Err(format!("{}: too short for a safetensors file", path.display()));
            }
            let n = u64::from_le_bytes(m[0..8].try_into().unwrap()) as usize;
            if n > 100 << 20 || 8 + n > m.len() {
                return Err(format!("{}: header length {n} out of range", path.display()));
            }
            let hv: Value = serde_json::from_slice(&m[8..8 + n])
                .map_err(|e| format!("{}: safetensors header: {e}", path.display()))?;
            let obj = hv
                .as_object()
                .ok_or_else(|| format!("{}: safetensors header is not an object", path.display()))?;
            for (name, t) in obj {
                if name == "__metadata__" {
                    continue;
                }
                let bad = || format!("{}: tensor {name}: malformed entry {t}", path.display());
                let dtype = t.get("dtype").and_then(|x| x.as_str()).ok_or_else(bad)?.to_string();
                let shape: Vec<usize> = t
                    .get("shape")
                    .and_then(|x| x.as_array())
                    .ok_or_else(bad)?
                    .iter()
                    .map(|d| d.as_u64().map(|d| d as usize).ok_or_else(bad))
                    .collect::<Result<_, _>>()?;
                let off = t.get("data_offsets").and_then(|x| x.as_array()).ok_or_else(bad)?;
                let (b, e) = match (
                    off.first().and_then(|x| x.as_u64()),
                    off.get(1).and_then(|x| x.as_u64()),
                ) {
                    (Some(b), Some(e)) if b <= e => (8 + n + b as usize, 8 + n + e as usize),
                    _ => return Err(bad()),
                };
                if e > m.len() {
                    return Err(format!("{}: tensor {name} ends past the file", path.display()));
                }
                tensors.insert(
                    name.clone(),
                    Tensor {
                        file: fi,
                        dtype,
                        shape,
                        begin: b,
                        end: e,
                    },
                );
            }
            maps.push(m);
        }
        Ok(Checkpoint { maps, tensors })
    }

    /// params is the number of values in the checkpoint.
    pub fn params(&self) -> i64 {
        self.tensors
            .values()
            .map(|t| t.shape.iter().product::<usize>() as i64)
            .sum()
    }

    /// fault_in touches every page of the files so the weights sit in host memory.
    pub fn fault_in(&self) {
        let mut sum = 0u8;
        for m in &self.maps {
            for b in m.iter().step_by(4096) {
                sum = sum.wrapping_add(*b);
            }
        }
        std::hint::black_box(sum);
    }

    /// f32 returns a tensor's values as f32 after checking its shape.
    fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| format!("tensor {name:?}: not in the checkpoint"))?;
        if t.shape != shape {
            return Err(format!("tensor {name:?}: shape {:?}, want {shape:?}", t.shape));
        }
        let b = &self.maps[t.file][t.begin..t.end];
        let n: usize = shape.iter().product();
        let size = match t.dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            d => return Err(format!("tensor {name:?}: dtype {d}: want F32, F16 or BF16")),
        };
        if b.len() != n * size {
            return Err(format!(
                "tensor {name:?}: {} bytes for {n} values of {}",
                b.len(),
                t.dtype
            ));
        }
        let mut out = vec![0f32; n];
        const CHUNK: usize = 1 << 16;
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
            let src = &b[c * CHUNK * size..(c * CHUNK + o.len()) * size];
            match t.dtype.as_str() {
                "F32" => {
                    for (v, s) in o.iter_mut().zip(src.chunks_exact(4)) {
                        *v = f32::from_le_bytes(s.try_into().unwrap());
                    }
                }
                "F16" => {
                    for (v, s) in o.iter_mut().zip(src.chunks_exact(2)) {
                        *v = half::f16::from_le_bytes([s[0], s[1]]).to_f32();
                    }
                }
                _ => {
                    for (v, s) in o.iter_mut().zip(src.chunks_exact(2)) {
                        *v = half::bf16::from_le_bytes([s[0], s[1]]).to_f32();
                    }
                }
            }
        });
        Ok(out)
    }

    /// layer_count is one more than the largest layer index named in the checkpoint.
    fn layer_count(&self) -> usize {
        self.tensors
            .keys()
            .filter_map(|k| {
                k.strip_prefix("model.layers.")?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .map(|i| i + 1)
            .max()
            .unwrap_or(0)
    }
}

/// encode writes one tensor's values into its slot of the image, quantized as the header says.
pub fn encode(img: &mut [u8], h: &Header, slot: &Slot, x: &[f32], matrix: bool) {
    let n = slot.rows * slot.cols;
    assert_eq!(x.len(), n);
    if !matrix || h.quant == Quant::F32 {
        let out = &mut img[slot.data..slot.data + 4 * n];
        out.par_chunks_mut(1 << 18)
            .zip(x.par_chunks(1 << 16))
            .for_each(|(o, v)| {
                for (d, s) in o.chunks_exact_mut(4).zip(v) {
                    d.copy_from_slice(&s.to_le_bytes());
                }
            });
        return;
    }
    let gs = h.group_size as usize;
    let (data, scales) = img.split_at_mut(slot.scales);
    let scales = &mut scales[..4 * n / gs];
    let rows = slot.rows;
    let cols = slot.cols;
    let per = (cols / gs) * 4;
    match h.quant {
        Quant::Q8_0 => {
            let q = &mut data[slot.data..slot.data + n];
            q.par_chunks_mut(cols)
                .zip(scales.par_chunks_mut(per))
                .enumerate()
                .for_each(|(r, (qr, sr))| {
                    let mut s = vec![0f32; cols / gs];
                    // Safety: i8 and u8 have the same layout.
                    let qi = unsafe { std::slice::from_raw_parts_mut(qr.as_mut_ptr() as *mut i8, cols) };
                    quant::quantize_q8(&x[r * cols..(r + 1) * cols], gs, qi, &mut s);
                    for (d, v) in sr.chunks_exact_mut(4).zip(&s) {
                        d.copy_from_slice(&v.to_le_bytes());
                    }
                });
        }
        Quant::Q4_0 => {
            let q = &mut data[slot.data..slot.data + n / 2];
            q.par_chunks_mut(cols / 2)
                .zip(scales.par_chunks_mut(per))
                .enumerate()
                .for_each(|(r, (qr, sr))| {
                    let mut s = vec![0f32; cols / gs];
                    quant::quantize_q4(&x[r * cols..(r + 1) * cols], gs, qr, &mut s);
                    for (d, v) in sr.chunks_exact_mut(4).zip(&s) {
                        d.copy_from_slice(&v.to_le_bytes());
                    }
                });
        }
        Quant::F32 => unreachable!(),
    }
    debug_assert_eq!(rows * cols, n);
}

/// convert builds the lmrs image of an HF checkpoint with header h (from header_from_config).
pub fn convert(ck: &Checkpoint, h: &Header) -> Result<Image, String> {
    let layout = h.layout();
    if ck.layer_count() != h.n_layers as usize {
        return Err(format!(
            "checkpoint has tensors for {} layers, config.json says num_hidden_layers={}",
            ck.layer_count(),
            h.n_layers
        ));
    }
    let mut img = Image::zeroed(layout.end);
    let b = img.bytes_mut();
    b[..HEADER_LEN].copy_from_slice(&h.encode());
    let mut put = |name: &str, slot: &Slot, matrix: bool| -> Result<(), String> {
        let shape: Vec<usize> = if matrix {
            vec![slot.rows, slot.cols]
        } else {
            vec![slot.cols]
        };
        let x = ck.f32(name, &shape)?;
        encode(b, h, slot, &x, matrix);
        Ok(())
    };
    put("model.embed_tokens.weight", &layout.embed, true)?;
    for (i, l) in layout.layers.iter().enumerate() {
        let p = format!("model.layers.{i}.");
        put(&(p.clone() + "input_layernorm.weight"), &l.attn_norm, false)?;
        put(&(p.clone() + "self_attn.q_proj.weight"), &l.wq, true)?;
        put(&(p.clone() + "self_attn.k_proj.weight"), &l.wk, true)?;
        put(&(p.clone() + "self_attn.v_proj.weight"), &l.wv, true)?;
        put(&(p.clone() + "self_attn.o_proj.weight"), &l.wo, true)?;
        put(&(p.clone() + "post_attention_layernorm.weight"), &l.mlp_norm, false)?;
        put(&(p.clone() + "mlp.gate_proj.weight"), &l.gate, true)?;
        put(&(p.clone() + "mlp.up_proj.weight"), &l.up, true)?;
        put(&(p + "mlp.down_proj.weight"), &l.down, true)?;
    }
    put("model.norm.weight", &layout.norm, false)?;
    if !h.tied {
        put("lm_head.weight", &layout.lm_head, true)?;
    }
    let crc = format::checksum(b);
    b[format::CRC_AT..format::CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{verify, CRC_AT};

    /// The mini model of runner/internal/lmrsfmt's golden test: element i of the k-th tensor in file order.
    fn value(k: usize, i: usize) -> f32 {
        ((i * 7 + k * 3) % 19) as f32 / 8.0 - 9.0 / 8.0
    }

    fn mini(q: Quant) -> Header {
        let mut h = Header {
            quant: q,
            group_size: 32,
            vocab: 32,
            dim: 32,
            hidden: 64,
            n_layers: 1,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 16,
            max_seq: 128,
            tied: false,
            rope_theta: 500000.0,
            rms_eps: 1e-5,
            rope: Some(Llama3Rope {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 64,
            }),
            payload_bytes: 0,
        };
        h.payload_bytes = (h.layout().end - HEADER_LEN) as u64;
        h
    }

    /// The Go writer (runner/internal/lmrsfmt, golden files in its testdata) and this crate's encoder must write
    /// the same bytes, and the reader must accept them.
    #[test]
    fn go_golden_files_equal_the_rust_encoding() {
        for q in [Quant::Q8_0, Quant::Q4_0] {
            let h = mini(q);
            let l = h.layout();
            let mut img = Image::zeroed(l.end);
            let b = img.bytes_mut();
            b[..HEADER_LEN].copy_from_slice(&h.encode());
            let ly = &l.layers[0];
            let slots = [
                (l.embed, true),
                (ly.attn_norm, false),
                (ly.wq, true),
                (ly.wk, true),
                (ly.wv, true),
                (ly.wo, true),
                (ly.mlp_norm, false),
                (ly.gate, true),
                (ly.up, true),
                (ly.down, true),
                (l.norm, false),
                (l.lm_head, true),
            ];
            for (k, (s, m)) in slots.iter().enumerate() {
                let x: Vec<f32> = (0..s.rows * s.cols).map(|i| value(k, i)).collect();
                encode(b, &h, s, &x, *m);
            }
            let crc = format::checksum(b);
            b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
            let path = format!(
                "{}/../../../runner/internal/lmrsfmt/testdata/mini-{}.lmrs",
                env!("CARGO_MANIFEST_DIR"),
                q.name()
            );
            let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
            assert!(
                golden == b,
                "{}: Rust encoding differs from the Go golden file {path}",
                q.name()
            );
            let (got, _) = verify(&golden).unwrap();
            assert_eq!(got, h);
        }
    }

    #[test]
    fn reader_refuses_foreign_and_damaged_files() {
        let h = mini(Quant::Q8_0);
        let mut img = Image::zeroed(h.layout().end);
        let b = img.bytes_mut();
        b[..HEADER_LEN].copy_from_slice(&h.encode());
        let crc = format::checksum(b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(verify(b).is_ok());
        let cases: [(&str, Box<dyn Fn(&mut Vec<u8>)>); 5] = [
            ("bad magic", Box::new(|f| f[0] = b'X')),
            ("upstream lm.rs", Box::new(|f| f[..4].copy_from_slice(b"lmrs"))),
            ("format version 2", Box::new(|f| f[8] = 2)),
            ("checksum mismatch", Box::new(|f| f[HEADER_LEN + 5] ^= 1)),
            ("header says", Box::new(|f| f.truncate(f.len() - 1))),
        ];
        for (want, damage) in cases {
            let mut f = b.to_vec();
            damage(&mut f);
            let err = verify(&f).expect_err(want).to_string();
            let key = match want {
                "bad magic" => "bad magic",
                "upstream lm.rs" => "upstream lm.rs export",
                "format version 2" => "format version 2",
                k => k,
            };
            assert!(err.contains(key), "{want}: error {err:?}");
        }
    }
}
