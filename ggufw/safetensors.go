package ggufw

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// stTensor locates one tensor inside a safetensors file.
type stTensor struct {
	Name   string
	File   string // base name inside the model directory
	DType  string // "F32", "F16", "BF16"
	Shape  []int64
	Offset int64 // absolute file offset of the data
	Size   int64 // bytes
}

func (t stTensor) elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// checkpoint lists the tensors of the safetensors files of an HF directory:
// model.safetensors.index.json's shards when present, otherwise every
// *.safetensors file.
func checkpoint(dir string) (map[string]stTensor, error) {
	var files []string
	idx, err := os.ReadFile(filepath.Join(dir, "model.safetensors.index.json"))
	switch {
	case err == nil:
		var ix struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(idx, &ix); err != nil {
			return nil, fmt.Errorf("model.safetensors.index.json: %w", err)
		}
		seen := map[string]bool{}
		for _, f := range ix.WeightMap {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
		sort.Strings(files)
	case errors.Is(err, os.ErrNotExist):
		m, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
		if err != nil {
			return nil, err
		}
		for _, p := range m {
			files = append(files, filepath.Base(p))
		}
	default:
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no safetensors files", dir)
	}
	out := map[string]stTensor{}
	for _, f := range files {
		ts, err := readSafetensorsHeader(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if _, dup := out[t.Name]; dup {
				return nil, fmt.Errorf("%s: tensor %q appears in two files", f, t.Name)
			}
			t.File = f
			out[t.Name] = t
		}
	}
	return out, nil
}

func readSafetensorsHeader(path string) ([]stTensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var lenb [8]byte
	if _, err := io.ReadFull(f, lenb[:]); err != nil {
		return nil, fmt.Errorf("%s: header length: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenb[:])
	if n > 100<<20 || int64(n)+8 > st.Size() {
		return nil, fmt.Errorf("%s: header length %d is implausible", path, n)
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(f, hb); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hb, &raw); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	base := 8 + int64(n)
	var ts []stTensor
	for name, v := range raw {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType       string  `json:"dtype"`
			Shape       []int64 `json:"shape"`
			DataOffsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[0] < 0 || e.DataOffsets[1] < e.DataOffsets[0] || base+e.DataOffsets[1] > st.Size() {
			return nil, fmt.Errorf("%s: tensor %q: data_offsets %v out of the file", path, name, e.DataOffsets)
		}
		t := stTensor{Name: name, DType: e.DType, Shape: e.Shape, Offset: base + e.DataOffsets[0], Size: e.DataOffsets[1] - e.DataOffsets[0]}
		es := map[string]int64{"F32": 4, "F16": 2, "BF16": 2}[t.DType]
		if es != 0 && t.elements()*es != t.Size {
			return nil, fmt.Errorf("%s: tensor %q: %d bytes for shape %v %s", path, name, t.Size, t.Shape, t.DType)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// readRows reads rows [r0, r1) of a 2-D (or all of a 1-D, r0=0 r1=1) tensor
// and widens them to f32, appending to dst.
func readRows(f *os.File, t stTensor, r0, r1 int64, raw []byte, dst []float32) ([]byte, []float32, error) {
	var es int64
	switch t.DType {
	case "F32":
		es = 4
	case "F16", "BF16":
		es = 2
	default:
		return raw, dst, fmt.Errorf("dtype %s: want F32, F16 or BF16", t.DType)
	}
	cols := t.Shape[len(t.Shape)-1]
	n := (r1 - r0) * cols
	if cap(raw) < int(n*es) {
		raw = make([]byte, n*es)
	}
	raw = raw[:n*es]
	if _, err := f.ReadAt(raw, t.Offset+r0*cols*es); err != nil {
		return raw, dst, err
	}
	le := binary.LittleEndian
	for i := range n {
		switch t.DType {
		case "F32":
			dst = append(dst, math.Float32frombits(le.Uint32(raw[4*i:])))
		case "BF16":
			dst = append(dst, math.Float32frombits(uint32(le.Uint16(raw[2*i:]))<<16))
		default:
			dst = append(dst, HalfToFloat(le.Uint16(raw[2*i:])))
		}
	}
	return raw, dst, nil
}
