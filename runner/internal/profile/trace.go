// Package profile reads the activity files that libcib_cupti.so (profiler/)
// writes from inside every CUDA process of a profiled launch, places each
// timed iteration on the same clock (CLOCK_MONOTONIC), and reduces the GPU
// activity inside it to per-token figures: kernels launched, GPU busy time
// (the union of kernel intervals), idle time (the host-overhead share),
// memcpys, CUDA graph launches and the kernels that take the time.
package profile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Magic starts every activity file.
const Magic = "CIBKPROF"

// FormatVersion is the version in the header record this package reads.
const FormatVersion = 1

// Record types and sub-kinds, as in profiler/README.md.
const (
	recHeader  = 'H'
	recName    = 'N'
	recKernel  = 'K'
	recMemcpy  = 'M'
	recMemset  = 'S'
	recDropped = 'D'
	recFlush   = 'F'
	recWarning = 'W'
	recTrailer = 'E'
)

// Memcpy kinds (CUpti_ActivityMemcpyKind) that the report names.
const (
	CopyHtoD = 1
	CopyDtoH = 2
	CopyDtoD = 8
	CopyPtoP = 10
)

// Activity is one kernel, memcpy or memset on the GPU, in CLOCK_MONOTONIC ns.
type Activity struct {
	Start, End int64
	// Name is the kernel's name id in Trace.Names (0: unknown); 0 for copies.
	Name uint32
	// Copy is the CUPTI memcpy kind for memcpys, 0 otherwise.
	Copy  uint8
	Bytes uint64
	// Graph is the CUDA graph id (0 outside graphs); Corr the correlation id
	// of the API call that launched it (cuGraphLaunch for graph nodes).
	Graph, Corr uint32
}

// Trace is one process's activity file.
type Trace struct {
	Path         string
	PID, PPID    int
	CUPTIVersion uint32
	Exe          string
	// StartNs is CLOCK_MONOTONIC when the library initialised (cuInit).
	StartNs int64
	Kernels []Activity
	Memcpys []Activity
	Memsets []Activity
	// Names maps name ids to mangled kernel names.
	Names map[uint32]string
	// Dropped counts records lost, by cause: "pool", "size-cap", "cupti", "names".
	Dropped map[string]int64
	// LastFlushNs is when the last periodic or forced flush began (0: none).
	LastFlushNs int64
	// Clean is true when the process exited through libc: a forced flush
	// and the trailer were written, so the file is complete.
	Clean bool
	// Warnings are the library's own messages (no libcupti, a failed call…).
	Warnings []string
	// Truncated is true when the file ends inside a record.
	Truncated bool
}

// Reader decodes records one at a time (Scan/Err), without holding the file.
type Reader struct {
	r    *bufio.Reader
	typ  byte
	sub  byte
	buf  []byte
	err  error
	torn bool
}

// NewReader checks the magic and returns a reader positioned at the first record.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var m [8]byte
	if _, err := io.ReadFull(br, m[:]); err != nil {
		return nil, fmt.Errorf("read magic: %w", err)
	}
	if string(m[:]) != Magic {
		return nil, fmt.Errorf("not an activity file: magic %q, want %q", m[:], Magic)
	}
	return &Reader{r: br}, nil
}

// Scan reads the next record; false at the end of the file or on an error.
func (r *Reader) Scan() bool {
	if r.err != nil {
		return false
	}
	var h [8]byte
	n, err := io.ReadFull(r.r, h[:])
	if err == io.EOF {
		return false
	}
	if err != nil {
		r.torn = n > 0
		return false
	}
	size := binary.LittleEndian.Uint32(h[4:])
	if size > 1<<20 {
		r.err = fmt.Errorf("record %q of %d bytes: corrupt file", h[0], size)
		return false
	}
	r.typ, r.sub = h[0], h[1]
	r.buf = slices.Grow(r.buf[:0], int(size))[:size]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		r.torn = true
		return false
	}
	return true
}

// Type, Sub and Payload describe the record Scan read.
func (r *Reader) Type() byte      { return r.typ }
func (r *Reader) Sub() byte       { return r.sub }
func (r *Reader) Payload() []byte { return r.buf }

// Torn is true when the file ended inside a record (a process killed mid-write).
func (r *Reader) Torn() bool { return r.torn }

// Err is the first decoding error.
func (r *Reader) Err() error { return r.err }

var dropCauses = map[byte]string{1: "pool", 2: "size-cap", 3: "cupti", 4: "names"}

// ReadTrace reads one activity file. Kernels, memcpys and memsets come back
// sorted by start time.
func ReadTrace(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read activity: %w", err)
	}
	defer f.Close()
	t, err := DecodeTrace(f)
	if err != nil {
		return nil, fmt.Errorf("read activity %s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// DecodeTrace decodes an activity file from r.
func DecodeTrace(r io.Reader) (*Trace, error) {
	rd, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	t := &Trace{Names: map[uint32]string{}, Dropped: map[string]int64{}}
	short := func(min int) error {
		if len(rd.Payload()) < min {
			return fmt.Errorf("record %q: %d bytes, want at least %d", rd.Type(), len(rd.Payload()), min)
		}
		return nil
	}
	first := true
	for rd.Scan() {
		p := rd.Payload()
		if first && rd.Type() != recHeader {
			return nil, fmt.Errorf("first record %q, want a header", rd.Type())
		}
		first = false
		switch rd.Type() {
		case recHeader:
			if err := short(32); err != nil {
				return nil, err
			}
			if v := le.Uint32(p); v != FormatVersion {
				return nil, fmt.Errorf("format version %d, this runner reads %d", v, FormatVersion)
			}
			t.PID, t.PPID, t.CUPTIVersion = int(le.Uint32(p[4:])), int(le.Uint32(p[8:])), le.Uint32(p[12:])
			t.StartNs = int64(le.Uint64(p[16:]))
			t.Exe = string(p[32:])
		case recName:
			if err := short(4); err != nil {
				return nil, err
			}
			t.Names[le.Uint32(p)] = string(p[4:])
		case recKernel:
			if err := short(32); err != nil {
				return nil, err
			}
			t.Kernels = append(t.Kernels, Activity{
				Start: int64(le.Uint64(p)), End: int64(le.Uint64(p[8:])), Name: le.Uint32(p[16:]),
				Corr: le.Uint32(p[24:]), Graph: le.Uint32(p[28:]),
			})
		case recMemcpy, recMemset:
			if err := short(40); err != nil {
				return nil, err
			}
			a := Activity{
				Start: int64(le.Uint64(p)), End: int64(le.Uint64(p[8:])), Bytes: le.Uint64(p[16:]),
				Corr: le.Uint32(p[28:]), Graph: le.Uint32(p[32:]),
			}
			if rd.Type() == recMemcpy {
				a.Copy = rd.Sub()
				t.Memcpys = append(t.Memcpys, a)
			} else {
				t.Memsets = append(t.Memsets, a)
			}
		case recDropped:
			if err := short(8); err != nil {
				return nil, err
			}
			cause := dropCauses[rd.Sub()]
			if cause == "" {
				cause = fmt.Sprintf("cause-%d", rd.Sub())
			}
			t.Dropped[cause] += int64(le.Uint64(p))
		case recFlush:
			if err := short(8); err != nil {
				return nil, err
			}
			t.LastFlushNs = max(t.LastFlushNs, int64(le.Uint64(p)))
		case recWarning:
			t.Warnings = append(t.Warnings, string(p))
		case recTrailer:
			t.Clean = true
		}
	}
	if err := rd.Err(); err != nil {
		return nil, err
	}
	if first {
		return nil, errors.New("no header record")
	}
	t.Truncated = rd.Torn()
	for _, s := range [][]Activity{t.Kernels, t.Memcpys, t.Memsets} {
		sort.SliceStable(s, func(i, j int) bool { return s[i].Start < s[j].Start })
	}
	return t, nil
}

// ReadDir reads every cupti-*.bin file in dir, in name order.
func ReadDir(dir string) ([]*Trace, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "cupti-*.bin"))
	if err != nil {
		return nil, fmt.Errorf("list activity files: %w", err)
	}
	sort.Strings(paths)
	var out []*Trace
	for _, p := range paths {
		t, err := ReadTrace(p)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
