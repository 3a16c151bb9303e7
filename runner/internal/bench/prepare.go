package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
)

// preparer runs `ENGINE prepare` for every variant whose engine declares it
// (capabilities.prepare), just before that variant's first launch in the run:
// the model-derived work its launches would otherwise do at load and reuse
// from a cache after (llama.cpp's GGUF conversion, libtorch's AOTInductor
// export, burn's autotune pass). So no launch's cold start carries a one-time
// cost that the others do not, and the cost is on record apart (prepare.jsonl,
// the report's Engines section). Once per binary and request: a profiled twin
// shares its engine's. A failure is recorded and printed, and the launches
// still run: each then does the work itself or fails with its own error.
//
// Just before the first launch, not all before any: an engine whose
// preparation takes many minutes (burn tuning a shape, 6m39 on the H200 on
// 2026-12-02) does not hold back the launches of the variants before it, so
// a run cut short (Ctrl-C, a time limit) keeps their results.
type preparer struct {
	o        Options
	reqBytes [][]byte
	seen     map[string]bool
	// timedOut holds, per binary and request, why a preparation ran past timeouts.prepare: its variants' launches
	// are not made in this run (each would repeat the work and time out the same way).
	timedOut map[string]string
}

func newPreparer(o Options, reqBytes [][]byte) *preparer {
	return &preparer{o: o, reqBytes: reqBytes, seen: map[string]bool{}, timedOut: map[string]string{}}
}

// gaveUp says why variant i is not launched in this run ("" when it is): its preparation ran past timeouts.prepare.
func (p *preparer) gaveUp(i int) string { return p.timedOut[p.key(i)] }

// key names a preparation: the binary and the request (a profiled twin shares its engine's).
func (p *preparer) key(i int) string { return p.o.Variants[i].Path + "\x00" + string(p.reqBytes[i]) }

// all prepares every variant now (runs on several cards, whose launches start together).
func (p *preparer) all(ctx context.Context) {
	for i := range p.o.Variants {
		p.variant(ctx, i)
	}
}

// variant prepares variant i unless it needs nothing or was prepared already in this run.
func (p *preparer) variant(ctx context.Context, i int) {
	o, v := p.o, p.o.Variants[i]
	if v.Info == nil || !v.Info.Capabilities.Prepare {
		return
	}
	key := p.key(i)
	if p.seen[key] || ctx.Err() != nil {
		return
	}
	p.seen[key] = true
	if o.Observer != nil {
		o.Observer.Phase("preparing " + v.Label)
	}
	prep, timedOut := prepareOne(ctx, o, v, p.reqBytes[i])
	if timedOut {
		p.timedOut[key] = fmt.Sprintf("not launched: its prepare ran past timeouts.prepare (%s) and its launches would repeat that work; "+
			"run it again on this machine (what the engine kept, e.g. cubecl's autotune store, is reused) or raise timeouts.prepare",
			limitOf(o.Config))
	}
	if o.Writer != nil {
		if err := results.AppendPreparation(o.Writer.Dir(), &prep); err != nil {
			progress(o.Progress, "  %s: %v\n", v.Label, err)
		}
	}
	if n, ok := o.Observer.(Noter); ok {
		n.Note(PrepareLine(&prep) + "\n")
	} else {
		progress(o.Progress, "%s\n", PrepareLine(&prep))
	}
}

// Noter is an Observer that can print a line of its own (above a live progress bar).
type Noter interface {
	Note(line string)
}

// limitOf is the preparation's time limit: timeouts.prepare, or total where a config was built without defaults.
func limitOf(c *config.Config) time.Duration {
	if d := c.Timeouts.Prepare.Duration; d > 0 {
		return d
	}
	return c.Timeouts.Total.Duration
}

// prepareOne runs one preparation; timedOut is true when it ran past its limit.
func prepareOne(ctx context.Context, o Options, v Variant, req []byte) (p results.Preparation, timedOut bool) {
	p = results.Preparation{Engine: v.Label, Spec: v.Spec, StartedAt: time.Now().UTC()}
	// One event at the end, after however long the work takes: timeouts.prepare
	// bounds it (an 8B export takes minutes).
	limit := limitOf(o.Config)
	res := spawn.Launch(ctx, spawn.Options{
		Path: v.Path, Args: []string{"prepare"}, Env: o.Env, Stdin: req,
		Timeouts: spawn.Timeouts{Start: limit, Stall: limit, Total: limit},
	}, nil, func(ev spawn.Received) error {
		if ev.Event.Type != protocol.EventPrepared && ev.Event.Type != protocol.EventError {
			return fmt.Errorf("protocol: a %s event answering prepare (want one prepared event)", ev.Event.Type)
		}
		if ev.Event.Prepared != nil {
			if p.Prepared != nil {
				return errors.New("protocol: a second prepared event")
			}
			p.Prepared = ev.Event.Prepared
		}
		return nil
	})
	if !res.Started.IsZero() {
		p.WallNs = int64(time.Since(res.Started))
	}
	if res.Err != nil {
		p.Error, p.StderrTail, p.Prepared = res.Err.Error(), res.StderrTail, nil
		if errors.Is(res.Err, spawn.ErrInterrupted) {
			p.Error = InterruptedError
		}
		timedOut = errors.Is(res.Err, spawn.ErrStartTimeout) || errors.Is(res.Err, spawn.ErrStallTimeout) || errors.Is(res.Err, spawn.ErrTotalTimeout)
	}
	return p, timedOut
}

// PrepareLine is one line on a preparation: what it made or found, how long.
func PrepareLine(p *results.Preparation) string {
	wall := time.Duration(p.WallNs).Round(100 * time.Millisecond)
	if p.Prepared == nil {
		return fmt.Sprintf("prepare %s: FAILED after %s: %s (its launches will do the work themselves or fail)", p.Engine, wall, p.Error)
	}
	what := "everything was cached"
	if p.Prepared.Ran {
		what = "made"
	}
	var steps []string
	for k, s := range p.Prepared.Steps {
		steps = append(steps, k+": "+s)
	}
	sort.Strings(steps)
	line := fmt.Sprintf("prepare %s: %s in %s", p.Engine, what, wall)
	if len(steps) > 0 {
		line += " (" + strings.Join(steps, "; ") + ")"
	}
	return line
}
