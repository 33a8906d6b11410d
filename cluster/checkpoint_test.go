package cluster

import (
	"encoding/json"
	"testing"
)

// Checkpoints come from disk or from JetStream, which other processes
// can write: decoding never panics, and what decodes is of this format.
func FuzzDecodeState(f *testing.F) {
	b, err := encodeState(psState{Summary: Summary{StopReason: "x"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b, "fuzz")
		if err == nil && st.Format != checkpointFormat {
			t.Fatalf("format %d decoded", st.Format)
		}
	})
}

// A worker's log line becomes one JSON line of the central log, with the
// node's name, or is refused: never a line that is not JSON.
func FuzzNodeLine(f *testing.F) {
	f.Add([]byte(`{"msg":"chunk trained","loss":0.3}`))
	f.Add([]byte(`{"node":"ps","msg":"forged"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		line, err := nodeLine("w1", raw)
		if err != nil {
			return
		}
		var ev map[string]any
		if err := json.Unmarshal(line, &ev); err != nil || ev["node"] != "w1" || line[len(line)-1] != '\n' {
			t.Fatalf("line %q: %v, node %v", line, err, ev["node"])
		}
	})
}
