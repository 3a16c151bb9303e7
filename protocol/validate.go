package protocol

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Validate checks a request for internal consistency. It does not know the
// model, so token ids are only checked for sign.
func (r *Request) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if r.Protocol != Version {
		add("protocol: got %d, engine speaks %d", r.Protocol, Version)
	}
	if r.Model == "" {
		add("model: empty path")
	}
	if _, _, err := ParseDevice(r.Device); err != nil {
		add("device: %v", err)
	}
	if !ValidDType(r.DType) {
		add("dtype: %q is not one of f32, f16, bf16", r.DType)
	}
	if r.Threads < 0 {
		add("threads: %d is negative", r.Threads)
	}
	if r.Warmup < 0 {
		add("warmup: %d is negative", r.Warmup)
	}
	if r.Iterations < 1 {
		add("iterations: %d, need at least 1", r.Iterations)
	}
	if len(r.Cases) == 0 {
		add("cases: none given")
	}
	for i, c := range r.Cases {
		if err := c.Validate(); err != nil {
			add("cases[%d] (%s): %v", i, c.Name, err)
		}
	}
	return errors.Join(errs...)
}

// Validate checks one case.
func (c *Case) Validate() error {
	if len(c.PromptTokens) == 0 {
		return errors.New("prompt_tokens: empty")
	}
	for i, t := range c.PromptTokens {
		if t < 0 {
			return fmt.Errorf("prompt_tokens[%d]: negative id %d", i, t)
		}
	}
	if c.MaxNewTokens < 1 {
		return fmt.Errorf("max_new_tokens: %d, need at least 1", c.MaxNewTokens)
	}
	if c.BatchSize < 1 {
		return fmt.Errorf("batch_size: %d, need at least 1", c.BatchSize)
	}
	return nil
}

// Serves says why an engine that printed this info cannot serve a request
// for device ("cpu", "cuda:N") and dtype under this protocol version, or
// returns nil. A runner checks it before launching the engine at all.
func (i *Info) Serves(device, dtype string) error {
	var errs []error
	if i.Protocol != Version {
		errs = append(errs, fmt.Errorf("info declares protocol %d, the runner speaks %d", i.Protocol, Version))
	}
	if kind, _, err := ParseDevice(device); err != nil {
		errs = append(errs, fmt.Errorf("device: %w", err))
	} else if !slices.Contains(i.Devices, kind) && !slices.Contains(i.Devices, device) {
		errs = append(errs, fmt.Errorf("info does not list device %s (devices: %s)", device, strings.Join(i.Devices, ", ")))
	}
	if !slices.Contains(i.DTypes, dtype) {
		errs = append(errs, fmt.Errorf("info does not list dtype %s (dtypes: %s)", dtype, strings.Join(i.DTypes, ", ")))
	}
	return errors.Join(errs...)
}

// ValidDType reports whether s names a supported dtype.
func ValidDType(s string) bool {
	switch s {
	case "f32", "f16", "bf16":
		return true
	}
	return false
}

// ParseDevice splits "cpu" or "cuda:N" into kind and ordinal.
func ParseDevice(s string) (kind string, ordinal int, err error) {
	if s == "cpu" {
		return "cpu", 0, nil
	}
	if s == "cuda" {
		return "cuda", 0, nil
	}
	if rest, ok := strings.CutPrefix(s, "cuda:"); ok {
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			return "", 0, fmt.Errorf("%q: bad CUDA ordinal", s)
		}
		return "cuda", n, nil
	}
	return "", 0, fmt.Errorf("%q is not cpu or cuda:N", s)
}

// Validate checks that exactly the payload named by Type is present and that
// it is consistent.
func (e *Event) Validate() error {
	set := 0
	for _, p := range []bool{e.Loaded != nil, e.Iteration != nil, e.Done != nil, e.Error != nil, e.Prepared != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("event %q: want exactly one payload, got %d", e.Type, set)
	}
	switch e.Type {
	case EventLoaded:
		if e.Loaded == nil {
			return errors.New("loaded event without loaded payload")
		}
		return e.Loaded.Validate()
	case EventIteration:
		if e.Iteration == nil {
			return errors.New("iteration event without iteration payload")
		}
		return e.Iteration.Validate()
	case EventDone:
		if e.Done == nil {
			return errors.New("done event without done payload")
		}
		if e.Done.Iterations < 0 {
			return fmt.Errorf("done: negative iteration count %d", e.Done.Iterations)
		}
	case EventError:
		if e.Error == nil {
			return errors.New("error event without error payload")
		}
		if e.Error.Message == "" {
			return errors.New("error event with empty message")
		}
	case EventPrepared:
		if e.Prepared == nil {
			return errors.New("prepared event without prepared payload")
		}
		if e.Prepared.TotalNs < 0 {
			return fmt.Errorf("prepared: negative total_ns %d", e.Prepared.TotalNs)
		}
	default:
		return fmt.Errorf("unknown event type %q", e.Type)
	}
	return nil
}

// Validate checks the cold-start numbers are non-negative.
func (l *Loaded) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"context_init_ns", l.ContextInitNs}, {"weights_to_host_ns", l.WeightsToHostNs},
		{"weights_to_device_ns", l.WeightsToDeviceNs}, {"compile_ns", l.CompileNs}, {"total_ns", l.TotalNs},
	} {
		if f.v < 0 {
			return fmt.Errorf("loaded: %s is negative (%d)", f.name, f.v)
		}
	}
	return nil
}

// Validate checks the timestamps are ordered and match the output tokens.
func (it *Iteration) Validate() error {
	if it.Case < 0 || it.Index < 0 {
		return fmt.Errorf("iteration: negative case %d or index %d", it.Case, it.Index)
	}
	if len(it.OutputTokens) == 0 {
		return errors.New("iteration: no output_tokens rows")
	}
	n := len(it.TokenNs)
	for r, row := range it.OutputTokens {
		if len(row) != n {
			return fmt.Errorf("iteration: output_tokens[%d] has %d tokens but token_ns has %d times", r, len(row), n)
		}
	}
	prev := int64(0)
	for i, t := range it.TokenNs {
		if t < prev {
			return fmt.Errorf("iteration: token_ns[%d]=%d goes backwards (previous %d)", i, t, prev)
		}
		prev = t
	}
	if it.EndNs < prev {
		return fmt.Errorf("iteration: end_ns %d is before the last token at %d", it.EndNs, prev)
	}
	if it.DeviceTokenNs != nil && len(it.DeviceTokenNs) != n {
		return fmt.Errorf("iteration: device_token_ns has %d times, token_ns %d", len(it.DeviceTokenNs), n)
	}
	if it.PeakAllocBytes < 0 {
		return fmt.Errorf("iteration: negative peak_alloc_bytes %d", it.PeakAllocBytes)
	}
	return nil
}
