module github.com/cuda-inference-benchmarks/cib/protocol

go 1.26
