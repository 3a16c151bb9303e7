// Package stats turns raw benchmark samples into numbers a reader can trust:
// a median with a distribution-free confidence interval, outlier counts,
// A-versus-B comparisons with the launch as the unit (Welch's test on log
// launch medians, a hierarchical bootstrap CI of the ratio, Holm correction;
// Mann-Whitney U and Cliff's delta over pooled iterations as description),
// comparisons blocked by GPU card, launch-level versus iteration-level
// variance, and repetition planning.
//
// Summaries of one sample are non-parametric. Statistical caveats (too few
// samples, outliers, a zero median, excluded NaN values) travel as data in
// the Warnings fields; no function here panics on odd input, and no result
// holds NaN or Inf, so every type encodes to JSON as is.
package stats
