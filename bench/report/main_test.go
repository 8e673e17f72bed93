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
BenchmarkAudit/ec-p256/off-batch64-2  10  5 ns/op  1000 sigs/s
BenchmarkAudit/ec-p256/on-batch64-2   10  5 ns/op   950 sigs/s
BenchmarkAudit/ec-p256/flush-batch64-2 10 5 ns/op   400 sigs/s
BenchmarkAudit/ec-p256/off-batch1-2   10  5 ns/op  50 cpu-µs/sig  800 sigs/s
BenchmarkAudit/ec-p256/on-batch1-2    10  5 ns/op  65 cpu-µs/sig  640 sigs/s
BenchmarkAudit/ec-p256/tables-batch1-2 10 5 ns/op  90 cpu-µs/sig  400 sigs/s
BenchmarkTransactions/create-2        10  5 ns/op   321 tx/s  4.5 p50-ms  9.5 p99-ms
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
		{"Audit/ec-p256/off-batch64 sigs/s", 1000, 0},
		{"Audit/ec-p256/on-batch64 sigs/s", 950, 0.95},
		{"Audit/ec-p256/flush-batch64 sigs/s", 400, 0.4},
		{"Audit/ec-p256/on-batch1 sigs/s", 640, 0.8},
		{"Audit/ec-p256/tables-batch1 sigs/s", 400, 0.5},
		{"Audit/ec-p256/off-batch1 cpu-µs/sig", 50, 0},
		{"Audit/ec-p256/on-batch1 cpu-µs/sig", 65, 1.3}, // CPU up 30% a signature
		{"Audit/ec-p256/tables-batch1 cpu-µs/sig", 90, 1.8},
		{"target:Audit/ec-p256/on-batch64 ratio", 0.95, 0.95},
		{"target:Audit/ec-p256/on-batch1 ratio", 0.8, 0.8},
		{"Transactions/create tx/s", 321, 0},
		{"Transactions/create p99-ms", 9.5, 0},
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

// TestReportPeers: firma's Peers figures get the peer at the same client
// count as baseline, in replies/s and p99, and the targets say met or
// missed (p99 must be at most the peer's).
func TestReportPeers(t *testing.T) {
	in := `goos: linux
BenchmarkPeers/tsa/firma-c1-2      1  0 ns/op  300 replies/s  5 p99-ms
BenchmarkPeers/tsa/sigstore-c1-2   1  0 ns/op  100 replies/s  4 p99-ms
BenchmarkPeers/tsa/firma-c16-2     1  0 ns/op  400 replies/s  20 p99-ms
BenchmarkPeers/tsa/sigstore-c16-2  1  0 ns/op  200 replies/s  40 p99-ms
goos: linux
BenchmarkPeers/tsa/firma-c1-2      1  0 ns/op  100 replies/s  5 p99-ms
BenchmarkPeers/tsa/sigstore-c1-2   1  0 ns/op  100 replies/s  5 p99-ms
BenchmarkPeers/tsa/firma-c16-2     1  0 ns/op  300 replies/s  30 p99-ms
BenchmarkPeers/tsa/sigstore-c16-2  1  0 ns/op  100 replies/s  20 p99-ms
goos: linux
BenchmarkPeers/tsa/firma-c1-2      1  0 ns/op  200 replies/s  5 p99-ms
BenchmarkPeers/tsa/sigstore-c1-2   1  0 ns/op  100 replies/s  10 p99-ms
BenchmarkPeers/tsa/firma-c16-2     1  0 ns/op  400 replies/s  10 p99-ms
BenchmarkPeers/tsa/sigstore-c16-2  1  0 ns/op  200 replies/s  40 p99-ms
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
			t.Fatal(err)
		}
		if f.Unit == "ns/op" {
			t.Errorf("%s: ns/op written for a replies/s figure", f.Name)
		}
		got[f.Name+" "+f.Unit] = f
	}
	cases := []struct {
		key, baseline string
		ratio         float64
	}{
		{"Peers/tsa/firma-c1 replies/s", "Peers/tsa/sigstore-c1", 2},
		{"Peers/tsa/firma-c16 replies/s", "Peers/tsa/sigstore-c16", 2},
		{"Peers/tsa/firma-c16 p99-ms", "Peers/tsa/sigstore-c16", 0.5},
		{"target:Peers/tsa/firma-c16:p99-ms ratio", "Peers/tsa/sigstore-c16", 0.5},
		{"target:Peers/tsa/firma-c1:replies/s ratio", "Peers/tsa/sigstore-c1", 2},
	}
	for _, c := range cases {
		f, ok := got[c.key]
		if !ok {
			t.Errorf("%s: missing", c.key)
			continue
		}
		if f.Baseline != c.baseline || f.Ratio == nil || math.Abs(*f.Ratio-c.ratio) > 1e-9 {
			t.Errorf("%s: baseline %q ratio %v, want %q %v", c.key, f.Baseline, f.Ratio, c.baseline, c.ratio)
		}
	}
	if f := got["Peers/tsa/sigstore-c1 replies/s"]; f.Baseline != "" || f.Value != 100 {
		t.Errorf("sigstore figure: %+v, want value 100 without baseline", f)
	}
}
