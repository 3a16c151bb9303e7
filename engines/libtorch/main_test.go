package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/enginetest"
)

// These tests run the real binary with the real bridge (bin/libcib_libtorch.so, scripts/build-libtorch.sh) on
// libtorch from the torch venv, CPU f32, on a tiny model from `runner models synth`; the first run exports the
// AOTInductor packages (minutes on a 2-core machine), later runs reuse them. Without the bridge, torch or
// bin/runner they skip, except under CI, where they fail.

var (
	binPath  string // the engine binary, built by TestMain next to a copy of the bridge
	python   string // interpreter with torch
	modelDir string // tiny f32 model
	setupErr error
)

const vocab = 512 // the tiny shape's vocabulary

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "libtorch-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		binPath = filepath.Join(dir, "libtorch")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		setupErr = setup(dir)
		return m.Run()
	}()
	os.Exit(code)
}

func setup(dir string) error {
	so := filepath.Join(binDir(), "libcib_libtorch.so")
	b, err := os.ReadFile(so)
	if err != nil {
		return fmt.Errorf("no bridge (run scripts/build-libtorch.sh): %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "libcib_libtorch.so"), b, 0o755); err != nil {
		return err
	}
	if python, err = enginetest.TorchPython("torch", "safetensors"); err != nil {
		return err
	}
	runner := filepath.Join(binDir(), "runner")
	modelDir = filepath.Join(dir, "tiny")
	if out, err := exec.Command(runner, "models", "synth", "--shape", "tiny", "--dtype", "f32", "--out", modelDir).CombinedOutput(); err != nil {
		return fmt.Errorf("%s models synth: %v\n%s", runner, err, out)
	}
	return nil
}

// binDir is where the runner and the engines are built.
func binDir() string {
	if d := os.Getenv("CIB_BIN_DIR"); d != "" {
		return d
	}
	d, _ := filepath.Abs(filepath.Join("..", "..", "bin"))
	return d
}

func need(t *testing.T) {
	t.Helper()
	if setupErr == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("libtorch engine test setup under CI: %v", setupErr)
	}
	t.Skipf("libtorch engine tests need the bridge, torch and bin/runner: %v", setupErr)
}

func pyEnv() []string { return []string{"CIB_PYTHON=" + python} }

// runBin runs "run"; the first run of a package exports it (AOTInductor's C++ build: minutes on 2 cores).
func runBin(t *testing.T, bin string, env []string, req any) enginetest.Result {
	t.Helper()
	return enginetest.RunEnv(t, bin, env, 25*time.Minute, req)
}

// tinyRequest has cases whose packages (batch 1 and 2, a 64-position cache) `runner conformance` reuses.
func tinyRequest(opts map[string]string) protocol.Request {
	return protocol.Request{
		Protocol: protocol.Version, Model: modelDir, Device: "cpu", DType: "f32", Threads: 1,
		Options: opts, Warmup: 1, Iterations: 2,
		Cases: []protocol.Case{
			{Name: "b1", PromptTokens: []int{1, 17, 42, 300, 5, 99, 7, 256}, MaxNewTokens: 16, BatchSize: 1, Greedy: true, IgnoreEOS: true},
			{Name: "one-token prompt", PromptTokens: []int{42}, MaxNewTokens: 5, BatchSize: 1, Greedy: true, IgnoreEOS: true},
			{Name: "b2", PromptTokens: []int{1, 3, 4}, MaxNewTokens: 6, BatchSize: 2, Greedy: true, IgnoreEOS: true},
		},
	}
}

// checkRun asserts the event stream of a successful run and returns the tokens of the first timed iteration
// of each case.
func checkRun(t *testing.T, req protocol.Request, res enginetest.Result) [][][]int {
	t.Helper()
	require.Equal(t, 0, res.Code, "exit code; stderr:\n%s", res.Stderr)
	perCase := req.Warmup + req.Iterations
	require.Len(t, res.Events, 2+perCase*len(req.Cases), "events; stderr:\n%s", res.Stderr)
	require.Equal(t, protocol.EventLoaded, res.Events[0].Type)
	require.Equal(t, protocol.EventDone, res.Last().Type)
	out := make([][][]int, len(req.Cases))
	for _, ev := range res.Events[1 : len(res.Events)-1] {
		require.Equal(t, protocol.EventIteration, ev.Type)
		it := ev.Iteration
		c := req.Cases[it.Case]
		assert.Len(t, it.TokenNs, c.MaxNewTokens, "case %s token_ns", c.Name)
		require.Len(t, it.OutputTokens, c.BatchSize, "case %s rows", c.Name)
		for _, row := range it.OutputTokens {
			require.Len(t, row, c.MaxNewTokens)
			for _, id := range row {
				assert.True(t, id >= 0 && id < vocab, "token id %d outside the vocabulary", id)
			}
			assert.Equal(t, it.OutputTokens[0], row, "batch rows of one prompt must agree")
		}
		assert.Positive(t, it.TokenNs[0], "first token offset")
		for i := 1; i < len(it.TokenNs); i++ {
			assert.GreaterOrEqual(t, it.TokenNs[i], it.TokenNs[i-1], "token times must not go back")
		}
		if out[it.Case] == nil {
			out[it.Case] = it.OutputTokens
		} else {
			assert.Equal(t, out[it.Case], it.OutputTokens, "case %s: greedy tokens differ between iterations", c.Name)
		}
	}
	return out
}

func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), nil, strings.NewReader(""), &stdout, &stderr, nil, binPath)
	assert.Equal(t, 64, code)
	assert.Contains(t, stderr.String(), "usage: libtorch")
}

func TestInfo(t *testing.T) {
	need(t)
	cmd := exec.Command(binPath, "info")
	cmd.Env = append(os.Environ(), pyEnv()...)
	out, err := cmd.Output()
	require.NoError(t, err)
	var info protocol.Info
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, "libtorch", info.Name)
	assert.True(t, strings.HasPrefix(info.LibraryVersion, "2."), "library_version %q: want the runtime libtorch version", info.LibraryVersion)
	base, _, _ := strings.Cut(info.LibraryVersion, "+")
	assert.Equal(t, base, info.Versions["libtorch_headers"], "runtime vs header version")
	assert.Contains(t, info.Devices, "cpu")
}

// TestParity is the acceptance check: the libtorch engine's greedy tokens equal the pytorch engine's
// compiled mode (same model code, run by Python) on the same weights, CPU f32, exactly; and the second run
// finds the packages the first exported.
func TestParity(t *testing.T) {
	need(t)
	req := tinyRequest(nil)
	res := runBin(t, binPath, pyEnv(), req)
	got := checkRun(t, req, res)
	l := res.Events[0].Loaded
	t.Logf("first run: export_run=%s compile_ns=%d (%s)", l.Settings["export_run"], l.CompileNs, time.Duration(l.CompileNs))
	assert.Equal(t, "f32", l.DType)
	assert.Positive(t, l.ContextInitNs)
	assert.Positive(t, l.WeightsToDeviceNs)
	assert.NotEmpty(t, l.Settings["package_b1"])
	assert.NotEmpty(t, l.Settings["package_b2"])
	// weights=file (the default): the packages carry no weights; one file serves both, read once per process.
	assert.Equal(t, "1 copy for 2 package(s)", l.Settings["weights_on_device"])
	wf, err := os.Stat(l.Settings["weights_file"])
	require.NoError(t, err, "the weights file")

	t.Run("cached", func(t *testing.T) {
		// export=never proves the packages are found, so this launch ran no Python at all.
		req := tinyRequest(map[string]string{"export": "never"})
		res := runBin(t, binPath, pyEnv(), req)
		assert.Equal(t, got, checkRun(t, req, res))
		assert.Equal(t, "cached", res.Events[0].Loaded.Settings["export_run"])
	})
	t.Run("packages without their weights file", func(t *testing.T) {
		// Packages carried to another machine without the weights file (it is derived from the model, which that
		// machine has): prepare writes the weights file alone and leaves the packages as they were; the tokens stay.
		wpath := l.Settings["weights_file"]
		pkgs := []string{l.Settings["package_b1"], l.Settings["package_b2"]}
		before := map[string]time.Time{}
		for _, p := range pkgs {
			st, err := os.Stat(p)
			require.NoError(t, err)
			before[p] = st.ModTime()
		}
		require.NoError(t, os.Remove(wpath))
		req := tinyRequest(nil)
		pr := enginetest.RunEnv(t, binPath, pyEnv(), 25*time.Minute, req, "prepare")
		require.Equal(t, 0, pr.Code, "prepare; stderr:\n%s", pr.Stderr)
		require.Len(t, pr.Events, 1)
		p := pr.Events[0].Prepared
		assert.True(t, p.Ran, "the weights file was made: %v", p.Steps)
		assert.Contains(t, p.Steps["package_b1"], "its weights file written in")
		assert.Contains(t, p.Steps["package_b2"], "found in the cache: ", "the second package finds the file the first made")
		assert.NotContains(t, p.Steps["package_b2"], "weights file written")
		for _, pkg := range pkgs {
			st, err := os.Stat(pkg)
			require.NoError(t, err)
			assert.Equal(t, before[pkg], st.ModTime(), "%s: not exported again", pkg)
		}
		now, err := os.Stat(wpath)
		require.NoError(t, err, "the weights file is back")
		assert.Equal(t, wf.Size(), now.Size())
		req = tinyRequest(map[string]string{"export": "never"})
		res := runBin(t, binPath, pyEnv(), req)
		assert.Equal(t, got, checkRun(t, req, res), "the same tokens from the rewritten weights file")
	})
	t.Run("another cache length", func(t *testing.T) {
		// A 100-token prompt + 60 new tokens needs a 192-position cache (tinyRequest's: 64). The cache length is a
		// dynamic dimension of the exported models, so export=never still finds the package and runs it, with the
		// tokens pytorch compiled gives for the same request.
		long := make([]int, 100)
		for i := range long {
			long[i] = (i*37 + 11) % vocab
		}
		req := tinyRequest(map[string]string{"export": "never"})
		req.Cases = []protocol.Case{{Name: "long", PromptTokens: long, MaxNewTokens: 60, BatchSize: 1, Greedy: true, IgnoreEOS: true}}
		res := runBin(t, binPath, pyEnv(), req)
		got := checkRun(t, req, res)
		assert.Equal(t, "cached", res.Events[0].Loaded.Settings["export_run"])
		assert.Contains(t, res.Events[0].Loaded.Settings["kv_cache"], "192 positions")
		py := pytorchBin(t)
		req.Options = map[string]string{"mode": "compiled"}
		assert.Equal(t, checkRun(t, req, runBin(t, py, pyEnv(), req)), got, "greedy tokens: pytorch compiled (want) vs libtorch (got)")
	})
	t.Run("a cache per case length", func(t *testing.T) {
		// Two batch-1 cases of 64 and 192 positions in one launch: a model pair and cache each, as gpt-fast sizes the
		// cache per request, so the short case's tokens are the ones it gets alone (first run above).
		long := make([]int, 100)
		for i := range long {
			long[i] = (i*37 + 11) % vocab
		}
		req := tinyRequest(map[string]string{"export": "never"})
		req.Cases = append(req.Cases[:1:1], protocol.Case{Name: "long", PromptTokens: long, MaxNewTokens: 60, BatchSize: 1, Greedy: true, IgnoreEOS: true})
		res := runBin(t, binPath, pyEnv(), req)
		both := checkRun(t, req, res)
		kv := res.Events[0].Loaded.Settings["kv_cache"]
		assert.Contains(t, kv, "batch 1: 64 positions, batch 1: 192 positions")
		assert.Equal(t, got[0], both[0], "the short case's tokens do not depend on the other case")
	})
	t.Run("static cache length", func(t *testing.T) {
		// cache_len=static, the fallback: a package of its own (exported here), the same tokens.
		// Exported by `libtorch prepare` (as the runner does before a variant's first launch), then run with export=never.
		req := tinyRequest(map[string]string{"cache_len": "static"})
		req.Cases = req.Cases[:1]
		for i, wantRan := range []bool{true, false} {
			pr := enginetest.RunEnv(t, binPath, pyEnv(), 25*time.Minute, req, "prepare")
			require.Equal(t, 0, pr.Code, "prepare %d; stderr:\n%s", i, pr.Stderr)
			require.Len(t, pr.Events, 1)
			require.Equal(t, protocol.EventPrepared, pr.Events[0].Type)
			p := pr.Events[0].Prepared
			assert.Equal(t, wantRan, p.Ran, "prepare %d: %v", i, p.Steps)
			want := "found in the cache: "
			if wantRan {
				want = "exported in "
			}
			assert.Contains(t, p.Steps["package_b1"], want)
			assert.Contains(t, p.Steps["weights"], l.Settings["weights_file"], "the weights file of every package")
		}
		req.Options["export"] = "never"
		res := runBin(t, binPath, pyEnv(), req)
		out := checkRun(t, req, res)
		assert.Equal(t, got[0], out[0])
		assert.Contains(t, res.Events[0].Loaded.Settings["package"], "cache_len=static: 64 positions")
		assert.NotEqual(t, l.Settings["package_b1"], res.Events[0].Loaded.Settings["package_b1"], "a package of its own")
	})
	t.Run("weights in the package", func(t *testing.T) {
		// weights=package, as before: the prefill model's .so carries the weights; a package of its own, the same tokens.
		req := tinyRequest(map[string]string{"weights": "package"})
		req.Cases = req.Cases[:1]
		res := runBin(t, binPath, pyEnv(), req)
		out := checkRun(t, req, res)
		assert.Equal(t, got[0], out[0])
		ls := res.Events[0].Loaded.Settings
		assert.Empty(t, ls["weights_file"])
		assert.NotEqual(t, l.Settings["package_b1"], ls["package_b1"], "a package of its own")
		// It is bigger than the weights=file package by about the model's weights (the code of both is about the same).
		// Measured against the parameters (f32: 4 bytes each), not the weights file: the file also holds the RoPE
		// cos/sin tables (131 KB for this model), which a package with its weights stores otherwise, so against the
		// file the margin was within the code size's variation between exports (CI failed once at 77% of it).
		withW, err := os.Stat(ls["package_b1"])
		require.NoError(t, err)
		without, err := os.Stat(l.Settings["package_b1"])
		require.NoError(t, err)
		assert.Greater(t, withW.Size()-without.Size(), 4*l.Params*8/10, "package sizes %d (weights inside) and %d (%d params; weights file %d)",
			withW.Size(), without.Size(), l.Params, wf.Size())
	})
	t.Run("prefill attention causal", func(t *testing.T) {
		// prefill_attention=causal: the exported prefill attends over the prompt's own keys, causal and unmasked; a package
		// of its own (the weights file is shared), the same tokens.
		req := tinyRequest(map[string]string{"prefill_attention": "causal"})
		req.Cases = req.Cases[:1]
		res := runBin(t, binPath, pyEnv(), req)
		out := checkRun(t, req, res)
		assert.Equal(t, got[0], out[0])
		ls := res.Events[0].Loaded.Settings
		assert.Contains(t, ls["prefill_attention"], "is_causal=True")
		assert.NotEqual(t, l.Settings["package_b1"], ls["package_b1"], "a package of its own")
		assert.Equal(t, l.Settings["weights_file"], ls["weights_file"], "one weights file for both")
		assert.Contains(t, l.Settings["prefill_attention"], "masked", "the default")
	})
	t.Run("pytorch compiled", func(t *testing.T) {
		py := pytorchBin(t)
		req := tinyRequest(map[string]string{"mode": "compiled"})
		want := checkRun(t, req, runBin(t, py, pyEnv(), req))
		assert.Equal(t, want, got, "greedy tokens: pytorch compiled (want) vs libtorch (got)")
	})
	t.Run("conformance", func(t *testing.T) {
		cmd := exec.Command(filepath.Join(binDir(), "runner"), "conformance", "--bin-dir", filepath.Dir(binPath), "--model", modelDir, "--dtype", "f32", "libtorch")
		cmd.Env = append(os.Environ(), pyEnv()...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "runner conformance:\n%s", out)
		t.Logf("runner conformance:\n%s", out)
	})
}

// pytorchBin is the pytorch engine the parity checks compare with: a failure under CI, where
// scripts/test.sh builds it, a skip elsewhere.
func pytorchBin(t *testing.T) string {
	t.Helper()
	py := filepath.Join(binDir(), "pytorch")
	if _, err := os.Stat(py); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pytorch engine not built at %s", py)
		}
		t.Skipf("pytorch engine not built at %s", py)
	}
	return py
}

// tamper rewrites the torch_version in every metadata file of package src into dst.
func tamper(t *testing.T, src, dst, version string) {
	t.Helper()
	r, err := zip.OpenReader(src)
	require.NoError(t, err)
	defer r.Close()
	f, err := os.Create(dst)
	require.NoError(t, err)
	defer f.Close()
	w := zip.NewWriter(f)
	n := 0
	for _, zf := range r.File {
		rc, err := zf.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		rc.Close()
		if strings.HasSuffix(zf.Name, "_metadata.json") {
			var meta map[string]any
			if json.Unmarshal(b, &meta) == nil && meta["torch_version"] != nil {
				meta["torch_version"] = version
				b, _ = json.Marshal(meta)
				n++
			}
		}
		hdr := zf.FileHeader
		hdr.Method = zip.Store
		wz, err := w.CreateHeader(&hdr)
		require.NoError(t, err)
		_, err = wz.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	require.Positive(t, n, "no metadata file with torch_version in %s", src)
}

func TestErrors(t *testing.T) {
	need(t)
	// The packages of tinyRequest, exported by TestParity or by this run.
	res := runBin(t, binPath, pyEnv(), tinyRequest(nil))
	require.Equal(t, 0, res.Code, "stderr:\n%s", res.Stderr)
	pkg := res.Events[0].Loaded.Settings["package_b1"]
	stale := t.TempDir()
	tamper(t, pkg, filepath.Join(stale, filepath.Base(pkg)), "2.0.0+cu118")
	wf := res.Events[0].Loaded.Settings["weights_file"]
	require.NotEmpty(t, wf, "the default weights=file names its file")
	wb, err := os.ReadFile(wf)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(stale, filepath.Base(wf)), wb, 0o644))

	// A bridge built for ABI 1 (before cib_lt_load took a weights file): it has the other functions but no
	// cib_lt_abi_version, and calling its cib_lt_load with today's arguments would misread them.
	old := filepath.Join(t.TempDir(), "libcib_libtorch.so")
	src := filepath.Join(t.TempDir(), "old.c")
	require.NoError(t, os.WriteFile(src, []byte("int cib_lt_info(void){return 0;} int cib_lt_load(void){return 0;} int cib_lt_generate(void){return 0;} void cib_lt_free(void){}\n"), 0o644))
	if out, err := exec.Command("gcc", "-shared", "-fPIC", "-o", old, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}

	single := func(r *protocol.Request) { r.Cases = r.Cases[:1] }
	tests := []struct {
		name     string
		env      []string
		mutate   func(*protocol.Request)
		code     int
		errCode  string
		contains string
	}{
		{name: "package exported by another torch", mutate: func(r *protocol.Request) {
			single(r)
			r.Options = map[string]string{"cache_dir": stale, "export": "never"}
		}, code: 2, errCode: protocol.CodeUnsupported, contains: `exported with torch "2.0.0+cu118"`},
		{name: "missing package", mutate: func(r *protocol.Request) {
			single(r)
			r.Options = map[string]string{"cache_dir": t.TempDir(), "export": "never"}
		}, code: 2, errCode: protocol.CodeUnsupported, contains: "export=never"},
		{name: "missing libtorch", env: []string{"CIB_TORCH_LIB=/nonexistent/torch/lib"},
			code: 2, errCode: protocol.CodeUnsupported, contains: "CIB_TORCH_LIB"},
		{name: "missing bridge", env: []string{"CIB_LIBTORCH_BRIDGE=/nonexistent/libcib_libtorch.so"},
			code: 2, errCode: protocol.CodeUnsupported, contains: "scripts/build-libtorch.sh"},
		{name: "bridge of an older ABI", env: []string{"CIB_LIBTORCH_BRIDGE=" + old},
			code: 2, errCode: protocol.CodeUnsupported, contains: "another ABI"},
		{name: "no interpreter for the export", env: []string{"CIB_PYTHON=/nonexistent/python3", "CIB_TORCH_LIB=" + torchLib(t)},
			mutate: func(r *protocol.Request) { single(r); r.Options = map[string]string{"cache_dir": t.TempDir()} },
			code:   1, errCode: protocol.CodeLoad, contains: "CIB_PYTHON"},
		{name: "cuda graphs on cpu", mutate: func(r *protocol.Request) { r.Options = map[string]string{"cuda_graphs": "on"} },
			code: 2, errCode: protocol.CodeUnsupported, contains: "cuda"},
		{name: "bad option value", mutate: func(r *protocol.Request) { r.Options = map[string]string{"export": "sometimes"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "export"},
		{name: "blocking wait on cpu", mutate: func(r *protocol.Request) { r.Options = map[string]string{"wait": "block"} },
			code: 2, errCode: protocol.CodeUnsupported, contains: "wait=block needs a cuda device"},
		{name: "bad wait", mutate: func(r *protocol.Request) { r.Options = map[string]string{"wait": "yield"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "wait"},
		{name: "token outside vocabulary", mutate: func(r *protocol.Request) { r.Cases[0].PromptTokens = []int{1, vocab + 88} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "600"},
		{name: "missing model", mutate: func(r *protocol.Request) { r.Model = filepath.Join(t.TempDir(), "none") },
			code: 1, errCode: protocol.CodeLoad, contains: "config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tinyRequest(nil)
			if tt.mutate != nil {
				tt.mutate(&req)
			}
			env := pyEnv()
			if tt.env != nil {
				env = append(env, tt.env...)
			}
			res := runBin(t, binPath, env, req)
			assert.Equal(t, tt.code, res.Code, "exit code; stderr:\n%s", res.Stderr)
			ev := res.Last()
			require.Equal(t, protocol.EventError, ev.Type, "last event; stderr:\n%s", res.Stderr)
			assert.Equal(t, tt.errCode, ev.Error.Code)
			assert.Contains(t, ev.Error.Message, tt.contains)
		})
	}
}

// torchLib is the torch/lib directory of the test's interpreter.
func torchLib(t *testing.T) string {
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(python)), "lib", "python3*", "site-packages", "torch", "lib"))
	if len(m) == 0 {
		t.Skipf("no torch/lib next to %s", python)
	}
	return m[len(m)-1]
}
