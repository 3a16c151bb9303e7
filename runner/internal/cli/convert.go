package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/ggufw"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/lmrsfmt"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

// convertCommand is `runner models convert`: an HF Llama directory to an
// engine's own file format (lmrs, or GGUF for llama.cpp).
func convertCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:  "convert",
		Usage: "convert an HF Llama directory to an engine's own format: lmrs (lm.rs) or gguf (llama.cpp); streaming, deterministic",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "to", Required: true, Usage: "target format: lmrs or gguf"},
			&ucli.StringFlag{Name: "model", Aliases: []string{"in"}, Required: true, Usage: "HF Llama model `DIR` to read"},
			&ucli.StringFlag{Name: "out", Required: true, Usage: "lmrs: `PATH` of the directory to create (the model's JSON files and model.lmrs); gguf: the .gguf file to write"},
			&ucli.StringFlag{Name: "quant", Value: "q8_0", Usage: "lmrs weight storage: f32, q8_0 or q4_0"},
			&ucli.UintFlag{Name: "group-size", Usage: "lmrs values per quantization group (multiple of 16; default 64, else 32 or 16)"},
			&ucli.StringFlag{Name: "type", Value: "f16", Usage: "gguf storage of the 2-D weights: f32, f16, bf16, q8_0 or q4_k (norms stay f32, as llama.cpp's converter keeps them)"},
			&ucli.BoolFlag{Name: "overwrite", Usage: "replace an existing output"},
		},
		Action: func(c *ucli.Context) error {
			switch c.String("to") {
			case "lmrs":
				if c.IsSet("type") {
					return usageError("--type is for --to gguf; lmrs takes --quant")
				}
				return convertLmrs(c, e)
			case "gguf":
				for _, f := range []string{"quant", "group-size"} {
					if c.IsSet(f) {
						return usageError("--%s is for --to lmrs; gguf takes --type", f)
					}
				}
				return convertGGUF(c, e)
			}
			return usageError("--to %q: want lmrs or gguf", c.String("to"))
		},
	}
}

func convertLmrs(c *ucli.Context, e *env) error {
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
}

func convertGGUF(c *ucli.Context, e *env) error {
	typ, err := ggufw.ParseType(c.String("type"))
	if err != nil {
		return usageError("--type: %v", err)
	}
	in, out := c.String("model"), c.String("out")
	// The runner's own reading of the directory first, so that what
	// `runner models convert` accepts is what every other command accepts.
	if _, err := modelcfg.Load(in); err != nil {
		return fmt.Errorf("convert %s to gguf: %w", in, err)
	}
	if fi, err := os.Stat(out); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("convert %s to gguf: --out %s is a directory; want the .gguf file to write", in, out)
		}
		if !c.Bool("overwrite") {
			return fmt.Errorf("convert %s to gguf: %s exists (pass --overwrite to replace it)", in, out)
		}
	}
	res, err := ggufw.ConvertHF(c.Context, in, out, typ, ggufw.Options{Progress: e.stderr})
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	var types []string
	for _, t := range slices.Sorted(func(yield func(ggufw.Type) bool) {
		for t := range res.Tensors {
			if !yield(t) {
				return
			}
		}
	}) {
		types = append(types, fmt.Sprintf("%d %s", res.Tensors[t], t))
	}
	secs := res.Duration.Seconds()
	fmt.Fprintf(e.stdout, "%s: gguf v%d %s (tensors: %s), %d params, %.3f GB in %.1fs (%.1f M params/s)\n", res.Path, ggufw.Version,
		typ, strings.Join(types, ", "), res.Params, float64(res.Bytes)/1e9, secs, float64(res.Params)/1e6/max(secs, 1e-9))
	return nil
}
