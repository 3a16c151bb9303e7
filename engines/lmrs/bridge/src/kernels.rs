//! Dot-product kernels. The f32 one is plain Rust written so LLVM vectorizes it: fixed-width lane arrays (no
//! float reassociation is needed, each lane is its own sum). The int8 ones are intrinsics: AVX-512 VNNI
//! (vpdpbusd, four weight rows per pass; module vnni) and AVX2 (vpmaddubsw + vpmaddwd; module simd), integer
//! products summed in i32 within a group and folded into f32 lanes once per group; the baseline target has the
//! plain-Rust versions. `Isa::detect` picks the instruction set at load (CIB_LMRS_ISA can lower it, to compare).
//! `scripts/build-lmrs.sh --asm` dumps the assembly to check the inner loops (vpdpbusd on zmm for q8_0/q4_0 on
//! AVX-512, vpmaddubsw on ymm for AVX2, vfmadd on f32).

use crate::quant;

/// Isa is the instruction set the kernels run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Generic,
}

impl Isa {
    /// detect returns the best instruction set this CPU has.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512vnni")
            {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Generic
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512 (f,bw,vl,vnni)",
            Isa::Avx2 => "avx2+fma",
            Isa::Generic => "generic",
        }
    }
}

/// Rows is one task of a matrix product: weight rows [r0, r1) against n input rows, writing
/// out[b*out_stride + r] for every input row b. Pointers because tasks of one product run on several threads
/// and write disjoint elements of the same output.
#[derive(Clone, Copy)]
pub struct Rows {
    pub r0: usize,
    pub r1: usize,
    pub n: usize,
    pub cols: usize,
    pub out: *mut f32,
    pub out_stride: usize,
}

/// Weights of one matrix, as stored in the file image.
#[derive(Clone, Copy)]
pub enum W<'a> {
    F32(&'a [f32]),
    Q8 { q: &'a [i8], s: &'a [f32], gs: usize },
    Q4 { q: &'a [u8], s: &'a [f32], gs: usize },
}

/// X is the input rows: f32 for f32 weights, int8 + per-group scales for quantized ones. The quantized input also
/// carries what the AVX-512 VNNI kernels need (see quant::act_extras): u = q + 128 as unsigned bytes (vpdpbusd
/// multiplies unsigned by signed bytes) and sum8 = 8·Σq per group (Q4_0's −8 offset folded out of the loop).
#[derive(Clone, Copy)]
pub enum X<'a> {
    F32(&'a [f32]),
    Q8 {
        q: &'a [i8],
        s: &'a [f32],
        u: &'a [u8],
        sum8: &'a [i32],
    },
}

#[inline(always)]
fn reduce<const L: usize>(mut acc: [f32; L]) -> f32 {
    let mut w = L;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0]
}

/// dot_f32 is Σ a[i]·b[i] in 32 lanes.
#[inline(always)]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 32;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..L {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    reduce(acc) + tail
}

/// dot_q8 is Σ_groups ws·xs·Σ wq·xq: int8 products summed in i32 lanes per group, folded into f32 lanes.
#[inline(always)]
fn dot_q8<const L: usize>(wq: &[i8], ws: &[f32], xq: &[i8], xs: &[f32], gs: usize) -> f32 {
    let mut acc = [0f32; L];
    for ((wg, xg), (&a, &b)) in wq.chunks_exact(gs).zip(xq.chunks_exact(gs)).zip(ws.iter().zip(xs)) {
        let mut iacc = [0i32; L];
        for (wc, xc) in wg.chunks_exact(L).zip(xg.chunks_exact(L)) {
            for i in 0..L {
                iacc[i] += (wc[i] as i16 * xc[i] as i16) as i32;
            }
        }
        let d = a * b;
        for i in 0..L {
            acc[i] += iacc[i] as f32 * d;
        }
    }
    reduce(acc)
}

/// dot_q4 is dot_q8 for Q4_0 weights: byte j of a group holds element j (low nibble) and element j+gs/2 (high).
#[inline(always)]
fn dot_q4<const L: usize>(wq: &[u8], ws: &[f32], xq: &[i8], xs: &[f32], gs: usize) -> f32 {
    let half = gs / 2;
    let mut acc = [0f32; L];
    for ((wg, xg), (&a, &b)) in wq.chunks_exact(half).zip(xq.chunks_exact(gs)).zip(ws.iter().zip(xs)) {
        let (xlo, xhi) = xg.split_at(half);
        let mut iacc = [0i32; L];
        for ((wc, lc), hc) in wg.chunks_exact(L).zip(xlo.chunks_exact(L)).zip(xhi.chunks_exact(L)) {
            for i in 0..L {
                let lo = (wc[i] & 15) as i16 - 8;
                let hi = (wc[i] >> 4) as i16 - 8;
                iacc[i] += (lo * lc[i] as i16) as i32 + (hi * hc[i] as i16) as i32;
            }
        }
        let d = a * b;
        for i in 0..L {
            acc[i] += iacc[i] as f32 * d;
        }
    }
    reduce(acc)
}

/// run_rows computes one task; the generic body every instruction-set variant inlines.
///
/// # Safety
/// t.out must be valid for writes at b*t.out_stride + r for b < t.n, r in [r0, r1), and no other thread may
/// write those elements.
#[inline(always)]
unsafe fn run_rows<const AVX2: bool>(w: W, x: X, t: Rows) {
    let c = t.cols;
    for r in t.r0..t.r1 {
        for b in 0..t.n {
            let v = match (w, x) {
                (W::F32(wv), X::F32(xv)) => dot_f32(&wv[r * c..(r + 1) * c], &xv[b * c..(b + 1) * c]),
                (W::Q8 { q, s, gs }, X::Q8 { q: xq, s: xs, .. }) => {
                    let g = c / gs;
                    let (wq, ws) = (&q[r * c..(r + 1) * c], &s[r * g..(r + 1) * g]);
                    let (xq, xs) = (&xq[b * c..(b + 1) * c], &xs[b * g..(b + 1) * g]);
                    if AVX2 && gs % 32 == 0 {
                        simd::dot_q8(wq, ws, xq, xs, gs)
                    } else if gs % 32 == 0 {
                        dot_q8::<32>(wq, ws, xq, xs, gs)
                    } else {
                        dot_q8::<16>(wq, ws, xq, xs, gs)
                    }
                }
                (W::Q4 { q, s, gs }, X::Q8 { q: xq, s: xs, .. }) => {
                    let g = c / gs;
                    let (wq, ws) = (&q[r * c / 2..(r + 1) * c / 2], &s[r * g..(r + 1) * g]);
                    let (xq, xs) = (&xq[b * c..(b + 1) * c], &xs[b * g..(b + 1) * g]);
                    if AVX2 && gs == 64 {
                        simd::dot_q4_64(wq, ws, xq, xs)
                    } else if gs % 64 == 0 {
                        dot_q4::<32>(wq, ws, xq, xs, gs)
                    } else {
                        dot_q4::<8>(wq, ws, xq, xs, gs)
                    }
                }
                _ => unreachable!("weights and input of different kinds"),
            };
            *t.out.add(b * t.out_stride + r) = v;
        }
    }
}

/// run_rows_avx512 takes the VNNI kernels for Q8_0 (group size a multiple of 64) and Q4_0 (group size 64), four
/// weight rows at a time; everything else runs the AVX2 code compiled for this target.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
unsafe fn run_rows_avx512(w: W, x: X, t: Rows) {
    match (w, x) {
        (W::Q8 { q, s, gs }, X::Q8 { s: xs, u, .. }) if gs % 64 == 0 && t.cols % gs == 0 => {
            let (c, g) = (t.cols, t.cols / gs);
            assert!(q.len() >= t.r1 * c && s.len() >= t.r1 * g && u.len() >= t.n * c && xs.len() >= t.n * g);
            let (qp, sp) = (q.as_ptr(), s.as_ptr());
            let mut r = t.r0;
            while r < t.r1 {
                let k = if t.r1 - r >= 4 { 4 } else { 1 };
                for b in 0..t.n {
                    let (xu, xsb) = (u.as_ptr().add(b * c), xs.as_ptr().add(b * g));
                    let o = t.out.add(b * t.out_stride + r);
                    if k == 4 {
                        let w4 = [0, 1, 2, 3].map(|i| qp.add((r + i) * c));
                        let s4 = [0, 1, 2, 3].map(|i| sp.add((r + i) * g));
                        let v = vnni::q8::<4>(w4, s4, xu, xsb, g, gs);
                        for (i, v) in v.into_iter().enumerate() {
                            *o.add(i) = v;
                        }
                    } else {
                        *o = vnni::q8::<1>([qp.add(r * c)], [sp.add(r * g)], xu, xsb, g, gs)[0];
                    }
                }
                r += k;
            }
        }
        (W::Q4 { q, s, gs }, X::Q8 { q: xq, s: xs, sum8, .. }) if gs == 64 && t.cols % 64 == 0 => {
            let (c, g) = (t.cols, t.cols / 64);
            assert!(q.len() >= t.r1 * c / 2 && s.len() >= t.r1 * g && xq.len() >= t.n * c && xs.len() >= t.n * g);
            assert!(sum8.len() >= t.n * g);
            let (qp, sp) = (q.as_ptr(), s.as_ptr());
            let mut r = t.r0;
            while r < t.r1 {
                let k = if t.r1 - r >= 4 { 4 } else { 1 };
                for b in 0..t.n {
                    let (xp, xsb, x8) = (xq.as_ptr().add(b * c), xs.as_ptr().add(b * g), sum8.as_ptr().add(b * g));
                    let o = t.out.add(b * t.out_stride + r);
                    if k == 4 {
                        let w4 = [0, 1, 2, 3].map(|i| qp.add((r + i) * c / 2));
                        let s4 = [0, 1, 2, 3].map(|i| sp.add((r + i) * g));
                        let v = vnni::q4_64::<4>(w4, s4, xp, xsb, x8, g);
                        for (i, v) in v.into_iter().enumerate() {
                            *o.add(i) = v;
                        }
                    } else {
                        *o = vnni::q4_64::<1>([qp.add(r * c / 2)], [sp.add(r * g)], xp, xsb, x8, g)[0];
                    }
                }
                r += k;
            }
        }
        _ => run_rows::<true>(w, x, t),
    }
}

/// vnni holds the AVX-512 VNNI int8 dot products: vpdpbusd multiplies 64 unsigned by 64 signed bytes and adds
/// the products in groups of four to 16 i32 lanes, one instruction for what AVX2 needs four for (sign, sign,
/// maddubs, madd). Each call works on R weight rows against one input row, so the input's bytes are loaded once
/// per R rows and the R accumulator chains run independently; a row's result does not depend on R (the same
/// operations in the same order), so the output does not depend on how rows are split among threads.
#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    /// q8 is Σ_groups ws·xs·Σ w·x for Q8_0 weights, gs a multiple of 64. The input comes as u = x + 128 (unsigned),
    /// so Σ u·w = Σ x·w + 128·Σ w: a second vpdpbusd of 128s against the weights takes the offset back out.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    #[inline]
    pub unsafe fn q8<const R: usize>(
        w: [*const i8; R],
        ws: [*const f32; R],
        xu: *const u8,
        xs: *const f32,
        groups: usize,
        gs: usize,
    ) -> [f32; R] {
        let c80 = _mm512_set1_epi8(-128);
        let mut acc = [_mm512_setzero_ps(); R];
        for g in 0..groups {
            let mut dot = [_mm512_setzero_si512(); R];
            let mut off = [_mm512_setzero_si512(); R];
            let mut c = g * gs;
            let end = c + gs;
            while c < end {
                let xv = _mm512_loadu_si512(xu.add(c) as *const _);
                for i in 0..R {
                    let wv = _mm512_loadu_si512(w[i].add(c) as *const _);
                    dot[i] = _mm512_dpbusd_epi32(dot[i], xv, wv);
                    off[i] = _mm512_dpbusd_epi32(off[i], c80, wv);
                }
                c += 64;
            }
            let xsg = *xs.add(g);
            for i in 0..R {
                let d = _mm512_set1_ps(*ws[i].add(g) * xsg);
                acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(dot[i], off[i])), d, acc[i]);
            }
        }
        acc.map(|a| _mm512_reduce_add_ps(a))
    }

    /// q4_64 is the Q4_0 dot product for groups of 64 (32 bytes: low nibbles are x[0..32], high nibbles x[32..64]):
    /// the nibbles (0..15, unsigned) go straight into vpdpbusd against the signed input, and the −8 offset comes
    /// out once per group as 8·Σx (sum8, computed with the input's quantization).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    #[inline]
    pub unsafe fn q4_64<const R: usize>(
        w: [*const u8; R],
        ws: [*const f32; R],
        xq: *const i8,
        xs: *const f32,
        sum8: *const i32,
        groups: usize,
    ) -> [f32; R] {
        let mask = _mm512_set1_epi8(0x0f);
        // Shift the upper 256 bits (the copy that supplies the high nibbles) right by 4 in every 16-bit lane.
        let shift = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
        let mut acc = [_mm512_setzero_ps(); R];
        for g in 0..groups {
            let xv = _mm512_loadu_si512(xq.add(g * 64) as *const _);
            // Σ (n−8)·x = Σ n·x − 8·Σ x: 8·Σ x in lane 0, zeros elsewhere, subtracted in i32 (exact).
            let x8 = _mm512_zextsi128_si512(_mm_cvtsi32_si128(*sum8.add(g)));
            let xsg = *xs.add(g);
            for i in 0..R {
                let b = _mm512_broadcast_i64x4(_mm256_loadu_si256(w[i].add(g * 32) as *const __m256i));
                let nib = _mm512_and_si512(_mm512_srlv_epi64(b, shift), mask);
                let dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nib, xv);
                let d = _mm512_set1_ps(*ws[i].add(g) * xsg);
                acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(dot, x8)), d, acc[i]);
            }
        }
        acc.map(|a| _mm512_reduce_add_ps(a))
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_rows_avx2(w: W, x: X, t: Rows) {
    run_rows::<true>(w, x, t)
}

#[inline(never)]
unsafe fn run_rows_generic(w: W, x: X, t: Rows) {
    run_rows::<false>(w, x, t)
}

/// simd holds the int8 dot products written with AVX2 intrinsics: LLVM does not find the maddubs idiom (u8×i8
/// products summed in i16 pairs) on its own and widens every byte to i32 instead, several times slower. The sign
/// trick is llama.cpp's: |w| × (x with w's sign) keeps the products exact, and |q| <= 127 keeps the i16 pair sums
/// from saturating.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// madd adds the 32 products w[i]·x[i] of two int8 vectors to acc in eight i32 lanes.
    #[inline(always)]
    unsafe fn madd(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        let p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
        _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)))
    }

    /// dot_q8 is the Q8_0 dot product for a group size that is a multiple of 32.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_q8(wq: &[i8], ws: &[f32], xq: &[i8], xs: &[f32], gs: usize) -> f32 {
        let groups = ws.len().min(xs.len()).min(wq.len() / gs).min(xq.len() / gs);
        let (wp, xp) = (wq.as_ptr(), xq.as_ptr());
        let mut acc = _mm256_setzero_ps();
        for g in 0..groups {
            let mut isum = _mm256_setzero_si256();
            let mut c = 0;
            while c < gs {
                let w = _mm256_loadu_si256(wp.add(g * gs + c) as *const __m256i);
                let x = _mm256_loadu_si256(xp.add(g * gs + c) as *const __m256i);
                isum = madd(isum, w, x);
                c += 32;
            }
            let d = _mm256_set1_ps(*ws.get_unchecked(g) * *xs.get_unchecked(g));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
        }
        hsum(acc)
    }

    /// dot_q4_64 is the Q4_0 dot product for groups of 64: 32 bytes, low nibbles against x[0..32], high nibbles
    /// against x[32..64].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_q4_64(wq: &[u8], ws: &[f32], xq: &[i8], xs: &[f32]) -> f32 {
        let groups = ws.len().min(xs.len()).min(wq.len() / 32).min(xq.len() / 64);
        let (wp, xp) = (wq.as_ptr(), xq.as_ptr());
        let (mask, eight) = (_mm256_set1_epi8(0x0f), _mm256_set1_epi8(8));
        let mut acc = _mm256_setzero_ps();
        for g in 0..groups {
            let b = _mm256_loadu_si256(wp.add(g * 32) as *const __m256i);
            let lo = _mm256_sub_epi8(_mm256_and_si256(b, mask), eight);
            let hi = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(b, 4), mask), eight);
            let xl = _mm256_loadu_si256(xp.add(g * 64) as *const __m256i);
            let xh = _mm256_loadu_si256(xp.add(g * 64 + 32) as *const __m256i);
            let isum = madd(madd(_mm256_setzero_si256(), lo, xl), hi, xh);
            let d = _mm256_set1_ps(*ws.get_unchecked(g) * *xs.get_unchecked(g));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
        }
        hsum(acc)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod simd {
    pub unsafe fn dot_q8(wq: &[i8], ws: &[f32], xq: &[i8], xs: &[f32], gs: usize) -> f32 {
        super::dot_q8::<32>(wq, ws, xq, xs, gs)
    }
    pub unsafe fn dot_q4_64(wq: &[u8], ws: &[f32], xq: &[i8], xs: &[f32]) -> f32 {
        super::dot_q4::<32>(wq, ws, xq, xs, 64)
    }
}

/// quantize_act quantizes n rows of activations (quant::quantize_act, then quant::act_extras) with the chosen
/// instruction set: the same arithmetic, so the same bytes, on every one.
pub fn quantize_act(isa: Isa, x: &[f32], gs: usize, q: &mut [i8], s: &mut [f32], u: &mut [u8], sum8: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(x: &[f32], gs: usize, q: &mut [i8], s: &mut [f32], u: &mut [u8], sum8: &mut [i32]) {
        quant::quantize_act(x, gs, q, s);
        quant::act_extras(q, gs, u, sum8);
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // Safety: isa comes from Isa::detect (or a lower one), so this CPU has AVX2 and FMA.
        Isa::Avx512 | Isa::Avx2 => unsafe { avx2(x, gs, q, s, u, sum8) },
        _ => {
            quant::quantize_act(x, gs, q, s);
            quant::act_extras(q, gs, u, sum8);
        }
    }
}

/// rows runs one task with the chosen instruction set.
///
/// # Safety
/// As run_rows; isa must be one Isa::detect returned on this CPU.
pub unsafe fn rows(isa: Isa, w: W, x: X, t: Rows) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => run_rows_avx512(w, x, t),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => run_rows_avx2(w, x, t),
        _ => run_rows_generic(w, x, t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant;

    fn naive(w: &[f32], x: &[f32]) -> f32 {
        w.iter().zip(x).map(|(a, b)| a * b).sum()
    }

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn every_isa_agrees_with_the_naive_sums() {
        let (rows_n, cols, gs) = (7, 192, 64);
        let w = data(rows_n * cols, 1);
        let x = data(2 * cols, 7);
        let mut q8 = vec![0i8; w.len()];
        let mut q4 = vec![0u8; w.len() / 2];
        let mut s = vec![0f32; w.len() / gs];
        let mut s4 = s.clone();
        quant::quantize_q8(&w, gs, &mut q8, &mut s);
        quant::quantize_q4(&w, gs, &mut q4, &mut s4);
        let mut xq = vec![0i8; x.len()];
        let mut xs = vec![0f32; x.len() / gs];
        quant::quantize_act(&x, gs, &mut xq, &mut xs);
        let (mut xu, mut x8) = (vec![0u8; x.len()], vec![0i32; x.len() / gs]);
        quant::act_extras(&xq, gs, &mut xu, &mut x8);
        // The quantized kernels must equal the exact dot product of the dequantized operands.
        let (mut w8, mut w4, mut xd) = (vec![0f32; w.len()], vec![0f32; w.len()], vec![0f32; x.len()]);
        quant::dequantize_q8(&q8, &s, gs, &mut w8);
        quant::dequantize_q4(&q4, &s4, gs, &mut w4);
        quant::dequantize_q8(&xq, &xs, gs, &mut xd);
        let mut isas = vec![Isa::Generic];
        if Isa::detect() != Isa::Generic {
            isas.push(Isa::Avx2);
        }
        if Isa::detect() == Isa::Avx512 {
            isas.push(Isa::Avx512);
        }
        for isa in isas {
            for (name, wv, xv, wd, xdv) in [
                ("f32", W::F32(&w), X::F32(&x), &w, &x),
                (
                    "q8_0",
                    W::Q8 { q: &q8, s: &s, gs },
                    X::Q8 {
                        q: &xq,
                        s: &xs,
                        u: &xu,
                        sum8: &x8,
                    },
                    &w8,
                    &xd,
                ),
                (
                    "q4_0",
                    W::Q4 { q: &q4, s: &s4, gs },
                    X::Q8 {
                        q: &xq,
                        s: &xs,
                        u: &xu,
                        sum8: &x8,
                    },
                    &w4,
                    &xd,
                ),
            ] {
                let mut out = vec![0f32; 2 * rows_n];
                let t = Rows {
                    r0: 0,
                    r1: rows_n,
                    n: 2,
                    cols,
                    out: out.as_mut_ptr(),
                    out_stride: rows_n,
                };
                unsafe { rows(isa, wv, xv, t) };
                for b in 0..2 {
                    for r in 0..rows_n {
                        let want = naive(&wd[r * cols..(r + 1) * cols], &xdv[b * cols..(b + 1) * cols]);
                        let got = out[b * rows_n + r];
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{isa:?} {name} row {r} input {b}: {got}, want {want}"
                        );
                    }
                }
            }
        }
    }
}
