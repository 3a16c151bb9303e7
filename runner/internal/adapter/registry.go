// Package adapter checks an engine's adapter overhead: the engine's own decode
// loop with no Go and no protocol (its "native" tool) against the runner's
// figure for the same bridge code, weights and prompt, interleaved on one
// device so drift hits both sides alike.
//
// The registry says, per engine, which native tool to run, how to call it and
// how to read its output; Run alternates native runs and runner launches;
// Verdict compares the two sides.
package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/workload"
)

// Params describe one check: the workload both sides run and where the
// binaries are.
type Params struct {
	Engine string `json:"engine"`
	// BinDir holds the engine binaries and their native tools.
	BinDir string `json:"bin_dir"`
	// Model is the model directory (HF layout); Device is cpu or cuda:N.
	Model     string `json:"model"`
	Device    string `json:"device"`
	DType     string `json:"dtype"`
	PromptLen int    `json:"prompt_len"`
	NewTokens int    `json:"new_tokens"`
	// Warmup and Iterations are per run, on both sides.
	Warmup     int `json:"warmup"`
	Iterations int `json:"iterations"`
	// Seed and Case name the runner's prompt ids (workload.Prompt); native
	// tools that take them draw the same ids.
	Seed uint64 `json:"seed"`
	Case string `json:"case"`
	// Threads is the CPU thread count (0: each side's default).
	Threads int `json:"threads,omitempty"`
	// Options are the engine's options (ENGINE:key=value), given to the
	// runner's launch and mapped onto the native tool's flags.
	Options map[string]string `json:"options,omitempty"`
	// Getenv reads the environment handed to the command (CIB_PYTHON…).
	Getenv func(string) string `json:"-"`
	// WorkDir is the directory relative paths are resolved from.
	WorkDir string `json:"work_dir"`
}

func (p Params) getenv(k string) string {
	if p.Getenv == nil {
		return ""
	}
	return p.Getenv(k)
}

// Cmd is one native run: argv, what goes to its stdin, and variables (KEY=value) it gets on top of the check's
// environment.
type Cmd struct {
	Path  string
	Args  []string
	Stdin []byte
	Env   []string
}

// String is the command line as a shell would take it (for reports).
func (c Cmd) String() string {
	var parts []string
	for _, e := range c.Env {
		parts = append(parts, quote(e))
	}
	parts = append(parts, quote(c.Path))
	for _, a := range c.Args {
		parts = append(parts, quote(a))
	}
	s := strings.Join(parts, " ")
	if len(c.Stdin) > 0 {
		s += " < native-request.json"
	}
	return s
}

func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Iteration is one iteration a native tool printed. TTFTMs is 0 when the tool
// gives no TTFT.
type Iteration struct {
	Warmup     bool    `json:"warmup"`
	DecodeTokS float64 `json:"decode_tok_s"`
	TTFTMs     float64 `json:"ttft_ms,omitempty"`
	// FirstIDs are the first output token ids (up to 8) where the tool
	// prints them: with the same weights, prompt and greedy decoding both
	// sides should agree.
	FirstIDs []int `json:"first_ids,omitempty"`
}

// Native is an engine's native tool.
type Native struct {
	Engine string
	// Tool names the native tool ("candle-bench", "bench.py") in messages.
	Tool string
	// Build says how to get the tool when it is missing.
	Build string
	// TTFT is true when the tool prints a TTFT of the same definition as the
	// runner's (first token − iteration start).
	TTFT bool
	// Spec is the engine's default options on the runner's side (pytorch's
	// compiled mode); Params.Options override them.
	Spec map[string]string
	// Note is a caveat printed in the report.
	Note string
	// Command returns the native run's command; it fails with a clear error
	// when the tool is missing. It may run a preparation step (llamacpp
	// converts the model to GGUF once).
	Command func(ctx context.Context, p Params) (Cmd, error)
	// Parse reads the tool's stdout.
	Parse func(out []byte) ([]Iteration, error)
}

// ErrUnknownEngine is returned by Lookup for an engine with no native tool.
var ErrUnknownEngine = errors.New("no native tool")

// Lookup returns the native tool of an engine.
func Lookup(engine string) (*Native, error) {
	for _, n := range registry {
		if n.Engine == engine {
			return n, nil
		}
	}
	return nil, fmt.Errorf("engine %q: %w registered for the adapter check (engines with one: %s)",
		engine, ErrUnknownEngine, strings.Join(Engines(), ", "))
}

// Engines lists the engines that have a native tool.
func Engines() []string {
	var out []string
	for _, n := range registry {
		out = append(out, n.Engine)
	}
	return out
}

// Options returns the engine options the runner's launch gets: the entry's
// defaults, then p.Options.
func (n *Native) Options(p Params) map[string]string {
	o := map[string]string{}
	for k, v := range n.Spec {
		o[k] = v
	}
	for k, v := range p.Options {
		o[k] = v
	}
	return o
}

var registry = []*Native{
	{
		Engine: "candle", Tool: "candle-bench", Build: "scripts/build-candle.sh (release profile; --cuda for the GPU host)", TTFT: true,
		Command: func(_ context.Context, p Params) (Cmd, error) {
			bin, err := binary(p, "candle-bench", "scripts/build-candle.sh")
			if err != nil {
				return Cmd{}, err
			}
			args := append([]string{p.Model}, commonFlags(p, "--new", "--iters")...)
			return Cmd{Path: bin, Args: append(args, threadFlag(p)...)}, nil
		},
		Parse: parseTextIters,
	},
	{
		Engine: "llamacpp", Tool: "llamacpp-bench", Build: "scripts/build-llamacpp.sh (release profile; --cuda for the GPU host)", TTFT: true,
		Note: "llamacpp-bench runs the GGUF that `llamacpp gguf MODEL --type T` prints (the engine's own conversion, option type, default the dtype).",
		Command: func(ctx context.Context, p Params) (Cmd, error) {
			bin, err := binary(p, "llamacpp-bench", "scripts/build-llamacpp.sh")
			if err != nil {
				return Cmd{}, err
			}
			eng, err := binary(p, "llamacpp", "scripts/build-llamacpp.sh")
			if err != nil {
				return Cmd{}, err
			}
			ty := p.Options["type"]
			if ty == "" {
				ty = p.DType
			}
			c := exec.CommandContext(ctx, eng, "gguf", p.Model, "--type", ty)
			c.Dir = p.WorkDir
			var stderr strings.Builder
			c.Stderr = &stderr
			out, err := c.Output()
			if err != nil {
				return Cmd{}, fmt.Errorf("llamacpp gguf %s --type %s: %w: %s", p.Model, ty, err, strings.TrimSpace(stderr.String()))
			}
			gguf := strings.TrimSpace(string(out))
			args := append([]string{gguf}, commonFlags(p, "--new", "--iters")...)
			for _, k := range []string{"flash_attn", "n_ubatch", "type_k", "type_v"} {
				if v, ok := p.Options[k]; ok {
					args = append(args, "--"+strings.ReplaceAll(k, "_", "-"), v)
				}
			}
			return Cmd{Path: bin, Args: append(args, threadFlag(p)...)}, nil
		},
		Parse: parseTextIters,
	},
	{
		Engine: "burn", Tool: "burn-bench", Build: "scripts/build-burn.sh --cuda (burn-bench is built for CUDA only)", TTFT: true,
		Command: func(_ context.Context, p Params) (Cmd, error) {
			bin, err := binary(p, "burn-bench", "scripts/build-burn.sh --cuda")
			if err != nil {
				return Cmd{}, err
			}
			args := append([]string{"--model", p.Model}, commonFlags(p, "--new", "--iters")...)
			if v, ok := p.Options["attention"]; ok {
				args = append(args, "--attention", v)
			}
			// The engine's autotune_level option, as the engine applies it (engines/burn/engine.go): cubecl's level,
			// in a store of its own per level, so both sides replay the same tuning.
			var env []string
			if v, ok := p.Options["autotune_level"]; ok {
				env = []string{"CUBECL_AUTOTUNE_LEVEL=" + v, "CUBECL_ENVIRONMENT=autotune-" + v}
			}
			return Cmd{Path: bin, Args: args, Env: env}, nil
		},
		Parse: parseJSONIters,
	},
	{
		Engine: "pytorch", Tool: "bench.py", Build: "engines/pytorch/bench/bench.py from the repository (or $CIB_PYTORCH_BENCH), run by $CIB_PYTHON (default python3)",
		TTFT: true, Spec: map[string]string{"mode": "compiled"},
		Note: "bench.py runs the compiled decode loop of the engine's worker module (llama.py); options compile, tuning, refine, attention, cuda_graph and lookahead go to both sides.",
		Command: func(_ context.Context, p Params) (Cmd, error) {
			if m := p.Options["mode"]; m != "" && m != "compiled" {
				return Cmd{}, fmt.Errorf("pytorch mode=%s: bench.py runs the compiled mode's loop only", m)
			}
			script, err := benchPy(p)
			if err != nil {
				return Cmd{}, err
			}
			python := p.getenv("CIB_PYTHON")
			if python == "" {
				python = "python3"
			}
			args := []string{script, "run", "--model", p.Model, "--device", p.Device, "--dtype", p.DType,
				"--prompt", itoa(p.PromptLen), "--new", itoa(p.NewTokens), "--warmup", itoa(p.Warmup), "--iters", itoa(p.Iterations),
				"--seed", strconv.FormatUint(p.Seed, 10), "--case", p.Case, "--per-iter"}
			// The engine's options that change the loop go to bench.py as its flags; one it has no equivalent of would
			// make the two sides run different loops, so it is refused.
			flags := map[string]string{"compile": "--compile", "cuda_graph": "--cuda-graph", "lookahead": "--lookahead",
				"tuning": "--tuning", "attention": "--attention", "refine": "--refine"}
			for _, k := range slices.Sorted(maps.Keys(p.Options)) {
				v := p.Options[k]
				switch {
				case k == "mode":
				case flags[k] != "":
					args = append(args, flags[k], v)
				case k == "prefill" && v == "eager", k == "deterministic" && v == "off", k == "wait" && v == "spin":
					// the defaults, which bench.py runs
				default:
					return Cmd{}, fmt.Errorf("pytorch %s=%s: bench.py has no equivalent, so the two sides would run different loops", k, v)
				}
			}
			return Cmd{Path: python, Args: args}, nil
		},
		Parse: parseJSONIters,
	},
	{
		Engine: "mistralrs", Tool: "mistralrs native",
		Build: "scripts/build-mistralrs.sh (the engine binary's native command)",
		Note: "mistralrs native times each iteration twice in one process, through the adapter's streaming path and as a " +
			"non-streamed request mistral.rs times itself; its native decode tok/s is (N−1) / mistral.rs's completion time " +
			"(whole ms), read here. It prints no TTFT of the runner's definition.",
		Command: func(_ context.Context, p Params) (Cmd, error) {
			bin, err := binary(p, "mistralrs", "scripts/build-mistralrs.sh")
			if err != nil {
				return Cmd{}, err
			}
			req, err := request(p)
			if err != nil {
				return Cmd{}, err
			}
			return Cmd{Path: bin, Args: []string{"native"}, Stdin: req}, nil
		},
		Parse: parseMistralrs,
	},
}

// binary returns BinDir/name, or an error saying how to build it.
func binary(p Params, name, build string) (string, error) {
	path := filepath.Join(p.BinDir, name)
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("native tool %s not found in %s (build it: %s)", name, p.BinDir, build)
	}
	return path, nil
}

// commonFlags are the flags the Rust and C benches share (the runner's prompt
// ids: --seed and --case).
func commonFlags(p Params, newFlag, itersFlag string) []string {
	return []string{"--device", p.Device, "--dtype", p.DType, "--prompt-len", itoa(p.PromptLen), newFlag, itoa(p.NewTokens),
		"--warmup", itoa(p.Warmup), itersFlag, itoa(p.Iterations), "--seed", strconv.FormatUint(p.Seed, 10), "--case", p.Case}
}

func threadFlag(p Params) []string {
	if p.Threads > 0 {
		return []string{"--threads", itoa(p.Threads)}
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// benchPy finds pytorch's bench.py: $CIB_PYTORCH_BENCH, the working
// directory's engines/pytorch/bench/bench.py, then the repository above the
// bin dir.
func benchPy(p Params) (string, error) {
	rel := filepath.Join("engines", "pytorch", "bench", "bench.py")
	cands := []string{p.getenv("CIB_PYTORCH_BENCH"), filepath.Join(p.WorkDir, rel)}
	if abs, err := filepath.Abs(p.BinDir); err == nil {
		for d := abs; ; d = filepath.Dir(d) {
			cands = append(cands, filepath.Join(d, rel))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("native tool bench.py not found (looked for %s in the working directory and above the bin dir; set CIB_PYTORCH_BENCH)", rel)
}

// request is the protocol run request of the check's one case, with the
// runner's prompt ids (workload.Cases), for tools that read one on stdin.
func request(p Params) ([]byte, error) {
	mc, err := modelcfg.Load(p.Model)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", p.Model, err)
	}
	cfg := &config.Config{Seed: p.Seed, Cases: []config.Case{{Name: p.Case, PromptLen: p.PromptLen, MaxNewTokens: p.NewTokens, BatchSize: 1}}}
	cases, err := workload.Cases(cfg, mc)
	if err != nil {
		return nil, err
	}
	req := protocol.Request{Protocol: protocol.Version, Model: p.Model, Device: p.Device, DType: p.DType, Seed: p.Seed,
		Threads: p.Threads, Options: p.Options, Warmup: p.Warmup, Iterations: p.Iterations, Cases: cases}
	return json.Marshal(req)
}

// init sorts the registry by engine name, so Engines and errors list them in order.
func init() {
	slices.SortFunc(registry, func(a, b *Native) int { return strings.Compare(a.Engine, b.Engine) })
}
