//! Times one matrix-vector product per weight format and instruction set on one thread (TinyLlama's MLP shape,
//! 5632×2048, 11.5 MB of q8_0: it stays in L2/L3, so this is the kernel's compute rate, not memory), so the
//! kernels can be checked against the core's share of memory bandwidth: `cargo run --release --example kernel`.
//! Times are the thread's CPU time (a shared machine's wall clock includes other processes' turns).
use cib_lmrs::kernels::{rows, Isa, Rows, W, X};
use cib_lmrs::quant;

fn cpu_time() -> f64 {
    let mut ts = libc_timespec { tv_sec: 0, tv_nsec: 0 };
    // Safety: clock_gettime writes one timespec.
    unsafe { clock_gettime(3, &mut ts) }; // CLOCK_THREAD_CPUTIME_ID
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[repr(C)]
struct libc_timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clk: i32, ts: *mut libc_timespec) -> i32;
}

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
    let (mut xu, mut x8) = (vec![0u8; cols], vec![0i32; cols / gs]);
    quant::act_extras(&xq, gs, &mut xu, &mut x8);
    let xin = X::Q8 {
        q: &xq,
        s: &xs,
        u: &xu,
        sum8: &x8,
    };
    let mut out = vec![0f32; n_out];
    let mut isas = vec![Isa::detect()];
    if Isa::detect() == Isa::Avx512 {
        isas.push(Isa::Avx2);
    }
    isas.push(Isa::Generic);
    for isa in isas {
        for (name, wv, xv, bytes) in [
            ("f32", W::F32(&w), X::F32(&x), w.len() * 4),
            ("q8_0", W::Q8 { q: &q8, s: &s8, gs }, xin, q8.len() + s8.len() * 4),
            ("q4_0", W::Q4 { q: &q4, s: &s4, gs }, xin, q4.len() + s4.len() * 4),
        ] {
            let t = Rows {
                r0: 0,
                r1: n_out,
                n: 1,
                cols,
                out: out.as_mut_ptr(),
                out_stride: n_out,
            };
            let reps = if isa == Isa::Generic { 5 } else { 40 };
            unsafe { rows(isa, wv, xv, t) };
            let start = cpu_time();
            for _ in 0..reps {
                unsafe { rows(isa, wv, xv, t) };
            }
            let s = (cpu_time() - start) / reps as f64;
            println!(
                "{isa:?} {name}: {:.3} ms CPU per product, {:.1} GB/s of weights, {:.2} G MAC/s",
                s * 1e3,
                bytes as f64 / s / 1e9,
                w.len() as f64 / s / 1e9
            );
        }
    }
}
