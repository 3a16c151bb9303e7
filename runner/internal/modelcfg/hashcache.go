package modelcfg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// HashCacheFile is the name of the digest cache under the runner's cache
// directory ($CIB_CACHE, default ~/.cache/cib).
const HashCacheFile = "model-hashes.json"

// HashCachePath is where CachedHash keeps digests: $CIB_CACHE/model-hashes.json,
// or ~/.cache/cib/model-hashes.json.
func HashCachePath(getenv func(string) string) string {
	if d := getenv("CIB_CACHE"); d != "" {
		return filepath.Join(d, HashCacheFile)
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "cib", HashCacheFile)
	}
	return ""
}

// hashCacheVersion is the schema of the cache file; another version is
// ignored (every entry is a miss).
const hashCacheVersion = 1

// sampleBytes is the size of each of the three pieces (start, middle, end)
// of every file that the sampled check reads.
const sampleBytes = 64 << 10

type hashCache struct {
	Version int                   `json:"version"`
	Dirs    map[string]cachedHash `json:"dirs"`
}

// cachedHash is one directory's digest with what it was computed over: every
// file's size and modification time (ns), and the SHA-256 of a sample of
// every file's bytes.
type cachedHash struct {
	Digest Digest     `json:"digest"`
	Files  []fileStat `json:"files"`
	Sample string     `json:"sample"`
}

type fileStat struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
}

// CachedHash is Hash with a per-directory cache in the file cachePath, so a
// benchmark (or every cell of a suite) does not re-read a 16 GB model it has
// already hashed. A cached digest is used only when the directory has the
// same files with the same sizes and modification times, and the SHA-256 of
// three 64 KiB pieces of every file (start, middle, end) still matches;
// otherwise the directory is hashed in full and the entry replaced. hit says
// whether the cache answered. An empty cachePath, or a cache that cannot be
// read or written, only costs the full hash.
func CachedHash(ctx context.Context, dir, cachePath string) (d Digest, hit bool, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Digest{}, false, fmt.Errorf("hash model %s: %w", dir, err)
	}
	if cachePath == "" {
		d, err := Hash(ctx, abs)
		return d, false, err
	}
	files, sample, err := stamp(abs)
	if err != nil {
		return Digest{}, false, fmt.Errorf("hash model %s: %w", dir, err)
	}
	cache := readHashCache(cachePath)
	if c, ok := cache.Dirs[abs]; ok && c.Sample == sample && sameStats(c.Files, files) && c.Digest.Sum != "" {
		return c.Digest, true, nil
	}
	if d, err = Hash(ctx, abs); err != nil {
		return Digest{}, false, err
	}
	storeHash(cachePath, abs, d, files, sample)
	return d, false, nil
}

// RememberHash records a digest computed elsewhere (synth.Write hashes what it
// writes) so the next CachedHash of dir is a hit. Errors are ignored: the
// cache only saves time.
func RememberHash(dir, cachePath string, d Digest) {
	abs, err := filepath.Abs(dir)
	if err != nil || cachePath == "" {
		return
	}
	files, sample, err := stamp(abs)
	if err != nil {
		return
	}
	storeHash(cachePath, abs, d, files, sample)
}

// stamp lists the files Hash would read with their sizes and modification
// times, and the SHA-256 of their sampled pieces.
func stamp(dir string) ([]fileStat, string, error) {
	var paths []string
	if err := walk(dir, "", &paths); err != nil {
		return nil, "", err
	}
	sort.Strings(paths)
	h := sha256.New()
	buf := make([]byte, sampleBytes)
	out := make([]fileStat, 0, len(paths))
	for _, p := range paths {
		f, err := os.Open(filepath.Join(dir, p))
		if err != nil {
			return nil, "", err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, "", err
		}
		size := st.Size()
		out = append(out, fileStat{Path: filepath.ToSlash(p), Size: size, MtimeNs: st.ModTime().UnixNano()})
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(p), size)
		for _, off := range []int64{0, size/2 - sampleBytes/2, size - sampleBytes} {
			off = max(0, off)
			n, err := f.ReadAt(buf, off)
			if err != nil && !errors.Is(err, io.EOF) {
				f.Close()
				return nil, "", fmt.Errorf("read %s: %w", p, err)
			}
			h.Write(buf[:n])
		}
		f.Close()
	}
	return out, hex.EncodeToString(h.Sum(nil)), nil
}

func sameStats(a, b []fileStat) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func readHashCache(path string) hashCache {
	var c hashCache
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &c) != nil || c.Version != hashCacheVersion || c.Dirs == nil {
		return hashCache{Version: hashCacheVersion, Dirs: map[string]cachedHash{}}
	}
	return c
}

// storeHash rewrites the cache file with dir's entry, through a temporary
// file and a rename, so a reader never sees half a file.
func storeHash(path, dir string, d Digest, files []fileStat, sample string) {
	c := readHashCache(path)
	c.Dirs[dir] = cachedHash{Digest: d, Files: files, Sample: sample}
	for k := range c.Dirs { // forget directories that are gone
		if _, err := os.Stat(k); errors.Is(err, fs.ErrNotExist) {
			delete(c.Dirs, k)
		}
	}
	b, err := json.MarshalIndent(c, "", " ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), HashCacheFile+".*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), path) != nil {
		os.Remove(tmp.Name())
	}
}
