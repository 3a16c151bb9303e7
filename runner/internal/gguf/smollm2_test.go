package gguf

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/enginetest"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/tokenizer"
)

// nearTie is the largest top-2 logit margin (computed by the reference) at
// which an f32 engine may pick the reference's second choice: engines sum in
// other orders (blocked matmuls, fused kernels), which moves f32 logits of
// this model (|logit| ≈ 10-30) by about 1e-4, so margins under 5e-3 are
// within rounding; a larger one is a bug.
const nearTie = 5e-3

// parityEngine is one engine (or variant) the real-weights test runs.
type parityEngine struct {
	label   string
	pkg     string            // directory under the repository root
	lib     string            // static bridge library it links, relative to pkg; "" for none
	options map[string]string // request options
	// optional engines are skipped without a binary even under CI.
	optional bool
}

var parityEngines = []parityEngine{
	{label: "pytorch", pkg: "engines/pytorch", options: map[string]string{"mode": "eager"}},
	{label: "pytorch:mode=compiled", pkg: "engines/pytorch", options: map[string]string{"mode": "compiled"}},
	{label: "candle", pkg: "engines/candle", lib: "bridge/lib/libcib_candle.a"},
	{label: "burn", pkg: "engines/burn", lib: "bridge/lib/cpu/libcib_burn.a"},
	{label: "mistralrs", pkg: "engines/mistralrs", lib: "bridge/lib/libcib_mistralrs.a"},
	{label: "lmrs", pkg: "engines/lmrs", lib: "bridge/lib/libcib_lmrs.a", options: map[string]string{"quant": "f32"}, optional: true},
}

// TestSmolLM2Parity imports a real checkpoint, SmolLM2-135M-Instruct as a
// Q4_1 GGUF (scripts/fetch-smollm2.sh), and requires every CPU engine to
// write the reference engine's greedy tokens, f32, 64 new tokens, on three
// real prompts (plain text, SmolLM2's chat template, code). An engine that
// picks the reference's second choice where the reference's top-2 margin is
// under nearTie is reported as a near-tie, not failed. The decoded text of
// every engine goes to the log.
func TestSmolLM2Parity(t *testing.T) {
	if testing.Short() {
		t.Skip("real-weights parity runs every engine on a 135M model: not in -short")
	}
	root, err := enginetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := smolLM2(t, root)
	dir := filepath.Join(t.TempDir(), "smollm2")
	start := time.Now()
	res, err := Import(t.Context(), Options{In: src, Out: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imported %s in %.1fs: %d params, tensors %v", filepath.Base(src), time.Since(start).Seconds(), res.Params, res.Types)
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases, texts := smolLM2Prompts(t, tok)

	margins := filepath.Join(t.TempDir(), "margins.jsonl")
	ref := runEngine(t, enginetest.Reference(t), dir, cases, map[string]string{"margins": margins})
	top := readMargins(t, margins)
	for i, c := range cases {
		m := top[c.Name]
		low := 0
		for k := range m.Margin {
			if m.Margin[k] < m.Margin[low] {
				low = k
			}
		}
		t.Logf("reference %s: %q → %q (smallest top-2 margin %.3g logits, at token %d)", c.Name, texts[i], decode(t, tok, ref[i]), m.Margin[low], low)
	}

	python := torchPython()
	for _, e := range parityEngines {
		t.Run(strings.ReplaceAll(e.label, ":", "_"), func(t *testing.T) {
			bin, why := buildEngine(t, root, e)
			if bin == "" {
				if os.Getenv("CI") != "" && !e.optional {
					t.Fatalf("CI: %s", why)
				}
				t.Skip(why)
			}
			var env []string
			if e.pkg == "engines/pytorch" {
				if python == "" {
					if os.Getenv("CI") != "" {
						t.Fatal("CI: no torch interpreter (CIB_PYTHON unset, no setup-torch.sh venv)")
					}
					t.Skip("no torch interpreter: run scripts/setup-torch.sh or set CIB_PYTHON")
				}
				env = []string{"CIB_PYTHON=" + python}
			}
			start := time.Now()
			got := runEngineEnv(t, bin, env, dir, cases, e.options)
			t.Logf("%s: 3 prompts × 64 tokens in %.1fs", e.label, time.Since(start).Seconds())
			for i, c := range cases {
				text := decode(t, tok, got[i])
				k, tie := divergence(ref[i], got[i], top[c.Name])
				if k < 0 {
					t.Logf("%s %s: identical to the reference (64/64): %q", e.label, c.Name, text)
					continue
				}
				m := top[c.Name]
				if tie {
					t.Logf("%s %s: near-tie at token %d: picks %d %q, the reference's second choice, where the reference picks %d %q by a top-2 margin of %.3g logits (≤ %g); identical before it. Text: %q",
						e.label, c.Name, k, got[i][k], decode(t, tok, got[i][k:k+1]), ref[i][k], decode(t, tok, ref[i][k:k+1]), m.Margin[k], nearTie, text)
					continue
				}
				margin := "unknown"
				if k < len(m.Margin) {
					margin = fmt.Sprintf("%.3g (reference top-2: %d, %d)", m.Margin[k], m.Top1[k], m.Top2[k])
				}
				t.Errorf("%s %s: token %d = %d %q, want the reference's %d %q; reference top-2 margin there %s\n got: %q\nwant: %q",
					e.label, c.Name, k, got[i][k], decode(t, tok, got[i][k:k+1]), ref[i][k], decode(t, tok, ref[i][k:k+1]), margin, text, decode(t, tok, ref[i]))
			}
		})
	}
}

func TestDivergence(t *testing.T) {
	top := topTwo{Top1: []int{5, 6, 7}, Top2: []int{9, 8, 4}, Margin: []float32{1, 0.001, 0.5}}
	tests := []struct {
		name    string
		got     []int
		wantK   int
		wantTie bool
	}{
		{"identical", []int{5, 6, 7}, -1, false},
		{"second choice at a near-tie", []int{5, 8, 1}, 1, true},
		{"another token at a near-tie", []int{5, 3, 7}, 1, false},
		{"second choice, clear margin", []int{5, 6, 4}, 2, false},
		{"first token", []int{9, 6, 7}, 0, false},
		{"short", []int{5, 6}, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if k, tie := divergence(top.Top1, tc.got, top); k != tc.wantK || tie != tc.wantTie {
				t.Errorf("divergence(%v, %v) = %d, %v; want %d, %v", top.Top1, tc.got, k, tie, tc.wantK, tc.wantTie)
			}
		})
	}
}

// smolLM2 returns the GGUF's path: $CIB_SMOLLM2_GGUF, else what
// scripts/fetch-smollm2.sh fetches (or finds cached); skipped when neither
// works (no network, no pip).
func smolLM2(t *testing.T, root string) string {
	t.Helper()
	if p := os.Getenv("CIB_SMOLLM2_GGUF"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CIB_SMOLLM2_GGUF: %v", err)
		}
		return p
	}
	out, err := exec.Command(filepath.Join(root, "scripts", "fetch-smollm2.sh")).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + strings.TrimSpace(string(ee.Stderr))
		}
		t.Skipf("SmolLM2 GGUF unavailable (scripts/fetch-smollm2.sh failed, CIB_SMOLLM2_GGUF unset): %s", msg)
	}
	return strings.TrimSpace(string(out))
}

// smolLM2Prompts reads the prompts and checks that the Go tokenizer encodes
// each to the ids Hugging Face tokenizers gave (testdata/make_prompts.py)
// and decodes them back.
func smolLM2Prompts(t *testing.T, tok *tokenizer.Tokenizer) ([]protocol.Case, []string) {
	t.Helper()
	b, err := os.ReadFile("testdata/smollm2_prompts.json")
	if err != nil {
		t.Fatal(err)
	}
	var ps []struct {
		Name, Text string
		IDs        []int
	}
	if err := json.Unmarshal(b, &ps); err != nil {
		t.Fatal(err)
	}
	var cases []protocol.Case
	var texts []string
	for _, p := range ps {
		ids, err := tok.Encode(p.Text)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, p.IDs) {
			t.Fatalf("Encode(%q) = %v, want %v (HF tokenizers)", p.Text, ids, p.IDs)
		}
		if got := decode(t, tok, ids); got != p.Text {
			t.Fatalf("Decode(Encode(%q)) = %q", p.Text, got)
		}
		cases = append(cases, enginetest.GreedyCase(p.Name, ids, 64))
		texts = append(texts, p.Text)
	}
	return cases, texts
}

func decode(t *testing.T, tok *tokenizer.Tokenizer, ids []int) string {
	t.Helper()
	s, err := tok.Decode(ids)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// divergence returns the first position where got leaves ref (-1 when they
// are identical) and whether it is a near-tie: got takes the reference's
// second choice where the reference's top-2 margin is at most nearTie.
func divergence(ref, got []int, top topTwo) (int, bool) {
	k := firstDiff(ref, got)
	if k < 0 || k >= len(got) || k >= len(top.Margin) {
		return k, false
	}
	return k, got[k] == top.Top2[k] && top.Margin[k] <= nearTie
}

func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func runEngine(t *testing.T, bin, model string, cases []protocol.Case, options map[string]string) [][]int {
	return runEngineEnv(t, bin, nil, model, cases, options)
}

// runEngineEnv runs one launch of one timed iteration, no warm-up, and
// returns each case's greedy tokens. One thread: on a busy 2-core machine
// torch's OpenMP workers spin against each other (pytorch eager took 57 s for
// 64 tokens with 2 threads, 4.3 s with 1), and the tokens do not depend on it.
func runEngineEnv(t *testing.T, bin string, env []string, model string, cases []protocol.Case, options map[string]string) [][]int {
	t.Helper()
	req := enginetest.CPURequest(model, "f32", cases...)
	req.Warmup, req.Iterations, req.Threads, req.Options = 0, 1, 1, options
	res := enginetest.RunEnv(t, bin, env, 10*time.Minute, req)
	if res.Code != 0 {
		t.Fatalf("%s exited %d: %s", bin, res.Code, res.Stderr)
	}
	toks := enginetest.Tokens(res.Events)
	if len(toks) != len(cases) {
		t.Fatalf("%s: %d iterations, want %d\nstderr: %s", bin, len(toks), len(cases), res.Stderr)
	}
	return toks
}

type topTwo struct {
	Case   string    `json:"case"`
	Top1   []int     `json:"top1"`
	Top2   []int     `json:"top2"`
	Margin []float32 `json:"margin"`
}

func readMargins(t *testing.T, path string) map[string]topTwo {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]topTwo{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m topTwo
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("margins: %v", err)
		}
		out[m.Case] = m
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// buildEngine builds e's package from the repository root into a temporary
// directory (its bridge library's hash in -ldflags, so a rebuilt library
// relinks); "" and why when its bridge library is absent.
func buildEngine(t *testing.T, root string, e parityEngine) (string, string) {
	t.Helper()
	var flags []string
	if e.lib != "" {
		lib := filepath.Join(root, e.pkg, e.lib)
		sum, err := enginetest.FileHash(lib)
		if err != nil {
			return "", fmt.Sprintf("%s is absent: run scripts/build-%s.sh", filepath.Join(e.pkg, e.lib), filepath.Base(e.pkg))
		}
		flags = []string{"-ldflags", "-X main.bridgeLib=" + sum}
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(e.pkg))
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, "./"+e.pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", e.pkg, err, out)
	}
	return bin, ""
}

// torchPython is $CIB_PYTHON or the setup-torch.sh venv's interpreter, ""
// when neither exists.
func torchPython() string {
	if p := os.Getenv("CIB_PYTHON"); p != "" {
		return p
	}
	cache := os.Getenv("CIB_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "cib")
	}
	p := filepath.Join(cache, "torch-venv", "bin", "python")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
