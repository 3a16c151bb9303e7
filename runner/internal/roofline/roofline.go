// Package roofline bounds decode speed by memory bandwidth: at small batch a
// decode step reads every weight once, so tokens/s cannot exceed bandwidth /
// weight bytes per token. It also measures the bandwidth (Probe) and caches
// the figure per GPU UUID.
package roofline

// Limit returns the weight-bound decode rate in tokens/s: batch sequences each
// gain one token per step, and a step reads weightBytesPerToken bytes at
// bytesPerSec. KV-cache and activation traffic are not counted, so the bound is
// optimistic for long contexts. It returns 0 when an input is not positive.
// Llama-3-8B in bf16 (15.01e9 bytes) at 3009e9 bytes/s gives 200.5 tok/s.
func Limit(weightBytesPerToken int64, bytesPerSec float64, batch int) float64 {
	if weightBytesPerToken <= 0 || bytesPerSec <= 0 || batch <= 0 {
		return 0
	}
	return bytesPerSec / float64(weightBytesPerToken) * float64(batch)
}

// Percent returns measured tokens/s as a percentage of limit, or 0 when the
// limit is unknown.
func Percent(measuredTokPerSec, limit float64) float64 {
	if limit <= 0 {
		return 0
	}
	return measuredTokPerSec / limit * 100
}

// Bound is the roofline at one bandwidth.
type Bound struct {
	// BytesPerSec is the memory bandwidth used, in bytes/s; 0 when unknown.
	BytesPerSec float64 `json:"bandwidth_bytes_per_s"`
	// LimitTokPerSec is Limit at that bandwidth, in tokens/s.
	LimitTokPerSec float64 `json:"limit_tok_per_s"`
	// PercentOfLimit is the measured decode rate as a % of LimitTokPerSec.
	PercentOfLimit float64 `json:"percent_of_limit"`
}

// Row is a report's roofline column for one run: the measured decode rate
// against the theoretical (datasheet) and measured (probe) bandwidth.
type Row struct {
	WeightBytesPerToken int64   `json:"weight_bytes_per_token"`
	Batch               int     `json:"batch"`
	DecodeTokPerSec     float64 `json:"decode_tok_per_s"`
	Theoretical         Bound   `json:"theoretical"`
	Measured            Bound   `json:"measured"`
}

// Compute fills a Row. theoretical and measured are bandwidths in bytes/s,
// either 0 when unknown.
func Compute(weightBytesPerToken int64, batch int, decodeTokPerSec, theoretical, measured float64) Row {
	bound := func(bw float64) Bound {
		l := Limit(weightBytesPerToken, bw, batch)
		return Bound{BytesPerSec: bw, LimitTokPerSec: l, PercentOfLimit: Percent(decodeTokPerSec, l)}
	}
	return Row{
		WeightBytesPerToken: weightBytesPerToken, Batch: batch, DecodeTokPerSec: decodeTokPerSec,
		Theoretical: bound(theoretical), Measured: bound(measured),
	}
}
