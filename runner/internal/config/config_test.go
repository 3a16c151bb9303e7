package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSmoke(t *testing.T) {
	c, err := Parse(Smoke)
	require.NoError(t, err)
	require.Equal(t, "smoke", c.Name)
	require.Len(t, c.Engines, 2)
	require.Equal(t, "reference:threads=1", c.Engines[0].DisplayLabel())
	require.Equal(t, 1, c.Cases[0].BatchSize, "batch size defaults to 1")
	require.Equal(t, "f32", c.Synth.DType)
}

func TestParseErrors(t *testing.T) {
	base := "model: m\ncases: [{name: a, prompt_len: 4, max_new_tokens: 2}]\n"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", []string{"empty config"}},
		{"not yaml", "model: [", []string{"parse"}},
		{"unknown field", base + "iteratoins: 3\n", []string{"field iteratoins not found"}},
		{"unknown nested field", "model: m\ncases: [{name: a, prompt_len: 4, max_new_tokens: 2, temperature: 0.7}]\n", []string{"field temperature not found"}},
		{"wrong type", base + "launches: many\n", []string{"cannot unmarshal"}},
		{"two documents", base + "---\nmodel: n\n", []string{"more than one YAML document"}},
		{"no model", "cases: [{name: a, prompt_len: 4, max_new_tokens: 2}]\n", []string{"model: required"}},
		{"no cases", "model: m\n", []string{"cases: at least one"}},
		{"bad device and dtype", base + "device: gpu0\ndtype: int4\n", []string{`device: "gpu0"`, `dtype: "int4"`}},
		{"duplicate case", "model: m\ncases: [{name: a, prompt_len: 4, max_new_tokens: 2}, {name: a, prompt_len: 4, max_new_tokens: 2}]\n", []string{`cases[1].name: "a" used twice`}},
		{"both prompts", "model: m\ncases: [{name: a, prompt_len: 4, prompt_tokens: [1], max_new_tokens: 2}]\n", []string{"not both"}},
		{"negative id", "model: m\ncases: [{name: a, prompt_tokens: [1, -2], max_new_tokens: 2}]\n", []string{"prompt_tokens[1]: negative id -2"}},
		{"bad duration", base + "timeouts: {start: soon}\n", []string{`duration "soon"`}},
		{"negative duration", base + "timeouts: {stall: -5s}\n", []string{"negative"}},
		{"bad adaptive", base + "adaptive: {target_rel_ci: 5}\n", []string{"adaptive.target_rel_ci: 5"}},
		{"duplicate label", base + "engines: [{name: reference}, {name: reference}]\n", []string{`label "reference" used twice`}},
		{"negative counts", base + "warmup: -1\niterations: -2\nlaunches: -1\n", []string{"warmup: -1", "iterations: -2", "launches: -1"}},
		{"synth without shape", base + "synth: {dtype: bf16}\n", []string{"synth.shape: required"}},
		{"equivalence margin of 150%", base + "equivalence: 1.5\n", []string{"equivalence: 1.5: want a relative margin in [0, 1)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestParseEngines(t *testing.T) {
	tests := []struct {
		in      string
		labels  []string
		wantErr string
	}{
		{in: "candle,burn,pytorch", labels: []string{"candle", "burn", "pytorch"}},
		{in: "reference:threads=1, reference:threads=2", labels: []string{"reference:threads=1", "reference:threads=2"}},
		{in: "pytorch:mode=compiled:attn=sdpa", labels: []string{"pytorch:attn=sdpa:mode=compiled"}},
		{in: "", wantErr: "no engine named"},
		{in: ":x=1", wantErr: "empty name"},
		{in: "reference:threads=0", wantErr: "not a positive integer"},
		{in: "reference:threads=2x", wantErr: "not a positive integer"},
		{in: "reference:fast", wantErr: "not key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			specs, err := ParseEngines(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, s := range specs {
				got = append(got, s.DisplayLabel())
			}
			require.Equal(t, tt.labels, got)
		})
	}
}

// FuzzParse checks the config parser never panics and that what it accepts
// validates.
func FuzzParse(f *testing.F) {
	f.Add(string(Smoke))
	f.Add("model: m\ncases: [{name: a, prompt_len: 4, max_new_tokens: 2}]\n")
	f.Add("model: m\nadaptive: {target_rel_ci: 0.02, max_duration: 5m}\ntimeouts: {start: 1s}\n")
	f.Add("model: [")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse([]byte(in))
		if err != nil {
			if strings.Contains(err.Error(), "panic") {
				t.Fatalf("Parse error mentions a panic: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
	})
}
