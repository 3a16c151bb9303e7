package protocol

import (
	"bytes"
	"strings"
	"testing"
)

func validRequest() string {
	return `{"protocol":1,"model":"/m","device":"cuda:0","dtype":"bf16","seed":1,"warmup":1,"iterations":2,
"cases":[{"name":"a","prompt_tokens":[5,6],"max_new_tokens":3,"batch_size":1,"greedy":true,"ignore_eos":true}]}`
}

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "valid", in: validRequest()},
		{name: "unknown field", in: `{"protocol":1,"modle":"x"}`, wantErr: `unknown field "modle"`},
		{name: "wrong version", in: strings.Replace(validRequest(), `"protocol":1`, `"protocol":2`, 1), wantErr: "protocol: got 2"},
		{name: "bad device", in: strings.Replace(validRequest(), `cuda:0`, `tpu`, 1), wantErr: `device: "tpu"`},
		{name: "bad dtype", in: strings.Replace(validRequest(), `bf16`, `int8`, 1), wantErr: `dtype: "int8"`},
		{name: "zero new tokens", in: strings.Replace(validRequest(), `"max_new_tokens":3`, `"max_new_tokens":0`, 1), wantErr: "max_new_tokens: 0"},
		{name: "empty prompt", in: strings.Replace(validRequest(), `[5,6]`, `[]`, 1), wantErr: "prompt_tokens: empty"},
		{name: "negative id", in: strings.Replace(validRequest(), `[5,6]`, `[5,-6]`, 1), wantErr: "negative id -6"},
		{name: "trailing data", in: validRequest() + `{}`, wantErr: "trailing data"},
		{name: "truncated", in: validRequest()[:40], wantErr: "decode request"},
		{name: "no cases", in: `{"protocol":1,"model":"/m","device":"cpu","dtype":"f32","iterations":1,"cases":[]}`, wantErr: "cases: none given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest(strings.NewReader(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeRequest() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("DecodeRequest() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		wantErr string
	}{
		{name: "loaded", line: `{"type":"loaded","loaded":{"total_ns":5,"dtype":"f32"}}`},
		{name: "iteration", line: `{"type":"iteration","iteration":{"case":0,"index":0,"token_ns":[1,2],"end_ns":3,"output_tokens":[[4,5]]}}`},
		{name: "done", line: `{"type":"done","done":{"iterations":1}}`},
		{name: "error", line: `{"type":"error","error":{"code":"load","message":"no such dir"}}`},
		{name: "not json", line: `loading weights...`, wantErr: "not a JSON event"},
		{name: "unknown type", line: `{"type":"progress","done":{"iterations":1}}`, wantErr: `unknown event type "progress"`},
		{name: "two payloads", line: `{"type":"done","done":{"iterations":1},"error":{"code":"x","message":"y"}}`, wantErr: "exactly one payload"},
		{name: "mismatched payload", line: `{"type":"loaded","done":{"iterations":1}}`, wantErr: "without loaded payload"},
		{name: "times go backwards", line: `{"type":"iteration","iteration":{"token_ns":[5,2],"end_ns":6,"output_tokens":[[1,2]]}}`, wantErr: "goes backwards"},
		{name: "end before last token", line: `{"type":"iteration","iteration":{"token_ns":[5,9],"end_ns":6,"output_tokens":[[1,2]]}}`, wantErr: "end_ns 6 is before"},
		{name: "row length mismatch", line: `{"type":"iteration","iteration":{"token_ns":[1,2],"end_ns":6,"output_tokens":[[1,2],[3]]}}`, wantErr: "output_tokens[1] has 1 tokens"},
		{name: "no rows", line: `{"type":"iteration","iteration":{"token_ns":[1],"end_ns":6,"output_tokens":[]}}`, wantErr: "no output_tokens rows"},
		{name: "empty error message", line: `{"type":"error","error":{"code":"x","message":""}}`, wantErr: "empty message"},
		{name: "negative load time", line: `{"type":"loaded","loaded":{"context_init_ns":-1}}`, wantErr: "context_init_ns is negative"},
		{name: "trailing garbage", line: `{"type":"done","done":{"iterations":1}} x`, wantErr: "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tt.line))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeEvent(%s) = %v, want nil", tt.line, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("DecodeEvent(%s) = %v, want error containing %q", tt.line, err, tt.wantErr)
			}
		})
	}
}

func TestEncoderDecoderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	want := []Event{
		{Type: EventLoaded, Loaded: &Loaded{TotalNs: 10, DType: "bf16", Settings: map[string]string{"graphs": "on"}}},
		{Type: EventIteration, Iteration: &Iteration{Case: 0, Index: 1, StartNs: 7, TokenNs: []int64{1, 2, 3}, EndNs: 4, PromptTokens: 2, OutputTokens: [][]int{{9, 8, 7}}}},
		{Type: EventDone, Done: &Done{Iterations: 1}},
	}
	for _, ev := range want {
		if err := enc.Encode(ev); err != nil {
			t.Fatalf("Encode(%v) = %v", ev.Type, err)
		}
	}
	if got := strings.Count(buf.String(), "\n"); got != len(want) {
		t.Fatalf("encoded %d lines, want %d", got, len(want))
	}
	d := NewDecoder(&buf)
	var got []Event
	for d.Scan() {
		got = append(got, d.Event())
	}
	if err := d.Err(); err != nil {
		t.Fatalf("Decoder.Err() = %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d events, want %d", len(got), len(want))
	}
	if got[1].Iteration.TokenNs[2] != 3 || got[1].Iteration.OutputTokens[0][0] != 9 || got[0].Loaded.Settings["graphs"] != "on" {
		t.Fatalf("round trip lost data: %+v %+v", got[0].Loaded, got[1].Iteration)
	}
}

func TestDecoderStopsAtGarbage(t *testing.T) {
	in := "{\"type\":\"done\",\"done\":{\"iterations\":0}}\n\nWARNING: cuda init\n{\"type\":\"done\",\"done\":{\"iterations\":0}}\n"
	d := NewDecoder(strings.NewReader(in))
	n := 0
	for d.Scan() {
		n++
	}
	if n != 1 {
		t.Fatalf("scanned %d events before garbage, want 1", n)
	}
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), "stdout line 3") {
		t.Fatalf("Err() = %v, want an error naming stdout line 3", err)
	}
}

func TestParseDevice(t *testing.T) {
	tests := []struct {
		in      string
		kind    string
		ord     int
		wantErr bool
	}{
		{"cpu", "cpu", 0, false}, {"cuda", "cuda", 0, false}, {"cuda:3", "cuda", 3, false},
		{"cuda:-1", "", 0, true}, {"cuda:x", "", 0, true}, {"gpu", "", 0, true}, {"", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			kind, ord, err := ParseDevice(tt.in)
			if (err != nil) != tt.wantErr || kind != tt.kind || ord != tt.ord {
				t.Fatalf("ParseDevice(%q) = %q, %d, %v; want %q, %d, err=%v", tt.in, kind, ord, err, tt.kind, tt.ord, tt.wantErr)
			}
		})
	}
}

func TestInfoServes(t *testing.T) {
	info := Info{Protocol: Version, Devices: []string{"cpu", "cuda"}, DTypes: []string{"f32", "bf16"}}
	tests := []struct {
		name          string
		protocol      int
		device, dtype string
		want          string
	}{
		{name: "cpu f32", protocol: Version, device: "cpu", dtype: "f32"},
		{name: "cuda ordinal", protocol: Version, device: "cuda:1", dtype: "bf16"},
		{name: "other protocol", protocol: Version + 1, device: "cpu", dtype: "f32", want: "info declares protocol 2, the runner speaks 1"},
		{name: "dtype not listed", protocol: Version, device: "cpu", dtype: "f16", want: "info does not list dtype f16 (dtypes: f32, bf16)"},
		{name: "device not listed", protocol: Version, device: "tpu", dtype: "f32", want: `device: "tpu" is not cpu or cuda:N`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := info
			in.Protocol = tt.protocol
			err := in.Serves(tt.device, tt.dtype)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Serves(%s, %s) = %v, want nil", tt.device, tt.dtype, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Serves(%s, %s) = %v, want %q", tt.device, tt.dtype, err, tt.want)
			}
		})
	}
	cpuOnly := Info{Protocol: Version, Devices: []string{"cpu"}, DTypes: []string{"f32"}}
	if err := cpuOnly.Serves("cuda:0", "f32"); err == nil || !strings.Contains(err.Error(), "info does not list device cuda:0 (devices: cpu)") {
		t.Fatalf("Serves(cuda:0, f32) = %v, want a missing device", err)
	}
}
