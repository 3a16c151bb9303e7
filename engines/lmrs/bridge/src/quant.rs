//! Group-wise symmetric quantization, as lm.rs does it: each group of `gs` consecutive values along a row shares
//! one f32 scale. The weight quantizers here and in runner/internal/lmrsfmt are the same f32 arithmetic step by
//! step, so a model converted in memory at load is byte-for-byte the file the runner writes.

/// quantize_q8 writes q = round(x/d) with d = max|x|/127 per group (q = 0 for an all-zero group).
pub fn quantize_q8(x: &[f32], gs: usize, q: &mut [i8], s: &mut [f32]) {
    for ((xg, qg), sg) in x.chunks_exact(gs).zip(q.chunks_exact_mut(gs)).zip(s.iter_mut()) {
        let amax = xg.iter().fold(0f32, |m, v| if v.abs() > m { v.abs() } else { m });
        let d = amax / 127.0;
        *sg = d;
        for (qv, &v) in qg.iter_mut().zip(xg) {
            *qv = if d == 0.0 { 0 } else { (v / d).round() as i8 };
        }
    }
}

/// quantize_q4 writes llama.cpp's Q4_0 values: d = m/−8 where m is the group's value of largest magnitude (the
/// first on ties), q = clamp(round(x/d)+8, 0, 15). A group of gs values takes gs/2 bytes: byte j holds q[j] in
/// its low nibble and q[j+gs/2] in its high nibble, so a kernel unpacks both halves with plain masks and shifts.
pub fn quantize_q4(x: &[f32], gs: usize, q: &mut [u8], s: &mut [f32]) {
    let half = gs / 2;
    for ((xg, qg), sg) in x.chunks_exact(gs).zip(q.chunks_exact_mut(half)).zip(s.iter_mut()) {
        let mut m = 0f32;
        for &v in xg {
            if v.abs() > m.abs() {
                m = v;
            }
        }
        let d = m / -8.0;
        *sg = d;
        let nib = |v: f32| -> u8 {
            if d == 0.0 {
                8
            } else {
                ((v / d).round() + 8.0).clamp(0.0, 15.0) as u8
            }
        };
        for j in 0..half {
            qg[j] = nib(xg[j]) | (nib(xg[j + half]) << 4);
        }
    }
}

/// quantize_act quantizes activations to int8 per group for the integer dot products (the kernels' input; never
/// stored). It multiplies by the inverse scale, which is faster and need not match any file. Inlined into
/// kernels::quantize_act's per-ISA copies (with SSE4.1 and up, LLVM rounds inline instead of calling roundf).
#[inline(always)]
pub fn quantize_act(x: &[f32], gs: usize, q: &mut [i8], s: &mut [f32]) {
    for ((xg, qg), sg) in x.chunks_exact(gs).zip(q.chunks_exact_mut(gs)).zip(s.iter_mut()) {
        let amax = xg.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d == 0.0 { 0.0 } else { 1.0 / d };
        *sg = d;
        for (qv, &v) in qg.iter_mut().zip(xg) {
            *qv = (v * id).round() as i8;
        }
    }
}

/// act_extras derives what the AVX-512 VNNI kernels take besides q: u = q + 128 as unsigned bytes and
/// sum8 = 8·Σq per group of gs.
#[inline(always)]
pub fn act_extras(q: &[i8], gs: usize, u: &mut [u8], sum8: &mut [i32]) {
    for ((qg, ug), s) in q.chunks_exact(gs).zip(u.chunks_exact_mut(gs)).zip(sum8.iter_mut()) {
        let mut t = 0i32;
        for (uv, &v) in ug.iter_mut().zip(qg) {
            *uv = (v as u8) ^ 0x80;
            t += v as i32;
        }
        *s = 8 * t;
    }
}

/// dequantize_q8 writes the f32 values of one quantized row.
pub fn dequantize_q8(q: &[i8], s: &[f32], gs: usize, out: &mut [f32]) {
    for ((qg, og), &d) in q.chunks_exact(gs).zip(out.chunks_exact_mut(gs)).zip(s) {
        for (o, &v) in og.iter_mut().zip(qg) {
            *o = v as f32 * d;
        }
    }
}

/// dequantize_q4 writes the f32 values of one Q4_0 row.
pub fn dequantize_q4(q: &[u8], s: &[f32], gs: usize, out: &mut [f32]) {
    let half = gs / 2;
    for ((qg, og), &d) in q.chunks_exact(half).zip(out.chunks_exact_mut(gs)).zip(s) {
        for j in 0..half {
            og[j] = ((qg[j] & 15) as i32 - 8) as f32 * d;
            og[j + half] = ((qg[j] >> 4) as i32 - 8) as f32 * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_round_trip_error_is_within_half_a_step() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32 - 31.5) / 10.0).collect();
        let (mut q, mut s, mut y) = (vec![0i8; 64], vec![0f32; 2], vec![0f32; 64]);
        quantize_q8(&x, 32, &mut q, &mut s);
        dequantize_q8(&q, &s, 32, &mut y);
        for g in 0..2 {
            for i in g * 32..(g + 1) * 32 {
                assert!(
                    (x[i] - y[i]).abs() <= s[g] / 2.0 + 1e-6,
                    "x[{i}] = {}, got {}",
                    x[i],
                    y[i]
                );
            }
        }
    }

    #[test]
    fn q4_keeps_the_extreme_exactly() {
        let mut x: Vec<f32> = (0..16).map(|i| i as f32 / 10.0).collect();
        x[3] = -2.0;
        let (mut q, mut s, mut y) = (vec![0u8; 8], vec![0f32; 1], vec![0f32; 16]);
        quantize_q4(&x, 16, &mut q, &mut s);
        assert_eq!(s[0], 0.25);
        dequantize_q4(&q, &s, 16, &mut y);
        assert_eq!(y[3], -2.0);
        assert_eq!(q[0] & 15, 8, "x[0] = 0 maps to 8");
        assert_eq!(q[3] & 15, 0, "the extreme maps to 0 (−8)");
        for i in 0..16 {
            assert!((x[i] - y[i]).abs() <= 0.125 + 1e-6, "x[{i}] = {}, got {}", x[i], y[i]);
        }
    }

    #[test]
    fn zero_groups() {
        let x = [0f32; 16];
        let (mut q8, mut q4, mut s) = (vec![1i8; 16], vec![0u8; 8], vec![1f32; 1]);
        quantize_q8(&x, 16, &mut q8, &mut s);
        assert!(q8.iter().all(|&v| v == 0) && s[0] == 0.0);
        quantize_q4(&x, 16, &mut q4, &mut s);
        assert!(q4.iter().all(|&v| v == 0x88) && s[0] == 0.0);
    }
}
