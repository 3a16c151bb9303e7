//! Decode benchmark without the runner: builds a model of a Llama shape with pseudo-random weights in memory
//! (no file; the TinyLlama-1.1B shape by default) and times greedy decode per thread count.
//!
//!   cargo run --release --example decode -- QUANT THREADS[,THREADS...] [LAYERS]
//!
//! Prints, per thread count: time to first token (32-token prompt), decode tok/s over DECODE_NEW (32) new tokens
//! (best of 3), the weight bytes streamed per second at that rate, and with CIB_LMRS_PROFILE=1 where a decode
//! step's time goes. DECODE_MODEL=path times that model instead (an lmrs file or directory, as the engine loads
//! it); DECODE_FILE=path writes the synthetic model there and loads it as a file. CIB_LMRS_ISA=avx2 runs the
//! AVX2 kernels on an AVX-512 machine.
use std::time::Instant;

use cib_lmrs::format::{self, Header, Image, Quant, HEADER_LEN};
use cib_lmrs::hf;
use cib_lmrs::model::Engine;
use rayon::prelude::*;

fn value(k: usize, i: usize) -> f32 {
    let mut h = (i as u64 ^ ((k as u64) << 40)).wrapping_mul(0x9E3779B97F4A7C15);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58476D1CE4E5B9);
    h ^= h >> 32;
    ((h & 0xffff) as f32 / 32768.0 - 1.0) * 0.05
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let q = Quant::parse(args.get(1).map_or("q8_0", |s| s.as_str())).expect("quant: f32, q8_0 or q4_0");
    let threads: Vec<usize> = args
        .get(2)
        .map_or("1", |s| s.as_str())
        .split(',')
        .map(|t| t.parse().expect("threads"))
        .collect();
    let layers: u32 = args.get(3).map_or(22, |s| s.parse().expect("layers"));
    // DECODE_MODEL=path: time that model (an lmrs file or directory, as the engine loads it) instead.
    if let Ok(m) = std::env::var("DECODE_MODEL") {
        let p = std::path::Path::new(&m);
        let f = if p.is_dir() {
            p.join("model.lmrs")
        } else {
            p.to_path_buf()
        };
        let size = std::fs::metadata(&f).expect("model file").len() as f64; // GB/s below: of the whole file
        for &th in &threads {
            let e = Engine::load(p, "", 0, th).expect("load").0;
            bench(&e, th, &m, size);
        }
        return;
    }
    let mut h = Header {
        quant: q,
        group_size: if q == Quant::F32 { 0 } else { 64 },
        vocab: 32000,
        dim: 2048,
        hidden: 5632,
        n_layers: layers,
        n_heads: 32,
        n_kv_heads: 4,
        head_dim: 64,
        max_seq: 2048,
        tied: false,
        rope_theta: 10000.0,
        rms_eps: 1e-5,
        rope: None,
        payload_bytes: 0,
    };
    let l = h.layout();
    h.payload_bytes = (l.end - HEADER_LEN) as u64;
    let t = Instant::now();
    let mut img = Image::zeroed(l.end);
    let b = img.bytes_mut();
    b[..HEADER_LEN].copy_from_slice(&h.encode());
    let mut k = 0;
    let mut put = |s: &format::Slot, m: bool| {
        let mut x = vec![0f32; s.rows * s.cols];
        x.par_iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = if m { value(k, i) } else { 1.0 });
        hf::encode(b, &h, s, &x, m);
        k += 1;
    };
    put(&l.embed, true);
    for ly in &l.layers {
        for (s, m) in [
            (&ly.attn_norm, false),
            (&ly.wq, true),
            (&ly.wk, true),
            (&ly.wv, true),
            (&ly.wo, true),
            (&ly.mlp_norm, false),
            (&ly.gate, true),
            (&ly.up, true),
            (&ly.down, true),
        ] {
            put(s, m);
        }
    }
    put(&l.norm, false);
    put(&l.lm_head, true);
    let bytes = l.end as f64;
    let streamed = bytes - (l.embed.end - l.embed.data) as f64; // decode reads every matrix but the embedding table
    eprintln!(
        "{} model, {layers} layers: {:.3} GB ({:.3} GB read per token), built in {:.1} s",
        q.name(),
        bytes / 1e9,
        streamed / 1e9,
        t.elapsed().as_secs_f64()
    );
    // DECODE_FILE=path: write the image there and load it as the engine loads a model file (mapped).
    let file = std::env::var("DECODE_FILE").ok();
    if let Some(f) = &file {
        let crc = format::checksum(img.bytes());
        img.bytes_mut()[format::CRC_AT..format::CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(f, img.bytes()).expect("write DECODE_FILE");
    }
    let mut img = Some(img);
    for &th in &threads {
        let e = match &file {
            Some(f) => Engine::load(std::path::Path::new(f), "", 0, th).expect("load").0,
            None => Engine::from_image(img.take().unwrap(), th).expect("engine"),
        };
        bench(&e, th, q.name(), streamed);
        if file.is_none() {
            img = Some(e.into_image());
        }
    }
}

/// bench times generate on e: a warm-up, one prefill-only run, then 3 runs of 32 new tokens (best of 3).
fn bench(e: &Engine, th: usize, qname: &str, streamed: f64) {
    let prompt = 32usize;
    let new: usize = std::env::var("DECODE_NEW").map_or(32, |v| v.parse().expect("DECODE_NEW"));
    let ids: Vec<u32> = (0..prompt as u32).map(|i| (i * 7919) % e.vocab() as u32).collect();
    let run = |n: usize| {
        let (mut out, mut ns) = (vec![0u32; n], vec![0i64; n]);
        e.generate(&ids, n, 1, &mut out, &mut ns).expect("generate");
        ns
    };
    run(4); // warm-up
    let p0 = e.profile();
    let _ = run(1);
    let p1 = e.profile();
    let mut best = f64::MAX;
    let mut ttft = 0.0;
    for _ in 0..3 {
        let ns = run(new + 1);
        let dt = (ns[new] - ns[0]) as f64 / 1e9 / new as f64;
        if dt < best {
            best = dt;
            ttft = ns[0] as f64 / 1e6;
        }
    }
    let p2 = e.profile();
    println!(
        "{} threads={th} isa={:?}: ttft {ttft:.1} ms, decode {:.2} tok/s ({:.2} ms/token), {:.1} GB/s of weights",
        qname,
        e.isa(),
        1.0 / best,
        best * 1e3,
        streamed / best / 1e9
    );
    if let (Some(p0), Some(p1), Some(p2)) = (p0, p1, p2) {
        // p2 − p1 is 3 runs of prefill + 32 steps; p1 − p0 is one prefill.
        let steps = (3 * new) as f64;
        let mut line = String::from("  per decode step, ms:");
        for i in 0..p2.len() {
            let d = (p2[i].1 - p1[i].1) as f64 - 3.0 * (p1[i].1 - p0[i].1) as f64;
            line += &format!(" {} {:.3};", p2[i].0, d / steps / 1e6);
        }
        println!("{line}");
    }
}
