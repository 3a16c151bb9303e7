package adapter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// textIter matches candle-bench's and llamacpp-bench's per-iteration lines:
//
//	iter 0: ttft 12.34 ms, decode 56.78 tok/s, e2e 90.12 ms, first ids [...]
//	warmup 1: ttft 12.34 ms, prefill 1037.4 tok/s, decode 56.78 tok/s, ...
var textIter = regexp.MustCompile(`^(iter|warmup) \d+: ttft ([0-9.]+) ms,.* decode ([0-9.]+) tok/s(?:.*first ids \[([0-9, ]*)\])?`)

// parseTextIters reads candle-bench and llamacpp-bench output.
func parseTextIters(out []byte) ([]Iteration, error) {
	var its []Iteration
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := textIter.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ttft, err1 := strconv.ParseFloat(m[2], 64)
		rate, err2 := strconv.ParseFloat(m[3], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad iteration line %q", sc.Text())
		}
		it := Iteration{Warmup: m[1] == "warmup", DecodeTokS: rate, TTFTMs: ttft}
		for _, f := range strings.Split(m[4], ",") {
			if id, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
				it.FirstIDs = append(it.FirstIDs, id)
			}
		}
		its = append(its, it)
	}
	return its, sc.Err()
}

// parseJSONIters reads JSON lines with "warmup", "decode_tok_s" and
// "ttft_ms" per iteration (burn-bench; bench.py --per-iter); other lines
// (burn-bench's and bench.py's summaries) are skipped.
func parseJSONIters(out []byte) ([]Iteration, error) {
	var its []Iteration
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var v struct {
			Iteration  *int     `json:"iteration"`
			Warmup     bool     `json:"warmup"`
			DecodeTokS *float64 `json:"decode_tok_s"`
			TTFTMs     float64  `json:"ttft_ms"`
			FirstIDs   []int    `json:"first_ids"`
		}
		if err := json.Unmarshal(line, &v); err != nil || v.Iteration == nil || v.DecodeTokS == nil {
			continue
		}
		its = append(its, Iteration{Warmup: v.Warmup, DecodeTokS: *v.DecodeTokS, TTFTMs: v.TTFTMs, FirstIDs: v.FirstIDs})
	}
	return its, sc.Err()
}

// parseMistralrs reads `mistralrs native`: one JSON line per timed iteration
// (warm-ups are not printed) with native_decode_tok_s, then summaries.
func parseMistralrs(out []byte) ([]Iteration, error) {
	var its []Iteration
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var v struct {
			Index  *int     `json:"index"`
			Decode *float64 `json:"native_decode_tok_s"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil || v.Index == nil || v.Decode == nil {
			continue
		}
		its = append(its, Iteration{DecodeTokS: *v.Decode})
	}
	return its, sc.Err()
}
