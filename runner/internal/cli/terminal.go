package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/report"
)

// ANSI styles for the verdict lines on a terminal.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiGreen  = "\x1b[32m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
)

// isTerminal is true when w is a terminal (and TERM is not "dumb").
func isTerminal(w io.Writer, e *env) bool {
	if e.getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// useColour is true on a terminal unless NO_COLOR (no-color.org) is set.
func useColour(w io.Writer, e *env) bool {
	return e.getenv("NO_COLOR") == "" && isTerminal(w, e)
}

// printHeadlines ends the terminal output with the verdicts in words: green
// where the engine is significantly better than the baseline, red where
// worse, yellow where both.
func printHeadlines(w io.Writer, s *analysis.Summary, colour bool) {
	hs := report.Headlines(s)
	if len(hs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nverdicts (vs %s, launch-level, 95%%):\n", s.Baseline)
	for _, h := range hs {
		text := h.Text
		if !colour {
			fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(text, "**", ""))
			continue
		}
		c := ""
		switch {
		case h.Better > 0 && h.Worse == 0:
			c = ansiGreen
		case h.Worse > 0 && h.Better == 0:
			c = ansiRed
		case h.Better > 0:
			c = ansiYellow
		}
		// **bold** spans keep the line's colour.
		var b strings.Builder
		for i, part := range strings.Split(text, "**") {
			if i%2 == 1 {
				b.WriteString(ansiBold + c + part + ansiReset + c)
			} else {
				b.WriteString(part)
			}
		}
		fmt.Fprintf(w, "  %s%s%s\n", c, b.String(), ansiReset)
	}
}
