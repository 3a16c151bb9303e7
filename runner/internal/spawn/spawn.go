// Package spawn runs one engine launch: a child process in its own process
// group, fed one request, read as a stream of protocol events under start,
// stall and total timeouts. The child is killed and waited for on every exit
// path, so no launch leaves an orphan behind.
package spawn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// Timeouts bound a launch. Zero disables a bound.
type Timeouts struct {
	// Start bounds spawn → first event (normally "loaded").
	Start time.Duration
	// Stall bounds the silence between two events.
	Stall time.Duration
	// Total bounds the whole launch.
	Total time.Duration
}

// Options describe one launch.
type Options struct {
	// Path is the engine binary.
	Path string
	// Args follow the binary name, e.g. ["run"].
	Args []string
	// Env is the full child environment (nil: inherit).
	Env []string
	// Stdin is written to the child's stdin, which is then closed.
	Stdin []byte
	// Timeouts bound the launch.
	Timeouts Timeouts
	// StderrTail is how many bytes of stderr to keep (default 16 KiB).
	StderrTail int
	// Stderr, when set, also receives the child's stderr as it arrives.
	Stderr io.Writer
}

// Received is one event with the runner's clock at its arrival.
type Received struct {
	Event protocol.Event
	// At is when the line arrived, on the runner's monotonic clock.
	At time.Time
}

// Result is what a finished launch left.
type Result struct {
	// PID of the child (its process group id too).
	PID int
	// Started is when the process was started.
	Started time.Time
	// Exit is the exit code, -1 when killed by a signal or never started.
	Exit int
	// StderrTail is the last bytes the child wrote to stderr.
	StderrTail string
	// Err is why the launch failed (nil on a clean exit 0 after "done").
	Err error
}

// Error kinds a caller may branch on.
var (
	ErrStartTimeout = errors.New("start timeout")
	ErrStallTimeout = errors.New("stall timeout")
	ErrTotalTimeout = errors.New("total timeout")
	ErrInterrupted  = errors.New("interrupted")
	// ErrBadOutput means stdout held something other than protocol events.
	ErrBadOutput = errors.New("bad engine output")
)

// Launch starts the child and calls onEvent for each event in order, from the
// calling goroutine. onStart, if set, is called with the pid right after the
// process starts. A non-nil error from onEvent stops the launch (the child is
// killed) and becomes Result.Err.
func Launch(ctx context.Context, o Options, onStart func(pid int), onEvent func(Received) error) Result {
	res := Result{Exit: -1}
	cmd := exec.Command(o.Path, o.Args...)
	cmd.Env = o.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdin = bytes.NewReader(o.Stdin)
	tailN := o.StderrTail
	if tailN <= 0 {
		tailN = 16 << 10
	}
	tail := &tailBuffer{max: tailN}
	if o.Stderr != nil {
		cmd.Stderr = io.MultiWriter(tail, o.Stderr)
	} else {
		cmd.Stderr = tail
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		res.Err = fmt.Errorf("stdout pipe: %w", err)
		return res
	}
	res.Started = time.Now()
	if err := cmd.Start(); err != nil {
		res.Err = fmt.Errorf("start %s: %w", o.Path, err)
		return res
	}
	res.PID = cmd.Process.Pid
	if onStart != nil {
		onStart(res.PID)
	}

	events := make(chan Received, 64)
	var decErr error
	var decErrMu sync.Mutex
	go func() {
		d := protocol.NewDecoder(stdout)
		for d.Scan() {
			events <- Received{Event: d.Event(), At: time.Now()}
		}
		decErrMu.Lock()
		decErr = d.Err()
		decErrMu.Unlock()
		close(events)
		// Drain so the child never blocks on a full pipe while we kill it.
		_, _ = io.Copy(io.Discard, stdout)
	}()

	var total <-chan time.Time
	if o.Timeouts.Total > 0 {
		t := time.NewTimer(o.Timeouts.Total)
		defer t.Stop()
		total = t.C
	}
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	armIdle := func(first bool) {
		d := o.Timeouts.Stall
		if first {
			d = o.Timeouts.Start
		}
		if d <= 0 {
			d = 1 << 62
		}
		idle.Reset(d)
	}
	armIdle(true)
	first := true
	var sawDone, sawError bool
	var loopErr error
loop:
	for {
		select {
		case <-ctx.Done():
			loopErr = fmt.Errorf("%w: %v", ErrInterrupted, context.Cause(ctx))
			break loop
		case <-total:
			loopErr = fmt.Errorf("%w after %s", ErrTotalTimeout, o.Timeouts.Total)
			break loop
		case <-idle.C:
			if first {
				loopErr = fmt.Errorf("%w: no event within %s of spawn", ErrStartTimeout, o.Timeouts.Start)
			} else {
				loopErr = fmt.Errorf("%w: no event for %s", ErrStallTimeout, o.Timeouts.Stall)
			}
			break loop
		case ev, ok := <-events:
			if !ok {
				decErrMu.Lock()
				if decErr != nil {
					loopErr = fmt.Errorf("%w: %w", ErrBadOutput, decErr)
				}
				decErrMu.Unlock()
				break loop
			}
			first = false
			armIdle(false)
			switch ev.Event.Type {
			case protocol.EventDone:
				sawDone = true
			case protocol.EventError:
				sawError = true
				loopErr = fmt.Errorf("engine error (%s): %s", ev.Event.Error.Code, ev.Event.Error.Message)
			}
			if err := onEvent(ev); err != nil {
				loopErr = err
				break loop
			}
		}
	}
	killed := false
	if loopErr != nil && !sawError {
		killGroup(res.PID)
		killed = true
	}
	// Drain the reader so it can finish; after a kill stdout reaches EOF at once.
	drained := make(chan struct{})
	go func() {
		for range events {
		}
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		killGroup(res.PID)
		select {
		case <-drained:
		case <-time.After(5 * time.Second):
			// A descendant outside the group still holds stdout; give up on it.
			decErrMu.Lock()
			if decErr == nil {
				decErr = errors.New("stdout still open after the engine was killed")
			}
			decErrMu.Unlock()
		}
	}
	waitErr := waitBounded(cmd, 10*time.Second, res.PID)
	// Whatever path we took, make sure the group is gone.
	_ = syscall.Kill(-res.PID, syscall.SIGKILL)
	res.StderrTail = tail.String()
	decErrMu.Lock()
	defer decErrMu.Unlock()
	if cmd.ProcessState != nil {
		res.Exit = cmd.ProcessState.ExitCode()
	}
	switch {
	case loopErr != nil:
		res.Err = loopErr
	case decErr != nil:
		res.Err = fmt.Errorf("%w: %w", ErrBadOutput, decErr)
	case waitErr != nil && !killed:
		res.Err = fmt.Errorf("engine exited: %w", waitErr)
	case !sawDone:
		res.Err = errors.New("engine exited without a done event")
	}
	if res.Err == nil && res.Exit != 0 {
		res.Err = fmt.Errorf("engine exited with code %d after done", res.Exit)
	}
	return res
}

func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	time.Sleep(50 * time.Millisecond)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// waitBounded waits for the child; if it does not exit in time it is killed.
func waitBounded(cmd *exec.Cmd, d time.Duration, pid int) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return <-done
	}
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}

// Info runs `ENGINE info` and decodes its JSON object. Stdout must hold that
// object and nothing else.
func Info(ctx context.Context, path string, env []string, timeout time.Duration) (*protocol.Info, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "info")
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout bytes.Buffer
	tail := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, tail
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		return nil, stdout.Bytes(), fmt.Errorf("%s info: %w (stderr: %s)", path, err, tail.String())
	}
	dec := json.NewDecoder(bytes.NewReader(stdout.Bytes()))
	dec.DisallowUnknownFields()
	var info protocol.Info
	if err := dec.Decode(&info); err != nil {
		return nil, stdout.Bytes(), fmt.Errorf("%s info: stdout is not an info object: %w", path, err)
	}
	if dec.More() {
		return nil, stdout.Bytes(), fmt.Errorf("%s info: extra output after the JSON object", path)
	}
	return &info, stdout.Bytes(), nil
}
