package bench

import (
	"reflect"
	"testing"
)

// TestSchedule: every variant gets launches/cards launches on every card, a
// round gives each card one launch, and with as many variants as cards the
// plan is a Latin square (each variant once per round).
func TestSchedule(t *testing.T) {
	tests := []struct {
		name                      string
		variants, cards, launches int
	}{
		{name: "latin 2x2", variants: 2, cards: 2, launches: 2},
		{name: "latin 4x4", variants: 4, cards: 4, launches: 8},
		{name: "more engines than cards", variants: 3, cards: 2, launches: 4},
		{name: "more cards than engines", variants: 2, cards: 4, launches: 4},
		{name: "one card is A B A B", variants: 2, cards: 1, launches: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := Schedule(tt.variants, tt.cards, tt.launches)
			if want := tt.variants * tt.launches / tt.cards; len(plan) != want {
				t.Fatalf("Schedule(%d, %d, %d) has %d rounds, want %d", tt.variants, tt.cards, tt.launches, len(plan), want)
			}
			count := make([][]int, tt.variants)
			for v := range count {
				count[v] = make([]int, tt.cards)
			}
			for r, row := range plan {
				if len(row) != tt.cards {
					t.Fatalf("round %d has %d launches, want one per card (%d)", r, len(row), tt.cards)
				}
				seen := map[int]bool{}
				for c, v := range row {
					count[v][c]++
					if tt.variants >= tt.cards && seen[v] {
						t.Errorf("round %d runs variant %d twice: %v", r, v, row)
					}
					seen[v] = true
				}
			}
			for v := range count {
				for c := range count[v] {
					if count[v][c] != tt.launches/tt.cards {
						t.Errorf("variant %d on card %d: %d launches, want %d", v, c, count[v][c], tt.launches/tt.cards)
					}
				}
			}
		})
	}
	if got, want := Schedule(2, 1, 2), [][]int{{0}, {1}, {0}, {1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Schedule(2, 1, 2) = %v, want %v (the sequential A B A B)", got, want)
	}
	if got := BalancedLaunches(3, 2); got != 4 {
		t.Errorf("BalancedLaunches(3, 2) = %d, want 4", got)
	}
}

func TestSplitCPUs(t *testing.T) {
	seq := func(a, b int) []int {
		var out []int
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
		return out
	}
	tests := []struct {
		name  string
		avail []int
		local [][]int
		want  []string
	}{
		{name: "no topology: even split", avail: seq(0, 7), local: make([][]int, 4), want: []string{"0-1", "2-3", "4-5", "6-7"}},
		{name: "numa local", avail: seq(0, 15), local: [][]int{seq(0, 7), seq(0, 7), seq(8, 15), seq(8, 15)},
			want: []string{"0-3", "4-7", "8-11", "12-15"}},
		{name: "fewer cpus than cards", avail: []int{0}, local: make([][]int, 2), want: []string{"0", "0"}},
		{name: "local cpus outside our affinity", avail: []int{2, 3}, local: [][]int{{0, 1}, {0, 1}}, want: []string{"2", "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitCPUs(tt.avail, tt.local)
			var s []string
			for _, c := range got {
				s = append(s, CPUList(c))
			}
			if !reflect.DeepEqual(s, tt.want) {
				t.Errorf("SplitCPUs = %v, want %v", s, tt.want)
			}
			for _, l := range tt.want {
				if back, err := ParseCPUList(l); err != nil || CPUList(back) != l {
					t.Errorf("ParseCPUList(%q) = %v, %v; does not round-trip", l, back, err)
				}
			}
		})
	}
}
