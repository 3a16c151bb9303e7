package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestModelsImport drives `runner models import` on the gguf package's
// micro fixture, and its errors.
func TestModelsImport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "micro")
	r := run(t, t.Context(), "models", "import", "--in", "../gguf/testdata/micro.gguf", "--out", out)
	if r.code != 0 {
		t.Fatalf("models import: exit %d, stderr %s", r.code, r.stderr)
	}
	if want := "1 layers, hidden 32, vocab 262, 17696 params from 1 Q8_0, 10 F32 tensors, f32"; !strings.Contains(r.stdout, want) {
		t.Errorf("models import stdout = %q, want it to contain %q", r.stdout, want)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("models import wrote no %s: %v", f, err)
		}
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"exists", []string{"--in", "../gguf/testdata/micro.gguf", "--out", out}, 1, "exists and is not empty (overwrite to replace it)"},
		{"not llama", []string{"--in", "../gguf/testdata/dequant.gguf", "--out", out + "2"}, 1, `architecture "test" not supported (want llama)`},
		{"bad dtype", []string{"--in", "x.gguf", "--out", out, "--dtype", "q4"}, 2, "--dtype"},
		{"bad source", []string{"--from", "onnx", "--in", "x", "--out", out}, 2, `--from "onnx": want gguf`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, t.Context(), append([]string{"models", "import"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("models import %v: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
}
