package slurm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// State is what Slurm says about one array task.
type State struct {
	Task int `json:"task"`
	// Job is the array job id the task ran (or waits) in.
	Job string `json:"job"`
	// State is Slurm's job state, first word only (PENDING, RUNNING,
	// COMPLETED, FAILED, CANCELLED, TIMEOUT, PREEMPTED, NODE_FAIL…).
	State string `json:"state"`
	// Node is the node the task ran on ("" while pending).
	Node string `json:"node,omitempty"`
	// ExitCode is Slurm's "code:signal".
	ExitCode string `json:"exit_code,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Source is where the state came from: sacct, scontrol, or saved (the
	// last state seen, when Slurm no longer knows the job).
	Source string    `json:"source"`
	SeenAt time.Time `json:"seen_at"`
}

// Active reports whether the task may still run (and write launches).
func (s State) Active() bool {
	switch s.State {
	case "PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
		"SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT":
		return true
	}
	return false
}

// Failed reports whether the task ended without finishing its benchmark:
// failed, cancelled, timed out, preempted, lost with its node, killed for
// memory…: every end but COMPLETED.
func (s State) Failed() bool {
	return s.State != "" && s.State != "COMPLETED" && s.State != Unknown && !s.Active()
}

// Unknown is the state of a task Slurm has no record of.
const Unknown = "UNKNOWN"

// Exec runs a Slurm command and returns its standard output; an error
// carries its standard error.
type Exec func(ctx context.Context, name string, args ...string) ([]byte, error)

// ErrNoSlurm means neither sacct nor scontrol could tell anything (not
// installed, or no controller reachable).
var ErrNoSlurm = errors.New("no Slurm state available")

// Query asks Slurm for the tasks of array job job: sacct first (it keeps
// finished jobs), then scontrol (where accounting is off; it forgets a
// finished job after MinJobAge).
func Query(ctx context.Context, run Exec, job string) ([]State, error) {
	out, err := run(ctx, "sacct", "-X", "-n", "-P", "-j", job, "-o", "JobID,State,NodeList,ExitCode")
	if err == nil {
		if states, perr := ParseSacct(out, job); perr == nil && len(states) > 0 {
			return states, nil
		}
	}
	sacctErr := err
	out, err = run(ctx, "scontrol", "-o", "show", "job", job)
	if err != nil {
		return nil, fmt.Errorf("%w for job %s: sacct: %v; scontrol: %v", ErrNoSlurm, job, sacctErr, err)
	}
	return ParseScontrol(out, job)
}

// ParseSacct reads `sacct -X -n -P -o JobID,State,NodeList,ExitCode` lines
// of array job job ("123_4|COMPLETED|node1|0:0", "123_[5-7]|PENDING|None
// assigned|0:0"). Lines of other jobs are ignored.
func ParseSacct(out []byte, job string) ([]State, error) {
	var states []State
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) < 4 {
			return nil, fmt.Errorf("sacct line %q: want JobID|State|NodeList|ExitCode", line)
		}
		id, tasks, ok := strings.Cut(f[0], "_")
		if !ok || id != job {
			continue
		}
		ids, err := parseArraySpec(tasks)
		if err != nil {
			return nil, fmt.Errorf("sacct line %q: %w", line, err)
		}
		node := f[2]
		if node == "None assigned" || node == "(null)" {
			node = ""
		}
		state, _, _ := strings.Cut(f[1], " ") // "CANCELLED by 0"
		for _, t := range ids {
			states = append(states, State{Task: t, Job: job, State: state, Node: node, ExitCode: f[3], Source: "sacct"})
		}
	}
	return states, sc.Err()
}

var scontrolField = regexp.MustCompile(`(?:^| )(JobId|ArrayJobId|ArrayTaskId|JobState|Reason|ExitCode|NodeList|DerivedExitCode)=(\S*)`)

// ParseScontrol reads `scontrol -o show job JOB` output, one job record per
// line, keeping the tasks of array job job.
func ParseScontrol(out []byte, job string) ([]State, error) {
	var states []State
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		kv := map[string]string{}
		for _, m := range scontrolField.FindAllStringSubmatch(line, -1) {
			kv[m[1]] = m[2]
		}
		if kv["ArrayJobId"] != job {
			continue
		}
		ids, err := parseArraySpec(kv["ArrayTaskId"])
		if err != nil {
			return nil, fmt.Errorf("scontrol job %s: %w", kv["JobId"], err)
		}
		node := kv["NodeList"]
		if node == "(null)" {
			node = ""
		}
		reason := kv["Reason"]
		if reason == "None" {
			reason = ""
		}
		for _, t := range ids {
			states = append(states, State{Task: t, Job: job, State: kv["JobState"], Node: node, ExitCode: kv["ExitCode"], Reason: reason, Source: "scontrol"})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read scontrol output: %w", err)
	}
	return states, nil
}

// States are the last known state of every task of a plan, by task id.
type States map[int]State

// ReadStates reads dir's StatesFile (empty when there is none yet).
func ReadStates(dir string) (States, error) {
	b, err := os.ReadFile(filepath.Join(dir, StatesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return States{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("read slurm states: %w", err)
	}
	var list []State
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("decode %s: %w", filepath.Join(dir, StatesFile), err)
	}
	s := States{}
	for _, st := range list {
		s[st.Task] = st
	}
	return s, nil
}

// Write saves the states to dir's StatesFile, by task id.
func (s States) Write(dir string) error {
	list := make([]State, 0, len(s))
	for id := 0; len(list) < len(s); id++ {
		if st, ok := s[id]; ok {
			list = append(list, st)
		}
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("encode slurm states: %w", err)
	}
	return writeFile(dir, StatesFile, append(b, '\n'))
}

// Refresh asks Slurm about every job of the plan and returns the state of
// each task: from its latest job when Slurm still knows it, else the state
// saved before (Source "saved"), else Unknown. The result is saved for the
// next time Slurm has forgotten the job. A query that fails is returned as
// an error alongside the states still known.
func Refresh(ctx context.Context, run Exec, p *Plan, now time.Time) (States, error) {
	saved, err := ReadStates(p.Results)
	if err != nil {
		return nil, err
	}
	live := map[string]map[int]State{}
	var errs []error
	for _, j := range p.Jobs {
		states, err := Query(ctx, run, j.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m := map[int]State{}
		for _, s := range states {
			s.SeenAt = now
			m[s.Task] = s
		}
		live[j.ID] = m
	}
	out := States{}
	for _, t := range p.Tasks {
		j := p.LastJob(t.ID)
		if j == nil {
			out[t.ID] = State{Task: t.ID, State: Unknown, Source: "never submitted"}
			continue
		}
		if s, ok := live[j.ID][t.ID]; ok {
			out[t.ID] = s
			continue
		}
		if s, ok := saved[t.ID]; ok && s.Job == j.ID {
			if s.Source != "saved" {
				s.Source = "saved (" + s.Source + ")"
			}
			out[t.ID] = s
			continue
		}
		out[t.ID] = State{Task: t.ID, Job: j.ID, State: Unknown, Source: "not known to Slurm"}
	}
	if werr := out.Write(p.Results); werr != nil {
		errs = append(errs, werr)
	}
	return out, errors.Join(errs...)
}

// RunExec is the Exec of real commands, with environ as their environment
// (PATH and SLURM_CONF reach sacct and scontrol) and a minute's timeout.
func RunExec(environ []string) Exec {
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		path, err := lookPath(name, environ)
		if err != nil {
			return nil, err
		}
		cmd := execCommand(ctx, path, args...)
		cmd.Env = environ
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = strings.TrimSpace(string(out))
			}
			return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
		}
		return out, nil
	}
}

// ParseJobID reads `sbatch --parsable` output: "123" or "123;cluster".
func ParseJobID(out []byte) (string, error) {
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	id, _, _ := strings.Cut(s, ";")
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", fmt.Errorf("sbatch printed %q, not a job id", strings.TrimSpace(string(out)))
	}
	return id, nil
}
