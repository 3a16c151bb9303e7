package spawn

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// CookieEnv names the environment variable that marks every process of one
// launch. The engine inherits it and hands it down to whatever it starts, so
// the runner finds the engine's descendants even after they left its process
// group (setsid) or were re-parented to init (a double fork), which neither a
// group kill nor a walk of the parent links from the engine can do once the
// engine has exited. The same trick keeps Jenkins builds from leaving
// processes behind. It works without privileges or process-wide state (a
// child subreaper would collect the orphans of every command the runner
// process starts, in tests too, and must reap them); only a descendant that
// both leaves the session and clears its environment escapes it.
const CookieEnv = "CIB_LAUNCH"

// newCookie returns a value for CookieEnv unique to one launch.
func newCookie() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("launch cookie: %w", err)
	}
	return strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:]), nil
}

// sweep kills every live process that carries cookie in its environment,
// until none is left (a few rounds, for one that forks while being killed),
// and describes each one it killed.
func sweep(cookie string) []string {
	return sweepProc("/proc", cookie)
}

func sweepProc(procDir, cookie string) []string {
	mark := []byte("\x00" + CookieEnv + "=" + cookie + "\x00")
	killed := map[int]bool{}
	var out []string
	for range 20 {
		pids := marked(procDir, mark)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			if !killed[pid] {
				killed[pid] = true
				out = append(out, describe(procDir, pid))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

// marked lists the live processes (not zombies) whose environment holds mark,
// NUL-delimited. Processes of other users are unreadable and skipped.
func marked(procDir string, mark []byte) []int {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(procDir + "/" + e.Name() + "/environ")
		if err != nil || len(env) == 0 {
			continue // gone, another user's, or a zombie
		}
		if !bytes.Contains(append([]byte{0}, env...), mark) {
			continue
		}
		if stat, err := os.ReadFile(procDir + "/" + e.Name() + "/stat"); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i >= 0 && bytes.HasPrefix(stat[i+1:], []byte(" Z")) {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// describe names a process by pid and command line, e.g. "pid 12 (sleep 300)".
func describe(procDir string, pid int) string {
	b, _ := os.ReadFile(procDir + "/" + strconv.Itoa(pid) + "/cmdline")
	cmd := string(bytes.TrimRight(bytes.ReplaceAll(b, []byte{0}, []byte{' '}), " "))
	if len(cmd) > 80 {
		cmd = cmd[:80] + "…"
	}
	if cmd == "" {
		return "pid " + strconv.Itoa(pid)
	}
	return fmt.Sprintf("pid %d (%s)", pid, cmd)
}
