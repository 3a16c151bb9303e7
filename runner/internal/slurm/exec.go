package slurm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

var execCommand = exec.CommandContext

// lookPath finds a Slurm command on environ's PATH (not the runner's own
// process environment, so tests and embedders choose which Slurm they talk to).
func lookPath(name string, environ []string) (string, error) {
	path := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH (is this a Slurm login node? the Slurm client commands are needed)", name)
}

// Submit runs `sbatch --parsable script` and returns the array job id.
func Submit(ctx context.Context, run Exec, script string) (string, error) {
	out, err := run(ctx, "sbatch", "--parsable", script)
	if err != nil {
		return "", fmt.Errorf("submit %s: %w", script, err)
	}
	return ParseJobID(out)
}
