package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
)

// DefaultTimeout bounds one hook of one plugin process.
const DefaultTimeout = 60 * time.Second

// Limits on a plugin process's streams, in bytes.
const (
	MaxStdout  = 4 << 20
	StderrTail = 4 << 10
)

// Process is a plugin executable. Each hook is one run of `PATH HOOK`: the
// request on stdin, one response object on stdout, logs on stderr, exit 0.
type Process struct {
	// Label names the plugin in reports (its name, or the path it was given as).
	Label string
	// Path is the executable.
	Path string
	// Env is the plugin's environment (nil: none).
	Env []string
	// Timeout bounds one hook (0: DefaultTimeout).
	Timeout time.Duration
}

// Error is a failed plugin call, with what the plugin wrote on stderr.
type Error struct {
	Err    error
	Stderr string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ErrTimeout means the plugin did not answer in time and was killed.
var ErrTimeout = errors.New("timeout")

// Name is the plugin's label.
func (p *Process) Name() string { return p.Label }

// Pre runs the pre hook.
func (p *Process) Pre(ctx context.Context, config, environment json.RawMessage) (*Veto, error) {
	r, err := p.Call(ctx, Request{Protocol: Version, Hook: HookPre, Config: config, Environment: environment})
	if err != nil {
		return nil, err
	}
	if len(r.Sections) > 0 {
		return nil, &Error{Err: errors.New("pre: sections belong to the post hook")}
	}
	if !r.Veto {
		return nil, nil
	}
	reason := r.Reason
	if reason == "" {
		reason = "no reason given"
	}
	if len(reason) > MaxReasonLength {
		reason = reason[:MaxReasonLength] + "…"
	}
	return &Veto{Plugin: p.Label, Reason: reason}, nil
}

// Post runs the post hook.
func (p *Process) Post(ctx context.Context, summary json.RawMessage) ([]Section, error) {
	r, err := p.Call(ctx, Request{Protocol: Version, Hook: HookPost, Summary: summary})
	if err != nil {
		return nil, err
	}
	if r.Veto {
		return nil, &Error{Err: errors.New("post: a veto belongs to the pre hook")}
	}
	return r.Sections, nil
}

// Call runs the plugin once for req. The plugin runs in its own process
// group, which is killed when the call ends, so nothing it started outlives
// it; a timeout or a cancelled ctx kills it at once. Its stdout is capped at
// MaxStdout and must hold exactly one Response of this protocol version.
func (p *Process) Call(ctx context.Context, req Request) (*Response, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", req.Hook, err)
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cmd := exec.Command(p.Path, req.Hook)
	cmd.Env = p.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdin = bytes.NewReader(in)
	stdout := &capped{max: MaxStdout, full: make(chan struct{})}
	stderr := spawn.NewTail(StderrTail)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Bounds the stream copies when a descendant keeps them open, and the
	// request copy into a plugin that never reads its stdin.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, &Error{Err: fmt.Errorf("%s: start %s: %w", req.Hook, p.Path, err)}
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var waitErr, stopErr error
	select {
	case waitErr = <-exited:
	case <-timer.C:
		stopErr = fmt.Errorf("%w: no answer within %s, killed", ErrTimeout, timeout)
	case <-ctx.Done():
		stopErr = fmt.Errorf("interrupted: %v", context.Cause(ctx))
	case <-stdout.full:
		stopErr = fmt.Errorf("stdout over %d bytes, killed", MaxStdout)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // the plugin, if still there, and whatever it started
	if stopErr != nil {
		<-exited
		return nil, p.fail(req.Hook, stopErr, stderr)
	}
	if stdout.over() {
		return nil, p.fail(req.Hook, fmt.Errorf("stdout over %d bytes", MaxStdout), stderr)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(waitErr, &ee):
		return nil, p.fail(req.Hook, fmt.Errorf("exited: %s", ee.ProcessState), stderr)
	case waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay):
		return nil, p.fail(req.Hook, waitErr, stderr)
	}
	if len(bytes.TrimSpace(stdout.bytes())) == 0 {
		return nil, p.fail(req.Hook, errors.New("exited 0 without a response on stdout"), stderr)
	}
	dec := json.NewDecoder(bytes.NewReader(stdout.bytes()))
	dec.DisallowUnknownFields()
	var r Response
	if err := dec.Decode(&r); err != nil {
		return nil, p.fail(req.Hook, fmt.Errorf("stdout is not a response object: %w (it began %q)", err, head(stdout.bytes())), stderr)
	}
	if dec.More() {
		return nil, p.fail(req.Hook, errors.New("extra output after the response object"), stderr)
	}
	if r.Protocol != Version {
		return nil, p.fail(req.Hook, fmt.Errorf("answers in protocol %d, the runner speaks %d", r.Protocol, Version), stderr)
	}
	return &r, nil
}

func (p *Process) fail(hook string, err error, stderr *spawn.Tail) error {
	return &Error{Err: fmt.Errorf("%s: %w", hook, err), Stderr: stderr.String()}
}

// head is the start of b, for an error message.
func head(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// capped keeps the first max bytes written and signals full once more
// arrive; the writer is then killed.
type capped struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	cut  bool
	full chan struct{}
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.buf); len(p) > room {
		c.buf = append(c.buf, p[:max(room, 0)]...)
		if !c.cut {
			c.cut = true
			close(c.full)
		}
		return len(p), nil // keep the pipe drained until the kill
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *capped) over() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

func (c *capped) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf
}
