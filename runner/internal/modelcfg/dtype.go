package modelcfg

import "fmt"

// DType is a weight storage type, spelled as the protocol spells it.
type DType string

// The dtypes checkpoints are written and benchmarked in.
const (
	F32  DType = "f32"
	F16  DType = "f16"
	BF16 DType = "bf16"
)

// ParseDType accepts the protocol spelling ("bf16"), the torch spelling
// ("bfloat16", as config.json's torch_dtype) and the safetensors spelling
// ("BF16").
func ParseDType(s string) (DType, error) {
	switch s {
	case "f32", "float32", "F32":
		return F32, nil
	case "f16", "float16", "F16":
		return F16, nil
	case "bf16", "bfloat16", "BF16":
		return BF16, nil
	}
	return "", fmt.Errorf("unknown dtype %q (want f32, f16 or bf16)", s)
}

// Size is the number of bytes one value takes, 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F32:
		return 4
	case F16, BF16:
		return 2
	}
	return 0
}

// Torch is the dtype's name in config.json's torch_dtype ("bfloat16").
func (d DType) Torch() string {
	switch d {
	case F32:
		return "float32"
	case F16:
		return "float16"
	case BF16:
		return "bfloat16"
	}
	return ""
}

// Safetensors is the dtype's name in a safetensors header ("BF16").
func (d DType) Safetensors() string {
	switch d {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case BF16:
		return "BF16"
	}
	return ""
}
