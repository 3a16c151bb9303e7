// Package worker runs the engine's Python side (py/worker.py, embedded in the binary) as a child process and
// talks to it over its stdin and stdout with one JSON line per request and per reply. The child's stderr is
// its log: it is copied to the engine's stderr as it comes, and its tail is kept for error messages.
package worker

import (
	"bufio"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cuda-inference-benchmarks/cib/engines/torchllama"
)

//go:embed py/*.py
var pyFiles embed.FS

// tailBytes bounds the stderr kept for error messages.
const tailBytes = 8 << 10

// Config says how to start the worker.
type Config struct {
	// Python is the interpreter to run, e.g. "python3" or a venv's bin/python.
	Python string
	// Env is the child's environment (the engine passes its own).
	Env []string
	// Stderr receives the child's log as it is written; nil discards it.
	Stderr io.Writer
}

// Hello is the worker's first line: library versions and what CUDA torch sees.
type Hello struct {
	Ready         bool              `json:"ready"`
	Versions      map[string]string `json:"versions"`
	CUDAAvailable bool              `json:"cuda_available"`
	DeviceCount   int               `json:"device_count"`
}

// Error is a failure the worker reported in a reply; Code is a protocol error code
// ("bad_request", "unsupported", "oom", "load", "runtime").
type Error struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

func (e *Error) Error() string { return e.Message }

// Worker is a running Python worker.
type Worker struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	lines     chan []byte
	exited    chan struct{}
	waitErr   error
	tail      *tail
	dir       string
	hello     Hello
	startupNs int64
	closeOnce sync.Once
}

// Start writes the embedded Python files to a temporary directory, starts the interpreter on them and waits
// for the hello line (torch imported), or for ctx.
func Start(ctx context.Context, cfg Config) (*Worker, error) {
	dir, err := os.MkdirTemp("", "cib-pytorch-")
	if err != nil {
		return nil, fmt.Errorf("start python worker: %w", err)
	}
	if err := writeFiles(dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start python worker: %w", err)
	}
	python := cfg.Python
	if python == "" {
		python = "python3"
	}
	stderr := cfg.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	w := &Worker{lines: make(chan []byte, 1), exited: make(chan struct{}), tail: &tail{max: tailBytes}, dir: dir}
	cmd := exec.Command(python, "-u", filepath.Join(dir, "worker.py"))
	cmd.Env = append(append([]string(nil), cfg.Env...), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stderr = io.MultiWriter(w.tail, stderr)
	// Its own process group, so a kill also reaches compiler subprocesses torch may have started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	w.cmd = cmd
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start python worker: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start python worker: %w", err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start python worker %q: %w", python, err)
	}
	go w.read(stdout)
	if err := w.receive(ctx, &w.hello); err != nil {
		w.Close()
		return nil, fmt.Errorf("start python worker %q: %w", python, err)
	}
	if !w.hello.Ready {
		w.Close()
		return nil, errors.New("start python worker: first line is not a hello")
	}
	w.startupNs = int64(time.Since(t0))
	return w, nil
}

// writeFiles writes the worker's Python and the model code it imports (llama.py, shared with the libtorch
// engine's export: package torchllama) into dir.
func writeFiles(dir string) error {
	if err := torchllama.Write(dir); err != nil {
		return err
	}
	entries, err := pyFiles.ReadDir("py")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := pyFiles.ReadFile("py/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// read delivers stdout lines until EOF, then reaps the process.
func (w *Worker) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, err := br.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			w.lines <- line
		}
		if err != nil {
			break
		}
	}
	close(w.lines)
	w.waitErr = w.cmd.Wait()
	close(w.exited)
}

// Hello returns the worker's hello line.
func (w *Worker) Hello() Hello { return w.hello }

// StartupNs is the time from spawning the interpreter to its hello (interpreter start and torch import), in ns.
func (w *Worker) StartupNs() int64 { return w.startupNs }

// Call sends req as one line and decodes the reply into resp. A reply with ok=false comes back as *Error; a
// worker that dies without replying gives an error carrying its exit status and stderr tail. Cancelling ctx
// kills the worker.
func (w *Worker) Call(ctx context.Context, req, resp any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode worker request: %w", err)
	}
	if _, err := w.stdin.Write(append(b, '\n')); err != nil {
		return w.dead(fmt.Sprintf("write request: %v", err))
	}
	return w.receive(ctx, resp)
}

func (w *Worker) receive(ctx context.Context, resp any) error {
	select {
	case line, ok := <-w.lines:
		if !ok {
			return w.dead("no reply")
		}
		var status struct {
			OK *bool `json:"ok"`
			Error
		}
		if err := json.Unmarshal(line, &status); err != nil {
			return fmt.Errorf("worker reply %.80q: %w", line, err)
		}
		if status.OK != nil && !*status.OK {
			e := status.Error
			if e.Message == "" {
				e.Message = "worker failed without a message"
			}
			return &e
		}
		if err := json.Unmarshal(line, resp); err != nil {
			return fmt.Errorf("worker reply %.80q: %w", line, err)
		}
		return nil
	case <-ctx.Done():
		w.kill()
		return fmt.Errorf("python worker: %w", ctx.Err())
	}
}

// dead waits briefly for the exit status and describes the death.
func (w *Worker) dead(what string) error {
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		w.kill()
		<-w.exited
	}
	status := "exit status unknown"
	if w.waitErr != nil {
		status = w.waitErr.Error()
	} else {
		status = "exit status 0"
	}
	return fmt.Errorf("python worker exited (%s), %s; stderr tail:\n%s", status, what, w.tail.String())
}

func (w *Worker) kill() {
	if p := w.cmd.Process; p != nil {
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	}
}

// Close asks the worker to exit, kills it if it does not within a few seconds, and removes its files.
func (w *Worker) Close() error {
	w.closeOnce.Do(func() {
		exitLine := []byte("{\"op\":\"exit\"}\n")
		_, _ = w.stdin.Write(exitLine)
		_ = w.stdin.Close()
		go func() {
			for range w.lines { // drain the exit reply so the reader can reach EOF
			}
		}()
		select {
		case <-w.exited:
		case <-time.After(10 * time.Second):
			w.kill()
			<-w.exited
		}
		// Compiler subprocesses may outlive the worker in its group; none may outlive the engine.
		w.kill()
		os.RemoveAll(w.dir)
	})
	return nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimRight(string(t.buf), "\n")
}
