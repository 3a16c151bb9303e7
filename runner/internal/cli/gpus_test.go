package cli_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/cli"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// TestParallelCards runs real engine processes on fake cards (CIB_FAKE_GPUS,
// a CPU benchmark): launches of a round run at the same time, one per card;
// a card never holds two; every engine gets the same launches on every card
// in the Schedule's order; each child sees only its card in
// CUDA_VISIBLE_DEVICES and runs on its card's CPUs from its first thread;
// the summary compares engines within each card.
func TestParallelCards(t *testing.T) {
	bin := testbin.Dir(t)
	tests := []struct {
		name              string
		engines           string
		variants, cards   int
		gpus              string
		launches, perCard int
	}{
		{name: "latin square 2x2", engines: "testengine:token_us=3000,testengine:token_us=3500", variants: 2, cards: 2, gpus: "all", launches: 2, perCard: 1},
		{name: "3 engines on 2 cards, launches rounded up", engines: "testengine:token_us=3000,testengine:token_us=3200,testengine:token_us=3400",
			variants: 3, cards: 2, gpus: "1,0", launches: 3, perCard: 2},
	}
	avail, err := spawn.Affinity()
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			o := runEnv(t, t.Context(), []string{cli.FakeGPUsEnv + "=" + strconv.Itoa(tt.cards)},
				"--bin-dir", bin, "--out", root, "--config", testConfig(t, ""), "--engines", tt.engines,
				"--launches", strconv.Itoa(tt.launches), "--gpus", tt.gpus, "--format", "json", "--equivalence", "2%")
			require.Equal(t, cli.ExitOK, o.code, o.stderr)
			dir := resultDir(t, root)
			recs, _, err := results.ReadRuns(filepath.Join(dir, results.RunsFile))
			require.NoError(t, err)
			require.Len(t, recs, tt.variants*tt.perCard*tt.cards)

			cpus := bench.SplitCPUs(avail, make([][]int, tt.cards))
			perCard := map[int][]results.Record{}
			count := map[string]int{}
			for _, r := range recs {
				require.Equal(t, results.StatusOK, r.Status, r.Error)
				require.NotNil(t, r.Card, "launch %s/%d has no card", r.Engine, r.Launch)
				perCard[r.Card.Index] = append(perCard[r.Card.Index], r)
				count[fmt.Sprintf("%s@%d", r.Engine, r.Card.Index)]++
				assert.Equal(t, strconv.Itoa(r.Card.Index), r.Loaded.Settings["cuda_visible_devices"], "CUDA_VISIBLE_DEVICES seen by %s on card %d", r.Engine, r.Card.Index)
				slot := r.Card.Index // cards take CPUs in --gpus order
				if tt.gpus == "1,0" {
					slot = 1 - slot
				}
				assert.Equal(t, bench.CPUList(cpus[slot]), r.Card.CPUs, "CPUs recorded")
				assert.Equal(t, r.Card.CPUs, r.Loaded.Settings["cpus"], "CPUs the child of %s on card %d may run on", r.Engine, r.Card.Index)
			}
			require.Len(t, count, tt.variants*tt.cards, "every engine on every card: %v", count)
			for k, n := range count {
				assert.Equal(t, tt.perCard, n, "launches of %s", k)
			}
			// Order of the plan: cards are listed in --gpus order, so card c of
			// the plan is the c-th index given.
			plan := bench.Schedule(tt.variants, tt.cards, tt.perCard*tt.cards)
			order := []int{0, 1}
			if tt.gpus == "1,0" {
				order = []int{1, 0}
			}
			end := func(r results.Record) time.Time { return r.StartedAt.Add(time.Duration(r.DurationNs)) }
			for slot, idx := range order {
				rs := perCard[idx]
				sort.Slice(rs, func(i, j int) bool { return rs[i].Card.Round < rs[j].Card.Round })
				require.Len(t, rs, len(plan))
				for i, r := range rs {
					require.Equal(t, i, r.Card.Round, "card %d runs one launch per round", idx)
					if i > 0 {
						assert.False(t, r.StartedAt.Before(end(rs[i-1])), "card %d: round %d started before round %d ended", idx, i, i-1)
					}
					step := 500
					if tt.variants == 3 {
						step = 200
					}
					assert.Equal(t, strconv.Itoa(3000+step*plan[i][slot]), r.Spec.Options["token_us"], "card %d round %d runs the planned engine", idx, i)
				}
			}
			// The two launches of round 0 ran at the same time.
			a, b := perCard[order[0]][0], perCard[order[1]][0]
			assert.True(t, a.StartedAt.Before(end(b)) && b.StartedAt.Before(end(a)), "round 0 launches overlap in time")

			var s analysis.Summary
			require.NoError(t, results.ReadJSON(dir, results.SummaryFile, &s))
			require.NotEmpty(t, s.Cases[0].Comparisons)
			for _, cm := range s.Cases[0].Comparisons {
				require.Len(t, cm.Cards, tt.cards, "per-card comparisons of %s %s", cm.Engine, cm.Metric)
				if cm.Blocked.HasTest && !cm.Blocked.Disagree { // the equivalence test is on the card-blocked contrast too
					require.NotNil(t, cm.Equivalence, "%s %s", cm.Engine, cm.Metric)
					want := stats.TOSTEstimate(cm.Blocked.Diff, cm.Blocked.SE, cm.Blocked.DF, math.Log1p(0.02))
					assert.InDelta(t, want, cm.Equivalence.P, 1e-12)
				} else {
					assert.Nil(t, cm.Equivalence, "no combined test, no equivalence test: %s %s", cm.Engine, cm.Metric)
				}
			}
			md, err := os.ReadFile(filepath.Join(dir, results.ReportMD))
			require.NoError(t, err)
			assert.Contains(t, string(md), "Per card (comparisons within each GPU")
		})
	}
}
