//! Times one matrix-vector product per weight format on one thread (TinyLlama's MLP shape, 5632×2048), so the
//! kernels can be checked against the core's share of memory bandwidth: `cargo run --release --example kernel`.
use std::time::Instant;

use cib_lmrs::kernels::{rows, Isa, Rows, W, X};
use cib_lmrs::quant;

fn main() {
    let (n_out, cols, gs) = (5632, 2048, 64);
    let w: Vec<f32> = (0..n_out * cols)
        .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let x: Vec<f32> = (0..cols).map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0).collect();
    let (mut q8, mut s8) = (vec![0i8; w.len()], vec![0f32; w.len() / gs]);
    let (mut q4, mut s4) = (vec![0u8; w.len() / 2], vec![0f32; w.len() / gs]);
    quant::quantize_q8(&w, gs, &mut q8, &mut s8);
    quant::quantize_q4(&w, gs, &mut q4, &mut s4);
    let (mut xq, mut xs) = (vec![0i8; cols], vec![0f32; cols / gs]);
    quant::quantize_act(&x, gs, &mut xq, &mut xs);
    let mut out = vec![0f32; n_out];
    for isa in [Isa::detect(), Isa::Avx2, Isa::Generic] {
        for (name, wv, xv, bytes) in [
            ("f32", W::F32(&w), X::F32(&x), w.len() * 4),
            (
                "q8_0",
                W::Q8 { q: &q8, s: &s8, gs },
                X::Q8 { q: &xq, s: &xs },
                q8.len() + s8.len() * 4,
            ),
            (
                "q4_0",
                W::Q4 { q: &q4, s: &s4, gs },
                X::Q8 { q: &xq, s: &xs },
                q4.len() + s4.len() * 4,
            ),
        ] {
            let t = Rows {
                r0: 0,
                r1: n_out,
                n: 1,
                cols,
                out: out.as_mut_ptr(),
                out_stride: n_out,
            };
            let reps = 20;
            let start = Instant::now();
            for _ in 0..reps {
                unsafe { rows(isa, wv, xv, t) };
            }
            let s = start.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{isa:?} {name}: {:.2} ms per product, {:.1} GB/s of weights",
                s * 1e3,
                bytes as f64 / s / 1e9
            );
        }
    }
}
