package envinfo

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCollectGitCommit: an explicit build commit (CIB_GIT_COMMIT) wins over the
// working directory's git; without one, a directory outside git records none.
func TestCollectGitCommit(t *testing.T) {
	e := Collect(t.Context(), []string{"runner"}, t.TempDir(), "0123abcd-dirty")
	assert.Equal(t, "0123abcd", e.GitCommit)
	assert.True(t, e.GitDirty)

	e = Collect(t.Context(), []string{"runner"}, t.TempDir(), "0123abcd")
	assert.Equal(t, "0123abcd", e.GitCommit)
	assert.False(t, e.GitDirty)

	e = Collect(t.Context(), []string{"runner"}, t.TempDir(), "")
	assert.Empty(t, e.GitCommit)
	assert.Equal(t, []string{"runner"}, e.Command)
	assert.Positive(t, e.CPUs)
}
