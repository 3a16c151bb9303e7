package modelcfg

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Checkpoint file names inside a model directory.
const (
	SingleFile = "model.safetensors"
	IndexFile  = "model.safetensors.index.json"
)

// maxHeader bounds a safetensors header, as the reference implementation does
// (100 MB).
const maxHeader = 100 << 20

// TensorInfo locates one tensor of a safetensors checkpoint.
type TensorInfo struct {
	// Name is the tensor's name, e.g. "model.norm.weight".
	Name string
	// File is the safetensors file holding it, relative to the model directory.
	File string
	// DType is the safetensors dtype: "F32", "F16", "BF16", …
	DType string
	// Shape is rows first.
	Shape []int64
	// Offset is where the tensor's bytes start, from the start of File.
	Offset int64
	// Size is the tensor's length in bytes.
	Size int64
}

// Header is a parsed safetensors header.
type Header struct {
	// DataStart is the file offset of the first tensor byte: 8 + the header
	// length (JSON and its padding).
	DataStart int64
	// Metadata is the __metadata__ object, nil when absent.
	Metadata map[string]string
	// Tensors in data order; their Offset is from the start of the file.
	Tensors []TensorInfo
}

// DataEnd is the file offset just past the last tensor byte: the file size of
// a well-formed safetensors file.
func (h Header) DataEnd() int64 {
	if len(h.Tensors) == 0 {
		return h.DataStart
	}
	t := h.Tensors[len(h.Tensors)-1]
	return t.Offset + t.Size
}

var stDTypeSize = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// ReadHeader reads and checks the header at the start of a safetensors file:
// the little-endian u64 header length, a JSON object of tensors with known
// dtypes whose shapes match their byte ranges, and byte ranges that tile the
// data section from 0 without gaps or overlaps.
func ReadHeader(r io.Reader) (Header, error) {
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return Header{}, fmt.Errorf("read header length: %w", err)
	}
	if n > maxHeader {
		return Header{}, fmt.Errorf("header length %d exceeds %d", n, maxHeader)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Header{}, fmt.Errorf("read %d-byte header: %w", n, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(buf, &raw); err != nil {
		return Header{}, fmt.Errorf("header: %w", err)
	}
	h := Header{DataStart: 8 + int64(n)}
	for name, v := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(v, &h.Metadata); err != nil {
				return Header{}, fmt.Errorf("header: __metadata__: want an object of strings: %w", err)
			}
			continue
		}
		var t struct {
			DType       string   `json:"dtype"`
			Shape       []int64  `json:"shape"`
			DataOffsets [2]int64 `json:"data_offsets"`
		}
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t); err != nil {
			return Header{}, fmt.Errorf("header: tensor %s: %w", name, err)
		}
		size, ok := stDTypeSize[t.DType]
		if !ok {
			return Header{}, fmt.Errorf("header: tensor %s: unknown dtype %q", name, t.DType)
		}
		for _, d := range t.Shape {
			if d < 0 {
				return Header{}, fmt.Errorf("header: tensor %s: negative dimension in shape %v", name, t.Shape)
			}
			size *= d
		}
		begin, end := t.DataOffsets[0], t.DataOffsets[1]
		if end-begin != size {
			return Header{}, fmt.Errorf("header: tensor %s: data_offsets [%d, %d] hold %d bytes, shape %v of %s needs %d", name, begin, end, end-begin, t.Shape, t.DType, size)
		}
		h.Tensors = append(h.Tensors, TensorInfo{Name: name, DType: t.DType, Shape: t.Shape, Offset: h.DataStart + begin, Size: size})
	}
	sort.Slice(h.Tensors, func(i, j int) bool {
		a, b := h.Tensors[i], h.Tensors[j]
		return a.Offset < b.Offset || a.Offset == b.Offset && a.Size < b.Size
	})
	next := h.DataStart
	for _, t := range h.Tensors {
		if t.Offset != next {
			return Header{}, fmt.Errorf("header: tensor %s starts at data offset %d, want %d (gap or overlap)", t.Name, t.Offset-h.DataStart, next-h.DataStart)
		}
		next += t.Size
	}
	return h, nil
}

// ReadFileHeader reads the header of the safetensors file at path and checks
// that the file ends where the last tensor does.
func ReadFileHeader(path string) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	h, err := ReadHeader(f)
	if err != nil {
		return Header{}, fmt.Errorf("%s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return Header{}, err
	}
	if fi.Size() != h.DataEnd() {
		return Header{}, fmt.Errorf("%s: file is %d bytes, header says %d", path, fi.Size(), h.DataEnd())
	}
	return h, nil
}

// Index is model.safetensors.index.json.
type Index struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// Checkpoint lists every tensor of the model directory dir, read from
// model.safetensors.index.json and its shards when the index exists, else from
// model.safetensors. It checks each file's header and that the index and the
// shards name the same tensors.
func Checkpoint(dir string) ([]TensorInfo, error) {
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if errors.Is(err, os.ErrNotExist) {
		h, err := ReadFileHeader(filepath.Join(dir, SingleFile))
		if err != nil {
			return nil, fmt.Errorf("read checkpoint: %w", err)
		}
		for i := range h.Tensors {
			h.Tensors[i].File = SingleFile
		}
		return h.Tensors, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("read checkpoint: %s: %w", IndexFile, err)
	}
	var files []string
	for _, f := range idx.WeightMap {
		if filepath.Base(f) != f {
			return nil, fmt.Errorf("read checkpoint: %s: weight_map names %q outside the model directory", IndexFile, f)
		}
		files = append(files, f)
	}
	slices.Sort(files)
	files = slices.Compact(files)
	var all []TensorInfo
	for _, f := range files {
		h, err := ReadFileHeader(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("read checkpoint: %w", err)
		}
		for _, t := range h.Tensors {
			if idx.WeightMap[t.Name] != f {
				return nil, fmt.Errorf("read checkpoint: %s holds %s, which %s maps to %q", f, t.Name, IndexFile, idx.WeightMap[t.Name])
			}
			t.File = f
			all = append(all, t)
		}
	}
	if len(all) != len(idx.WeightMap) {
		return nil, fmt.Errorf("read checkpoint: %s maps %d tensors, the shards hold %d", IndexFile, len(idx.WeightMap), len(all))
	}
	return all, nil
}

// Check reads the checkpoint in dir and verifies that it holds exactly the
// tensors c describes, with their shapes, all in one dtype, which it returns.
func (c Config) Check(dir string) (DType, error) {
	got, err := Checkpoint(dir)
	if err != nil {
		return "", err
	}
	byName := make(map[string]TensorInfo, len(got))
	for _, t := range got {
		byName[t.Name] = t
	}
	var dt string
	want := c.Tensors()
	for _, w := range want {
		t, ok := byName[w.Name]
		if !ok {
			return "", fmt.Errorf("check model %s: tensor %s missing", dir, w.Name)
		}
		if !slices.Equal(t.Shape, w.Shape) {
			return "", fmt.Errorf("check model %s: tensor %s has shape %v, config.json implies %v", dir, w.Name, t.Shape, w.Shape)
		}
		if dt == "" {
			dt = t.DType
		} else if t.DType != dt {
			return "", fmt.Errorf("check model %s: tensor %s is %s, others are %s", dir, w.Name, t.DType, dt)
		}
	}
	if len(got) != len(want) {
		for _, t := range got {
			if !slices.ContainsFunc(want, func(w Tensor) bool { return w.Name == t.Name }) {
				return "", fmt.Errorf("check model %s: unexpected tensor %s", dir, t.Name)
			}
		}
	}
	d, err := ParseDType(dt)
	if err != nil {
		return "", fmt.Errorf("check model %s: %w", dir, err)
	}
	return d, nil
}
