package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxLineBytes bounds one event line; longer lines are a protocol error rather
// than an unbounded allocation.
const MaxLineBytes = 64 << 20

// MaxRequestBytes bounds the request an engine reads on stdin.
const MaxRequestBytes = 64 << 20

// Encoder writes events as JSON lines. Each Encode writes one complete line so a
// reader never sees half an event.
type Encoder struct {
	w io.Writer
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes ev as one line.
func (e *Encoder) Encode(ev Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	b = append(b, '\n')
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("write %s event: %w", ev.Type, err)
	}
	return nil
}

// Decoder reads and validates events from an engine's stdout.
//
//	d := protocol.NewDecoder(r)
//	for d.Scan() { ev := d.Event() … }
//	if err := d.Err(); err != nil { … }
type Decoder struct {
	sc   *bufio.Scanner
	ev   Event
	err  error
	line int
}

// NewDecoder returns a Decoder reading JSON lines from r.
func NewDecoder(r io.Reader) *Decoder {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	return &Decoder{sc: sc}
}

// Scan advances to the next event. It returns false at end of input or on the
// first malformed line; Err tells which.
func (d *Decoder) Scan() bool {
	if d.err != nil {
		return false
	}
	for d.sc.Scan() {
		d.line++
		raw := bytes.TrimSpace(d.sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		ev, err := DecodeEvent(raw)
		if err != nil {
			d.err = fmt.Errorf("stdout line %d: %w", d.line, err)
			return false
		}
		d.ev = ev
		return true
	}
	if err := d.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d bytes", MaxLineBytes)
		}
		d.err = fmt.Errorf("stdout line %d: %w", d.line+1, err)
	}
	return false
}

// Event returns the event read by the last successful Scan.
func (d *Decoder) Event() Event { return d.ev }

// Err returns the first error met, or nil at a clean end of input.
func (d *Decoder) Err() error { return d.err }

// DecodeEvent parses and validates one event line.
func DecodeEvent(line []byte) (Event, error) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&ev); err != nil {
		return Event{}, fmt.Errorf("not a JSON event: %w (line starts %q)", err, prefix(line, 80))
	}
	if dec.More() {
		return Event{}, fmt.Errorf("trailing data after JSON event (line starts %q)", prefix(line, 80))
	}
	if err := ev.Validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// DecodeRequest parses and validates a request, rejecting unknown fields so a
// misspelled option is an error rather than silently ignored.
func DecodeRequest(r io.Reader) (*Request, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	if len(b) > MaxRequestBytes {
		return nil, fmt.Errorf("request larger than %d bytes", MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode request: trailing data after the JSON object")
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return &req, nil
}

func prefix(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
