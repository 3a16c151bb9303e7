// Command burn is the Burn engine: a Llama forward written in Burn tensor ops
// (engines/burn/bridge, a Rust static library) behind the cib engine protocol.
// CPU runs on Burn's flex backend in f32; the CUDA build (-tags cuda, library
// built with --cuda) runs cubecl's CUDA backend with fusion and autotune.
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
