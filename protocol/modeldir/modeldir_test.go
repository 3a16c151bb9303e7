package modeldir

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// hdrJSON is every test shard's safetensors header.
const hdrJSON = `{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`

// shard writes a safetensors-shaped file: an 8-byte header length, the JSON
// header and n data bytes (i*7 mod 251).
func shard(t *testing.T, path string, n int) {
	t.Helper()
	hdr := []byte(hdrJSON)
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	for i := range n {
		b = append(b, byte(i*7%251))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func model(t *testing.T, n int) string {
	t.Helper()
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "config.json"), []byte(`{"hidden_size": 8}`), 0o644); err != nil {
		t.Fatal(err)
	}
	shard(t, filepath.Join(d, "model-00001-of-00002.safetensors"), n)
	shard(t, filepath.Join(d, "model-00002-of-00002.safetensors"), n/2)
	return d
}

func fingerprint(t *testing.T, d string) string {
	t.Helper()
	fp, err := Fingerprint(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(fp) != 64 {
		t.Fatalf("fingerprint %q: want 64 hex digits", fp)
	}
	return fp
}

func TestFingerprint(t *testing.T) {
	const n = 8 << 20 // larger than Samples × SampleLen (4 MiB): sampling skips bytes
	a, b := model(t, n), model(t, n)
	// Other modification times, same bytes: the same fingerprint (a copy of a model reuses its caches).
	old := time.Now().Add(-48 * time.Hour)
	for _, f := range []string{"config.json", "model-00001-of-00002.safetensors"} {
		if err := os.Chtimes(filepath.Join(b, f), old, old); err != nil {
			t.Fatal(err)
		}
	}
	base := fingerprint(t, a)
	if got := fingerprint(t, b); got != base {
		t.Fatalf("same bytes, other mtimes: %s != %s", got, base)
	}

	change := func(name string, edit func(p string)) {
		t.Helper()
		c := model(t, n)
		edit(filepath.Join(c, name))
		if fingerprint(t, c) == base {
			t.Errorf("%s edited: fingerprint unchanged", name)
		}
	}
	flip := func(off int64) func(string) {
		return func(p string) {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var x [1]byte
			if _, err := f.ReadAt(x[:], off); err != nil {
				t.Fatal(err)
			}
			x[0] ^= 0xff
			if _, err := f.WriteAt(x[:], off); err != nil {
				t.Fatal(err)
			}
		}
	}
	change("config.json", func(p string) { os.WriteFile(p, []byte(`{"hidden_size": 9}`), 0o644) })
	change("model-00001-of-00002.safetensors", flip(8+10)) // the header
	data := int64(8 + len(hdrJSON))
	change("model-00002-of-00002.safetensors", flip(data))      // the first data byte: sample 0
	change("model-00001-of-00002.safetensors", flip(data+n/2))  // sample 32 starts at the data's middle
	change("model-00002-of-00002.safetensors", func(p string) { // one byte longer
		f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		f.Write([]byte{0})
		f.Close()
	})
	change("model-00001-of-00002.safetensors", func(p string) { os.Rename(p, filepath.Join(filepath.Dir(p), "other.safetensors")) })
}

func TestFingerprintErrors(t *testing.T) {
	for name, setup := range map[string]func(d string){
		"no config.json": func(d string) { os.Remove(filepath.Join(d, "config.json")) },
		"no safetensors": func(d string) {
			os.Remove(filepath.Join(d, "model-00001-of-00002.safetensors"))
			os.Remove(filepath.Join(d, "model-00002-of-00002.safetensors"))
		},
		"header too long": func(d string) {
			os.WriteFile(filepath.Join(d, "model-00001-of-00002.safetensors"), binary.LittleEndian.AppendUint64(nil, 1<<40), 0o644)
		},
		"truncated": func(d string) {
			os.WriteFile(filepath.Join(d, "model-00002-of-00002.safetensors"), []byte{1, 2}, 0o644)
		},
	} {
		d := model(t, 1000)
		setup(d)
		if _, err := Fingerprint(d); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
