// Package ggufw writes GGUF files (ggml's single-file checkpoint format, the
// one llama.cpp loads) and converts Hugging Face Llama directories to them the
// way llama.cpp's convert_hf_to_gguf.py does, so that llama.cpp runs the same
// weights as every other engine of the benchmark.
//
// The format is the one ggml/include/gguf.h documents (version 3, little
// endian): a header (magic, version, tensor count, metadata count), the
// metadata key/value pairs, the tensor descriptions (name, dimensions
// innermost first, ggml type, data offset), padding to the alignment, then
// each tensor's data at its offset, every offset a multiple of the alignment.
//
// The package uses only the standard library: the runner (runner models
// convert --to gguf) and the llama.cpp engine both import it.
package ggufw

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Magic and Version are the GGUF header's first two fields.
const (
	Magic   = "GGUF"
	Version = 3
)

// Alignment is the general.alignment this package writes (ggml's default),
// in bytes.
const Alignment = 32

// Type is a ggml tensor type (ggml.h's enum ggml_type).
type Type uint32

// The tensor types this package writes, with ggml's numbering.
const (
	F32  Type = 0
	F16  Type = 1
	Q8_0 Type = 8
	Q4_K Type = 12
	BF16 Type = 30
)

var typeNames = map[Type]string{F32: "f32", F16: "f16", Q8_0: "q8_0", Q4_K: "q4_k", BF16: "bf16"}

// String is the type's name as the CLI spells it ("q4_k").
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// ParseType parses a type name: f32, f16, bf16, q8_0 or q4_k (any case).
func ParseType(s string) (Type, error) {
	for t, n := range typeNames {
		if equalFold(s, n) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("tensor type %q: want f32, f16, bf16, q8_0 or q4_k", s)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// BlockSize is the number of values one block of t holds (1 for float
// types).
func (t Type) BlockSize() int {
	switch t {
	case Q8_0:
		return 32
	case Q4_K:
		return 256
	}
	return 1
}

// blockBytes is the storage size of one block of t, in bytes.
func (t Type) blockBytes() int {
	switch t {
	case F32:
		return 4
	case F16, BF16:
		return 2
	case Q8_0:
		return 34 // f16 scale + 32 int8
	case Q4_K:
		return 144 // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
	}
	return 0
}

// RowBytes is the storage size of a row of n values of type t; n must be a
// multiple of t's block size.
func (t Type) RowBytes(n int) (int, error) {
	bs := t.blockBytes()
	if bs == 0 {
		return 0, fmt.Errorf("tensor type %s: not written by this package", t)
	}
	if n%t.BlockSize() != 0 {
		return 0, fmt.Errorf("tensor type %s: row of %d values is not a multiple of the block size %d", t, n, t.BlockSize())
	}
	return n / t.BlockSize() * bs, nil
}

// Tensor describes one tensor of a GGUF file.
type Tensor struct {
	// Name is the GGUF tensor name ("blk.0.attn_q.weight").
	Name string
	// Dims are the dimensions innermost first, as ggml's ne[] (a PyTorch
	// [rows, cols] weight has Dims [cols, rows]).
	Dims []uint64
	// Type is the storage type.
	Type Type
}

// Bytes is the size of t's data, in bytes.
func (t Tensor) Bytes() (int64, error) {
	if len(t.Dims) == 0 || len(t.Dims) > 4 {
		return 0, fmt.Errorf("tensor %q: %d dimensions, want 1 to 4", t.Name, len(t.Dims))
	}
	row, err := t.Type.RowBytes(int(t.Dims[0]))
	if err != nil {
		return 0, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	n := int64(row)
	for _, d := range t.Dims[1:] {
		n *= int64(d)
	}
	return n, nil
}

// KV is one metadata key/value pair. Value is one of uint8, int8, uint16,
// int16, uint32, int32, uint64, int64, float32, float64, bool, string, or a
// slice of one of them (a GGUF array).
type KV struct {
	Key   string
	Value any
}

// GGUF metadata value types (gguf.h's enum gguf_type).
const (
	typeUint8   = 0
	typeInt8    = 1
	typeUint16  = 2
	typeInt16   = 3
	typeUint32  = 4
	typeInt32   = 5
	typeFloat32 = 6
	typeBool    = 7
	typeString  = 8
	typeArray   = 9
	typeUint64  = 10
	typeInt64   = 11
	typeFloat64 = 12
)

// enc appends little-endian GGUF encodings to a buffer.
type enc struct{ b []byte }

func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) str(s string) { e.u64(uint64(len(s))); e.b = append(e.b, s...) }

// scalarType returns the GGUF type of a scalar value.
func scalarType(v any) (uint32, bool) {
	switch v.(type) {
	case uint8:
		return typeUint8, true
	case int8:
		return typeInt8, true
	case uint16:
		return typeUint16, true
	case int16:
		return typeInt16, true
	case uint32:
		return typeUint32, true
	case int32:
		return typeInt32, true
	case float32:
		return typeFloat32, true
	case bool:
		return typeBool, true
	case string:
		return typeString, true
	case uint64:
		return typeUint64, true
	case int64:
		return typeInt64, true
	case float64:
		return typeFloat64, true
	}
	return 0, false
}

func (e *enc) scalar(v any) {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		e.b = append(e.b, x)
	case int8:
		e.b = append(e.b, byte(x))
	case uint16:
		e.b = le.AppendUint16(e.b, x)
	case int16:
		e.b = le.AppendUint16(e.b, uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		if x {
			e.b = append(e.b, 1)
		} else {
			e.b = append(e.b, 0)
		}
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	}
}

// value appends v's type and encoding.
func (e *enc) value(v any) error {
	if t, ok := scalarType(v); ok {
		e.u32(t)
		e.scalar(v)
		return nil
	}
	var elems []any
	switch x := v.(type) {
	case []uint8:
		elems = toAny(x)
	case []int8:
		elems = toAny(x)
	case []uint16:
		elems = toAny(x)
	case []int16:
		elems = toAny(x)
	case []uint32:
		elems = toAny(x)
	case []int32:
		elems = toAny(x)
	case []float32:
		elems = toAny(x)
	case []bool:
		elems = toAny(x)
	case []string:
		elems = toAny(x)
	case []uint64:
		elems = toAny(x)
	case []int64:
		elems = toAny(x)
	case []float64:
		elems = toAny(x)
	default:
		return fmt.Errorf("value of type %T: not a GGUF scalar or array", v)
	}
	e.u32(typeArray)
	var et uint32
	if len(elems) > 0 {
		et, _ = scalarType(elems[0])
	} else {
		// An empty array still names its element type.
		et = emptyElemType(v)
	}
	e.u32(et)
	e.u64(uint64(len(elems)))
	for _, x := range elems {
		e.scalar(x)
	}
	return nil
}

func toAny[T any](s []T) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func emptyElemType(v any) uint32 {
	switch v.(type) {
	case []uint8:
		return typeUint8
	case []int8:
		return typeInt8
	case []uint16:
		return typeUint16
	case []int16:
		return typeInt16
	case []uint32:
		return typeUint32
	case []int32:
		return typeInt32
	case []float32:
		return typeFloat32
	case []bool:
		return typeBool
	case []uint64:
		return typeUint64
	case []int64:
		return typeInt64
	case []float64:
		return typeFloat64
	}
	return typeString
}

// Writer writes one GGUF file: NewWriter writes the header, metadata and
// tensor descriptions (data offsets are computed up front from the tensor
// sizes), then Write takes the tensors' data in the order they were
// described, inserting the alignment padding between tensors, and Close
// checks that every tensor got all of its bytes. Memory stays bounded: the
// data may come in chunks of any size.
type Writer struct {
	w       *bufio.Writer
	tensors []Tensor
	sizes   []int64
	cur     int   // index of the tensor being written
	left    int64 // bytes still due for tensors[cur]
	n       int64 // bytes written so far
}

// NewWriter writes the header of a GGUF file with the given metadata (in
// the order given; general.alignment is added when absent) and tensors to w.
func NewWriter(w io.Writer, meta []KV, tensors []Tensor) (*Writer, error) {
	var e enc
	e.b = append(e.b, Magic...)
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	hasAlign := false
	seen := map[string]bool{}
	for _, kv := range meta {
		if kv.Key == "general.alignment" {
			if a, ok := kv.Value.(uint32); !ok || a != Alignment {
				return nil, fmt.Errorf("metadata general.alignment: %v, this writer pads to uint32(%d)", kv.Value, Alignment)
			}
			hasAlign = true
		}
	}
	n := len(meta)
	if !hasAlign {
		n++
	}
	e.u64(uint64(n))
	if !hasAlign {
		meta = append([]KV{{"general.alignment", uint32(Alignment)}}, meta...)
		// general.architecture stays first, as gguf-py writes it.
		if len(meta) > 1 && meta[1].Key == "general.architecture" {
			meta[0], meta[1] = meta[1], meta[0]
		}
	}
	for _, kv := range meta {
		if kv.Key == "" || seen[kv.Key] {
			return nil, fmt.Errorf("metadata key %q: empty or duplicate", kv.Key)
		}
		seen[kv.Key] = true
		e.str(kv.Key)
		if err := e.value(kv.Value); err != nil {
			return nil, fmt.Errorf("metadata %s: %w", kv.Key, err)
		}
	}
	sizes := make([]int64, len(tensors))
	var off int64
	names := map[string]bool{}
	for i, t := range tensors {
		if names[t.Name] {
			return nil, fmt.Errorf("tensor %q: duplicate name", t.Name)
		}
		names[t.Name] = true
		if len(t.Name) >= 64 {
			return nil, fmt.Errorf("tensor %q: name longer than ggml's 63 bytes", t.Name)
		}
		size, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		sizes[i] = size
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(uint64(off))
		off = pad(off + size)
	}
	e.b = append(e.b, make([]byte, pad(int64(len(e.b)))-int64(len(e.b)))...)
	gw := &Writer{w: bufio.NewWriterSize(w, 1<<20), tensors: tensors, sizes: sizes}
	if len(sizes) > 0 {
		gw.left = sizes[0]
	}
	if _, err := gw.w.Write(e.b); err != nil {
		return nil, err
	}
	gw.n = int64(len(e.b))
	return gw, nil
}

// pad rounds n up to the alignment.
func pad(n int64) int64 { return (n + Alignment - 1) / Alignment * Alignment }

var zeros [Alignment]byte

// Write appends p to the tensor data; p may span tensors.
func (w *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if w.cur >= len(w.tensors) {
			return written, errors.New("gguf: data past the last tensor")
		}
		k := int(min(int64(len(p)), w.left))
		if _, err := w.w.Write(p[:k]); err != nil {
			return written, err
		}
		written += k
		w.n += int64(k)
		w.left -= int64(k)
		p = p[k:]
		if w.left == 0 {
			if err := w.next(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// next pads after a complete tensor and moves on to the next one (skipping
// empty tensors).
func (w *Writer) next() error {
	for w.left == 0 && w.cur < len(w.tensors) {
		if _, err := w.w.Write(zeros[:pad(w.n)-w.n]); err != nil {
			return err
		}
		w.n = pad(w.n)
		w.cur++
		if w.cur < len(w.tensors) {
			w.left = w.sizes[w.cur]
		}
	}
	return nil
}

// Current is the tensor whose data Write expects next, false once all are
// complete.
func (w *Writer) Current() (Tensor, bool) {
	if w.cur >= len(w.tensors) {
		return Tensor{}, false
	}
	return w.tensors[w.cur], true
}

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Close flushes the buffered output and checks that every tensor was
// written in full; it does not close the underlying writer.
func (w *Writer) Close() error {
	if w.cur < len(w.tensors) && w.left == 0 {
		if err := w.next(); err != nil {
			return err
		}
	}
	if w.cur < len(w.tensors) {
		t := w.tensors[w.cur]
		return fmt.Errorf("gguf: tensor %q is missing %d of %d bytes", t.Name, w.left, w.sizes[w.cur])
	}
	return w.w.Flush()
}
