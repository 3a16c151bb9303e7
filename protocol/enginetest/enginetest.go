// Package enginetest holds what the tests of every engine binary need: build the
// engine package once against its static bridge library, synthesize the tiny
// model once, run the real binary on a request and decode what it printed.
// Nothing here fakes an engine; the tests drive real processes.
package enginetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// RunTimeout bounds one engine process.
const RunTimeout = 5 * time.Minute

// Result is what one engine process did.
type Result struct {
	Code   int              // exit status
	Events []protocol.Event // decoded stdout, for the "run" subcommand
	Stdout string
	Stderr string
}

// Last is the final event, or the zero event when there is none.
func (r Result) Last() protocol.Event {
	if len(r.Events) == 0 {
		return protocol.Event{}
	}
	return r.Events[len(r.Events)-1]
}

// Run runs bin with args (default: "run") and req on stdin: a []byte or string
// is sent as is, anything else as JSON. For "run" the stdout must be protocol
// events only, or the test fails.
func Run(t testing.TB, bin string, req any, args ...string) Result {
	t.Helper()
	return RunEnv(t, bin, nil, RunTimeout, req, args...)
}

// RunEnv is Run with extra environment variables (added to the test's own)
// and its own time limit.
func RunEnv(t testing.TB, bin string, env []string, timeout time.Duration, req any, args ...string) Result {
	t.Helper()
	if len(args) == 0 {
		args = []string{"run"}
	}
	var in []byte
	switch r := req.(type) {
	case []byte:
		in = r
	case string:
		in = []byte(r)
	default:
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal request: %v", err)
		}
		in = b
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		t.Fatalf("run %s %v: %v\nstderr:\n%s", bin, args, err, res.Stderr)
	}
	if args[0] == "run" || args[0] == "prepare" { // both answer in events
		dec := protocol.NewDecoder(bytes.NewReader(stdout.Bytes()))
		for dec.Scan() {
			res.Events = append(res.Events, dec.Event())
		}
		if err := dec.Err(); err != nil {
			t.Fatalf("stdout of %s must be JSON events only: %v\nstdout:\n%s\nstderr:\n%s", bin, err, res.Stdout, res.Stderr)
		}
	}
	return res
}

// Tokens returns the first output row of every iteration event, in order.
func Tokens(evs []protocol.Event) [][]int {
	var out [][]int
	for _, ev := range evs {
		if ev.Type == protocol.EventIteration {
			out = append(out, ev.Iteration.OutputTokens[0])
		}
	}
	return out
}

// CPURequest is a small CPU request: 2 threads, 1 warm-up and 2 timed iterations.
func CPURequest(model, dtype string, cases ...protocol.Case) protocol.Request {
	return protocol.Request{
		Protocol: protocol.Version, Model: model, Device: "cpu", DType: dtype, Seed: 1,
		Threads: 2, Warmup: 1, Iterations: 2, Cases: cases,
	}
}

// GreedyCase is a batch-1 greedy case of exactly newTokens tokens.
func GreedyCase(name string, prompt []int, newTokens int) protocol.Case {
	return protocol.Case{Name: name, PromptTokens: prompt, MaxNewTokens: newTokens, BatchSize: 1, Greedy: true, IgnoreEOS: true}
}

// Prompt is n ids (3 + i·step) mod vocab.
func Prompt(n, vocab, step int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = (3 + i*step) % vocab
	}
	return p
}

// FileHash is the first 8 bytes of the file's SHA-256, in hex.
func FileHash(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8]), nil
}

var (
	builds  sync.Map // lib path → *build
	tinyMu  sync.Mutex
	tinyDir string
	refOnce sync.Once
	refBin  string
	refErr  error
	tempsMu sync.Mutex
	temps   []string // directories Main removes
)

// Main runs the package's tests and then removes what this package built or
// synthesized for them: `func TestMain(m *testing.M) { os.Exit(enginetest.Main(m)) }`.
func Main(m *testing.M) int {
	code := m.Run()
	tempsMu.Lock()
	defer tempsMu.Unlock()
	for _, d := range temps {
		os.RemoveAll(d)
	}
	return code
}

// tempDir makes a directory that Main removes at the end.
func tempDir(pattern string) (string, error) {
	d, err := os.MkdirTemp("", pattern)
	if err == nil {
		tempsMu.Lock()
		temps = append(temps, d)
		tempsMu.Unlock()
	}
	return d, err
}

type build struct {
	once sync.Once
	bin  string
	err  error
}

// Binary builds the engine package in the test's working directory once per
// process, linked against the static library lib (relative to that directory),
// and returns its path. The library's hash goes into -ldflags (-X
// main.bridgeLib, a no-op where main declares no such variable): the changed
// flag makes Go relink whenever the library changes. Without the
// library the test is skipped, except under CI, where it fails: script is the
// command that builds it.
func Binary(t testing.TB, name, lib, script string) string {
	t.Helper()
	if _, err := os.Stat(lib); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s is absent: run %s (CI unset, so the %s engine tests skip)", lib, script, name)
		}
		t.Fatalf("CI: %s is absent: %s must run before the tests", lib, script)
	}
	v, _ := builds.LoadOrStore(lib, &build{})
	b := v.(*build)
	b.once.Do(func() {
		sum, err := FileHash(lib)
		if err != nil {
			b.err = err
			return
		}
		dir, err := tempDir("cib-" + name + "-test-")
		if err != nil {
			b.err = err
			return
		}
		b.bin = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-ldflags", "-X main.bridgeLib="+sum, "-o", b.bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// TinyModel synthesizes the tiny f32 Llama (`runner models synth --shape tiny
// --seed 1`) once per process and returns its directory ($CIB_TINY_MODEL, when
// set, instead). The runner is the repository's bin/runner when built, else
// `go run ./runner`.
func TinyModel(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("CIB_TINY_MODEL"); d != "" {
		return d
	}
	tinyMu.Lock()
	defer tinyMu.Unlock()
	if tinyDir != "" {
		return tinyDir
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := tempDir("cib-tiny-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tiny")
	args := []string{"models", "synth", "--shape", "tiny", "--dtype", "f32", "--seed", "1", "--out", out}
	cmd := exec.Command(filepath.Join(root, "bin", "runner"), args...)
	if _, err := os.Stat(cmd.Path); err != nil {
		cmd = exec.Command("go", append([]string{"run", "./runner"}, args...)...)
	}
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runner models synth: %v\n%s", err, b)
	}
	tinyDir = out
	return tinyDir
}

// RepoRoot is the directory holding go.work, found upward from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("enginetest: no go.work above the working directory")
		}
		dir = parent
	}
}

// Reference builds the pure-Go reference engine once per process (Go's build
// cache makes that cheap) and returns its path: the parity tests' oracle.
func Reference(t testing.TB) string {
	t.Helper()
	refOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			refErr = err
			return
		}
		dir, err := tempDir("cib-reference-")
		if err != nil {
			refErr = err
			return
		}
		refBin = filepath.Join(dir, "reference")
		cmd := exec.Command("go", "build", "-o", refBin, "./engines/reference")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			refErr = fmt.Errorf("go build reference: %v\n%s", err, out)
		}
	})
	if refErr != nil {
		t.Fatal(refErr)
	}
	return refBin
}
