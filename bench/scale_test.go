package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/store/sqlite"
)

// Environment of the scale curve ('make bench-scale'). It is not part of
// 'make test': a million wrapped keys take SoftHSM2 minutes (4-6 on 2 cores).
const (
	envScaleSteps   = "FIRMA_SCALE_STEPS"   // citizens after each step, e.g. 1000,100000,1000000
	envScaleSign    = "FIRMA_SCALE_SIGN"    // signing time per step and cache setting, Go duration; default 20s
	envScaleWarm    = "FIRMA_SCALE_WARMUP"  // signing before the measured time, not counted; default 3s
	envScaleOut     = "FIRMA_SCALE_OUT"     // JSON report path; default bench/out/scale.json
	envScaleDBDir   = "FIRMA_SCALE_DB_DIR"  // where the state (store, token) goes; default a temporary folder
	envScaleCache   = "FIRMA_SCALE_CACHE"   // hsm.cache_size settings to measure at each step, e.g. 0,-1
	envScaleCallers = "FIRMA_SCALE_CALLERS" // concurrent SignDigests callers; default 4 per HSM session
	envScaleVerify  = "FIRMA_SCALE_VERIFY"  // verify one signature in this many; default 16, 1 checks all
	scaleEnrolBatch = 1000                  // keys per GenerateWrappedBatch call (one store commit)
)

// scalePoint is one step of the curve: the enrolment that reached it and
// one signing run per cache setting.
type scalePoint struct {
	Citizens       int        `json:"citizens"`
	Enrolled       int        `json:"enrolled_in_step"`
	EnrolSeconds   float64    `json:"enrol_seconds"`
	EnrolPerSecond float64    `json:"enrol_per_second"`
	StoreBytes     int64      `json:"store_bytes"`               // SQLite file after enrolment, with earlier steps' audit records
	KeysBytes      int64      `json:"store_keys_bytes"`          // of which the keys table and its indexes
	StoreAfter     int64      `json:"store_after_signing_bytes"` // the file after this step's signing runs
	Runs           []scaleRun `json:"runs"`
}

// scaleRun is one firmad process signing at one step with one cache
// setting.
type scaleRun struct {
	Cache         int     `json:"cache"`          // as asked: 0 default, -1 none
	CacheSize     int     `json:"hsm_cache_size"` // what firmad was given
	Signatures    int64   `json:"signatures"`     // measured ones, after the warm-up
	SignSeconds   float64 `json:"sign_seconds"`   // measured time
	SignPerSecond float64 `json:"signatures_per_second"`
	Errors        int64   `json:"errors"`
	Verified      int64   `json:"verified"`               // sampled signatures checked under the citizen's key
	Unverified    int64   `json:"unverified"`             // sampled signatures that failed that check
	Unwraps       float64 `json:"unwraps"`                // firma_keystore_unwraps_total during the measured time
	CacheHits     float64 `json:"cache_hits"`             // firma_keystore_live_key_hits_total, same
	RSSStart      int64   `json:"firmad_rss_start_bytes"` // firmad once listening
	RSSBytes      int64   `json:"firmad_rss_bytes"`       // firmad after signing
	HWMBytes      int64   `json:"firmad_rss_peak_bytes"`  // VmHWM after signing
	P50Millis     float64 `json:"p50_ms"`
	P99Millis     float64 `json:"p99_ms"`
	RatioToFirst  float64 `json:"ratio_to_first"` // signatures/s against the first step, same cache setting
	FirstError    string  `json:"first_error,omitempty"`
}

// scaleConfig is the curve's settings, from the environment.
type scaleConfig struct {
	steps   []int
	caches  []int
	signFor time.Duration
	warmup  time.Duration
	callers int
	verify  int // one signature in this many is verified
	out     string
	dir     string
}

func scaleSettings(t *testing.T) scaleConfig {
	t.Helper()
	spec := os.Getenv(envScaleSteps)
	if spec == "" {
		t.Skipf("scale curve: set %s (make bench-scale)", envScaleSteps)
	}
	c := scaleConfig{signFor: 20 * time.Second, warmup: 3 * time.Second, out: os.Getenv(envScaleOut),
		dir: os.Getenv(envScaleDBDir)}
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || (len(c.steps) > 0 && n <= c.steps[len(c.steps)-1]) {
			t.Fatalf("%s=%q: want increasing positive counts", envScaleSteps, spec)
		}
		c.steps = append(c.steps, n)
	}
	cacheSpec := os.Getenv(envScaleCache)
	if cacheSpec == "" {
		cacheSpec = "0"
	}
	for _, f := range strings.Split(cacheSpec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < -1 {
			t.Fatalf("%s=%q: want cache sizes (0 the default, -1 none), comma-separated", envScaleCache, cacheSpec)
		}
		c.caches = append(c.caches, n)
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{envScaleSign, &c.signFor}, {envScaleWarm, &c.warmup}} {
		if v := os.Getenv(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x < 0 || (d.to == &c.signFor && x == 0) {
				t.Fatalf("%s=%q: want a duration", d.env, v)
			}
			*d.to = x
		}
	}
	// firmad's default hsm.sessions is two per core; four callers per
	// session keep every session busy while others wait on the network,
	// the audit log and the store.
	c.callers, c.verify = 4*keystore.DefaultSessions(), 16
	for _, d := range []struct {
		env string
		to  *int
	}{{envScaleCallers, &c.callers}, {envScaleVerify, &c.verify}} {
		if v := os.Getenv(d.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				t.Fatalf("%s=%q: want a positive count", d.env, v)
			}
			*d.to = n
		}
	}
	if c.out == "" {
		c.out = filepath.Join("out", "scale.json")
	}
	if c.dir == "" {
		c.dir = t.TempDir()
	}
	return c
}

// TestScaleCurve measures the firmad binary over a growing population of
// citizens in wrapped mode. It makes the state with 'firmactl init
// --key-mode wrapped' (SQLite store, SoftHSM2 token, KEK), and at each
// step enrols citizens in bulk into that store (GenerateWrappedBatch) up
// to the step's count, then, for each cache setting, starts firmad on the
// state, drives SignDigests for citizens drawn at random from many
// concurrent callers over gRPC with the operator's token, verifies a
// sample of the signatures under the citizen's public key, and reads
// firmad's resident memory from /proc. The figures are reported, not
// asserted (speed is never asserted in tests); correctness is: no call
// fails and every sampled signature verifies.
func TestScaleCurve(t *testing.T) {
	c := scaleSettings(t)
	ctx := context.Background()
	st := newScaleState(t, c.dir)
	t.Logf("state in %s; %d callers, %s signing (+%s warm-up) per run, cache settings %v",
		st.dir, c.callers, c.signFor, c.warmup, c.caches)

	var points []scalePoint
	enrolled := 0
	for _, target := range c.steps {
		start := time.Now()
		n, err := st.enrol(ctx, t, enrolled, target)
		if err != nil {
			t.Fatalf("enrol up to %d citizens: %v", target, err)
		}
		enrolTime := time.Since(start)
		enrolled = target
		p := scalePoint{Citizens: target, Enrolled: n, EnrolSeconds: enrolTime.Seconds(),
			EnrolPerSecond: float64(n) / enrolTime.Seconds()}
		p.StoreBytes, p.KeysBytes = st.storeBytes(ctx)
		t.Logf("%9d citizens: enrolled %d in %.1f s (%.0f keys/s), store %.1f MiB of which keys %.1f MiB",
			target, n, p.EnrolSeconds, p.EnrolPerSecond, float64(p.StoreBytes)/(1<<20), float64(p.KeysBytes)/(1<<20))
		for _, cache := range c.caches {
			r, err := st.signRun(ctx, t, c, cache)
			if err != nil {
				t.Fatalf("signing at %d citizens, cache %d: %v", target, cache, err)
			}
			r.RatioToFirst = 1
			if len(points) > 0 {
				for _, r0 := range points[0].Runs {
					if r0.Cache == cache && r0.SignPerSecond > 0 {
						r.RatioToFirst = r.SignPerSecond / r0.SignPerSecond
					}
				}
			}
			t.Logf("%9d citizens, hsm.cache_size %d: %.0f signatures/s (%.2fx), p50 %.1f ms, p99 %.1f ms, "+
				"unwraps %.0f, cache hits %.0f, firmad RSS %d MiB (start %d, peak %d), errors %d, verified %d, unverified %d",
				target, r.CacheSize, r.SignPerSecond, r.RatioToFirst, r.P50Millis, r.P99Millis, r.Unwraps, r.CacheHits,
				r.RSSBytes>>20, r.RSSStart>>20, r.HWMBytes>>20, r.Errors, r.Verified, r.Unverified)
			if r.FirstError != "" {
				t.Logf("first error: %s", r.FirstError)
			}
			if r.Errors != 0 || r.Unverified != 0 || r.Verified == 0 {
				t.Errorf("at %d citizens, cache %d: %d calls failed, %d of %d sampled signatures did not verify",
					target, cache, r.Errors, r.Unverified, r.Verified+r.Unverified)
			}
			p.Runs = append(p.Runs, *r)
		}
		p.StoreAfter, _ = st.storeBytes(ctx)
		points = append(points, p)
	}
	t.Log(scaleTable(points, c.caches))
	verdicts := map[string]string{}
	last := points[len(points)-1]
	for _, r := range last.Runs {
		v := "met"
		if r.RatioToFirst < 0.8 {
			v = "NOT met"
		}
		verdicts[strconv.Itoa(r.Cache)] = fmt.Sprintf("%s (%.2fx)", v, r.RatioToFirst)
		t.Logf("target (signatures/s at %d citizens >= 0.8x the figure at %d), hsm.cache_size %d: %s (%.2fx)",
			last.Citizens, points[0].Citizens, r.CacheSize, v, r.RatioToFirst)
	}
	if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(map[string]any{"time": time.Now().UTC(), "cores": runtime.NumCPU(),
		"process": "firmad", "api": "firma.v1.SigningService/SignDigests", "callers": c.callers,
		"key_type": keystore.ECP256, "sign_duration_seconds": c.signFor.Seconds(), "warmup_seconds": c.warmup.Seconds(),
		"verify_one_in": c.verify, "target_by_cache": verdicts, "points": points}, "", "  ")
	if err := os.WriteFile(c.out, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", c.out)
}

// scaleTable renders the curve as the Markdown table of docs/scale.md.
func scaleTable(points []scalePoint, caches []int) string {
	var b strings.Builder
	b.WriteString("\n| citizens | enrolment (keys/s) | keys in the store |")
	for _, c := range caches {
		fmt.Fprintf(&b, " sigs/s, %s | RSS, %s |", cacheName(c), cacheName(c))
	}
	b.WriteString("\n| ---: | ---: | ---: |")
	for range caches {
		b.WriteString(" ---: | ---: |")
	}
	for _, p := range points {
		fmt.Fprintf(&b, "\n| %s | %s | %.1f MiB |", thousands(p.Citizens), thousands(int(p.EnrolPerSecond)),
			float64(p.KeysBytes)/(1<<20))
		for _, r := range p.Runs {
			fmt.Fprintf(&b, " %s (%.2fx) | %d MiB |", thousands(int(r.SignPerSecond)), r.RatioToFirst, r.RSSBytes>>20)
		}
	}
	return b.String()
}

func cacheName(c int) string {
	switch c {
	case 0:
		return "default cache"
	case -1:
		return "no cache"
	}
	return fmt.Sprintf("cache %d", c)
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// citizenPrefix starts the owner of every key the curve enrols.
const citizenPrefix = "SCALE"

func citizenID(i int) string { return fmt.Sprintf("%s%07d", citizenPrefix, i) }

// openScaleStore opens the state's SQLite store as firmad does.
func openScaleStore(ctx context.Context, path string) (*sqlite.DB, error) {
	return sqlite.Open(ctx, path)
}
