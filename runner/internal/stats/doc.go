// Package stats turns raw benchmark samples into numbers a reader can trust:
// a median with a distribution-free confidence interval, outlier counts,
// A-versus-B comparisons (ratio of medians with a bootstrap interval,
// Mann-Whitney U, Cliff's delta, Holm correction), launch-level versus
// iteration-level variance, and an adaptive stopping rule.
//
// Everything is non-parametric by default. Statistical caveats (too few
// samples, outliers, a zero median, excluded NaN values) travel as data in
// the Warnings fields; no function here panics on odd input, and no result
// holds NaN or Inf, so every type encodes to JSON as is.
package stats
