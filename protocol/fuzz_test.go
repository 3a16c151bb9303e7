package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeEvent checks the event decoder never panics and that whatever it
// accepts is valid and survives a re-encode.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"loaded","loaded":{"total_ns":5,"dtype":"f32"}}`,
		`{"type":"iteration","iteration":{"case":0,"index":0,"token_ns":[1,2],"end_ns":3,"output_tokens":[[4,5]]}}`,
		`{"type":"done","done":{"iterations":1}}`,
		`{"type":"error","error":{"code":"load","message":"x"}}`,
		`{"type":"iteration","iteration":{"token_ns":[5,2],"end_ns":6,"output_tokens":[[1,2]]}}`,
		`not json`, `{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := DecodeEvent(line)
		if err != nil {
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("DecodeEvent accepted an invalid event: %v", err)
		}
		var buf bytes.Buffer
		if err := NewEncoder(&buf).Encode(ev); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodeEvent(bytes.TrimSpace(buf.Bytes())); err != nil {
			t.Fatalf("re-decode of %s: %v", buf.Bytes(), err)
		}
	})
}

// FuzzDecodeRequest checks the request decoder never panics and only accepts
// valid requests.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(validRequest()))
	f.Add([]byte(`{"protocol":1,"modle":"x"}`))
	f.Add([]byte(`{"protocol":1,"model":"/m","device":"cuda:9999999999999999999","dtype":"f32","iterations":1,"cases":[{"name":"a","prompt_tokens":[1],"max_new_tokens":1,"batch_size":1}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := DecodeRequest(bytes.NewReader(in))
		if err != nil {
			return
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("accepted invalid request: %v", err)
		}
		if _, err := json.Marshal(req); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
