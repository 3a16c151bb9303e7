package enginetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// TorchPython returns the interpreter the PyTorch-based engines' tests use: $CIB_PYTHON, else the venv
// scripts/setup-torch.sh makes ($CIB_CACHE, default ~/.cache/cib, /torch-venv), checked to import every module
// named (e.g. "torch", "safetensors").
func TorchPython(modules ...string) (string, error) {
	p := os.Getenv("CIB_PYTHON")
	if p == "" {
		cache := os.Getenv("CIB_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "cib")
		}
		p = filepath.Join(cache, "torch-venv", "bin", "python")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("no torch interpreter: CIB_PYTHON unset and %s absent (run scripts/setup-torch.sh)", p)
		}
	}
	if len(modules) > 0 {
		if out, err := exec.Command(p, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s cannot import %s (run scripts/setup-torch.sh): %v\n%s", p, strings.Join(modules, "/"), err, out)
		}
	}
	return p, nil
}
