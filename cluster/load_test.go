package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment of 'make bench-load'.
const (
	envLoad        = "FIRMA_BENCH_LOAD"         // how long to load both nodes, e.g. 5m
	envLoadWorkers = "FIRMA_BENCH_LOAD_WORKERS" // transactions under way at once; default 8
	envLoadOut     = "FIRMA_BENCH_LOAD_OUT"     // folder of the JSON report and PNG plot; default ../bench/out
)

// TestLoad loads two nodes at once for FIRMA_BENCH_LOAD with
// 'firmactl bench' (which verifies every signature and fails on a lost or
// duplicated one), then checks the audit log both nodes wrote. It reports
// the nodes' resident memory. It is skipped unless FIRMA_BENCH_LOAD is set.
func TestLoad(t *testing.T) {
	spec := os.Getenv(envLoad)
	if spec == "" {
		t.Skipf("load test: set %s (make bench-load)", envLoad)
	}
	d, err := time.ParseDuration(spec)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a duration such as 5m", envLoad, spec)
	}
	workers := 8
	if v := os.Getenv(envLoadWorkers); v != "" {
		if workers, err = strconv.Atoi(v); err != nil || workers <= 0 {
			t.Fatalf("%s=%q", envLoadWorkers, v)
		}
	}
	out := os.Getenv(envLoadOut)
	if out == "" {
		out = filepath.Join("..", "bench", "out")
	}
	if out, err = filepath.Abs(out); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 2)
	key := c.portal(t)
	keyFile := filepath.Join(c.dir, "portal.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jsonOut, pngOut := filepath.Join(out, "load.json"), filepath.Join(out, "load.png")
	before := [2]int64{rss(c.nodes[0].cmd.Process.Pid), rss(c.nodes[1].cmd.Process.Pid)}
	text, code := c.run(t, []string{"FIRMA_TOKEN=" + c.token}, "bench", "--enrol",
		"--nodes", c.nodes[0].base()+","+c.nodes[1].base(), "--api-key-file", keyFile,
		"--duration", d.String(), "--workers", strconv.Itoa(workers), "--citizens", strconv.Itoa(8*workers),
		"--json", jsonOut, "--png", pngOut)
	t.Logf("firmactl bench:\n%s", text)
	after := [2]int64{rss(c.nodes[0].cmd.Process.Pid), rss(c.nodes[1].cmd.Process.Pid)}
	// The nodes' warnings and errors, for whoever reads a failed run.
	for i, n := range c.nodes {
		var b strings.Builder
		for _, l := range strings.Split(n.stderr.String(), "\n") {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				b.WriteString(l + "\n")
			}
		}
		os.WriteFile(filepath.Join(out, fmt.Sprintf("load-node-%d.log", i)), []byte(b.String()), 0o644)
	}

	if code != 0 {
		t.Fatalf("firmactl bench: exit %d (node logs in %s)", code, out)
	}
	b, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Transactions int `json:"transactions"`
		Failed       int `json:"failed"`
		Signatures   int `json:"signatures"`
		Duplicates   int `json:"duplicates"`
		Lost         int `json:"lost"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Transactions == 0 || rep.Failed != 0 || rep.Duplicates != 0 || rep.Lost != 0 || rep.Signatures != rep.Transactions {
		t.Fatalf("load: %+v", rep)
	}
	audit := c.verifyAudit(t)
	if !strings.Contains(audit, "audit export verified") {
		t.Fatalf("audit verify:\n%s", audit)
	}
	t.Logf("audit verify:\n%s", audit)
	for i := range c.nodes {
		t.Logf("node %d resident memory: %d MiB before, %d MiB after", i, before[i]>>20, after[i]>>20)
	}
	mem, _ := json.Marshal(map[string]any{"rss_before_bytes": before, "rss_after_bytes": after})
	if err := os.WriteFile(filepath.Join(out, "load-memory.json"), append(mem, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s, %s\n", jsonOut, pngOut)
}

// rss is the resident memory of process pid, from /proc.
func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
