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
	"os"
	"os/exec"
	"strings"
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
	// CPUs, when set, pins the child to these host CPUs from its first
	// instruction (see startPinned).
	CPUs []int
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
	// Warnings are caveats about a launch, e.g. processes it left behind.
	Warnings []string
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
//
// The launch ends at the engine's done or error event, at the end of its
// stdout, or when a timeout, the context or onEvent stops it. After done,
// error or end of stdout the engine has a grace period to exit by itself (an
// engine that keeps running after an error is killed after ErrorGrace); then
// every process the launch left is killed, whether still in the engine's
// process group or not (see CookieEnv).
func Launch(ctx context.Context, o Options, onStart func(pid int), onEvent func(Received) error) Result {
	res := Result{Exit: -1}
	cookie, err := newCookie()
	if err != nil {
		res.Err = err
		return res
	}
	cmd := exec.Command(o.Path, o.Args...)
	cmd.Env = o.Env
	cmd.Env = append(cmd.Environ(), CookieEnv+"="+cookie)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdin = bytes.NewReader(o.Stdin)
	// Bounds the copy of the request into a stdin that the engine handed to a
	// descendant and never read.
	cmd.WaitDelay = time.Second
	tailN := o.StderrTail
	if tailN <= 0 {
		tailN = 16 << 10
	}
	tail := NewTail(tailN)
	var stderrSink io.Writer = tail
	if o.Stderr != nil {
		stderrSink = io.MultiWriter(tail, o.Stderr)
	}
	// Our own pipes, not exec's: Wait must not close stdout while events are
	// still buffered in it, nor wait for a descendant that keeps a stream open.
	outR, outW, err := os.Pipe()
	if err != nil {
		res.Err = fmt.Errorf("stdout pipe: %w", err)
		return res
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		res.Err = fmt.Errorf("stderr pipe: %w", err)
		return res
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	res.Started = time.Now()
	if len(o.CPUs) > 0 {
		err = startPinned(cmd, o.CPUs)
	} else {
		err = cmd.Start()
	}
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		res.Err = fmt.Errorf("start %s: %w", o.Path, err)
		return res
	}
	res.PID = cmd.Process.Pid
	if onStart != nil {
		onStart(res.PID)
	}

	stderrDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(stderrSink, errR)
		close(stderrDone)
	}()
	events := make(chan Received, 64)
	stop := make(chan struct{})
	stdoutDone := make(chan struct{})
	var decErr error // written before events is closed
	go func() {
		defer close(stdoutDone)
		// Keep the pipe drained so no writer blocks while it is being stopped.
		defer func() { _, _ = io.Copy(io.Discard, outR) }()
		d := protocol.NewDecoder(outR)
		for d.Scan() {
			select {
			case events <- Received{Event: d.Event(), At: time.Now()}:
			case <-stop:
				return
			}
		}
		decErr = d.Err()
		close(events)
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
	exited := make(chan error, 1)
	reaping := false
	reap := func() {
		if reaping {
			return
		}
		reaping = true
		go func() {
			err := cmd.Wait()
			if errors.Is(err, exec.ErrWaitDelay) {
				err = nil
			}
			exited <- err
		}()
	}
	// exitGrace bounds the wait for the engine to exit after done or the end
	// of its output.
	exitGrace := o.Timeouts.Stall
	if exitGrace <= 0 {
		exitGrace = time.Minute
	}
	var sawDone, sawError, reaped bool
	var loopErr, exitErr, waitErr error
	var exitedCh <-chan error    // set once done arrived: the engine should exit now
	var settled <-chan time.Time // set once it exited: what it wrote is read soon after
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
			switch {
			case sawDone:
				exitErr = fmt.Errorf("the engine did not exit within %s of its done event and was killed", exitGrace)
			case first:
				loopErr = fmt.Errorf("%w: no event within %s of spawn", ErrStartTimeout, o.Timeouts.Start)
			default:
				loopErr = fmt.Errorf("%w: no event for %s", ErrStallTimeout, o.Timeouts.Stall)
			}
			break loop
		case waitErr = <-exitedCh:
			// Do not wait for the end of a stdout that something the engine
			// left behind may hold open: that is swept below.
			reaped, exitedCh = true, nil
			settled = time.After(200 * time.Millisecond)
		case <-settled:
			break loop
		case ev, ok := <-events:
			if !ok {
				if decErr != nil {
					loopErr = fmt.Errorf("%w: %w", ErrBadOutput, decErr)
				}
				break loop
			}
			first = false
			armIdle(false)
			err := onEvent(ev)
			switch ev.Event.Type {
			case protocol.EventDone, protocol.EventPrepared: // the last event of `run`, of `prepare`
				sawDone = true
				idle.Reset(exitGrace)
				reap()
				exitedCh = exited
			case protocol.EventError:
				// The engine's own message is the reason, whatever follows.
				sawError = true
				loopErr = fmt.Errorf("engine error (%s): %s", ev.Event.Error.Code, ev.Event.Error.Message)
				break loop
			}
			if err != nil {
				loopErr = err
				break loop
			}
		}
	}
	close(stop)

	selfExit := reaped
	switch {
	case reaped:
	case (loopErr != nil && !sawError) || exitErr != nil:
		// A timeout, an interrupt, bad output, a refused event or an engine
		// that outstays its done event: stop it now.
		killGroup(res.PID)
		reap()
		waitErr = waitKill(exited, res.PID)
	default:
		// An error event or the end of stdout: the engine exits by itself.
		grace, what := exitGrace, "the end of its output"
		if sawError {
			grace, what = ErrorGrace, "its error event"
		}
		reap()
		timer := time.NewTimer(grace)
		select {
		case waitErr = <-exited:
			selfExit = true
		case <-timer.C:
			exitErr = fmt.Errorf("the engine did not exit within %s of %s and was killed", grace, what)
		case <-total:
			exitErr = fmt.Errorf("%w after %s, waiting for the engine to exit after %s", ErrTotalTimeout, o.Timeouts.Total, what)
		case <-ctx.Done():
			exitErr = fmt.Errorf("%w: %v", ErrInterrupted, context.Cause(ctx))
		}
		timer.Stop()
		if exitErr != nil {
			killGroup(res.PID)
			waitErr = waitKill(exited, res.PID)
		}
	}
	// The engine is reaped; whatever of the launch still runs is left over.
	left := sweep(cookie)
	_ = syscall.Kill(-res.PID, syscall.SIGKILL) // members that dropped the cookie
	if selfExit && len(left) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the engine left %d process(es) running after it exited, killed: %s",
			len(left), strings.Join(left, ", ")))
	}
	if !waitStreams(stdoutDone, stderrDone) {
		// A process outside our reach still holds a stream; stop reading it.
		outR.Close()
		errR.Close()
		<-stdoutDone
		<-stderrDone
		res.Warnings = append(res.Warnings, "a process the runner could not find kept the engine's stdout or stderr open")
	}
	outR.Close()
	errR.Close()
	res.StderrTail = tail.String()
	if cmd.ProcessState != nil {
		res.Exit = cmd.ProcessState.ExitCode()
	}
	switch {
	case loopErr != nil && exitErr != nil && sawError:
		res.Err = fmt.Errorf("%w; %w", loopErr, exitErr)
	case loopErr != nil:
		res.Err = loopErr
	case exitErr != nil:
		res.Err = exitErr
	case !sawDone && waitErr != nil:
		res.Err = fmt.Errorf("engine exited: %w", waitErr)
	case !sawDone:
		res.Err = errors.New("engine exited without a done event")
	case res.Exit != 0:
		res.Err = fmt.Errorf("engine exited with code %d after done", res.Exit)
	}
	return res
}

// ErrorGrace is how long an engine may take to exit after its error event.
const ErrorGrace = 5 * time.Second

func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	time.Sleep(50 * time.Millisecond)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// waitKill waits for a killed engine to be reaped; SIGKILL may be delivered
// to the group again if it takes long.
func waitKill(exited <-chan error, pid int) error {
	select {
	case err := <-exited:
		return err
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return <-exited
	}
}

// waitStreams waits a little for the readers of stdout and stderr to reach
// the end of their streams, which happens once no process holds them open.
func waitStreams(chs ...<-chan struct{}) bool {
	deadline := time.After(2 * time.Second)
	for _, ch := range chs {
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
	return true
}

// Tail is an io.Writer that keeps the last max bytes written (a child's
// stderr for error messages); safe for concurrent use.
type Tail struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool
}

// NewTail keeps the last max bytes.
func NewTail(max int) *Tail { return &Tail{max: max} }

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.cut = true
	}
	return len(p), nil
}

// String is the kept text, with a leading "…" when earlier bytes were cut.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}

// Info runs `ENGINE info` and decodes its JSON object. Stdout must hold that
// object and nothing else. timeout bounds the whole command (ErrStartTimeout);
// a cancelled ctx stops it (ErrInterrupted). Either way the engine and every
// process it started are killed.
func Info(ctx context.Context, path string, env []string, timeout time.Duration) (*protocol.Info, []byte, error) {
	cookie, err := newCookie()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(path, "info")
	cmd.Env = env
	cmd.Env = append(cmd.Environ(), CookieEnv+"="+cookie)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout bytes.Buffer
	tail := NewTail(4 << 10)
	cmd.Stdout, cmd.Stderr = &stdout, tail
	// A descendant holding stdout open must not keep Wait waiting.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("%s info: %w", path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if timeout <= 0 {
		timeout = 1 << 62
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var waitErr, stopErr error
	select {
	case waitErr = <-exited:
	case <-timer.C:
		stopErr = fmt.Errorf("%w: no info within %s", ErrStartTimeout, timeout)
	case <-ctx.Done():
		stopErr = fmt.Errorf("%w: %v", ErrInterrupted, context.Cause(ctx))
	}
	if stopErr != nil {
		killGroup(cmd.Process.Pid)
		waitErr = waitKill(exited, cmd.Process.Pid)
	}
	sweep(cookie)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if stopErr != nil {
		return nil, stdout.Bytes(), fmt.Errorf("%s info: %w", path, stopErr)
	}
	if waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay) {
		return nil, stdout.Bytes(), fmt.Errorf("%s info: %w (stderr: %s)", path, waitErr, tail.String())
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
