module github.com/cuda-inference-benchmarks/cib/engines/pytorch

go 1.26

require github.com/cuda-inference-benchmarks/cib/protocol v0.0.0

replace github.com/cuda-inference-benchmarks/cib/protocol => ../../protocol
