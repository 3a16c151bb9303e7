package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/conformance"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/synth"
)

func conformanceCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "conformance",
		Usage:     "check that an engine binary speaks the protocol (info, event stream, exact counts, errors)",
		ArgsUsage: "ENGINE[:key=value...]",
		Flags: []ucli.Flag{
			binDirFlag(e),
			&ucli.StringFlag{Name: "model", Usage: "model `DIR` (default: a tiny model synthesized in a temp dir)"},
			&ucli.StringFlag{Name: "device", Value: "cpu"},
			&ucli.StringFlag{Name: "dtype", Value: "f32"},
			&ucli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "per launch"},
		},
		Action: func(c *ucli.Context) error {
			if c.Args().Len() != 1 {
				return usageError("conformance: want one engine name (e.g. runner conformance candle --device cuda:0 --dtype bf16), got %q", c.Args().Slice())
			}
			specs, err := config.ParseEngines(c.Args().First())
			if err != nil || len(specs) != 1 {
				return usageError("conformance: want one engine variant (name or name:key=value), got %q", c.Args().First())
			}
			spec := specs[0]
			name := spec.Spec()
			path, err := e.findEngine(spec.Name, c.String("bin-dir"), c.IsSet("bin-dir"))
			if err != nil {
				return withCode(ExitUsage, err)
			}
			model := c.String("model")
			if model == "" {
				tmp, err := os.MkdirTemp("", "cib-conformance-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				model = filepath.Join(tmp, "tiny")
				if _, err := synth.Write(c.Context, synth.Options{Shape: "tiny", Out: model, DType: modelcfg.F32, Seed: 1}); err != nil {
					return fmt.Errorf("synthesize tiny model: %w", err)
				}
			}
			mc, err := modelcfg.Load(model)
			if err != nil {
				return withCode(ExitUsage, fmt.Errorf("model: %w", err))
			}
			abs, _ := filepath.Abs(model)
			checks := conformance.Run(c.Context, conformance.Options{
				Path: path, Model: abs, Device: c.String("device"), DType: c.String("dtype"), Vocab: mc.VocabSize,
				Threads: spec.Threads, EngineOptions: spec.Options, Env: e.environ, Timeout: c.Duration("timeout"),
			})
			failed := 0
			for _, ch := range checks {
				switch {
				case ch.Skip != "":
					fmt.Fprintf(e.stdout, "SKIP  %s (%s)\n", ch.Name, ch.Skip)
				case ch.Err != nil:
					failed++
					fmt.Fprintf(e.stdout, "FAIL  %s: %v\n", ch.Name, ch.Err)
				default:
					fmt.Fprintf(e.stdout, "PASS  %s\n", ch.Name)
				}
			}
			if failed > 0 {
				return fmt.Errorf("conformance %s: %d of %d checks failed", name, failed, len(checks))
			}
			fmt.Fprintf(e.stdout, "%s (%s) conforms to protocol v1 on %s/%s\n", name, path, c.String("device"), c.String("dtype"))
			return nil
		},
	}
}
