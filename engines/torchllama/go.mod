module github.com/cuda-inference-benchmarks/cib/engines/torchllama

go 1.26

require github.com/stretchr/testify v1.12.1

require (
	github.com/cuda-inference-benchmarks/cib/protocol v0.0.0
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

replace github.com/cuda-inference-benchmarks/cib/protocol => ../../protocol
