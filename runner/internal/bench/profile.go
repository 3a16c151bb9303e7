package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/profile"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// ProfileSuffix ends the label of a profiled twin: a profiled launch is its
// own variant, so its timings are never pooled with unprofiled ones.
const ProfileSuffix = "+profile"

// Profiler injects libcib_cupti.so (profiler/) into the launches of profiled
// variants and keeps each launch's kernel profile in its record.
type Profiler struct {
	// Lib is the absolute path of libcib_cupti.so.
	Lib string
	// Dir receives one directory of activity files per launch; default
	// <results dir>/profile.
	Dir string
	// Keep keeps the activity files after a launch is analysed.
	Keep bool
}

// WithProfiledTwins returns the variants with, after each, its profiled twin
// (label + ProfileSuffix): launches then interleave A, A+profile, B,
// B+profile…, so the profiler's overhead is measured on the same card in the
// same run.
func WithProfiledTwins(vs []Variant) []Variant {
	var out []Variant
	for _, v := range vs {
		out = append(out, v)
		t := v
		t.Label += ProfileSuffix
		t.Spec.Label = t.Label
		t.Profile = true
		out = append(out, t)
	}
	return out
}

// launchEnv is the child environment of one launch: o.Env, plus the CUDA
// injection variables for a profiled variant. CUDA_INJECTION64_PATH is
// inherited, so every CUDA process of the engine's tree loads the library.
func launchEnv(o Options, v Variant, launch int) []string {
	dir := profileDir(o, v, launch)
	if dir == "" {
		return o.Env
	}
	// The library writes into the directory but does not create it; if this
	// fails, the launch's profile says no activity file came.
	os.MkdirAll(dir, 0o755)
	env := slices.DeleteFunc(slices.Clone(o.Env), func(kv string) bool {
		return strings.HasPrefix(kv, "CUDA_INJECTION64_PATH=") || strings.HasPrefix(kv, "CIB_PROFILE_DIR=")
	})
	return append(env, "CUDA_INJECTION64_PATH="+o.Profiler.Lib, "CIB_PROFILE_DIR="+dir)
}

func profileDir(o Options, v Variant, launch int) string {
	if !v.Profile || o.Profiler == nil || o.Profiler.Lib == "" {
		return ""
	}
	root := o.Profiler.Dir
	if root == "" && o.Writer != nil {
		root = filepath.Join(o.Writer.Dir(), "profile")
	}
	safe := strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == ':' || r == '=' || r == ',' {
			return '_'
		}
		return r
	}, v.Label)
	return filepath.Join(root, fmt.Sprintf("%s-launch%d", safe, launch+1))
}

// finishProfile marks a profiled launch and, when it succeeded, reduces its
// activity files to the record's profile; the files are removed unless kept.
func finishProfile(o Options, v Variant, rec *results.Record) {
	dir := profileDir(o, v, rec.Launch)
	if dir == "" {
		return
	}
	rec.Profiled = true
	if rec.Status != results.StatusOK {
		return // the files stay for a look at what went wrong
	}
	if rec.SpawnMonoNs == 0 {
		rec.Warnings = append(rec.Warnings, "profile: no CLOCK_MONOTONIC reading at spawn; activity not aligned")
		return
	}
	traces, err := profile.ReadDir(dir)
	if err != nil {
		rec.Warnings = append(rec.Warnings, fmt.Sprintf("profile: %v", err))
		return
	}
	l := profile.Analyze(traces, profile.Windows(rec.Iterations, rec.SpawnMonoNs))
	b, err := json.Marshal(l)
	if err != nil {
		rec.Warnings = append(rec.Warnings, fmt.Sprintf("profile: encode: %v", err))
		return
	}
	rec.Profile = b
	for _, w := range l.Warnings {
		rec.Warnings = append(rec.Warnings, "profile: "+w)
	}
	if !o.Profiler.Keep {
		os.RemoveAll(dir)
	}
}
