package analysis

import (
	"strings"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/tokenizer"
)

func TestFirstLine(t *testing.T) {
	// The micro tokenizer: ids 0-255 are bytes, 258 "hell", 259 " w".
	tok, err := tokenizer.Load("../tokenizer/testdata/micro")
	if err != nil {
		t.Fatal(err)
	}
	long := make([]int, 200)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name string
		ids  []int
		want string
	}{
		{"first line", []int{258, 'o', 259, 'o', 10, 'x'}, "hello wo"},
		{"skips empty lines", []int{10, ' ', 10, 258, 'o', ' ', 10}, "hello"},
		{"all blank", []int{10, 10}, ""},
		{"cut", long, strings.Repeat("a", FirstLineRunes) + "…"},
		{"undecodable", []int{99999}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstLine(tok, tc.ids); got != tc.want {
				t.Errorf("firstLine(%v) = %q, want %q", tc.ids, got, tc.want)
			}
		})
	}
}
