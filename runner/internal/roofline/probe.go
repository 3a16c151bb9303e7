package roofline

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// probeScript times the copy. The runner has no CUDA library of its own, so
// the probe borrows the one torch brings.
//
//go:embed probe.py
var probeScript string

// Probe defaults.
const (
	DefaultProbeBytes  = 4 << 30
	DefaultProbeIters  = 20
	DefaultProbeWarmup = 5
)

// ProbeOptions configure Probe.
type ProbeOptions struct {
	// Python is the interpreter to run, "python3" when empty.
	Python string
	// Env is the child's environment; nil inherits the runner's.
	// CUDA_DEVICE_ORDER=PCI_BUS_ID is added so Device is the NVML index.
	Env []string
	// Device is the GPU index (NVML order).
	Device int
	// UUID is the NVML UUID of Device. When set, the probe fails if torch
	// names another GPU, and the result is cached under it.
	UUID string
	// Bytes is the size of the copy, DefaultProbeBytes when 0; the probe
	// needs twice that free on the device.
	Bytes int64
	// Iters and Warmup count timed and untimed copies.
	Iters, Warmup int
}

// Measurement is a measured device-to-device bandwidth.
type Measurement struct {
	UUID string `json:"uuid"`
	Name string `json:"name"`
	// BytesPerSec counts the bytes read and written: 2 × copy size / median
	// copy time.
	BytesPerSec float64 `json:"bytes_per_s"`
	// MedianMs, MinMs and MaxMs are copy times in ms from CUDA events.
	MedianMs  float64 `json:"median_ms"`
	MinMs     float64 `json:"min_ms"`
	MaxMs     float64 `json:"max_ms"`
	CopyBytes int64   `json:"copy_bytes"`
	Iters     int     `json:"iters"`
	Warmup    int     `json:"warmup"`
	// Method says how the figure was obtained.
	Method string `json:"method"`
	Torch  string `json:"torch"`
	CUDA   string `json:"cuda"`
	// When is the time of the measurement.
	When time.Time `json:"when"`
}

// probeMethod describes what Probe measures.
const probeMethod = "torch device-to-device copy, CUDA events, (read + write bytes) / median time"

// Probe measures device-to-device bandwidth by running python3 with torch:
// after Warmup copies it times Iters copies of Bytes bytes with CUDA events
// and takes the median. Missing python3 or torch is a clear error.
func Probe(ctx context.Context, o ProbeOptions) (Measurement, error) {
	if o.Python == "" {
		o.Python = "python3"
	}
	if o.Bytes == 0 {
		o.Bytes = DefaultProbeBytes
	}
	if o.Iters == 0 {
		o.Iters = DefaultProbeIters
	}
	if o.Warmup == 0 {
		o.Warmup = DefaultProbeWarmup
	}
	if o.Bytes < 0 || o.Iters < 0 || o.Warmup < 0 || o.Device < 0 {
		return Measurement{}, fmt.Errorf("gpu probe: negative option in %+v", o)
	}
	py, err := exec.LookPath(o.Python)
	if err != nil {
		return Measurement{}, fmt.Errorf("gpu probe: %s not found (the probe needs python3 with a CUDA build of torch): %w", o.Python, err)
	}
	cmd := exec.CommandContext(ctx, py, "-c", probeScript,
		strconv.Itoa(o.Device), strconv.FormatInt(o.Bytes, 10), strconv.Itoa(o.Iters), strconv.Itoa(o.Warmup))
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(append([]string(nil), env...), "CUDA_DEVICE_ORDER=PCI_BUS_ID")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	var out struct {
		Error     string  `json:"error"`
		Name      string  `json:"name"`
		UUID      string  `json:"uuid"`
		Bytes     int64   `json:"bytes"`
		Iters     int     `json:"iters"`
		Warmup    int     `json:"warmup"`
		MedianMs  float64 `json:"median_ms"`
		MinMs     float64 `json:"min_ms"`
		MaxMs     float64 `json:"max_ms"`
		BytesPerS float64 `json:"bytes_per_s"`
		Torch     string  `json:"torch"`
		CUDA      string  `json:"cuda"`
	}
	line := lastLine(stdout.String())
	jsonErr := json.Unmarshal([]byte(line), &out)
	switch {
	case jsonErr == nil && out.Error != "":
		return Measurement{}, fmt.Errorf("gpu probe on cuda:%d: %s", o.Device, out.Error)
	case runErr != nil:
		return Measurement{}, fmt.Errorf("gpu probe on cuda:%d: %s: %w%s", o.Device, o.Python, runErr, tail(stderr.String()))
	case jsonErr != nil:
		return Measurement{}, fmt.Errorf("gpu probe on cuda:%d: read result %q: %w", o.Device, line, jsonErr)
	case out.BytesPerS <= 0:
		return Measurement{}, fmt.Errorf("gpu probe on cuda:%d: no bandwidth in result %q", o.Device, line)
	}
	m := Measurement{
		UUID: out.UUID, Name: out.Name, BytesPerSec: out.BytesPerS,
		MedianMs: out.MedianMs, MinMs: out.MinMs, MaxMs: out.MaxMs,
		CopyBytes: out.Bytes, Iters: out.Iters, Warmup: out.Warmup,
		Method: probeMethod, Torch: out.Torch, CUDA: out.CUDA, When: time.Now().UTC(),
	}
	if o.UUID != "" {
		if m.UUID != "" && !strings.EqualFold(m.UUID, o.UUID) {
			return Measurement{}, fmt.Errorf("gpu probe on cuda:%d: torch measured %s, want %s (device order differs?)", o.Device, m.UUID, o.UUID)
		}
		m.UUID = o.UUID
	}
	return m, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// tail returns the last lines of a child's stderr for an error message.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return "; stderr: " + strings.Join(lines, " | ")
}

// CacheFile is the bandwidth cache's file name under the cib cache directory.
const CacheFile = "bandwidth.json"

// CachePath returns the bandwidth cache file: $CIB_CACHE/bandwidth.json, else
// $HOME/.cache/cib/bandwidth.json. getenv is os.Getenv or a test's stand-in.
func CachePath(getenv func(string) string) string {
	if d := getenv("CIB_CACHE"); d != "" {
		return filepath.Join(d, CacheFile)
	}
	return filepath.Join(getenv("HOME"), ".cache", "cib", CacheFile)
}

// cacheVersion is the schema version of the cache file.
const cacheVersion = 1

type cacheFile struct {
	Version int                    `json:"version"`
	GPUs    map[string]Measurement `json:"gpus"`
}

// Cache holds measured bandwidths per GPU UUID in a JSON file.
type Cache struct {
	path string
	data cacheFile
}

// LoadCache reads the cache at path; a missing file is an empty cache.
func LoadCache(path string) (*Cache, error) {
	c := &Cache{path: path, data: cacheFile{Version: cacheVersion, GPUs: map[string]Measurement{}}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read bandwidth cache: %w", err)
	}
	var f cacheFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("read bandwidth cache %s: %w", path, err)
	}
	if f.Version != cacheVersion {
		return c, nil // another schema: start over
	}
	if f.GPUs != nil {
		c.data.GPUs = f.GPUs
	}
	return c, nil
}

// Get returns the measurement cached for a GPU UUID.
func (c *Cache) Get(uuid string) (Measurement, bool) {
	m, ok := c.data.GPUs[uuid]
	return m, ok
}

// Put records m under m.UUID and writes the file (atomically, creating its
// directory).
func (c *Cache) Put(m Measurement) error {
	if m.UUID == "" {
		return errors.New("bandwidth cache: measurement has no GPU UUID")
	}
	c.data.GPUs[m.UUID] = m
	b, err := json.MarshalIndent(c.data, "", "  ")
	if err != nil {
		return fmt.Errorf("write bandwidth cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return fmt.Errorf("write bandwidth cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".bandwidth-*.json")
	if err != nil {
		return fmt.Errorf("write bandwidth cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write bandwidth cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write bandwidth cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return fmt.Errorf("write bandwidth cache: %w", err)
	}
	return nil
}

// Measured returns the bandwidth of GPU o.UUID from the cache at cachePath,
// probing (and caching) when it is absent or refresh is set. cached says
// whether the figure came from the cache.
func Measured(ctx context.Context, cachePath string, o ProbeOptions, refresh bool) (m Measurement, cached bool, err error) {
	if o.UUID == "" {
		return Measurement{}, false, errors.New("gpu probe: no GPU UUID to cache the result under")
	}
	c, err := LoadCache(cachePath)
	if err != nil {
		return Measurement{}, false, err
	}
	if m, ok := c.Get(o.UUID); ok && !refresh {
		return m, true, nil
	}
	m, err = Probe(ctx, o)
	if err != nil {
		return Measurement{}, false, err
	}
	return m, false, c.Put(m)
}
