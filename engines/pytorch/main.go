// Command pytorch is the PyTorch engine: a Go binary speaking the benchmark protocol that drives a Python
// worker (torch + transformers) over pipes. Mode "eager" runs transformers' generate as users do; mode
// "compiled" runs a gpt-fast-style static-cache loop under torch.compile and CUDA graphs.
//
// The interpreter is $CIB_PYTHON (default python3); scripts/setup-torch.sh makes a venv with torch for it.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}

// run is the whole command with its process state passed in; it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	e := &engine{python: lookupEnv(env, "CIB_PYTHON", "python3"), env: env, stderr: stderr}
	// Only info and run need Python; usage errors answer at once.
	e.static = len(args) == 0 || (args[0] != "info" && args[0] != "run")
	defer e.close()
	return serve.Main(ctx, e, args, stdin, stdout, stderr)
}

func lookupEnv(env []string, key, def string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok && v != "" {
			return v
		}
	}
	return def
}
