//go:build !cgo

package telemetry

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOpenNVMLWithoutCgo(t *testing.T) {
	tel, err := OpenNVML("")
	assert.Nil(t, tel)
	assert.True(t, errors.Is(err, ErrUnavailable), "errors.Is(%v, ErrUnavailable) = false", err)
	assert.EqualError(t, err, "telemetry off: runner built without cgo (CGO_ENABLED=0); NVML needs a cgo build")
}
