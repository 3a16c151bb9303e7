// Command libtorch is the PyTorch-without-Python engine: a Go binary speaking the benchmark protocol that runs
// an AOTInductor-compiled Llama (the pytorch engine's static-cache model, exported once per model, dtype,
// device and batch size, the KV cache length a dynamic dimension) through libtorch's AOTIModelPackageLoader in a small C++ bridge
// (libcib_libtorch.so, loaded with dlopen). No Python runs in the benchmark process once the package exists;
// when it does not, the engine runs the export with $CIB_PYTHON before loading and reports its time as
// loaded.compile_ns.
//
// Build with scripts/build-libtorch.sh. Libraries: the bridge is $CIB_LIBTORCH_BRIDGE, else
// libcib_libtorch.so next to the binary; libtorch is $CIB_TORCH_LIB (a torch wheel's torch/lib), else the
// torch/lib of $CIB_PYTHON's environment, else of the venv scripts/setup-torch.sh makes.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	exe, _ := os.Executable()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ(), exe)
	stop()
	os.Exit(code)
}

// run is the whole command with its process state passed in; it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env []string, exe string) int {
	e := newEngine(env, exe, stderr)
	// Only info and run need libtorch; usage errors answer at once.
	e.static = len(args) == 0 || (args[0] != "info" && args[0] != "run")
	return serve.Main(ctx, e, args, stdin, stdout, stderr)
}
