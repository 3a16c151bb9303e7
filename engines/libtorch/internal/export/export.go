// Package export makes the AOTInductor packages the libtorch engine runs: it keys a package by the model, dtype,
// device (and card), torch version, batch size, static cache length and the export code itself, and when no
// package exists under that key it runs py/export.py (embedded in the binary) with a torch interpreter. That
// is model preparation, not the timed process: the engine reports it apart from load (loaded.compile_ns).
package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cuda-inference-benchmarks/cib/engines/torchllama"
	"github.com/cuda-inference-benchmarks/cib/protocol/modeldir"
)

//go:embed py/*.py
var pyFiles embed.FS

// Spec is what a package is built for.
type Spec struct {
	// Model is the HF-style model directory.
	Model string
	// DType is f32, f16 or bf16.
	DType string
	// Device is "cpu" or "cuda:N"; Card names the GPU model on cuda (part of the key: Triton kernels are
	// tuned for it).
	Device, Card string
	// Torch is the runtime libtorch version, e.g. 2.11.0+cu130.
	Torch string
	// Batch is the batch size; MaxPos the longest KV cache the package serves (the model's
	// max_position_embeddings: the cache length is a dynamic dimension of both models, so one package serves
	// every request of this batch size, and MaxPos comes from config.json, which the key covers already).
	Batch, MaxPos int
	// Static exports the cache length as a fixed dimension, MaxPos (option cache_len=static: one package per
	// request length, as before 2026-12-02; kept as the fallback should a dynamic length fail or run slower).
	Static bool
	// Weights, when set, is the file the models' weights live in instead of the prefill model's .so (option
	// weights=file, the default): one file per model, dtype and torch (WeightsKey) that every package of the
	// model shares, so a second batch size costs no second copy of the weights on disk or on the device.
	Weights string
	// PrefillAttention is the prefill model's attention (llama.PREFILL_ATTENTION: masked, the default, or causal).
	PrefillAttention string
}

// Key returns the package's cache key: the SHA-256 of everything the package depends on. The model enters
// through its modeldir fingerprint (config.json, safetensors headers and sampled weights — the key every engine
// cache uses; hashing 16 GB of weights on every load would land in the cold start).
func Key(s Spec) (string, error) {
	h := sha256.New()
	fp, err := modeldir.Fingerprint(s.Model)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "model %s\n", fp)
	kind, _, _ := strings.Cut(s.Device, ":")
	fmt.Fprintf(h, "dtype %s\ndevice %s\ncard %s\ntorch %s\nbatch %d\nmax_pos %d\nstatic %t\nexternal_weights %t\n", s.DType, kind, s.Card, s.Torch, s.Batch, s.MaxPos, s.Static, s.Weights != "")
	if s.PrefillAttention != "" && s.PrefillAttention != "masked" {
		fmt.Fprintf(h, "prefill_attention %s\n", s.PrefillAttention)
	}
	fmt.Fprintf(h, "torchllama %x\n", torchllama.Sum())
	if err := hashPy(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WeightsKey returns the cache key of a model's weights file: the model, dtype and torch version, and the code
// that fuses and names the tensors (llama.py, export.py) — not the device, batch size or cache length, which only
// the compiled models depend on.
func WeightsKey(model, dtype, torch string) (string, error) {
	h := sha256.New()
	fp, err := modeldir.Fingerprint(model)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "model %s\ndtype %s\ntorch %s\ntorchllama %x\n", fp, dtype, torch, torchllama.Sum())
	// export.py names the tensors (the module paths of its wrappers): a change to it may rename them.
	if err := hashPy(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashPy writes the name and SHA-256 of each embedded Python file to h.
func hashPy(h io.Writer) error {
	return fs.WalkDir(pyFiles, "py", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := pyFiles.ReadFile(p)
		fmt.Fprintf(h, "%s %x\n", p, sha256.Sum256(b))
		return err
	})
}

// Result is what an export reports.
type Result struct {
	// Ran is false when the package was already there.
	Ran bool
	// Ns is the wall time of the export process, in ns (0 when cached).
	Ns int64
	// Report is export.py's JSON line (export and AOTInductor times, package size, inductor options).
	Report map[string]any
	// WeightsOnly is true when the package was there and only the weights file was written (torch.export names the
	// tensors; no AOTInductor compilation): a package carried from another machine of the same card and torch.
	WeightsOnly bool
}

// Error is an export failure; Unsupported marks a model or shape the export cannot serve.
type Error struct {
	Unsupported bool
	Message     string
}

func (e *Error) Error() string { return e.Message }

// Ensure returns with the package at path, running the export with python when it is missing. stderr gets
// the export's log. A package whose weights file is missing (carried without it: the weights are derived from the
// model, which a machine synthesizes or downloads itself) gets the weights file alone, in seconds, not a new export.
func Ensure(ctx context.Context, python string, env []string, s Spec, path string, stderr io.Writer) (Result, error) {
	weightsOnly := false
	if _, err := os.Stat(path); err == nil {
		if _, err := os.Stat(s.Weights); s.Weights == "" || err == nil {
			return Result{}, nil
		}
		weightsOnly = true
	}
	dir, err := os.MkdirTemp("", "cib-libtorch-export-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	if err := torchllama.Write(dir); err != nil {
		return Result{}, err
	}
	err = fs.WalkDir(pyFiles, "py", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := pyFiles.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644)
	})
	if err != nil {
		return Result{}, err
	}
	args := []string{filepath.Join(dir, "export.py"), "--model", s.Model, "--dtype", s.DType, "--device", s.Device,
		"--batch", fmt.Sprint(s.Batch), "--max-seq", fmt.Sprint(s.MaxPos), "--out", path}
	if s.Static {
		args = append(args, "--static-cache")
	}
	if s.Weights != "" {
		args = append(args, "--weights", s.Weights)
	}
	if weightsOnly {
		args = append(args, "--weights-only")
	}
	if s.PrefillAttention != "" {
		args = append(args, "--prefill-attention", s.PrefillAttention)
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Env = env
	cmd.Stderr = stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	runErr := cmd.Run()
	ns := int64(time.Since(start))
	var rep map[string]any
	line := strings.TrimSpace(out.String())
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if jerr := json.Unmarshal([]byte(line), &rep); jerr != nil {
		if runErr == nil {
			runErr = fmt.Errorf("no JSON result line: %w", jerr)
		}
		var ee *exec.ExitError
		if errors.As(runErr, &ee) || errors.Is(runErr, exec.ErrNotFound) || errors.Is(runErr, fs.ErrNotExist) {
			return Result{}, &Error{Message: fmt.Sprintf("export with %s: %v (the export needs a Python with torch: set CIB_PYTHON)", python, runErr)}
		}
		return Result{}, fmt.Errorf("export with %s: %w", python, runErr)
	}
	if ok, _ := rep["ok"].(bool); !ok || runErr != nil {
		msg, _ := rep["message"].(string)
		return Result{}, &Error{Unsupported: rep["code"] == "unsupported", Message: "export: " + msg}
	}
	return Result{Ran: true, Ns: ns, Report: rep, WeightsOnly: weightsOnly}, nil
}
