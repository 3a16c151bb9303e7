// Package testbin builds the real engine binaries that the runner's tests
// drive (the reference engine, the runner itself, the misbehaving test
// engine) once per test process.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/synth"
)

var (
	once     sync.Once
	dir      string
	buildErr error
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
)

// Packages built into the bin dir, by binary name.
var Packages = map[string]string{
	"reference":  "github.com/cuda-inference-benchmarks/cib/engines/reference",
	"testengine": "github.com/cuda-inference-benchmarks/cib/runner/internal/testengine",
	"runner":     "github.com/cuda-inference-benchmarks/cib/runner",
}

// Dir returns a directory holding freshly built binaries of Packages. It
// needs the workspace (go.work), which scripts/test.sh provides.
func Dir(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir, buildErr = os.MkdirTemp("", "cib-testbin-")
		if buildErr != nil {
			return
		}
		for name, pkg := range Packages {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build test binaries: %v", buildErr)
	}
	return dir
}

// TinyModel returns a tiny f32 model synthesized once per test process.
func TinyModel(t testing.TB) string {
	t.Helper()
	tinyOnce.Do(func() {
		var base string
		base, tinyErr = os.MkdirTemp("", "cib-tiny-")
		if tinyErr != nil {
			return
		}
		tinyDir = filepath.Join(base, "tiny")
		_, tinyErr = synth.Write(t.Context(), synth.Options{Shape: "tiny", Out: tinyDir, DType: "f32", Seed: 1})
	})
	if tinyErr != nil {
		t.Fatalf("synthesize tiny model: %v", tinyErr)
	}
	return tinyDir
}

// Cleanup removes what Dir and TinyModel made; call it from TestMain.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
	if tinyDir != "" {
		os.RemoveAll(filepath.Dir(tinyDir))
	}
}
