package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

// shard is one safetensors file of the plan.
type shard struct {
	name    string
	tensors []placed
	header  []byte // length prefix + JSON + padding
	size    int64  // whole file
}

// placed is a tensor at its offset inside its shard's data section.
type placed struct {
	modelcfg.Tensor
	begin, end int64 // data_offsets, in bytes
	ones       bool  // an RMSNorm weight: all 1.0
}

// plan splits the tensors of c into shards as transformers' save_pretrained
// does: in order, starting a new shard when the next tensor would take the
// current one past maxBytes (a tensor bigger than maxBytes gets a shard of its
// own). One shard is named model.safetensors, several
// model-0000i-of-0000n.safetensors.
func plan(c modelcfg.Config, d modelcfg.DType, maxBytes int64) []shard {
	var shards []shard
	var cur *shard
	var used int64
	for _, t := range c.Tensors() {
		size := t.Elements() * int64(d.Size())
		if cur == nil || used > 0 && used+size > maxBytes {
			shards = append(shards, shard{})
			cur, used = &shards[len(shards)-1], 0
		}
		cur.tensors = append(cur.tensors, placed{Tensor: t, begin: used, end: used + size, ones: strings.HasSuffix(t.Name, "norm.weight")})
		used += size
	}
	for i := range shards {
		s := &shards[i]
		s.name = modelcfg.SingleFile
		if len(shards) > 1 {
			s.name = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		}
		s.header = header(s.tensors, d)
		s.size = int64(len(s.header)) + s.tensors[len(s.tensors)-1].end
	}
	return shards
}

// header encodes a safetensors header: the little-endian u64 length N, then N
// bytes of JSON ({"__metadata__":{"format":"pt"}, then each tensor in data
// order}) padded with spaces so that the data starts 8-byte aligned.
func header(ts []placed, d modelcfg.DType) []byte {
	var b bytes.Buffer
	b.Write(make([]byte, 8))
	b.WriteString(`{"__metadata__":{"format":"pt"}`)
	for _, t := range ts {
		name, _ := json.Marshal(t.Name)
		b.WriteByte(',')
		b.Write(name)
		b.WriteString(`:{"dtype":"` + d.Safetensors() + `","shape":[`)
		for i, dim := range t.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(dim, 10))
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, t.begin, t.end)
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	h := b.Bytes()
	n := uint64(len(h) - 8)
	for i := range 8 {
		h[i] = byte(n >> (8 * i))
	}
	return h
}

// index encodes model.safetensors.index.json for a sharded plan.
func index(shards []shard, params int64) []byte {
	var total int64
	var b bytes.Buffer
	b.WriteString("{\n  \"metadata\": {\n")
	for _, s := range shards {
		total += s.tensors[len(s.tensors)-1].end
	}
	fmt.Fprintf(&b, "    \"total_parameters\": %d,\n    \"total_size\": %d\n  },\n  \"weight_map\": {", params, total)
	first := true
	for _, s := range shards {
		for _, t := range s.tensors {
			if !first {
				b.WriteByte(',')
			}
			first = false
			name, _ := json.Marshal(t.Name)
			fmt.Fprintf(&b, "\n    %s: %q", name, s.name)
		}
	}
	b.WriteString("\n  }\n}\n")
	return b.Bytes()
}
