// Package engine finds engine binaries and describes them.
package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Known lists the engines this repository builds, with how to build each.
var Known = map[string]string{
	"reference": "go build -o bin/ ./engines/reference",
	"pytorch":   "go build -o bin/ ./engines/pytorch (needs python3 with torch + transformers: scripts/setup-torch.sh)",
	"candle":    "scripts/build-candle.sh",
	"burn":      "scripts/build-burn.sh",
	"mistralrs": "scripts/build-mistralrs.sh",
	"lmrs":      "scripts/build-lmrs.sh",
	"libtorch":  "scripts/build-libtorch.sh",
	"llamacpp":  "scripts/build-llamacpp.sh",
}

// NotFoundError says where a binary was looked for.
type NotFoundError struct {
	Name   string
	Looked []string
}

func (e *NotFoundError) Error() string {
	how, ok := Known[e.Name]
	if !ok {
		how = fmt.Sprintf("unknown engine; known engines: %s", strings.Join(KnownNames(), ", "))
	} else {
		how = "build it with: " + how
	}
	return fmt.Sprintf("engine %q not found (looked in %s); %s", e.Name, strings.Join(e.Looked, ", "), how)
}

// KnownNames returns the names of the engines this repository builds, sorted.
func KnownNames() []string {
	out := make([]string, 0, len(Known))
	for k := range Known {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Find returns the binary for engine name: binDir/name first (as an absolute
// path), then cib-name on PATH (pathEnv is the PATH value, passed in for
// hermetic tests).
func Find(name, binDir, pathEnv string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("engine name %q: must be a plain name", name)
	}
	var looked []string
	if binDir != "" {
		p := filepath.Join(binDir, name)
		looked = append(looked, p)
		if isExec(p) {
			// Absolute: exec looks a slash-less path ("--bin-dir ." gives
			// "reference") up on PATH instead.
			abs, err := filepath.Abs(p)
			if err != nil {
				return "", fmt.Errorf("engine %s: %w", name, err)
			}
			return abs, nil
		}
	}
	for _, cand := range []string{"cib-" + name} {
		for _, dir := range filepath.SplitList(pathEnv) {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, cand)
			if isExec(p) {
				return p, nil
			}
		}
		looked = append(looked, "PATH ("+cand+")")
	}
	return "", &NotFoundError{Name: name, Looked: looked}
}

// List returns the engine binaries in binDir (executables whose name is a
// known engine), sorted.
func List(binDir string) ([]string, error) {
	ents, err := os.ReadDir(binDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list engines in %s: %w", binDir, err)
	}
	var out []string
	for _, e := range ents {
		if _, ok := Known[e.Name()]; ok && isExec(filepath.Join(binDir, e.Name())) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	if err != nil || st.IsDir() {
		return false
	}
	return st.Mode()&0o111 != 0
}
