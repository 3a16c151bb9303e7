// Command runner benchmarks LLM inference engines fairly: each engine in a
// fresh process, the same workload, raw per-token timestamps, real statistics.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}
