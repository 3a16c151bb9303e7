// Command reference is the pure-Go fp32 Llama engine: the CI engine and the
// numerical reference every other engine is compared with.
//
//	reference info          print capabilities as JSON
//	reference run < req     run a protocol request, stream JSON-lines events
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := serve.Main(ctx, engine{}, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
