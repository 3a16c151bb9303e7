package report_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/report"
)

// TestHTMLInBrowser renders report.html (the golden summary with GPU
// figures) in headless Chromium: the page must load with no console errors
// and the screenshot must not be blank — it must hold the engines' chart
// colours. Skipped with a message when no Chromium is installed (CI installs
// Debian's chromium package).
func TestHTMLInBrowser(t *testing.T) {
	browser := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no Chromium on PATH (apt-get install chromium): report.html not rendered in a browser")
	}
	var page bytes.Buffer
	require.NoError(t, report.HTML(&page, summaryWith(t, true)))
	dir := t.TempDir()
	html := filepath.Join(dir, "report.html")
	shot := filepath.Join(dir, "shot.png")
	require.NoError(t, os.WriteFile(html, page.Bytes(), 0o644))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0",
		"--window-size=1200,1600", "--screenshot="+shot, "file://"+html)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "chromium: %s", stderr.String())
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("console message rendering report.html: %s", line)
		}
	}
	f, err := os.Open(shot)
	require.NoError(t, err, "screenshot: %s", stderr.String())
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	b := img.Bounds()
	require.Greater(t, b.Dx(), 800)
	var ink, engineBlue int
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r < 200 || g < 200 || bl < 200 {
				ink++
			}
			if near8(r, 0x00) && near8(g, 0x72) && near8(bl, 0xB2) { // the first engine's colour (palette[0])
				engineBlue++
			}
		}
	}
	total := (b.Dx() / 2) * (b.Dy() / 2)
	if ink < total/100 {
		t.Errorf("screenshot looks blank: %d of %d sampled pixels not white", ink, total)
	}
	if engineBlue == 0 {
		t.Errorf("screenshot has no pixel of the first engine's chart colour #0072B2: charts not drawn?")
	}
}

func near8(v, want uint32) bool { return v+12 >= want && v <= want+12 }
