package stats

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLaunchVariance(t *testing.T) {
	// Reference in numpy, for groups gs (each np.asarray(g, float)):
	// k = len(gs); N = sum(len(g) for g in gs); m = np.concatenate(gs).mean()
	// ssb = sum(len(g)*(g.mean()-m)**2 for g in gs); ssw = sum(((g-g.mean())**2).sum() for g in gs)
	// msb = ssb/(k-1); msw = ssw/(N-k); n0 = (N - sum(len(g)**2 for g in gs)/N)/(k-1)
	// between = max(0, (msb-msw)/n0); icc = between/(between+msw)
	// f = st.f_oneway(*gs)  # F statistic and p-value
	tests := []struct {
		name                       string
		groups                     [][]float64
		launches, samples          int
		between, within, icc, f, p float64
		warning                    string
	}{
		{
			// -> between 0.1311654846335697 within 0.016518518518518543 icc 0.8881495749982656
			//    F 32.10033632286988 p 8.012600120027589e-05
			name:     "launches differ, unbalanced",
			groups:   [][]float64{{10.1, 10.3, 10.2, 10.4}, {11.0, 11.2, 10.9}, {10.6, 10.5, 10.8, 10.7, 10.6}},
			launches: 3, samples: 12,
			between: 0.1311654846335697, within: 0.016518518518518543, icc: 0.8881495749982656,
			f: 32.10033632286988, p: 8.012600120027589e-05,
			warning: "3 launches: between-launch variance is a rough estimate",
		},
		{
			// -> between 0.0 within 1.8541666666666667 icc 0.0 F 0.011235955056179777 p 0.9888407802639599
			name:     "no launch effect",
			groups:   [][]float64{{1, 2, 3, 4}, {2, 3, 4, 1}, {3, 1, 2, 4.5}},
			launches: 3, samples: 12,
			between: 0, within: 1.8541666666666667, icc: 0,
			f: 0.011235955056179777, p: 0.9888407802639599,
			warning: "between-launch variance estimate negative",
		},
		{
			// Same as "launches differ" shifted by 1e9: the result must not lose precision.
			name:     "large offset",
			groups:   [][]float64{{1e9 + 10.1, 1e9 + 10.3, 1e9 + 10.2, 1e9 + 10.4}, {1e9 + 11.0, 1e9 + 11.2, 1e9 + 10.9}, {1e9 + 10.6, 1e9 + 10.5, 1e9 + 10.8, 1e9 + 10.7, 1e9 + 10.6}},
			launches: 3, samples: 12,
			between: 0.1311654846335697, within: 0.016518518518518543, icc: 0.8881495749982656,
			f: 32.10033632286988, p: 8.012600120027589e-05,
		},
		{name: "no groups", warning: "no samples"},
		{name: "one launch", groups: [][]float64{{1, 2, 3}}, launches: 1, samples: 3, within: 1, warning: "1 launch"},
		{
			name: "one sample per launch", groups: [][]float64{{1}, {3}}, launches: 2, samples: 2,
			between: 2, icc: 1, warning: "within-launch variance not available",
		},
		{
			name: "empty group and NaN skipped", groups: [][]float64{{}, {1, 2, 3, math.NaN()}}, launches: 1, samples: 3,
			within: 1, warning: "1 empty launch(es) skipped",
		},
		{
			name: "constant", groups: [][]float64{{5, 5}, {5, 5}}, launches: 2, samples: 4, p: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := LaunchVariance(tt.groups)
			assert.Equal(t, tt.launches, v.Launches, "LaunchVariance(%v).Launches", tt.groups)
			assert.Equal(t, tt.samples, v.Samples, "LaunchVariance(%v).Samples", tt.groups)
			tol := 1e-9
			if tt.name == "large offset" {
				tol = 1e-5
			}
			for _, c := range []struct {
				field     string
				got, want float64
			}{
				{"BetweenLaunch", v.BetweenLaunch, tt.between}, {"WithinLaunch", v.WithinLaunch, tt.within},
				{"ICC", v.ICC, tt.icc}, {"F", v.F, tt.f},
			} {
				if !near(c.got, c.want, tol) {
					t.Errorf("LaunchVariance(%v).%s = %v, want %v", tt.groups, c.field, c.got, c.want)
				}
			}
			if !relNear(v.P, tt.p, tol) {
				t.Errorf("LaunchVariance(%v).P = %v, want %v", tt.groups, v.P, tt.p)
			}
			if tt.warning != "" && !hasWarning(v.Warnings, tt.warning) {
				t.Errorf("LaunchVariance(%v).Warnings = %q, want one containing %q", tt.groups, v.Warnings, tt.warning)
			}
			_, err := json.Marshal(v)
			require.NoError(t, err, "json.Marshal(LaunchVariance(%v))", tt.groups)
		})
	}
}

// relNear reports whether got is within relative tolerance tol of want,
// however small want is.
func relNear(got, want, tol float64) bool {
	return got == want || math.Abs(got-want) <= tol*math.Abs(want)
}

func TestFSF(t *testing.T) {
	tests := []struct {
		f, d1, d2, want float64
	}{
		// st.f.sf(32.10033632286988, 2, 9) -> 8.012600120027589e-05
		{32.10033632286988, 2, 9, 8.012600120027589e-05},
		// st.f.sf(1.0, 5, 20) -> 0.44302518468487945
		{1.0, 5, 20, 0.44302518468487945},
		// st.f.sf(3.5, 1, 1000) -> 0.061660706728321024
		{3.5, 1, 1000, 0.061660706728321024},
		{0, 3, 4, 1},
	}
	for _, tt := range tests {
		if got := fSF(tt.f, tt.d1, tt.d2); !relNear(got, tt.want, 1e-10) {
			t.Errorf("fSF(%v, %v, %v) = %v, want %v", tt.f, tt.d1, tt.d2, got, tt.want)
		}
	}
}
