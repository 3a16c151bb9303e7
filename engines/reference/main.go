// Command reference is the pure-Go fp32 Llama engine: the CI engine and the
// numerical reference every other engine is compared with.
//
//	reference info          print capabilities as JSON
//	reference run < req     run a protocol request, stream JSON-lines events
package main

import "github.com/cuda-inference-benchmarks/cib/protocol/serve"

func main() { serve.Run(engine{}) }
