// Command burn is the Burn engine: a Llama forward written in Burn tensor ops
// (engines/burn/bridge, a Rust static library) behind the cib engine protocol.
// CPU runs on Burn's flex backend in f32; the CUDA build (-tags cuda, library
// built with --cuda) runs cubecl's CUDA backend with fusion and autotune
// (scripts/build-burn.sh --cuda --no-autotune builds it without autotune).
package main

import "github.com/cuda-inference-benchmarks/cib/protocol/serve"

func main() { serve.Run(engine{}) }
