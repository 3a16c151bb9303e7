// Package cli is the runner's command line (urfave/cli/v2). Run is the whole
// program: main is a shim around it, so tests drive every command in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/engine"
)

// Exit codes, mapped in one place.
const (
	ExitOK         = 0
	ExitError      = 1
	ExitUsage      = 2
	ExitRunsFailed = 3
	// ExitOutsideTolerance: runner adapter found the runner's figure outside
	// the tolerance around the native tool's.
	ExitOutsideTolerance = 4
	ExitInterrupted      = 130
)

// exitError carries an exit code through urfave/cli.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// usageError marks a mistake in the command line or config.
func usageError(format string, a ...any) error { return withCode(ExitUsage, fmt.Errorf(format, a...)) }

// env is the process environment handed to Run, so nothing below reads
// globals.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
	args           []string
	// exeDir is the directory of the runner binary: engines built next to
	// it are found there when --bin-dir and CIB_BIN_DIR are not given.
	exeDir string
	// cell, when set, makes a benchmark one cell of a suite (suite.go).
	cell *suiteCell
}

// findEngine finds an engine binary in binDir, then on PATH (cib-NAME), then
// next to the runner binary unless the user named a bin dir.
func (e *env) findEngine(name, binDir string, binDirGiven bool) (string, error) {
	path, err := engine.Find(name, binDir, e.getenv("PATH"))
	if err == nil || binDirGiven || e.getenv("CIB_BIN_DIR") != "" || e.exeDir == "" {
		return path, err
	}
	if p, err2 := engine.Find(name, e.exeDir, ""); err2 == nil {
		return p, nil
	}
	return path, err
}

func (e *env) getenv(key string) string {
	for i := len(e.environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(e.environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Run executes the runner command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, environ: environ, args: args}
	if exe, err := os.Executable(); err == nil {
		e.exeDir = filepath.Dir(exe)
	}
	app := newApp(e)
	err := app.RunContext(ctx, flagsFirst(args, valueFlags(app.Commands)))
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "runner: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if ctx.Err() != nil {
		return ExitInterrupted
	}
	if strings.Contains(err.Error(), "flag provided but not defined") || strings.Contains(err.Error(), "Required flag") {
		return ExitUsage
	}
	return ExitError
}

func newApp(e *env) *ucli.App {
	app := &ucli.App{
		Name:  "runner",
		Usage: "benchmark LLM inference engines fairly: fresh processes, same workload, raw per-token timestamps, real statistics",
		Description: "With no command, runs a benchmark: --config FILE (default: the embedded smoke config, a tiny generated\n" +
			"model on CPU) and --engines a,b (variants as name:key=value, e.g. reference:threads=2, pytorch:mode=compiled).",
		Version:              version(e),
		UsageText:            "runner [flags]                 (a benchmark; see the flags below)\n   runner --engines reference:threads=1,reference:threads=2 --prompt-len 64,128 --new-tokens 32\n   runner --config configs/decode.yaml --format json | jq '.cases[0].comparisons'\n   runner COMMAND [flags] [args]  (runner help COMMAND)",
		EnableBashCompletion: true,
		Reader:               e.stdin,
		Writer:               e.stdout,
		ErrWriter:            e.stderr,
		HideHelpCommand:      false,
		Flags:                benchFlags(e),
		Action:               func(c *ucli.Context) error { return benchCmd(c, e) },
		Commands: []*ucli.Command{
			{
				Name:   "bench",
				Usage:  "run a benchmark (the same as running runner with no command)",
				Flags:  benchFlags(e),
				Action: func(c *ucli.Context) error { return benchCmd(c, e) },
			},
			enginesCommand(e),
			modelsCommand(e),
			compareCommand(e),
			reportCommand(e),
			conformanceCommand(e),
			gpuCommand(e),
			cpuCommand(e),
			slurmCommand(e),
			suiteCommand(e),
			adapterCommand(e),
			observerCommand(e),
		},
		ExitErrHandler: func(*ucli.Context, error) {}, // exit codes are mapped in Run
	}
	addExamples(app.Commands, "runner")
	return app
}

// examples are shown under each command's usage line in its help.
var examples = map[string]string{
	"runner bench":          "runner bench --engines pytorch:mode=eager,pytorch:mode=compiled --config configs/decode-tinyllama.yaml",
	"runner engines":        "runner engines --bin-dir bin --json",
	"runner models synth":   "runner models synth --shape tinyllama-1.1b --dtype bf16 --out models/tinyllama-1.1b",
	"runner models convert": "runner models convert --to lmrs --quant q8_0 --model models/tinyllama-1.1b --out models/tinyllama-lmrs",
	"runner models import":  "runner models import --in SmolLM2-135M-Instruct.Q4_1.gguf --out models/smollm2",
	"runner compare":        "runner compare results/20261201-230814-decode results/20261202-101500-decode",
	"runner report":         "runner report --format json results/20261201-230814-decode | jq '.cases[0].comparisons'",
	"runner conformance":    "runner conformance candle --device cuda:0 --dtype bf16",
	"runner gpu info":       "runner gpu info",
	"runner adapter": "runner adapter candle --model models/tinyllama-1.1b --bin-dir bin   (cuda:0, bf16, p128-n256, 2 rounds)\n   " +
		"runner adapter burn:attention=padded --model models/llama-3-8b --rounds 3\n   " +
		"runner adapter llamacpp --model models/tiny --device cpu --dtype f32 --new-tokens 32 --iterations 3",
	"runner observer": "runner observer mistralrs --model models/tinyllama-1.1b --modes off,default,10ms,p10ms --rounds 3\n   " +
		"runner observer reference --model models/tiny --device cpu --dtype f32 --modes off,100ms --new-tokens 8",
	"runner gpu probe": "runner gpu probe",
	"runner cpu probe": "runner cpu probe --threads 16",
	"runner suite": "runner suite configs/suite-cpu.yaml --bin-dir bin\n   " +
		"runner suite configs/suite-h200.yaml --stop-after 8m          (a time budget; then, until it exits 0:)\n   " +
		"runner suite --resume results/20261202-025500-suite-h200 --stop-after 8m",
}

// addExamples appends each command's example to its usage text.
func addExamples(cmds []*ucli.Command, parent string) {
	for _, c := range cmds {
		path := parent + " " + c.Name
		if ex, ok := examples[path]; ok && c.UsageText == "" {
			usage := path + " [flags]"
			if c.ArgsUsage != "" {
				usage += " " + c.ArgsUsage
			}
			c.UsageText = usage + "\n\nEXAMPLE:\n   " + ex
		}
		addExamples(c.Subcommands, path)
	}
}

// valueFlags are the flags of every command that take a separate value
// (all but the boolean ones), as the command line spells them: derived from
// the app, so a new flag cannot be left out (2026-12-02: a hand-kept list
// lacked --max-cells, and `runner suite CONFIG --max-cells 1` read CONFIG as
// its value).
func valueFlags(cmds []*ucli.Command) map[string]bool {
	out := map[string]bool{}
	var walk func([]*ucli.Command)
	walk = func(cs []*ucli.Command) {
		for _, c := range cs {
			for _, f := range c.Flags {
				if _, isBool := f.(*ucli.BoolFlag); isBool {
					continue
				}
				for _, n := range f.Names() {
					if len(n) == 1 {
						out["-"+n] = true
					} else {
						out["--"+n] = true
					}
				}
			}
			walk(c.Subcommands)
		}
	}
	walk(cmds)
	return out
}

// argsLast are the commands whose flags may follow their arguments.
var argsLast = map[string]bool{"conformance": true, "report": true, "compare": true, "suite": true, "status": true, "resubmit": true, "adapter": true, "observer": true} // status, resubmit: runner slurm

// flagsFirst lets `runner conformance ENGINE --device cuda:0` and `runner
// report DIR --format json` work as users type them: urfave/cli v2 stops
// reading flags at the first argument, so the arguments are moved after the
// command's flags.
func flagsFirst(args []string, valueFlags map[string]bool) []string {
	i := 0
	for i < len(args) && !argsLast[args[i]] {
		i++
	}
	if i == len(args) {
		return args
	}
	var flags, names []string
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--":
			names = append(names, args[j:]...)
			j = len(args)
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
			if valueFlags[a] && j+1 < len(args) {
				flags = append(flags, args[j+1])
				j++
			}
		default:
			names = append(names, a)
		}
	}
	out := append([]string{}, args[:i+1]...)
	return append(append(out, flags...), names...)
}
