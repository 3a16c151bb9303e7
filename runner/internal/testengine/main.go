// Command testengine is a protocol engine for the runner's own tests of
// failure handling: it produces deterministic tokens and, when the request
// option "fail" says so, crashes mid-run, hangs, writes garbage to stdout,
// returns the wrong number of tokens, or lies in its event stream (see
// lie.go); the option "leak" leaves processes behind, and the environment
// variable TESTENGINE_INFO makes `info` misbehave. Real engines are tested
// with real models; this one exists only to exercise what the runner does
// when an engine misbehaves.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

type engine struct{}

func (engine) Info() protocol.Info {
	return protocol.Info{
		Name: "testengine", Library: "none", LibraryVersion: "0", Devices: []string{"cpu"}, DTypes: []string{"f32", "f16", "bf16"},
		Options: map[string]string{
			"fail": "crash-after=N | hang-after=N | garbage-after=N | short | none: misbehave after N iterations; " +
				"flood | mislabel | no-loaded | double-loaded | zero-times | long | error-hang: lie in the event stream",
			"token_us": "microseconds per token (default 200)",
			"busy":     "1: spend each token's time spinning on the CPU instead of sleeping (a host-bound engine)",
			"leak":     "setsid | stdout: leave a child behind, in its own session or holding stdout open after done",
			"pid_file": "file the leaked child's pid is written to",
			"prepare": "need | fail | hang: `prepare` writes a marker into the model directory (need: a launch without it fails to load); " +
				"fail: `prepare` fails; hang: `prepare` waits until it is killed",
		},
		Capabilities: protocol.Capabilities{MaxBatch: 4, StreamingTimestamps: true},
	}
}

// Prepare writes the marker a launch with prepare=need looks for; Ran says whether it was new.
func (engine) Prepare(ctx context.Context, req *protocol.Request) (protocol.Prepared, error) {
	switch req.Options["prepare"] {
	case "fail":
		return protocol.Prepared{}, fmt.Errorf("prepare failed as asked (option prepare=fail)")
	case "hang":
		<-ctx.Done()
		time.Sleep(time.Hour) // as an engine that ignores the signal: the runner must kill it
	}
	path := prepareMarker(req)
	_, err := os.Stat(path)
	if err != nil {
		if err := os.WriteFile(path, []byte("prepared\n"), 0o644); err != nil {
			return protocol.Prepared{}, err
		}
	}
	return protocol.Prepared{Ran: err != nil, Steps: map[string]string{"marker": path}}, nil
}

func prepareMarker(req *protocol.Request) string {
	return req.Model + "/.testengine-prepared-" + req.DType
}

type model struct {
	fail    string
	after   int
	tokenUs int
	busy    bool
	n       int
}

func (engine) Load(ctx context.Context, req *protocol.Request) (serve.Model, protocol.Loaded, error) {
	if _, err := os.Stat(req.Model); err != nil {
		return nil, protocol.Loaded{}, err
	}
	if req.Options["prepare"] == "need" {
		if _, err := os.Stat(prepareMarker(req)); err != nil {
			return nil, protocol.Loaded{}, fmt.Errorf("not prepared (run `testengine prepare` first): %w", err)
		}
	}
	m := &model{fail: "none", tokenUs: 200}
	if f := req.Options["fail"]; f != "" {
		kind, n, _ := strings.Cut(f, "=")
		m.fail = kind
		if n != "" {
			v, err := strconv.Atoi(n)
			if err != nil {
				return nil, protocol.Loaded{}, serve.BadRequest(fmt.Errorf("option fail=%q: bad count", f))
			}
			m.after = v
		}
	}
	switch b := req.Options["busy"]; b {
	case "", "0":
	case "1":
		m.busy = true
	default:
		return nil, protocol.Loaded{}, serve.BadRequest(fmt.Errorf("option busy=%q: want 0 or 1", b))
	}
	if s := req.Options["token_us"]; s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return nil, protocol.Loaded{}, serve.BadRequest(fmt.Errorf("option token_us=%q: want a non-negative integer", s))
		}
		m.tokenUs = v
	}
	if l := req.Options["leak"]; l != "" {
		if err := leak(l, req.Options["pid_file"]); err != nil {
			return nil, protocol.Loaded{}, err
		}
	}
	return m, protocol.Loaded{WeightsToHostNs: 1000, Settings: placement()}, nil
}

// placement reports where the launch runs, so tests of multi-GPU runs can
// check what each child saw: its CUDA_VISIBLE_DEVICES and the CPUs it may
// run on (Cpus_allowed_list of /proc/self/status).
func placement() map[string]string {
	s := map[string]string{"cuda_visible_devices": os.Getenv("CUDA_VISIBLE_DEVICES")}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				s["cpus"] = strings.TrimSpace(v)
			}
		}
	}
	return s
}

// leak starts a child that outlives this process: "setsid" puts it in its own
// session (out of the process group the runner kills), "stdout" lets it
// inherit stdout, so the stream stays open after this process exits.
func leak(kind, pidFile string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "linger")
	switch kind {
	case "setsid":
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	case "stdout":
		cmd.Stdout = os.Stdout
	default:
		return serve.BadRequest(fmt.Errorf("option leak=%q: want setsid or stdout", kind))
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start leaked child: %w", err)
	}
	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			return err
		}
	}
	return cmd.Process.Release()
}

func (m *model) Generate(ctx context.Context, c *protocol.Case, rec *serve.Recorder) error {
	if m.n == m.after {
		switch m.fail {
		case "crash-after":
			fmt.Fprintln(os.Stderr, "testengine: simulated segfault")
			os.Exit(139)
		case "hang-after":
			time.Sleep(time.Hour)
		case "garbage-after":
			fmt.Println("WARNING: this is not JSON")
		}
	}
	m.n++
	n := c.MaxNewTokens
	if m.fail == "short" {
		n--
	}
	for i := range n {
		m.token()
		rec.Step(tokenIDs(c, i)...)
	}
	return nil
}

// token spends one token's time.
func (m *model) token() {
	d := time.Duration(m.tokenUs) * time.Microsecond
	if m.busy {
		for t := time.Now(); time.Since(t) < d; {
		}
	} else {
		time.Sleep(d)
	}
}

// tokenIDs are the deterministic ids of output position i, one per batch row.
func tokenIDs(c *protocol.Case, i int) []int {
	ids := make([]int, c.BatchSize)
	for r := range ids {
		ids[r] = (c.PromptTokens[0] + i) % 100
	}
	return ids
}

func (m *model) Close() error { return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := mainCode(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func mainCode(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "linger":
			time.Sleep(time.Hour)
			return 0
		case "info":
			if code, ok := badInfo(stdout); ok {
				return code
			}
		case "run":
			b, err := io.ReadAll(stdin)
			if err != nil {
				fmt.Fprintf(stderr, "read request: %v\n", err)
				return 1
			}
			if req, err := protocol.DecodeRequest(bytes.NewReader(b)); err == nil && lies[req.Options["fail"]] {
				return lie(ctx, req, stdout)
			}
			stdin = bytes.NewReader(b)
		}
	}
	return serve.Main(ctx, engine{}, args, stdin, stdout, stderr)
}

// badInfo answers `info` as TESTENGINE_INFO says: "hang" never answers,
// "protocol=N" declares protocol version N, "dtypes=a,b" lists only those
// dtypes, "devices=a,b" those devices. It reports false for a normal answer.
func badInfo(stdout io.Writer) (int, bool) {
	mode := os.Getenv("TESTENGINE_INFO")
	switch {
	case mode == "":
		return 0, false
	case mode == "hang":
		time.Sleep(time.Hour)
		return 1, true
	case strings.HasPrefix(mode, "dtypes="):
		info := engine{}.Info()
		info.Protocol = protocol.Version
		info.DTypes = strings.Split(strings.TrimPrefix(mode, "dtypes="), ",")
		b, _ := json.Marshal(info)
		fmt.Fprintf(stdout, "%s\n", b)
		return 0, true
	case strings.HasPrefix(mode, "devices="):
		info := engine{}.Info()
		info.Protocol = protocol.Version
		info.Devices = strings.Split(strings.TrimPrefix(mode, "devices="), ",")
		b, _ := json.Marshal(info)
		fmt.Fprintf(stdout, "%s\n", b)
		return 0, true
	case strings.HasPrefix(mode, "protocol="):
		v, err := strconv.Atoi(strings.TrimPrefix(mode, "protocol="))
		if err != nil {
			return 1, true
		}
		info := engine{}.Info()
		info.Protocol = v
		b, _ := json.Marshal(info)
		fmt.Fprintf(stdout, "%s\n", b)
		return 0, true
	}
	return 0, false
}
