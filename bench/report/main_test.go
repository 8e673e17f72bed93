package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	in := `goos: linux
BenchmarkSign/ec-p256/raw-pkcs11-2    10  5 ns/op  100 sigs/s
BenchmarkSign/ec-p256/core-batch1-2   10  5 ns/op   95 sigs/s
BenchmarkSign/ec-p256/grpc-batch64-2  10  5 ns/op   70 sigs/s
PASS
goos: linux
BenchmarkSign/ec-p256/raw-pkcs11-2    10  5 ns/op   50 sigs/s
BenchmarkSign/ec-p256/core-batch1-2   10  5 ns/op   48 sigs/s
BenchmarkSign/ec-p256/grpc-batch64-2  10  5 ns/op   45 sigs/s
goos: linux
BenchmarkSign/ec-p256/raw-pkcs11-2    10  5 ns/op  200 sigs/s
BenchmarkSign/ec-p256/core-batch1-2   10  5 ns/op  180 sigs/s
BenchmarkSign/ec-p256/grpc-batch64-2  10  5 ns/op  170 sigs/s
BenchmarkTSA-2                        10  7 ns/op  1234 req/s
`
	var out bytes.Buffer
	if err := run(strings.NewReader(in), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	got := map[string]figure{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var f figure
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got[f.Name+" "+f.Unit] = f
	}
	cases := []struct {
		key   string
		value float64
		ratio float64 // 0: none
	}{
		{"Sign/ec-p256/raw-pkcs11 sigs/s", 100, 0},
		{"Sign/ec-p256/core-batch1 sigs/s", 95, 0.95},  // median of 0.95, 0.96, 0.90
		{"Sign/ec-p256/grpc-batch64 sigs/s", 70, 0.85}, // median of 0.70, 0.90, 0.85
		{"target:Sign/ec-p256/grpc-batch64 ratio", 0.85, 0.85},
		{"TSA req/s", 1234, 0},
	}
	for _, c := range cases {
		f, ok := got[c.key]
		if !ok {
			t.Errorf("%s: missing from %v", c.key, got)
			continue
		}
		if math.Abs(f.Value-c.value) > 1e-9 {
			t.Errorf("%s: value %v, want %v", c.key, f.Value, c.value)
		}
		if c.ratio == 0 && f.Ratio != nil {
			t.Errorf("%s: unexpected ratio %v", c.key, *f.Ratio)
		}
		if c.ratio != 0 && (f.Ratio == nil || math.Abs(*f.Ratio-c.ratio) > 1e-9) {
			t.Errorf("%s: ratio %v, want %v", c.key, f.Ratio, c.ratio)
		}
	}
	if err := run(strings.NewReader("no benchmarks here\n"), io.Discard, io.Discard); err == nil {
		t.Error("empty input accepted")
	}
}
