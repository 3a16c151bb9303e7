package stats_test

import (
	"fmt"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

func ExampleSummarize() {
	tpotMs := []float64{12.1, 11.8, 12.5, 13.0, 12.2, 11.9, 12.7, 12.4, 30.0, 12.0, 12.3}
	s := stats.Summarize(tpotMs)
	fmt.Printf("median %.2f ms [%.2f, %.2f] ±%.1f%%, p99 %.2f ms\n", s.Median, s.MedianLo, s.MedianHi, 100*s.CIHalfWidthRel, s.P99)
	fmt.Println(s.Warnings)
	// Output:
	// median 12.30 ms [11.90, 13.00] ±4.5%, p99 28.30 ms
	// [9% outliers (1 of 11 beyond 1.5 IQR, 1 beyond 3 IQR)]
}

func ExampleCompare() {
	// TPOT in ms of timed iterations, one slice per launch.
	a := [][]float64{{10.1, 10.3, 10.2}, {10.4, 10.0, 10.2}, {10.3, 10.1, 10.2}, {10.3, 10.2, 10.1}}
	b := [][]float64{{10.9, 11.2, 11.0}, {11.1, 10.8, 11.0}, {11.3, 11.1, 11.0}, {10.9, 11.2, 11.0}}
	c := stats.Compare(a, b, stats.CompareOptions{Seed: 1})
	noise := stats.Compare(a, a[1:], stats.CompareOptions{Seed: 1})
	stats.AdjustHolm([]*stats.Comparison{&c, &noise})
	fmt.Printf("%s ratio %.3f [%.3f, %.3f] p_adj %.2g delta %.2f (%s)\n", c.Verdict, c.Ratio, c.RatioLo, c.RatioHi, c.PAdj, c.CliffsDelta, c.Magnitude)
	fmt.Println(noise.Verdict)
	// Output:
	// +8.1% ratio 1.081 [1.068, 1.098] p_adj 0.00011 delta 1.00 (large)
	// ~
}
