package cli

import (
	"encoding/json"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/cpuprobe"
)

// cpuCommand is `runner cpu`: facts about the host CPU that CPU engines are
// measured against.
func cpuCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:  "cpu",
		Usage: "the host CPU",
		Subcommands: []*ucli.Command{{
			Name:  "probe",
			Usage: "measure the host's memory bandwidth (read and copy), the roofline of CPU decoding",
			Flags: []ucli.Flag{
				&ucli.IntFlag{Name: "threads", Usage: "threads streaming the buffer (default: every core)"},
				&ucli.Int64Flag{Name: "bytes", Value: cpuprobe.DefaultBytes, Usage: "buffer size"},
				&ucli.IntFlag{Name: "iters", Value: cpuprobe.DefaultIters},
				&ucli.IntFlag{Name: "warmup", Value: cpuprobe.DefaultWarmup},
				&ucli.BoolFlag{Name: "json", Usage: "print the measurement as JSON"},
			},
			Action: func(c *ucli.Context) error {
				m, err := cpuprobe.Probe(c.Context, cpuprobe.Options{Threads: c.Int("threads"), Bytes: c.Int64("bytes"),
					Iters: c.Int("iters"), Warmup: c.Int("warmup")})
				if err != nil {
					return err
				}
				if c.Bool("json") {
					b, _ := json.MarshalIndent(m, "", "  ")
					fmt.Fprintf(e.stdout, "%s\n", b)
					return nil
				}
				fmt.Fprintf(e.stdout, "cpu memory bandwidth, %d threads, %.2f GB buffer: read %.1f GB/s (passes %.1f–%.1f ms), copy %.1f GB/s (read+write)\n",
					m.Threads, float64(m.Bytes)/1e9, m.ReadBytesPerSec/1e9, m.ReadMinMs, m.ReadMaxMs, m.CopyBytesPerSec/1e9)
				return nil
			},
		}},
	}
}
