package cli

import (
	"fmt"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/gguf"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

// importCommand is `runner models import`: a GGUF Llama file into the
// Hugging Face directory every engine reads.
func importCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:  "import",
		Usage: "import a GGUF Llama file (F32/F16/BF16, Q4_0..Q8_0, Q2_K..Q6_K; dequantized) as an HF model directory with its tokenizer",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "from", Value: "gguf", Usage: "source format: gguf"},
			&ucli.StringFlag{Name: "in", Required: true, Usage: "the GGUF `FILE` to read"},
			&ucli.StringFlag{Name: "out", Required: true, Usage: "model `DIR` to create"},
			&ucli.StringFlag{Name: "dtype", Value: "f32", Usage: "stored dtype of the dequantized weights: f32, f16 or bf16"},
			&ucli.BoolFlag{Name: "overwrite", Usage: "replace an existing model directory"},
		},
		Action: func(c *ucli.Context) error {
			if c.String("from") != "gguf" {
				return usageError("--from %q: want gguf", c.String("from"))
			}
			dt, err := modelcfg.ParseDType(c.String("dtype"))
			if err != nil {
				return usageError("--dtype: %v", err)
			}
			res, err := gguf.Import(c.Context, gguf.Options{
				In: c.String("in"), Out: c.String("out"), DType: dt, Overwrite: c.Bool("overwrite"), Progress: e.stderr,
			})
			if err != nil {
				return err
			}
			var types []string
			for t, n := range res.Types {
				types = append(types, fmt.Sprintf("%d %s", n, t))
			}
			sort.Strings(types)
			fmt.Fprintf(e.stdout, "%s: %d layers, hidden %d, vocab %d, %d params from %s tensors, %s, %.2f GB in %.1fs\n", res.Dir,
				res.Config.NumHiddenLayers, res.Config.HiddenSize, res.Config.VocabSize, res.Params, strings.Join(types, ", "), dt,
				float64(res.Bytes)/1e9, res.Duration.Seconds())
			return nil
		},
	}
}
