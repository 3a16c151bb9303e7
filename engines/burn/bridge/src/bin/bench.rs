//! burn-bench: the bridge's decode loop timed from Rust alone (no Go, no protocol),
//! for the adapter-overhead check against the runner's figure.
//!
//!     burn-bench --model DIR [--device cuda:0] [--dtype bf16] [--prompt-len 128]
//!                [--new 256] [--warmup 3] [--iters 10] [--attention grouped|fused]
//!                [--threads N] [--prompt-ids 1,2,3]
//!                [--seed 1] [--case p128-n256]
//!
//! Without --prompt-ids the prompt is the runner's for (seed, case name). Prints one JSON line per iteration and a summary line. Metrics use the
//! project's definitions: TTFT = first token offset; decode tok/s = (N-1)/(E2E-TTFT).

use std::path::Path;
use std::time::Instant;

use cib_burn::{AttnMode, Model};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// The runner's prompt (runner/internal/workload.Prompt): n ids in [3, vocab) from
/// splitmix64 over the seed and the case name, so both timings see the same tokens.
fn runner_prompt(seed: u64, name: &str, n: usize, vocab: usize) -> Vec<i32> {
    let mut state = seed ^ 0x9e3779b97f4a7c15;
    for b in name.bytes() {
        state = mix(state ^ b as u64);
    }
    let span = (vocab.max(4) - 3) as u64;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e3779b97f4a7c15);
            (3 + mix(state) % span) as i32
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| -> Option<String> { args.iter().position(|a| a == k).and_then(|i| args.get(i + 1).cloned()) };
    let Some(model) = get("--model") else {
        eprintln!(
            "usage: burn-bench --model DIR [--device cuda:0] [--dtype bf16] [--prompt-len 128] [--new 256] [--warmup 3] [--iters 10] [--attention grouped|fused] [--threads N] [--prompt-ids 1,2,3]"
        );
        std::process::exit(64);
    };
    let device = get("--device").unwrap_or_else(|| "cuda:0".into());
    let dtype = get("--dtype").unwrap_or_else(|| "bf16".into());
    let num = |k: &str, d: usize| get(k).map(|v| v.parse::<usize>().expect(k)).unwrap_or(d);
    let (plen, n_new, warmup, iters, threads) = (
        num("--prompt-len", 128),
        num("--new", 256),
        num("--warmup", 3),
        num("--iters", 10),
        num("--threads", 0),
    );
    let attn = AttnMode::parse(&get("--attention").unwrap_or_default()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let t = Instant::now();
    let mut m = Model::load(Path::new(&model), &device, &dtype, threads, attn).unwrap_or_else(|e| {
        eprintln!("load: {e}");
        std::process::exit(1)
    });
    let load_s = t.elapsed().as_secs_f64();
    let prompt: Vec<i32> = match get("--prompt-ids") {
        Some(s) => s.split(',').map(|x| x.trim().parse().expect("--prompt-ids")).collect(),
        None => runner_prompt(
            get("--seed").map(|v| v.parse().expect("--seed")).unwrap_or(1),
            &get("--case").unwrap_or_else(|| format!("p{plen}-n{n_new}")),
            plen,
            m.cfg.vocab,
        ),
    };
    eprintln!(
        "burn-bench: loaded {model} on {} ({}) in {load_s:.2}s; prompt {} new {n_new} warmup {warmup} iters {iters}",
        m.device_name,
        m.backend,
        prompt.len()
    );
    let mut ids = vec![0i32; n_new];
    let mut ns = vec![0i64; n_new];
    let (mut tps, mut ttft, mut itl) = (Vec::new(), Vec::new(), Vec::new());
    for it in 0..warmup + iters {
        let warm = it < warmup;
        m.generate(&prompt, &mut ids, &mut ns).unwrap_or_else(|e| {
            eprintln!("generate: {e}");
            std::process::exit(1)
        });
        let first = ns[0] as f64 / 1e9;
        let e2e = ns[n_new - 1] as f64 / 1e9;
        let dec = if n_new > 1 {
            (n_new - 1) as f64 / (e2e - first)
        } else {
            f64::NAN
        };
        println!(
            "{{\"iteration\":{it},\"warmup\":{warm},\"ttft_ms\":{:.3},\"e2e_ms\":{:.3},\"decode_tok_s\":{dec:.3},\"first_ids\":{:?}}}",
            first * 1e3,
            e2e * 1e3,
            &ids[..ids.len().min(8)]
        );
        if !warm {
            tps.push(dec);
            ttft.push(first * 1e3);
            for w in ns.windows(2) {
                itl.push((w[1] - w[0]) as f64 / 1e6);
            }
        }
    }
    println!(
        "{{\"summary\":true,\"engine\":\"burn-bench\",\"device\":{:?},\"backend\":{:?},\"dtype\":{dtype:?},\"attention\":{:?},\"prompt_tokens\":{},\"new_tokens\":{n_new},\"iters\":{iters},\"median_decode_tok_s\":{:.3},\"median_ttft_ms\":{:.3},\"median_itl_ms\":{:.4},\"load_s\":{load_s:.3},\"reserved_bytes\":{}}}",
        m.device_name,
        m.backend,
        attn.name(),
        prompt.len(),
        median(tps),
        median(ttft),
        median(itl),
        m.reserved_bytes()
    );
}
