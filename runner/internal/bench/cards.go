package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// Card is one GPU of a multi-GPU run: the engine launched on it sees only it
// and runs on its own CPUs.
type Card struct {
	// Index is the NVML index (PCI bus order); UUID its NVML UUID ("" when
	// unknown, e.g. a fake card in tests).
	Index int
	UUID  string
	// CPUs are the host CPUs the launch's process tree is pinned to (none:
	// not pinned).
	CPUs []int
	// Env is added to the child environment, e.g. CUDA_VISIBLE_DEVICES.
	Env []string
	// Monitor watches this card (nil: telemetry off).
	Monitor Monitor
}

// VisibleEnv is the environment that shows a child one card only: CUDA
// numbers devices fastest first unless told PCI bus order, which is NVML's,
// and a UUID names the card whatever the order.
func VisibleEnv(index int, uuid string) []string {
	dev := strconv.Itoa(index)
	if uuid != "" {
		dev = uuid
	}
	return []string{"CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=" + dev}
}

// Schedule returns the balanced plan of a multi-GPU run: for each round, the
// variant each card runs (cards run their launch of a round at the same
// time, so a card never holds two engines). Round r gives card c variant
// (r + c) mod variants: with as many variants as cards every round is a row of
// a Latin square (each variant once per round, once per card over the
// square); otherwise it is the same cyclic rotation. With launches a multiple
// of cards, every variant gets launches/cards launches on every card, in
// variants × launches / cards rounds, and its launches are spread evenly over
// time on each card, so neither a slow card nor a drift over the run favours
// one engine.
func Schedule(variants, cards, launches int) [][]int {
	if variants <= 0 || cards <= 0 || launches <= 0 {
		return nil
	}
	rounds := variants * launches / cards
	plan := make([][]int, rounds)
	for r := range plan {
		plan[r] = make([]int, cards)
		for c := range plan[r] {
			plan[r][c] = (r + c) % variants
		}
	}
	return plan
}

// BalancedLaunches is the fewest launches per variant, at least want, that
// give every variant the same number of launches on every one of cards
// cards: a multiple of cards.
func BalancedLaunches(want, cards int) int {
	if cards <= 1 {
		return want
	}
	return (want + cards - 1) / cards * cards
}

// runCards runs o.Config.Launches launches of every variant over o.Cards by
// Schedule, a round at a time: the launches of a round start together, one
// per card, and the next round starts when all of them ended. Adaptive
// stopping and resuming are not supported here (the CLI refuses them).
func runCards(ctx context.Context, o Options, reqBytes [][]byte) ([]results.Record, error) {
	cfg := o.Config
	maxFail := o.MaxConsecutiveFailures
	if maxFail == 0 {
		maxFail = 2
	}
	o.Observer = nil
	plan := Schedule(len(o.Variants), len(o.Cards), BalancedLaunches(cfg.Launches, len(o.Cards)))
	var mu sync.Mutex // guards all, failStreak, the writer and progress
	var all []results.Record
	failStreak := make([]int, len(o.Variants))
	launched := make([]int, len(o.Variants))
	order := 0
	begin := time.Now()
	var writeErr error
	for round, row := range plan {
		if err := ctx.Err(); err != nil {
			return all, fmt.Errorf("benchmark interrupted: %w", err)
		}
		var wg sync.WaitGroup
		for ci, vi := range row {
			if failStreak[vi] >= maxFail {
				continue
			}
			card := o.Cards[ci]
			v := o.Variants[vi]
			launch := launched[vi]
			launched[vi]++
			pl := placement{
				monitor: card.Monitor,
				env:     append(append([]string{}, o.Env...), card.Env...),
				cpus:    card.CPUs,
				card:    &results.Card{Index: card.Index, UUID: card.UUID, CPUs: CPUList(card.CPUs), Round: round},
			}
			ord := order
			order++
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec := launchOne(ctx, o, v, reqBytes[vi], launch, ord, pl)
				mu.Lock()
				defer mu.Unlock()
				if err := o.Writer.Append(&rec); err != nil && writeErr == nil {
					writeErr = err
				}
				all = append(all, rec)
				if rec.Status == results.StatusOK {
					failStreak[vi] = 0
				} else {
					failStreak[vi]++
					if failStreak[vi] == maxFail {
						progress(o.Progress, "  %s: %d failed launches in a row, not launching it again\n", v.Label, maxFail)
					}
				}
				line := formatProgress(&rec, time.Since(begin))
				progress(o.Progress, "%s", strings.Replace(line, "] ", fmt.Sprintf("] gpu %d ", card.Index), 1))
			}()
		}
		wg.Wait()
		if writeErr != nil {
			return all, writeErr
		}
	}
	if err := ctx.Err(); err != nil {
		return all, fmt.Errorf("benchmark interrupted: %w", err)
	}
	return all, nil
}

// CPUList formats CPUs as a Linux CPU list ("0-3,8").
func CPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", cpus[i], cpus[j])
		} else {
			fmt.Fprintf(&b, "%d", cpus[i])
		}
		i = j + 1
	}
	return b.String()
}

// ParseCPUList parses a Linux CPU list ("0-3,8"), as in sysfs local_cpulist.
func ParseCPUList(s string) ([]int, error) {
	var out []int
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// SplitCPUs gives each card its own CPUs out of avail (the runner's
// affinity): local[i], when set, are card i's NUMA-local CPUs, shared out
// among the cards local to the same CPUs; cards whose locality is unknown
// (or outside avail) split all of avail evenly among themselves. Every card
// gets at least one CPU; when there are fewer CPUs than cards, cards share
// them round-robin.
func SplitCPUs(avail []int, local [][]int) [][]int {
	n := len(local)
	out := make([][]int, n)
	if n == 0 || len(avail) == 0 {
		return out
	}
	in := map[int]bool{}
	for _, c := range avail {
		in[c] = true
	}
	// Group cards by their local CPU set (as a key), keeping avail's order.
	groups := map[string][]int{}
	var keys []string
	for i := range n {
		var cpus []int
		for _, c := range local[i] {
			if in[c] {
				cpus = append(cpus, c)
			}
		}
		k := CPUList(cpus)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range keys {
		pool, _ := ParseCPUList(k)
		if len(pool) == 0 {
			pool = avail
		}
		cards := groups[k]
		if len(pool) < len(cards) {
			for j, i := range cards {
				out[i] = []int{pool[j%len(pool)]}
			}
			continue
		}
		per := len(pool) / len(cards)
		for j, i := range cards {
			out[i] = append([]int{}, pool[j*per:(j+1)*per]...)
		}
	}
	return out
}
