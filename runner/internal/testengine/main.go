// Command testengine is a protocol engine for the runner's own tests of
// failure handling: it produces deterministic tokens and, when the request
// option "fail" says so, crashes mid-run, hangs, writes garbage to stdout or
// returns the wrong number of tokens. Real engines are tested with real
// models; this one exists only to exercise what the runner does when an
// engine misbehaves.
package main

import (
	"context"
	"fmt"
	"os"
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
			"fail":     "crash-after=N | hang-after=N | garbage-after=N | short | none: misbehave after N iterations",
			"token_us": "microseconds per token (default 200)",
			"busy":     "1: spend each token's time spinning on the CPU instead of sleeping (a host-bound engine)",
		},
		Capabilities: protocol.Capabilities{MaxBatch: 4, StreamingTimestamps: true},
	}
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
	return m, protocol.Loaded{WeightsToHostNs: 1000}, nil
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
		d := time.Duration(m.tokenUs) * time.Microsecond
		if m.busy {
			for t := time.Now(); time.Since(t) < d; {
			}
		} else {
			time.Sleep(d)
		}
		ids := make([]int, c.BatchSize)
		for r := range ids {
			ids[r] = (c.PromptTokens[0] + i) % 100
		}
		rec.Step(ids...)
	}
	return nil
}

func (m *model) Close() error { return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := serve.Main(ctx, engine{}, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
