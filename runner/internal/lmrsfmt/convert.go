package lmrsfmt

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cuda-inference-benchmarks/cib/ggufw"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

// Options say what to convert.
type Options struct {
	// In is an HF Llama directory (config.json + safetensors).
	In string
	// Out is the directory to create: config.json and the other small JSON
	// files of In (so the runner reads the model's shape as usual) and
	// model.lmrs.
	Out string
	// Quant is the weight storage.
	Quant Quant
	// GroupSize is the quantization group, 0 for the default (64, else 32 or 16).
	GroupSize uint32
	// Overwrite replaces an existing Out.
	Overwrite bool
	// Progress, when set, gets a line per layer.
	Progress io.Writer
}

// Result describes a written file.
type Result struct {
	Path     string
	Header   Header
	Bytes    int64
	CRC      uint32
	Duration time.Duration
}

// NewHeader derives the header of an lmrs file from a model config.
func NewHeader(c modelcfg.Config, q Quant, gs uint32) (Header, error) {
	h := Header{Quant: q, Vocab: uint32(c.VocabSize), Dim: uint32(c.HiddenSize), Hidden: uint32(c.IntermediateSize),
		Layers: uint32(c.NumHiddenLayers), Heads: uint32(c.NumAttentionHeads), KVHeads: uint32(c.NumKeyValueHeads),
		HeadDim: uint32(c.HeadDim), MaxSeq: uint32(c.MaxPositionEmbeddings), Tied: c.TieWordEmbeddings,
		RopeTheta: c.RopeTheta, RMSEps: c.RMSNormEps}
	if r := c.RopeScaling; r != nil {
		switch r.Type {
		case "llama3":
			h.Rope = &Llama3Rope{Factor: r.Factor, LowFreqFactor: r.LowFreqFactor, HighFreqFactor: r.HighFreqFactor,
				OriginalMaxPositionEmbeddings: uint32(r.OriginalMaxPositionEmbeddings)}
		case "", "default":
		default:
			return Header{}, fmt.Errorf("rope_scaling type %q: lmrs supports llama3 only", r.Type)
		}
	}
	if h.HeadDim%2 != 0 {
		return Header{}, fmt.Errorf("head_dim %d is odd", h.HeadDim)
	}
	switch {
	case q == F32 && gs != 0:
		return Header{}, fmt.Errorf("group size %d given for f32 weights", gs)
	case q == F32:
	case gs == 0:
		g, err := DefaultGroupSize(h.RowLengths())
		if err != nil {
			return Header{}, err
		}
		h.GroupSize = g
	default:
		if err := CheckGroupSize(gs, h.RowLengths()); err != nil {
			return Header{}, err
		}
		h.GroupSize = gs
	}
	slots := h.Layout()
	h.PayloadBytes = uint64(slots[len(slots)-1].End - HeaderLen)
	return h, nil
}

// Convert writes o.Out from the HF directory o.In, one tensor at a time.
func Convert(ctx context.Context, o Options) (Result, error) {
	start := time.Now()
	cfg, err := modelcfg.Load(o.In)
	if err != nil {
		return Result{}, fmt.Errorf("convert to lmrs: %w", err)
	}
	h, err := NewHeader(cfg, o.Quant, o.GroupSize)
	if err != nil {
		return Result{}, fmt.Errorf("convert to lmrs: %w", err)
	}
	tensors, err := modelcfg.Checkpoint(o.In)
	if err != nil {
		return Result{}, fmt.Errorf("convert to lmrs: %w", err)
	}
	byName := make(map[string]modelcfg.TensorInfo, len(tensors))
	for _, t := range tensors {
		byName[t.Name] = t
	}
	slots := h.Layout()
	used := map[string]bool{}
	for _, s := range slots {
		used[s.Name] = true
	}
	for _, t := range tensors {
		if !used[t.Name] && !strings.HasSuffix(t.Name, "rotary_emb.inv_freq") {
			return Result{}, fmt.Errorf("convert to lmrs: checkpoint tensor %q is not part of a Llama of this config", t.Name)
		}
	}
	if _, err := os.Stat(o.Out); err == nil && !o.Overwrite {
		return Result{}, fmt.Errorf("convert to lmrs: %s exists (pass --overwrite to replace it)", o.Out)
	}
	tmp := o.Out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return Result{}, fmt.Errorf("convert to lmrs: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return Result{}, fmt.Errorf("convert to lmrs: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := copyJSON(o.In, tmp); err != nil {
		return Result{}, fmt.Errorf("convert to lmrs: %w", err)
	}
	path := filepath.Join(tmp, FileName)
	crc, err := writeFile(ctx, path, &h, slots, byName, o)
	if err != nil {
		return Result{}, fmt.Errorf("convert to lmrs: %w", err)
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return Result{}, fmt.Errorf("convert to lmrs: %w", err)
	}
	if err := os.Rename(tmp, o.Out); err != nil {
		return Result{}, fmt.Errorf("convert to lmrs: %w", err)
	}
	return Result{Path: filepath.Join(o.Out, FileName), Header: h, Bytes: HeaderLen + int64(h.PayloadBytes), CRC: crc,
		Duration: time.Since(start)}, nil
}

// copyJSON copies the small JSON files of an HF directory (config, tokenizer,
// generation config) so the converted directory describes the same model.
func copyJSON(in, out string) error {
	ents, err := os.ReadDir(in)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || name == modelcfg.IndexFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(in, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sink writes the file sequentially, padding to slot offsets and hashing the
// payload.
type sink struct {
	w   *bufio.Writer
	crc hash.Hash32
	at  int
	buf []byte
}

func (s *sink) write(b []byte) error {
	if s.at >= HeaderLen {
		s.crc.Write(b)
	}
	s.at += len(b)
	_, err := s.w.Write(b)
	return err
}

func (s *sink) padTo(at int) error {
	if at < s.at {
		return fmt.Errorf("layout: offset %d is behind the write position %d", at, s.at)
	}
	return s.write(make([]byte, at-s.at))
}

func (s *sink) f32s(v []float32) error {
	s.buf = s.buf[:0]
	for _, x := range v {
		s.buf = binary.LittleEndian.AppendUint32(s.buf, math.Float32bits(x))
	}
	return s.write(s.buf)
}

func writeFile(ctx context.Context, path string, h *Header, slots []Slot, byName map[string]modelcfg.TensorInfo, o Options) (uint32, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := &sink{w: bufio.NewWriterSize(f, 1<<20), crc: crc32.NewIEEE()}
	head := h.Encode()
	s.crc.Write(head[:CRCAt])
	if err := s.write(head); err != nil {
		return 0, err
	}
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	gs := int(h.GroupSize)
	for i, sl := range slots {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		t, ok := byName[sl.Name]
		if !ok {
			return 0, fmt.Errorf("tensor %q: not in the checkpoint", sl.Name)
		}
		want := []int64{int64(sl.Cols)}
		if sl.Matrix {
			want = []int64{int64(sl.Rows), int64(sl.Cols)}
		}
		if fmt.Sprint(t.Shape) != fmt.Sprint(want) {
			return 0, fmt.Errorf("tensor %q: shape %v, want %v", sl.Name, t.Shape, want)
		}
		src, ok := files[t.File]
		if !ok {
			if src, err = os.Open(filepath.Join(o.In, t.File)); err != nil {
				return 0, err
			}
			files[t.File] = src
		}
		x, err := readF32(src, t)
		if err != nil {
			return 0, fmt.Errorf("tensor %q: %w", sl.Name, err)
		}
		if err := s.padTo(sl.Data); err != nil {
			return 0, err
		}
		switch {
		case !sl.Matrix || h.Quant == F32:
			err = s.f32s(x)
		case h.Quant == Q8_0:
			q, sc := make([]int8, len(x)), make([]float32, len(x)/gs)
			QuantizeQ8(x, gs, q, sc)
			b := make([]byte, len(q))
			for i, v := range q {
				b[i] = byte(v)
			}
			if err = s.write(b); err == nil {
				if err = s.padTo(sl.Scales); err == nil {
					err = s.f32s(sc)
				}
			}
		case h.Quant == Q4_0:
			q, sc := make([]byte, len(x)/2), make([]float32, len(x)/gs)
			QuantizeQ4(x, gs, q, sc)
			if err = s.write(q); err == nil {
				if err = s.padTo(sl.Scales); err == nil {
					err = s.f32s(sc)
				}
			}
		}
		if err != nil {
			return 0, err
		}
		if s.at != sl.End {
			return 0, fmt.Errorf("tensor %q: wrote up to %d, layout says %d", sl.Name, s.at, sl.End)
		}
		if o.Progress != nil && strings.HasSuffix(sl.Name, "down_proj.weight") {
			fmt.Fprintf(o.Progress, "converted %s (%d/%d tensors)\n", strings.TrimSuffix(sl.Name, ".mlp.down_proj.weight"), i+1, len(slots))
		}
	}
	if err := s.w.Flush(); err != nil {
		return 0, err
	}
	sum := s.crc.Sum32()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], sum)
	if _, err := f.WriteAt(b[:], CRCAt); err != nil {
		return 0, err
	}
	return sum, f.Close()
}

// readF32 reads a tensor and widens it to f32.
func readF32(f *os.File, t modelcfg.TensorInfo) ([]float32, error) {
	raw := make([]byte, t.Size)
	if _, err := f.ReadAt(raw, t.Offset); err != nil {
		return nil, err
	}
	var size int
	switch t.DType {
	case "F32":
		size = 4
	case "F16", "BF16":
		size = 2
	default:
		return nil, fmt.Errorf("dtype %s: want F32, F16 or BF16", t.DType)
	}
	out := make([]float32, len(raw)/size)
	le := binary.LittleEndian
	for i := range out {
		switch t.DType {
		case "F32":
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		case "BF16":
			out[i] = math.Float32frombits(uint32(le.Uint16(raw[2*i:])) << 16)
		default:
			out[i] = ggufw.HalfToFloat(le.Uint16(raw[2*i:]))
		}
	}
	return out, nil
}
