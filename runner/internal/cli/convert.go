package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/lmrsfmt"
)

// convertCommand is `runner models convert`: an HF Llama directory to an
// engine's own file format (lmrs for now).
func convertCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:  "convert",
		Usage: "convert an HF Llama directory to an engine's own format (streaming, deterministic)",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "to", Required: true, Usage: "target format: lmrs"},
			&ucli.StringFlag{Name: "model", Aliases: []string{"in"}, Required: true, Usage: "HF Llama model `DIR` to read"},
			&ucli.StringFlag{Name: "out", Required: true, Usage: "`DIR` to create: the model's JSON files and model.lmrs"},
			&ucli.StringFlag{Name: "quant", Value: "q8_0", Usage: "f32, q8_0 or q4_0"},
			&ucli.UintFlag{Name: "group-size", Usage: "values per quantization group (multiple of 16; default 64, else 32 or 16)"},
			&ucli.BoolFlag{Name: "overwrite", Usage: "replace an existing output directory"},
		},
		Action: func(c *ucli.Context) error {
			if c.String("to") != "lmrs" {
				return usageError("--to %q: want lmrs", c.String("to"))
			}
			q, err := lmrsfmt.ParseQuant(c.String("quant"))
			if err != nil {
				return usageError("--quant: %v", err)
			}
			res, err := lmrsfmt.Convert(c.Context, lmrsfmt.Options{
				In: c.String("model"), Out: c.String("out"), Quant: q, GroupSize: uint32(c.Uint("group-size")),
				Overwrite: c.Bool("overwrite"), Progress: e.stderr,
			})
			if err != nil {
				return err
			}
			secs := res.Duration.Seconds()
			fmt.Fprintf(e.stdout, "%s: lmrs v%d %s, group size %d, %.3f GB in %.1fs (%.2f GB/s), crc32 %08x\n", res.Path,
				lmrsfmt.Version, res.Header.Quant, res.Header.GroupSize, float64(res.Bytes)/1e9, secs,
				float64(res.Bytes)/1e9/max(secs, 1e-9), res.CRC)
			return nil
		},
	}
}
