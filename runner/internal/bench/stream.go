package bench

import (
	"errors"
	"fmt"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
)

// ClockSlack is how much longer than the runner saw an iteration may last by
// the engine's clock, in ns: the runner stamps a line when its reader gets
// it, which on a busy host can lag the engine's write by scheduling delays.
// No real iteration hides in it; an engine whose clock runs ahead of the
// runner's by more is lying or broken.
const ClockSlack = 100 * time.Millisecond

// stream checks an engine's events as they arrive against the request: one
// loaded event first, then exactly the requested iterations in order (each
// case's warm-up iterations, then its timed ones) with possible timestamps,
// then done, and nothing after it. The first violation ends the launch, so an engine that keeps
// talking cannot make the runner wait for a timeout or hold its output.
type stream struct {
	req    *protocol.Request
	loaded bool
	done   bool
	// n counts the iteration events received.
	n int
	// last is when the previous event arrived (at first, the spawn).
	last time.Time
}

func (s *stream) check(ev spawn.Received) error {
	prev := s.last
	s.last = ev.At
	if s.done {
		return fmt.Errorf("a %s event after done", ev.Event.Type)
	}
	switch ev.Event.Type {
	case protocol.EventLoaded:
		if s.loaded {
			return errors.New("a second loaded event")
		}
		if s.n > 0 {
			return errors.New("loaded event after iterations")
		}
		s.loaded = true
	case protocol.EventIteration:
		if !s.loaded {
			return errors.New("iteration before the loaded event")
		}
		s.n++
		return s.iteration(ev.Event.Iteration, ev.At.Sub(prev))
	case protocol.EventDone:
		if !s.loaded {
			return errors.New("done without a loaded event")
		}
		s.done = true
	case protocol.EventPrepared:
		return errors.New("a prepared event in a run (it answers `prepare`)")
	}
	return nil
}

// iteration checks the n-th iteration event (from 1), which arrived observed
// after the previous event.
func (s *stream) iteration(it *protocol.Iteration, observed time.Duration) error {
	r := s.req
	per := r.Warmup + r.Iterations
	total := per * len(r.Cases)
	if s.n > total {
		return fmt.Errorf("iteration %d is past the %d requested (%d warm-up + %d timed per case, %d %s)",
			s.n, total, r.Warmup, r.Iterations, len(r.Cases), plural(len(r.Cases), "case"))
	}
	k := s.n - 1
	ci, j := k/per, k%per
	warm, idx, kind, of := j < r.Warmup, j, "warm-up", r.Warmup
	if !warm {
		idx, kind, of = j-r.Warmup, "timed", r.Iterations
	}
	want := fmt.Sprintf("iteration %d (case %s, %s %d/%d)", s.n, r.Cases[ci].Name, kind, idx+1, of)
	switch {
	case it.Warmup != warm && warm:
		return fmt.Errorf("%s is labelled timed", want)
	case it.Warmup != warm:
		return fmt.Errorf("%s is labelled warm-up", want)
	case it.Case != ci:
		return fmt.Errorf("%s answers case %d", want, it.Case)
	case it.Index != idx:
		return fmt.Errorf("%s has index %d, want %d", want, it.Index, idx)
	}
	n := len(it.TokenNs)
	switch {
	case n > 0 && it.TokenNs[0] <= 0:
		return fmt.Errorf("%s: first token at %d ns after the iteration's start; no engine produces a token in no time", want, it.TokenNs[0])
	case n > 1 && it.TokenNs[n-1] == it.TokenNs[0]:
		return fmt.Errorf("%s: all %d tokens at %d ns; decoding takes time (time each token as it reaches the host)", want, n, it.TokenNs[0])
	case time.Duration(it.EndNs) > observed+ClockSlack:
		return fmt.Errorf("%s lasted %s by the engine's clock, but only %s passed on the runner's clock since the previous event",
			want, time.Duration(it.EndNs), observed.Round(time.Microsecond))
	}
	return nil
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}
