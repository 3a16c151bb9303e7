module github.com/cuda-inference-benchmarks/cib/ggufw

go 1.26
