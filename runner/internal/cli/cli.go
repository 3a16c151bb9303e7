// Package cli is the runner's command line.
package cli

import (
	"context"
	"io"
)

// Run executes the runner command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	return 0
}
