// Command report reads `go test -bench` output on standard input and writes
// every figure as one JSON object per line to standard output (make bench
// sends it to bench/out/latest.jsonl), with a table and the targets of the
// issues on standard error.
//
// A figure named like Sign/<key>/<variant> in sigs/s gets, as its
// baseline, Sign/<key>/raw-pkcs11 from the same run, and their ratio;
// Audit/<key>/on-<variant> (and flush- and tables-) gets
// Audit/<key>/off-<variant>.
// Other figures (TSA tokens/s, CAdES docs/s, transactions tx/s and their
// latencies) pass through with their own units.
// make bench runs the whole suite several times over (each run starts with
// a "goos:" line); a value is the median over the runs, and a ratio is the
// median of the ratios taken within each run, so that load that comes and
// goes on a shared machine weighs on both sides of a ratio alike.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// figure is one line of latest.jsonl.
type figure struct {
	Name     string   `json:"name"`
	Value    float64  `json:"value"`
	Unit     string   `json:"unit"`
	Baseline string   `json:"baseline,omitempty"`
	Ratio    *float64 `json:"ratio,omitempty"`
	Target   *float64 `json:"target,omitempty"`
	Runs     int      `json:"runs"`
	Time     string   `json:"time"`
}

// target is a ratio an issue asks for.
type target struct {
	name, baseline string
	min            float64
}

// targets of issue 2 (the foundation) and issue 6 (signing with the
// audit log on against off), for each key type.
func targets(key string) []target {
	raw := "Sign/" + key + "/raw-pkcs11"
	audit := "Audit/" + key + "/"
	var grpc1 []target
	if key == "ec-p256" {
		// Issue 18: one digest a call, unary and on a stream.
		grpc1 = []target{{"Sign/" + key + "/grpc-batch1", raw, 0.6}, {"Sign/" + key + "/grpc-stream-batch1", raw, 0.6}}
	}
	return append(grpc1, []target{
		{"Sign/" + key + "/core-batch1", raw, 0.9},
		{"Sign/" + key + "/core-batch64", raw, 0.9},
		{"Sign/" + key + "/grpc-batch64", raw, 0.8},
		{"Sign/" + key + "/wrapped-warm-batch1", "Sign/" + key + "/core-batch1", 0.9},
		// Issue 18: the cold wrapped path against raw C_UnwrapKey, C_Sign
		// and C_DestroyObject on the same sessions.
		{"Sign/" + key + "/wrapped-cold-batch1", "Sign/" + key + "/raw-unwrap-batch1", 0.9},
		{"Sign/" + key + "/wrapped-cold-batch64", "Sign/" + key + "/raw-unwrap-batch64", 0.9},
		{audit + "on-batch64", audit + "off-batch64", 0.9},
		{audit + "on-batch1", audit + "off-batch1", 0.9},
		{audit + "on-batch1-callers64", audit + "off-batch1-callers64", 0.9},
		{audit + "on-grpc-batch64", audit + "off-grpc-batch64", 0.9},
		{audit + "on-grpc-batch1", audit + "off-grpc-batch1", 0.9},
	}...)
}

// fireBaseline is what a FIRe batch is compared with: the same batch
// through /api/v1.
const fireBaseline = "FIReBatch/api-v1-10cades"

// docTargets are documents/s ratios issues ask for: XAdES-B-T against
// CAdES-B-T in the same run (issue 17).
var docTargets = map[string]target{
	"Formats/xades-bt": {"Formats/xades-bt", "Formats/cades-bt", 0.7},
}

// baselineOf is the figure a benchmark's value is compared with in the
// same run: raw C_Sign for the signing core, the same load with the audit
// log off for audited signing ("on-", "flush-" and "tables-" variants,
// their throughput and their CPU per signature); "" for none.
func baselineOf(name, unit string) string {
	if t, ok := docTargets[name]; ok && unit == "docs/s" {
		return t.baseline
	}
	parts := strings.Split(name, "/")
	if parts[0] == "Peers" && (unit == "replies/s" || unit == "p99-ms") {
		// Peers/<what>/firma-cN against Peers/<what>/<peer>-cN: the peer
		// is whichever other service ran at the same client count.
		if len(parts) == 3 && strings.HasPrefix(parts[2], "firma-") {
			return peerOf(name)
		}
		return ""
	}
	if unit == "cpu-µs/sig" && parts[0] == "Audit" {
		unit = "sigs/s" // CPU a signature costs with audit, against without
	}
	if unit != "sigs/s" {
		return ""
	}
	switch {
	case parts[0] == "FIReBatch" && name != fireBaseline:
		return fireBaseline
	case parts[0] == "Sign" && len(parts) > 1:
		return "Sign/" + parts[1] + "/raw-pkcs11"
	case parts[0] == "Audit" && len(parts) == 3:
		for _, p := range []string{"on-", "flush-", "tables-"} {
			if v, ok := strings.CutPrefix(parts[2], p); ok {
				return "Audit/" + parts[1] + "/off-" + v
			}
		}
	}
	return ""
}

// peerBaselines names the peer each Peers/<what> figure of firma is
// compared with.
var peerBaselines = map[string]string{"tsa": "sigstore"}

func peerOf(name string) string {
	parts := strings.Split(name, "/")
	peer, ok := peerBaselines[parts[1]]
	if !ok {
		return ""
	}
	return parts[0] + "/" + parts[1] + "/" + peer + strings.TrimPrefix(parts[2], "firma")
}

// peerTargets are issue 18's targets against sigstore's TSA: at least
// 1.5x its replies/s at 1, 4 and 16 clients, and a p99 at 16 clients no
// higher than its (a ratio of at most 1).
var peerTargets = []struct {
	target
	unit string
	max  bool // the ratio must be at most min
}{
	{target{"Peers/tsa/firma-c1", "Peers/tsa/sigstore-c1", 1.5}, "replies/s", false},
	{target{"Peers/tsa/firma-c4", "Peers/tsa/sigstore-c4", 1.5}, "replies/s", false},
	{target{"Peers/tsa/firma-c16", "Peers/tsa/sigstore-c16", 1.5}, "replies/s", false},
	{target{"Peers/tsa/firma-c16", "Peers/tsa/sigstore-c16", 1.0}, "p99-ms", true},
}

// A benchmark line: name-procs, iterations, then value/unit pairs.
var line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func main() {
	if err := run(os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out, tty io.Writer) error {
	values := map[string]map[string][]float64{}      // name -> unit -> runs
	byRun := map[string]map[string]map[int]float64{} // name -> unit -> run -> value
	var order []string
	run := 0
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "goos:") {
			run++
		}
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := m[1]
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			unit := f[i+1]
			if values[name] == nil {
				values[name] = map[string][]float64{}
				order = append(order, name)
			}
			values[name][unit] = append(values[name][unit], v)
			if byRun[name] == nil {
				byRun[name] = map[string]map[int]float64{}
			}
			if byRun[name][unit] == nil {
				byRun[name][unit] = map[int]float64{}
			}
			byRun[name][unit][run] = v
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark lines on standard input")
	}
	now := time.Now().UTC().Format(time.RFC3339)
	enc := json.NewEncoder(out)
	med := func(name, unit string) (float64, int, bool) {
		runs := values[name][unit]
		if len(runs) == 0 {
			return 0, 0, false
		}
		return median(runs), len(runs), true
	}
	// ratio is the median over runs of name/base in unit within the same
	// run.
	ratio := func(name, base, unit string) (float64, bool) {
		var rs []float64
		for r, v := range byRun[name][unit] {
			if b, ok := byRun[base][unit][r]; ok && b > 0 {
				rs = append(rs, v/b)
			}
		}
		if len(rs) == 0 {
			return 0, false
		}
		return median(rs), true
	}
	fmt.Fprintf(tty, "%-40s %14s %s\n", "benchmark", "value", "ratio to baseline")
	for _, name := range order {
		units := make([]string, 0, len(values[name]))
		for u := range values[name] {
			units = append(units, u)
		}
		sort.Strings(units)
		for _, unit := range units {
			v, n, _ := med(name, unit)
			fig := figure{Name: name, Value: v, Unit: unit, Runs: n, Time: now}
			ratioText := ""
			if base := baselineOf(name, unit); base != "" {
				if r, ok := ratio(name, base, unit); ok && base != name {
					fig.Baseline, fig.Ratio = base, &r
					ratioText = fmt.Sprintf("%.2fx %s", r, base)
				}
			}
			if unit == "ns/op" && (values[name]["sigs/s"] != nil || values[name]["replies/s"] != nil) {
				continue // sigs/s says the same, per signature
			}
			if err := enc.Encode(fig); err != nil {
				return err
			}
			fmt.Fprintf(tty, "%-40s %14.1f %-8s %s\n", name, v, unit, ratioText)
		}
	}
	fmt.Fprintln(tty, "\ntargets:")
	all := append(targets("ec-p256"), targets("rsa-2048")...)
	// Issue 14: a FIRe batch against the same batch through /api/v1.
	all = append(all, target{"FIReBatch/fire-10cades", fireBaseline, 0.9})
	for _, t := range all {
		r, ok := ratio(t.name, t.baseline, "sigs/s")
		if !ok {
			continue
		}
		min := t.min
		verdict := "met"
		if r < t.min {
			verdict = "MISSED"
		}
		fmt.Fprintf(tty, "  %-34s %.2fx %-28s (target %.1fx) %s\n", t.name, r, t.baseline, t.min, verdict)
		if err := enc.Encode(figure{Name: "target:" + t.name, Value: r, Unit: "ratio", Baseline: t.baseline,
			Ratio: &r, Target: &min, Time: now}); err != nil {
			return err
		}
	}
	for _, t := range peerTargets {
		r, ok := ratio(t.name, t.baseline, t.unit)
		if !ok {
			continue
		}
		limit := t.min
		verdict, bound := "met", "target"
		if t.max {
			bound = "at most"
			if r > t.min {
				verdict = "MISSED"
			}
		} else if r < t.min {
			verdict = "MISSED"
		}
		fmt.Fprintf(tty, "  %-34s %.2fx %-28s (%s %.1fx %s) %s\n", t.name, r, t.baseline, bound, t.min, t.unit, verdict)
		if err := enc.Encode(figure{Name: "target:" + t.name + ":" + t.unit, Value: r, Unit: "ratio", Baseline: t.baseline,
			Ratio: &r, Target: &limit, Time: now}); err != nil {
			return err
		}
	}
	for _, t := range docTargets {
		r, ok := ratio(t.name, t.baseline, "docs/s")
		if !ok {
			continue
		}
		min := t.min
		verdict := "met"
		if r < t.min {
			verdict = "MISSED"
		}
		fmt.Fprintf(tty, "  %-34s %.2fx %-28s (target %.1fx) %s\n", t.name, r, t.baseline, t.min, verdict)
		if err := enc.Encode(figure{Name: "target:" + t.name, Value: r, Unit: "ratio", Baseline: t.baseline,
			Ratio: &r, Target: &min, Time: now}); err != nil {
			return err
		}
	}
	return nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
