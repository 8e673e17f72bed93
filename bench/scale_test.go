package bench

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
)

// Environment of the scale curve ('make bench-scale'). It is not part of
// 'make test': a million wrapped keys take SoftHSM2 minutes (4-6 on 2 cores).
const (
	envScaleSteps   = "FIRMA_SCALE_STEPS"  // citizens after each step, e.g. 1000,100000,1000000
	envScaleSign    = "FIRMA_SCALE_SIGN"   // signing time per step, Go duration; default 20s
	envScaleOut     = "FIRMA_SCALE_OUT"    // JSON report path; default bench/out/scale.json
	envScaleDBDir   = "FIRMA_SCALE_DB_DIR" // where the store goes; default a temporary folder
	envScaleCache   = "FIRMA_SCALE_CACHE"  // keystore CacheSize (live unwrapped keys); default the keystore's
	scaleEnrolBatch = 1000                 // keys per GenerateWrappedBatch call (one store commit)
)

// scalePoint is one step of the curve.
type scalePoint struct {
	Citizens       int     `json:"citizens"`
	Enrolled       int     `json:"enrolled_in_step"`
	EnrolSeconds   float64 `json:"enrol_seconds"`
	EnrolPerSecond float64 `json:"enrol_per_second"`
	Signatures     int64   `json:"signatures"`
	SignSeconds    float64 `json:"sign_seconds"`
	SignPerSecond  float64 `json:"signatures_per_second"`
	Errors         int64   `json:"errors"`
	Unverified     int64   `json:"unverified"`       // sampled signatures that failed verification
	RSSBytes       int64   `json:"signer_rss_bytes"` // the signing process, after signing
	HeapBytes      uint64  `json:"signer_heap_inuse_bytes"`
	EnrolRSSBytes  int64   `json:"enrol_rss_bytes"` // the enrolling process
	StoreBytes     int64   `json:"store_bytes"`
	RatioToFirst   float64 `json:"ratio_to_first"`
}

// TestScaleCurve enrols citizens in wrapped mode in bulk up to each step,
// then signs for random citizens and reports signatures/s and the resident
// memory of the process holding the keystore, the signing core and the
// store: the same parts, configured the same way, as firmad's signing path.
// The figures are reported, not asserted (speed is never asserted in
// tests); correctness is: every sampled signature verifies under the
// citizen's public key, and no signature fails.
func TestScaleCurve(t *testing.T) {
	spec := os.Getenv(envScaleSteps)
	if spec == "" {
		t.Skipf("scale curve: set %s (make bench-scale)", envScaleSteps)
	}
	var steps []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || (len(steps) > 0 && n <= steps[len(steps)-1]) {
			t.Fatalf("%s=%q: want increasing positive counts", envScaleSteps, spec)
		}
		steps = append(steps, n)
	}
	signFor := 20 * time.Second
	if v := os.Getenv(envScaleSign); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: %v", envScaleSign, v, err)
		}
		signFor = d
	}
	out := os.Getenv(envScaleOut)
	if out == "" {
		out = filepath.Join("out", "scale.json")
	}
	dbDir := os.Getenv(envScaleDBDir)
	if dbDir == "" {
		dbDir = t.TempDir()
	}

	cache := 0
	if v := os.Getenv(envScaleCache); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", envScaleCache, v, err)
		}
		cache = n
	}

	ctx := context.Background()
	tok := softhsmtest.New(t)
	dbPath := filepath.Join(dbDir, "scale.db")
	os.Remove(dbPath)
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defer os.Remove(dbPath)
	ks, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN,
		Mode: keystore.ModeWrapped, KEKLabel: "scale-kek"}, db, nil)
	if err == nil {
		t.Fatal("wrapped mode opened without a key-encryption key")
	}
	ks, err = keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN,
		KEKLabel: "scale-kek"}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.InitKEK(ctx); err != nil {
		t.Fatal(err)
	}
	ks.Close()
	ks, err = keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN,
		Mode: keystore.ModeWrapped, KEKLabel: "scale-kek", CacheSize: cache}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()

	// IDs kept as 16 raw bytes: at a million citizens a []string would
	// itself weigh on the resident memory being measured.
	ids := make([][16]byte, 0, steps[len(steps)-1])
	var points []scalePoint
	for _, target := range steps {
		start := time.Now()
		enrolled := 0
		for len(ids) < target {
			n := min(scaleEnrolBatch, target-len(ids))
			owners := make([]string, n)
			for i := range owners {
				owners[i] = citizenID(len(ids) + i)
			}
			keys, err := ks.GenerateWrappedBatch(ctx, owners, keystore.ECP256)
			if err != nil {
				t.Fatalf("enrol at %d citizens: %v", len(ids), err)
			}
			for _, k := range keys {
				var id [16]byte
				if _, err := hex.Decode(id[:], []byte(k.ID)); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			enrolled += n
			if enrolled%50000 < scaleEnrolBatch {
				t.Logf("enrolled %d citizens (%.0f/s)", len(ids), float64(enrolled)/time.Since(start).Seconds())
			}
		}
		enrolTime := time.Since(start)
		p := scalePoint{Citizens: len(ids), Enrolled: enrolled, EnrolSeconds: enrolTime.Seconds(),
			EnrolPerSecond: float64(enrolled) / enrolTime.Seconds()}
		// Signing runs in a process of its own that opens the token and
		// the store afresh, as a firmad node does: its resident memory is
		// that of the signing path at this many citizens, not of the
		// enrolment that came before.
		ch, err := signChild(t, tok, dbPath, cache, signFor)
		if err != nil {
			t.Fatalf("signing at %d citizens: %v", len(ids), err)
		}
		p.Signatures, p.Errors, p.SignSeconds, p.Unverified = ch.Signatures, ch.Errors, ch.Seconds, ch.Unverified
		p.SignPerSecond = float64(p.Signatures) / p.SignSeconds
		p.RSSBytes, p.HeapBytes = ch.RSS, ch.Heap
		p.EnrolRSSBytes = residentBytes()
		for _, f := range []string{dbPath, dbPath + "-wal"} {
			if fi, err := os.Stat(f); err == nil {
				p.StoreBytes += fi.Size()
			}
		}
		if len(points) > 0 {
			p.RatioToFirst = p.SignPerSecond / points[0].SignPerSecond
		} else {
			p.RatioToFirst = 1
		}
		points = append(points, p)
		t.Logf("%9d citizens: enrol %.0f/s, sign %.0f/s (%.2fx of %d), signer RSS %d MiB (Go heap %d MiB), store %d MiB, errors %d",
			p.Citizens, p.EnrolPerSecond, p.SignPerSecond, p.RatioToFirst, points[0].Citizens,
			p.RSSBytes>>20, p.HeapBytes>>20, p.StoreBytes>>20, p.Errors)
		if p.Errors != 0 || p.Unverified != 0 {
			t.Errorf("at %d citizens: %d signatures failed, %d did not verify", p.Citizens, p.Errors, p.Unverified)
		}
	}
	last := points[len(points)-1]
	verdict := "met"
	if last.RatioToFirst < 0.8 {
		verdict = "NOT met"
	}
	t.Logf("target (signatures/s at %d citizens >= 0.8x the figure at %d): %s (%.2fx)",
		last.Citizens, points[0].Citizens, verdict, last.RatioToFirst)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(map[string]any{"time": time.Now().UTC(), "cores": runtime.NumCPU(),
		"sessions": ks.Sessions(), "cache_size": cache, "key_type": keystore.ECP256, "sign_duration_seconds": signFor.Seconds(),
		"target": verdict, "points": points}, "", "  ")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}

func citizenID(i int) string { return fmt.Sprintf("SCALE%07d", i) }

// Environment of the signing child (set by signChild only).
const (
	envChild       = "FIRMA_SCALE_CHILD"
	envChildModule = "FIRMA_SCALE_CHILD_MODULE"
	envChildToken  = "FIRMA_SCALE_CHILD_TOKEN"
	envChildPIN    = "FIRMA_SCALE_CHILD_PIN"
	envChildDB     = "FIRMA_SCALE_CHILD_DB"
	envChildCache  = "FIRMA_SCALE_CHILD_CACHE"
	envChildFor    = "FIRMA_SCALE_CHILD_FOR"
)

// childResult is what the signing child prints, as one JSON line.
type childResult struct {
	Signatures int64   `json:"signatures"`
	Errors     int64   `json:"errors"`
	Unverified int64   `json:"unverified"`
	Seconds    float64 `json:"seconds"`
	RSS        int64   `json:"rss"`
	Heap       uint64  `json:"heap"`
	FirstError string  `json:"first_error,omitempty"`
}

// signChild runs TestScaleSignChild in a new process of this test binary
// and returns what it measured.
func signChild(t *testing.T, tok *softhsmtest.Token, dbPath string, cache int, d time.Duration) (*childResult, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestScaleSignChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"=1", envChildModule+"="+tok.Module, envChildToken+"="+tok.Label,
		envChildPIN+"="+tok.PIN, envChildDB+"="+dbPath, envChildCache+"="+strconv.Itoa(cache), envChildFor+"="+d.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w\n%s%s", err, out, stderr.String())
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "SCALE-RESULT "); ok {
			var r childResult
			if err := json.Unmarshal([]byte(v), &r); err != nil {
				return nil, err
			}
			if r.FirstError != "" {
				t.Logf("signing child: first error: %s", r.FirstError)
			}
			return &r, nil
		}
	}
	return nil, fmt.Errorf("no result from the signing child:\n%s%s", out, stderr.String())
}

// TestScaleSignChild is the signing half of the scale curve, run by
// signChild in a process of its own: it opens the keystore (wrapped mode)
// and the store as firmad does, and signs one SHA-256 digest at a time for
// citizens drawn at random, from twice as many goroutines as sessions,
// for the given time. A citizen is drawn by taking the first key ID at or
// after a random one, through the store's index: nothing holds the list of
// citizens in memory. One signature in 16 is verified.
func TestScaleSignChild(t *testing.T) {
	if os.Getenv(envChild) == "" {
		t.Skip("run by TestScaleCurve")
	}
	ctx := context.Background()
	d, err := time.ParseDuration(os.Getenv(envChildFor))
	if err != nil {
		t.Fatal(err)
	}
	cache, _ := strconv.Atoi(os.Getenv(envChildCache))
	db, err := sqlite.Open(ctx, os.Getenv(envChildDB))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ks, err := keystore.Open(ctx, keystore.Config{Module: os.Getenv(envChildModule), TokenLabel: os.Getenv(envChildToken),
		PIN: os.Getenv(envChildPIN), Mode: keystore.ModeWrapped, KEKLabel: "scale-kek", CacheSize: cache}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	core := signer.New(ks, signer.Config{})
	var sigs, errs, bad atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for range 2 * ks.Sessions() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			digest := make([]byte, 32)
			from := make([]byte, 16)
			for n := 0; time.Now().Before(deadline); n++ {
				rand.Read(from)
				keys, err := db.Keys(ctx, "", hex.EncodeToString(from), 1)
				if err == nil && len(keys) == 0 {
					keys, err = db.Keys(ctx, "", "", 1)
				}
				if err != nil || len(keys) == 0 {
					firstErr.CompareAndSwap(nil, fmt.Sprintf("pick a citizen: %v", err))
					errs.Add(1)
					continue
				}
				rand.Read(digest)
				out, err := core.Sign(ctx, signer.Request{KeyID: keys[0].ID, Scheme: keystore.ECDSA,
					Hash: crypto.SHA256, Digests: [][]byte{digest}})
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					errs.Add(1)
					continue
				}
				if n%16 == 0 {
					pub, err := x509.ParsePKIXPublicKey(keys[0].PublicKey)
					if ep, ok := pub.(*ecdsa.PublicKey); err != nil || !ok || !ecdsa.VerifyASN1(ep, digest, out[0]) {
						bad.Add(1)
					}
				}
				sigs.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := childResult{Signatures: sigs.Load(), Errors: errs.Load(), Unverified: bad.Load(), Seconds: secs,
		RSS: residentBytes(), Heap: ms.HeapInuse}
	if v, ok := firstErr.Load().(string); ok {
		r.FirstError = v
	}
	b, _ := json.Marshal(r)
	fmt.Printf("SCALE-RESULT %s\n", b)
}

// residentBytes is VmRSS of this process.
func residentBytes() int64 {
	f, err := os.Open("/proc/self/status")
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
