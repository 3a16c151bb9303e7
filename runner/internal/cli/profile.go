package cli

import (
	"fmt"
	"os"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
)

// profilerLibName is the CUPTI tracer that scripts/build-cupti-profiler.sh builds.
const profilerLibName = "libcib_cupti.so"

func profileFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "profile", Usage: "`MODE` kernels: add a profiled twin (LABEL+profile) of every engine, traced through CUPTI (GPU kernels, copies, graph launches per token; profiler overhead from the twins)"},
		&ucli.StringFlag{Name: "profiler-lib", Usage: "the CUPTI tracer `FILE` (default: env CIB_PROFILER_LIB, then " + profilerLibName + " next to the runner, then in --bin-dir)"},
		&ucli.BoolFlag{Name: "profile-keep", Usage: "keep the raw activity files under RESULTS/profile/ (default: removed once analysed)"},
	}
}

// profileVariants applies --profile (or the config's profile): it adds the
// profiled twins and returns the profiler, or nil when profiling is off.
func profileVariants(c *ucli.Context, e *env, cfg *config.Config, vs []bench.Variant) (*bench.Profiler, []bench.Variant, error) {
	if v := c.String("profile"); v != "" {
		if v != config.ProfileKernels {
			return nil, nil, usageError("--profile %q: the one mode is %q", v, config.ProfileKernels)
		}
		cfg.Profile = v
	}
	if cfg.Profile == "" {
		return nil, vs, nil
	}
	lib, err := findProfilerLib(c.String("profiler-lib"), e.getenv("CIB_PROFILER_LIB"), c.String("bin-dir"))
	if err != nil {
		return nil, nil, withCode(ExitUsage, err)
	}
	return &bench.Profiler{Lib: lib, Keep: c.Bool("profile-keep")}, bench.WithProfiledTwins(vs), nil
}

// findProfilerLib returns the first of flag, env, next to the runner and in
// binDir that exists, as an absolute path (the engine's working directory
// may differ from ours).
func findProfilerLib(flag, env, binDir string) (string, error) {
	var cands []string
	switch {
	case flag != "":
		cands = []string{flag}
	case env != "":
		cands = []string{env}
	default:
		if exe, err := os.Executable(); err == nil {
			cands = append(cands, filepath.Join(filepath.Dir(exe), profilerLibName))
		}
		cands = append(cands, filepath.Join(binDir, profilerLibName))
	}
	for _, p := range cands {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("profile: no %s at %v (build it with scripts/build-cupti-profiler.sh, or give --profiler-lib)", profilerLibName, cands)
}
