package cli

import (
	"runtime/debug"
	"strings"
)

// version is what `runner --version` prints: the git commit the binary was
// built from (Go records it when building inside a checkout), "-dirty" when
// the tree had uncommitted changes, and the Go version. A commit given in
// CIB_GIT_COMMIT (the GPU bundle carries one) wins.
func version(e *env) string {
	commit, dirty, gov := "unknown", false, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		gov = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if c := e.getenv("CIB_GIT_COMMIT"); c != "" {
		commit, dirty = strings.TrimSuffix(c, "-dirty"), strings.HasSuffix(c, "-dirty")
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if dirty {
		commit += "-dirty"
	}
	return strings.TrimSpace("git " + commit + " " + gov)
}
