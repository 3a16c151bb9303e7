// Package plugin runs the runner's plugins: executables (`runner-plugin-NAME`
// on PATH or in the bin dir, or a path) that speak a small versioned JSON
// protocol (protocol/PLUGINS.md). The pre hook sees the resolved config and
// environment before any launch and may veto the run; the post hook sees
// summary.json and returns report sections. Built-in analyses (the cost
// section) implement the same interfaces in-process.
//
// A plugin can never lose a result: a plugin that crashes, hangs, floods its
// output or answers garbage is killed, and becomes a Failure that the report
// lists, while every section of the other plugins and the result itself stand.
package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Version is the plugin protocol version the runner speaks.
const Version = 1

// Hooks a plugin is called for.
const (
	HookPre  = "pre"
	HookPost = "post"
)

// Prefix is the file-name prefix of plugin executables found by name.
const Prefix = "runner-plugin-"

// Section is one report section: a title, Markdown and/or a table, and
// machine-readable fields. It lands in summary.json, report.md, report.html
// and the terminal.
type Section struct {
	// Plugin names the plugin that wrote the section; the runner sets it.
	Plugin string `json:"plugin"`
	// Title heads the section.
	Title string `json:"title"`
	// Markdown is prose under the title (paragraphs, "- " lists, **bold**).
	Markdown string `json:"markdown,omitempty"`
	// Table, when set, follows the prose.
	Table *Table `json:"table,omitempty"`
	// Fields are the section's figures for machines: a JSON object.
	Fields json.RawMessage `json:"fields,omitempty"`
}

// Table is a plain table of text cells.
type Table struct {
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Failure is a plugin that failed in one hook; the run and its result stand.
type Failure struct {
	Plugin string `json:"plugin"`
	Hook   string `json:"hook"`
	Error  string `json:"error"`
	// Stderr is the end of the plugin's stderr, when it was a process.
	Stderr string `json:"stderr_tail,omitempty"`
}

// Request is what a plugin reads on stdin: one JSON object.
type Request struct {
	Protocol int    `json:"protocol"`
	Hook     string `json:"hook"`
	// Config is the resolved benchmark config (pre).
	Config json.RawMessage `json:"config,omitempty"`
	// Environment is environment.json as it will be written (pre).
	Environment json.RawMessage `json:"environment,omitempty"`
	// Summary is summary.json without plugin sections (post).
	Summary json.RawMessage `json:"summary,omitempty"`
}

// Response is what a plugin writes on stdout: one JSON object.
type Response struct {
	Protocol int `json:"protocol"`
	// Veto (pre) stops the run before any launch; Reason says why.
	Veto   bool   `json:"veto,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Sections (post) go into the report, in order.
	Sections []Section `json:"sections,omitempty"`
}

// Veto is a plugin's refusal to let a run start.
type Veto struct {
	Plugin string
	Reason string
}

func (v *Veto) Error() string { return fmt.Sprintf("plugin %s vetoed the run: %s", v.Plugin, v.Reason) }

// Analyzer adds report sections to a finished result, from its summary.json.
type Analyzer interface {
	Name() string
	Post(ctx context.Context, summary json.RawMessage) ([]Section, error)
}

// Checker may veto a run before any launch. It is an optional capability of
// an Analyzer, found by type assertion.
type Checker interface {
	Name() string
	Pre(ctx context.Context, config, environment json.RawMessage) (*Veto, error)
}

// Limits on what one plugin may return.
const (
	MaxSections     = 32
	MaxMarkdown     = 64 << 10
	MaxTableCells   = 20000
	MaxReasonLength = 1000
)

// Pre runs the pre hook of every plugin that has one, in order. It stops at
// the first veto; a plugin that fails is a Failure, not a veto.
func Pre(ctx context.Context, plugins []Analyzer, config, environment json.RawMessage) (*Veto, []Failure) {
	var fails []Failure
	for _, a := range plugins {
		c, ok := a.(Checker)
		if !ok {
			continue
		}
		v, err := safePre(ctx, c, config, environment)
		if err != nil {
			fails = append(fails, failure(a.Name(), HookPre, err))
			continue
		}
		if v != nil {
			return v, fails
		}
	}
	return nil, fails
}

// Post runs the post hook of every plugin in order and returns their
// sections, each marked with its plugin, and the plugins that failed. A
// plugin's sections are all kept or, when any is invalid, all dropped.
func Post(ctx context.Context, plugins []Analyzer, summary json.RawMessage) ([]Section, []Failure) {
	var out []Section
	var fails []Failure
	for _, a := range plugins {
		secs, err := safePost(ctx, a, summary)
		if err == nil {
			err = Validate(secs)
		}
		if err != nil {
			fails = append(fails, failure(a.Name(), HookPost, err))
			continue
		}
		for _, s := range secs {
			s.Plugin = a.Name()
			out = append(out, s)
		}
	}
	return out, fails
}

// safePost keeps a panicking in-process analysis from taking the result
// with it.
func safePost(ctx context.Context, a Analyzer, summary json.RawMessage) (secs []Section, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return a.Post(ctx, summary)
}

func safePre(ctx context.Context, c Checker, config, environment json.RawMessage) (v *Veto, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Pre(ctx, config, environment)
}

func failure(name, hook string, err error) Failure {
	f := Failure{Plugin: name, Hook: hook, Error: err.Error()}
	var pe *Error
	if errors.As(err, &pe) {
		f.Stderr = pe.Stderr
	}
	return f
}

// Validate checks sections against the protocol: a title, tables whose rows
// match their columns, fields that are a JSON object, and the size limits.
func Validate(secs []Section) error {
	if len(secs) > MaxSections {
		return fmt.Errorf("%d sections, at most %d", len(secs), MaxSections)
	}
	for i, s := range secs {
		if strings.TrimSpace(s.Title) == "" {
			return fmt.Errorf("section %d: no title", i)
		}
		if len(s.Markdown) > MaxMarkdown {
			return fmt.Errorf("section %q: markdown of %d bytes, at most %d", s.Title, len(s.Markdown), MaxMarkdown)
		}
		if t := s.Table; t != nil {
			if len(t.Columns) == 0 {
				return fmt.Errorf("section %q: table without columns", s.Title)
			}
			if n := len(t.Columns) * (len(t.Rows) + 1); n > MaxTableCells {
				return fmt.Errorf("section %q: table of %d cells, at most %d", s.Title, n, MaxTableCells)
			}
			for j, r := range t.Rows {
				if len(r) != len(t.Columns) {
					return fmt.Errorf("section %q: table row %d has %d cells for %d columns", s.Title, j, len(r), len(t.Columns))
				}
			}
		}
		if len(s.Fields) > 0 {
			f := bytes.TrimSpace(s.Fields)
			if len(f) == 0 || f[0] != '{' || !json.Valid(f) {
				return fmt.Errorf("section %q: fields must be a JSON object", s.Title)
			}
		}
	}
	return nil
}

// Find resolves a plugin given by name or path: a name with a slash is a
// path; otherwise binDir/runner-plugin-NAME, then runner-plugin-NAME on
// pathEnv. The path returned is absolute.
func Find(name, binDir, pathEnv string) (string, error) {
	if name == "" {
		return "", errors.New("plugin: empty name")
	}
	if strings.ContainsRune(name, '/') {
		if !isExec(name) {
			return "", fmt.Errorf("plugin %s: not an executable file", name)
		}
		return filepath.Abs(name)
	}
	if strings.ContainsRune(name, '\\') {
		return "", fmt.Errorf("plugin %q: must be a plain name or a path", name)
	}
	var looked []string
	dirs := filepath.SplitList(pathEnv)
	if binDir != "" {
		dirs = append([]string{binDir}, dirs...)
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, Prefix+name)
		if isExec(p) {
			return filepath.Abs(p)
		}
		if d == binDir {
			looked = append(looked, p)
		}
	}
	looked = append(looked, "PATH ("+Prefix+name+")")
	return "", fmt.Errorf("plugin %s: not found (looked in %s)", name, strings.Join(looked, ", "))
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
