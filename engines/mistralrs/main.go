// Command mistralrs is the mistral.rs engine: it serves the benchmark protocol
// (`mistralrs info`, `mistralrs run`) around mistral.rs, linked in as a Rust
// static library through a small C ABI (see bridge/ and internal/bridge).
//
// `mistralrs native` runs the adapter-overhead check: it reads a run request,
// times each case through the streaming path the protocol uses and through a
// non-streamed request that mistral.rs times itself, and compares the two.
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
	stdout := protectStdout()
	code := run(ctx, os.Args[1:], os.Stdin, stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches the command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "native" {
		return runNative(ctx, engine{}, args[1:], stdin, stdout, stderr)
	}
	return serve.Main(ctx, engine{}, args, stdin, stdout, stderr)
}
