// Package safetensors reads Hugging Face safetensors checkpoints: a single
// model.safetensors file or a sharded directory described by
// model.safetensors.index.json. Tensors of dtype F32, F16 and BF16 are
// returned as float32; the reader uses plain positioned reads, no mmap.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Standard file names inside an HF model directory.
const (
	SingleFile = "model.safetensors"
	IndexFile  = "model.safetensors.index.json"
)

// maxHeaderBytes bounds the JSON header; the format itself caps it at 100 MB.
const maxHeaderBytes = 100 << 20

// readChunk is how many bytes are read from disk at a time while converting.
const readChunk = 16 << 20

// Tensor describes one tensor of a checkpoint.
type Tensor struct {
	// Name is the tensor's key, e.g. "model.norm.weight".
	Name string
	// DType is the safetensors dtype string, e.g. "BF16".
	DType string
	// Shape is the tensor's shape, outermost first.
	Shape []int
	// File is the path of the file holding the tensor.
	File string
	// offset is the absolute byte offset of the data in File; size its length.
	offset, size int64
}

// Numel returns the number of elements of t.
func (t *Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// dtypeSize gives the element size in bytes of every dtype the format defines;
// only F32, F16 and BF16 can be converted.
var dtypeSize = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// Checkpoint is an open set of safetensors files.
type Checkpoint struct {
	tensors map[string]*Tensor
	files   map[string]*os.File
}

// Open opens the checkpoint in model directory dir: the shards listed by
// model.safetensors.index.json when that file exists, else model.safetensors.
func Open(dir string) (*Checkpoint, error) {
	idx := filepath.Join(dir, IndexFile)
	if _, err := os.Stat(idx); err == nil {
		return openIndex(idx)
	}
	single := filepath.Join(dir, SingleFile)
	if _, err := os.Stat(single); err != nil {
		return nil, fmt.Errorf("open checkpoint %s: neither %s nor %s found", dir, IndexFile, SingleFile)
	}
	return OpenFiles(single)
}

// OpenFiles opens the given safetensors files as one checkpoint. A tensor name
// present in two files is an error.
func OpenFiles(paths ...string) (*Checkpoint, error) {
	c := &Checkpoint{tensors: map[string]*Tensor{}, files: map[string]*os.File{}}
	for _, p := range paths {
		if err := c.add(p); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

type index struct {
	WeightMap map[string]string `json:"weight_map"`
}

func openIndex(path string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	var ix index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	if len(ix.WeightMap) == 0 {
		return nil, fmt.Errorf("index %s: empty weight_map", path)
	}
	var shards []string
	for _, f := range ix.WeightMap {
		if f == "" || f != filepath.Base(f) {
			return nil, fmt.Errorf("index %s: shard name %q is not a plain file name", path, f)
		}
		shards = append(shards, filepath.Join(filepath.Dir(path), f))
	}
	sort.Strings(shards)
	shards = slices.Compact(shards)
	c, err := OpenFiles(shards...)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	for name, f := range ix.WeightMap {
		t, ok := c.tensors[name]
		if !ok {
			c.Close()
			return nil, fmt.Errorf("index %s: tensor %q is mapped to %s but that file does not contain it", path, name, f)
		}
		if filepath.Base(t.File) != filepath.Base(f) {
			c.Close()
			return nil, fmt.Errorf("index %s: tensor %q is mapped to %s but found in %s", path, name, f, filepath.Base(t.File))
		}
	}
	return c, nil
}

type entry struct {
	DType       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// add parses the header of the file at path and registers its tensors.
func (c *Checkpoint) add(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open safetensors: %w", err)
	}
	c.files[path] = f
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		return fmt.Errorf("safetensors %s: read header length: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxHeaderBytes || int64(n) > st.Size()-8 {
		return fmt.Errorf("safetensors %s: header length %d exceeds the file (%d bytes) or the %d-byte limit", path, n, st.Size(), maxHeaderBytes)
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return fmt.Errorf("safetensors %s: read header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return fmt.Errorf("safetensors %s: parse header: %w", path, err)
	}
	base := 8 + int64(n)
	dataLen := st.Size() - base
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return fmt.Errorf("safetensors %s: tensor %q: parse entry: %w", path, name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return fmt.Errorf("safetensors %s: tensor %q: unknown dtype %q", path, name, e.DType)
		}
		if len(e.DataOffsets) != 2 {
			return fmt.Errorf("safetensors %s: tensor %q: data_offsets has %d values, want 2", path, name, len(e.DataOffsets))
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > dataLen {
			return fmt.Errorf("safetensors %s: tensor %q: data_offsets [%d, %d] outside the %d data bytes", path, name, begin, end, dataLen)
		}
		numel := int64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return fmt.Errorf("safetensors %s: tensor %q: negative dimension in shape %v", path, name, e.Shape)
			}
			numel *= int64(d)
		}
		if numel*int64(size) != end-begin {
			return fmt.Errorf("safetensors %s: tensor %q: shape %v of %s needs %d bytes, data_offsets span %d", path, name, e.Shape, e.DType, numel*int64(size), end-begin)
		}
		if prev, dup := c.tensors[name]; dup {
			return fmt.Errorf("safetensors %s: tensor %q is also in %s", path, name, prev.File)
		}
		c.tensors[name] = &Tensor{Name: name, DType: e.DType, Shape: e.Shape, File: path, offset: base + begin, size: end - begin}
	}
	return nil
}

// Names returns the names of all tensors, sorted.
func (c *Checkpoint) Names() []string {
	out := make([]string, 0, len(c.tensors))
	for n := range c.tensors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Tensor returns the description of the named tensor.
func (c *Checkpoint) Tensor(name string) (*Tensor, bool) {
	t, ok := c.tensors[name]
	return t, ok
}

// ErrNotFound is wrapped by errors for a tensor the checkpoint lacks.
var ErrNotFound = errors.New("tensor not found")

// Float32 reads the named tensor and converts it to float32. When shape is
// given, the tensor's shape must equal it.
func (c *Checkpoint) Float32(name string, shape ...int) ([]float32, error) {
	t, ok := c.tensors[name]
	if !ok {
		return nil, fmt.Errorf("tensor %q: %w", name, ErrNotFound)
	}
	if shape != nil && !slices.Equal(t.Shape, shape) {
		return nil, fmt.Errorf("safetensors %s: tensor %q: shape %v, want %v", t.File, name, t.Shape, shape)
	}
	var conv func(dst []float32, src []byte)
	switch t.DType {
	case "F32":
		conv = f32
	case "F16":
		conv = f16
	case "BF16":
		conv = bf16
	default:
		return nil, fmt.Errorf("safetensors %s: tensor %q: dtype %s not supported (want F32, F16 or BF16)", t.File, name, t.DType)
	}
	size := int64(dtypeSize[t.DType])
	out := make([]float32, t.Numel())
	buf := make([]byte, min(t.size, readChunk))
	f := c.files[t.File]
	for done := int64(0); done < t.size; {
		n := min(int64(len(buf)), t.size-done)
		if _, err := f.ReadAt(buf[:n], t.offset+done); err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: read: %w", t.File, name, err)
		}
		conv(out[done/size:(done+n)/size], buf[:n])
		done += n
	}
	return out, nil
}

// Close closes every file of the checkpoint.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	c.files = nil
	return errors.Join(errs...)
}

func f32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func bf16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

func f16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = HalfToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// HalfToFloat32 converts IEEE 754 binary16 bits to float32 exactly, including
// subnormals, infinities and NaN.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	}
	// Subnormal: value = mant * 2^-24, exact in float32.
	v := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}
