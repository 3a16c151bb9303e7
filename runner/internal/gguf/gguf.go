// Package gguf reads GGUF files (ggml's single-file checkpoint format: a
// header of typed metadata and tensor descriptions, then the tensor data) and
// dequantizes their tensors to float32, so that Import can turn a GGUF Llama
// into the Hugging Face directory every engine reads. The format is
// ggml's docs/gguf.md (version 2 and 3, little-endian).
package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
)

// magic is "GGUF" read as a little-endian uint32.
const magic = 0x46554747

// defaultAlignment is the data alignment when general.alignment is absent.
const defaultAlignment = 32

// maxString bounds one metadata string (a corrupt length must not allocate
// gigabytes); maxArray bounds one metadata array.
const (
	maxString = 1 << 24
	maxArray  = 1 << 26
)

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name string
	// Dims are ggml's ne: Dims[0] is the innermost (contiguous) dimension,
	// so a [rows, cols] PyTorch matrix has Dims {cols, rows}.
	Dims []uint64
	Type Type
	// Offset is the tensor's start relative to the data section, in bytes.
	Offset uint64
}

// Elements is the number of values in t.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= int64(d)
	}
	return n
}

// Shape is t's shape outermost first, as PyTorch and safetensors write it.
func (t TensorInfo) Shape() []int64 {
	s := make([]int64, len(t.Dims))
	for i, d := range t.Dims {
		s[len(t.Dims)-1-i] = int64(d)
	}
	return s
}

// File is an open GGUF file: its metadata and tensor descriptions are read
// at Open, tensor data on demand.
type File struct {
	Version uint32
	// Metadata holds every key-value pair: numbers as uint64, int64 or
	// float64, bool, string, and arrays as []uint64, []int64, []float64,
	// []bool, []string (or []any for arrays of arrays).
	Metadata map[string]any
	Tensors  []TensorInfo
	f        *os.File
	data     int64 // start of the data section in the file
	size     int64
}

// Open reads the header of the GGUF file at path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	g, err := read(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read gguf %s: %w", path, err)
	}
	return g, nil
}

// Close closes the file.
func (g *File) Close() error { return g.f.Close() }

func read(f *os.File) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	cr := &countReader{r: bufio.NewReaderSize(f, 1<<20)}
	r := &reader{r: cr}
	if m := r.u32(); r.err == nil && m != magic {
		return nil, fmt.Errorf("not a GGUF file (magic %#x)", m)
	}
	g := &File{Version: r.u32(), Metadata: map[string]any{}, f: f, size: st.Size()}
	if r.err == nil && (g.Version < 2 || g.Version > 3) {
		return nil, fmt.Errorf("gguf version %d not supported (want 2 or 3)", g.Version)
	}
	nt, nkv := r.u64(), r.u64()
	if r.err == nil && (nt > 1<<20 || nkv > 1<<20) {
		return nil, fmt.Errorf("implausible header: %d tensors, %d metadata keys", nt, nkv)
	}
	for i := uint64(0); i < nkv && r.err == nil; i++ {
		key := r.str()
		g.Metadata[key] = r.value(r.u32(), 0)
		if r.err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, r.err)
		}
	}
	for i := uint64(0); i < nt && r.err == nil; i++ {
		t := TensorInfo{Name: r.str()}
		nd := r.u32()
		if nd > 4 {
			return nil, fmt.Errorf("tensor %q: %d dimensions (at most 4)", t.Name, nd)
		}
		for range nd {
			t.Dims = append(t.Dims, r.u64())
		}
		t.Type, t.Offset = Type(r.u32()), r.u64()
		g.Tensors = append(g.Tensors, t)
	}
	if r.err != nil {
		return nil, r.err
	}
	align := int64(defaultAlignment)
	if a, ok := g.Metadata["general.alignment"]; ok {
		v, ok := a.(uint64)
		if !ok || v == 0 || v&(v-1) != 0 {
			return nil, fmt.Errorf("general.alignment %v is not a power of two", a)
		}
		align = int64(v)
	}
	g.data = (cr.n + align - 1) / align * align
	for _, t := range g.Tensors {
		n, err := t.Type.Bytes(t.Elements())
		if err != nil {
			continue // reported by ReadFloat32, so that the header still opens
		}
		if end := g.data + int64(t.Offset) + n; end > g.size {
			return nil, fmt.Errorf("tensor %q ends at byte %d, past the end of the file (%d bytes)", t.Name, end, g.size)
		}
	}
	return g, nil
}

// Tensor returns the description of the named tensor.
func (g *File) Tensor(name string) (TensorInfo, bool) {
	for _, t := range g.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// ReadFloat32 reads tensor t and dequantizes it into dst, which must hold
// t.Elements() values.
func (g *File) ReadFloat32(t TensorInfo, dst []float32) error {
	n := t.Elements()
	if int64(len(dst)) != n {
		return fmt.Errorf("tensor %s: %d values, buffer holds %d", t.Name, n, len(dst))
	}
	size, err := t.Type.Bytes(n)
	if err != nil {
		return fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	raw := make([]byte, size)
	if _, err := g.f.ReadAt(raw, g.data+int64(t.Offset)); err != nil {
		return fmt.Errorf("tensor %s: read %d bytes: %w", t.Name, size, err)
	}
	if err := Dequantize(t.Type, raw, dst); err != nil {
		return fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return nil
}

// countReader counts the bytes read, to find where the data section starts.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// reader decodes little-endian GGUF values; the first error sticks.
type reader struct {
	r   io.Reader
	err error
	buf [8]byte
}

func (r *reader) fill(n int) []byte {
	if r.err != nil {
		return r.buf[:n:n]
	}
	if _, err := io.ReadFull(r.r, r.buf[:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("truncated header: %w", err)
	}
	return r.buf[:n]
}

func (r *reader) u8() uint8   { return r.fill(1)[0] }
func (r *reader) u16() uint16 { return binary.LittleEndian.Uint16(r.fill(2)) }
func (r *reader) u32() uint32 { return binary.LittleEndian.Uint32(r.fill(4)) }
func (r *reader) u64() uint64 { return binary.LittleEndian.Uint64(r.fill(8)) }

func (r *reader) str() string {
	n := r.u64()
	if r.err != nil {
		return ""
	}
	if n > maxString {
		r.err = fmt.Errorf("string of %d bytes", n)
		return ""
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		r.err = fmt.Errorf("truncated header: %w", err)
	}
	return string(b)
}

// GGUF metadata value types.
const (
	tU8 = iota
	tI8
	tU16
	tI16
	tU32
	tI32
	tF32
	tBool
	tString
	tArray
	tU64
	tI64
	tF64
)

func (r *reader) value(typ uint32, depth int) any {
	switch typ {
	case tU8:
		return uint64(r.u8())
	case tI8:
		return int64(int8(r.u8()))
	case tU16:
		return uint64(r.u16())
	case tI16:
		return int64(int16(r.u16()))
	case tU32:
		return uint64(r.u32())
	case tI32:
		return int64(int32(r.u32()))
	case tF32:
		// The shortest decimal that rounds to the float32 (1e-05, not
		// 9.999999747378752e-06), as config.json spells it.
		v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(math.Float32frombits(r.u32())), 'g', -1, 32), 64)
		return v
	case tBool:
		return r.u8() != 0
	case tString:
		return r.str()
	case tU64:
		return r.u64()
	case tI64:
		return int64(r.u64())
	case tF64:
		return math.Float64frombits(r.u64())
	case tArray:
		et, n := r.u32(), r.u64()
		if r.err != nil {
			return nil
		}
		if n > maxArray || depth > 2 {
			r.err = fmt.Errorf("array of %d values at depth %d", n, depth)
			return nil
		}
		switch et {
		case tU8, tU16, tU32, tU64:
			out := make([]uint64, 0, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				out = append(out, r.value(et, depth+1).(uint64))
			}
			return out
		case tI8, tI16, tI32, tI64:
			out := make([]int64, 0, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				out = append(out, r.value(et, depth+1).(int64))
			}
			return out
		case tF32, tF64:
			out := make([]float64, 0, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				out = append(out, r.value(et, depth+1).(float64))
			}
			return out
		case tBool:
			out := make([]bool, 0, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				out = append(out, r.u8() != 0)
			}
			return out
		case tString:
			out := make([]string, 0, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				out = append(out, r.str())
			}
			return out
		default:
			out := make([]any, 0, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				out = append(out, r.value(et, depth+1))
			}
			return out
		}
	}
	if r.err == nil {
		r.err = fmt.Errorf("unknown value type %d", typ)
	}
	return nil
}

// Uint returns an unsigned or non-negative integer metadata value.
func (g *File) Uint(key string) (uint64, bool) {
	switch v := g.Metadata[key].(type) {
	case uint64:
		return v, true
	case int64:
		if v >= 0 {
			return uint64(v), true
		}
	}
	return 0, false
}

// Float returns a numeric metadata value as float64.
func (g *File) Float(key string) (float64, bool) {
	switch v := g.Metadata[key].(type) {
	case float64:
		return v, true
	case uint64:
		return float64(v), true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// String returns a string metadata value.
func (g *File) String(key string) (string, bool) {
	v, ok := g.Metadata[key].(string)
	return v, ok
}

// Strings returns a string array metadata value.
func (g *File) Strings(key string) ([]string, bool) {
	v, ok := g.Metadata[key].([]string)
	return v, ok
}
