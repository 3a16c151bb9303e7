package enginetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// script writes an executable shell script that stands in for an engine binary.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "engine")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunDecodesEventsAndExitCode(t *testing.T) {
	bin := script(t, `cat >/dev/null
echo '{"type":"error","error":{"code":"bad_request","message":"nope"}}'
echo 'oops' >&2
exit 2
`)
	res := Run(t, bin, CPURequest("/m", "f32", GreedyCase("c", Prompt(3, 10, 4), 2)))
	if res.Code != 2 || res.Stderr != "oops\n" || len(res.Events) != 1 {
		t.Fatalf("got %+v", res)
	}
	if ev := res.Events[0]; ev.Type != protocol.EventError || ev.Error.Code != protocol.CodeBadRequest {
		t.Fatalf("event %+v", ev)
	}
	// Another subcommand: stdout is kept as is, not decoded.
	res = Run(t, script(t, "echo hello\n"), "", "info")
	if res.Code != 0 || res.Stdout != "hello\n" || res.Events != nil {
		t.Fatalf("info: %+v", res)
	}
}

func TestHelpers(t *testing.T) {
	if got := Prompt(4, 10, 4); len(got) != 4 || got[0] != 3 || got[1] != 7 || got[2] != 1 || got[3] != 5 {
		t.Fatalf("Prompt = %v", got)
	}
	evs := []protocol.Event{
		{Type: protocol.EventLoaded},
		{Type: protocol.EventIteration, Iteration: &protocol.Iteration{OutputTokens: [][]int{{1, 2}, {3, 4}}}},
		{Type: protocol.EventDone},
	}
	if got := Tokens(evs); len(got) != 1 || got[0][1] != 2 {
		t.Fatalf("Tokens = %v", got)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatal(err)
	}
}
