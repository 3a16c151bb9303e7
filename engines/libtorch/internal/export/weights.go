package export

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// weightDTypes are the safetensors dtypes the bridge maps to ATen scalar types.
var weightDTypes = map[string]int{"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "BOOL": 1, "U8": 1, "I8": 1}

// WeightsIndex reads the header of the safetensors file path (the export's weights file) and returns the index
// the bridge takes: one line per tensor, "name<TAB>dtype<TAB>offset<TAB>bytes<TAB>d0,d1,…", offset counted from
// the start of the file, sorted by offset. The bridge maps the file and copies each tensor to the device without
// parsing JSON.
func WeightsIndex(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("weights file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("weights file: %w", err)
	}
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return "", fmt.Errorf("weights file %s: header length: %w", path, err)
	}
	if n == 0 || n > 100<<20 || int64(n)+8 > st.Size() {
		return "", fmt.Errorf("weights file %s: header length %d in a %d-byte file: not safetensors", path, n, st.Size())
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return "", fmt.Errorf("weights file %s: header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return "", fmt.Errorf("weights file %s: header: %w", path, err)
	}
	type entry struct {
		DType   string   `json:"dtype"`
		Shape   []int64  `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
		name    string
	}
	var es []entry
	for name, r := range raw {
		if name == "__metadata__" {
			continue
		}
		var e entry
		if err := json.Unmarshal(r, &e); err != nil {
			return "", fmt.Errorf("weights file %s: tensor %s: %w", path, name, err)
		}
		size, ok := weightDTypes[e.DType]
		if !ok {
			return "", fmt.Errorf("weights file %s: tensor %s: dtype %q", path, name, e.DType)
		}
		want := int64(size)
		for _, d := range e.Shape {
			want *= d
		}
		if e.Offsets[1]-e.Offsets[0] != want || e.Offsets[0] < 0 || 8+int64(n)+e.Offsets[1] > st.Size() {
			return "", fmt.Errorf("weights file %s: tensor %s: offsets %v for %s %v (%d bytes) in a %d-byte file", path, name, e.Offsets, e.DType, e.Shape, want, st.Size())
		}
		if strings.ContainsAny(name, "\t\n") {
			return "", fmt.Errorf("weights file %s: tensor name %q", path, name)
		}
		e.name = name
		es = append(es, e)
	}
	if len(es) == 0 {
		return "", fmt.Errorf("weights file %s: no tensors", path)
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Offsets[0] < es[j].Offsets[0] })
	var b strings.Builder
	for _, e := range es {
		dims := make([]string, len(e.Shape))
		for i, d := range e.Shape {
			dims[i] = fmt.Sprint(d)
		}
		fmt.Fprintf(&b, "%s\t%s\t%d\t%d\t%s\n", e.name, e.DType, 8+int64(n)+e.Offsets[0], e.Offsets[1]-e.Offsets[0], strings.Join(dims, ","))
	}
	return b.String(), nil
}
