//! Rust-only timing of the engine's decode loop (no Go, no protocol), to check
//! the runner's figure for adapter overhead.
//!
//!   bench MODEL_DIR [--device cuda:0] [--dtype bf16] [--prompt-len 128] [--new 256]
//!         [--warmup 2] [--iters 5] [--threads 0] [--seed 1] [--case p128-n256]
//!
//! The prompt ids are the runner's for that seed and case name (runner/internal/
//! workload.Prompt: splitmix64 over [3, vocab)). Per iteration it prints TTFT,
//! decode tok/s = (N-1) / (t_last - t_first) and E2E; last, the median decode
//! tok/s over the timed iterations, on a line starting "median_decode_tok_s".
use std::path::Path;
use std::process::ExitCode;

use cib_candle::engine::Engine;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut model = None;
    let (mut device, mut dtype) = ("cpu".to_string(), "f32".to_string());
    let (mut prompt_len, mut n_new, mut warmup, mut iters, mut threads) = (128usize, 256usize, 2usize, 5usize, 0usize);
    let (mut seed, mut case) = (1u64, None::<String>);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let num = |s: String, name: &str| s.parse::<usize>().map_err(|e| format!("{name} {s:?}: {e}"));
        match a.as_str() {
            "--device" => device = val("--device")?,
            "--dtype" => dtype = val("--dtype")?,
            "--prompt-len" => prompt_len = num(val("--prompt-len")?, "--prompt-len")?,
            "--new" => n_new = num(val("--new")?, "--new")?,
            "--warmup" => warmup = num(val("--warmup")?, "--warmup")?,
            "--iters" => iters = num(val("--iters")?, "--iters")?,
            "--threads" => threads = num(val("--threads")?, "--threads")?,
            "--seed" => seed = num(val("--seed")?, "--seed")? as u64,
            "--case" => case = Some(val("--case")?),
            s if s.starts_with("--") => return Err(format!("unknown flag {s}")),
            s => model = Some(s.to_string()),
        }
    }
    let model = model
        .ok_or("usage: bench MODEL_DIR [--device D] [--dtype T] [--prompt-len N] [--new N] [--warmup N] [--iters N]")?;
    if n_new < 2 || iters < 1 {
        return Err("need --new >= 2 and --iters >= 1".into());
    }
    let (engine, loaded) = Engine::load(Path::new(&model), &device, &dtype, threads).map_err(|e| e.to_string())?;
    println!(
        "loaded {model} on {} ({}) dtype {dtype}: context {:.1} ms, to host {:.1} ms, to device {:.1} ms, {} params",
        device,
        loaded.device_name,
        loaded.context_init_ns as f64 / 1e6,
        loaded.weights_to_host_ns as f64 / 1e6,
        loaded.weights_to_device_ns as f64 / 1e6,
        loaded.params
    );
    let case = case.unwrap_or_else(|| format!("p{prompt_len}-n{n_new}"));
    let prompt = runner_prompt(seed, &case, prompt_len, engine.vocab());
    let mut ids = vec![0u32; n_new];
    let mut ns = vec![0i64; n_new];
    let mut rates = Vec::new();
    for it in 0..warmup + iters {
        engine
            .generate(&prompt, n_new, 1, &mut ids, &mut ns)
            .map_err(|e| e.to_string())?;
        let (first, last) = (ns[0], ns[n_new - 1]);
        let rate = (n_new - 1) as f64 / ((last - first) as f64 / 1e9);
        let warm = it < warmup;
        println!(
            "{} {}: ttft {:.2} ms, decode {:.2} tok/s, e2e {:.2} ms, first ids {:?}",
            if warm { "warmup" } else { "iter" },
            if warm { it } else { it - warmup },
            first as f64 / 1e6,
            rate,
            last as f64 / 1e6,
            &ids[..ids.len().min(8)]
        );
        if !warm {
            rates.push(rate);
        }
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = rates.len();
    let median = if m % 2 == 1 {
        rates[m / 2]
    } else {
        (rates[m / 2 - 1] + rates[m / 2]) / 2.0
    };
    println!("median_decode_tok_s {median:.2} (case {case}, prompt {prompt_len}, new {n_new}, {m} iterations, {device} {dtype})");
    Ok(())
}

/// runner_prompt mirrors runner/internal/workload.Prompt: n ids in [3, vocab)
/// from splitmix64 seeded by the seed and the case name.
fn runner_prompt(seed: u64, name: &str, n: usize, vocab: usize) -> Vec<u32> {
    const GOLDEN: u64 = 0x9e3779b97f4a7c15;
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    let mut state = seed ^ GOLDEN;
    for b in name.bytes() {
        state = mix(state ^ b as u64);
    }
    let span = (vocab.saturating_sub(3)).max(1) as u64;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(GOLDEN);
            (3 + mix(state) % span) as u32
        })
        .collect()
}
