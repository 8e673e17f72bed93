package bench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/internal/firmadtest"
	"github.com/firma-cloud/firma/keystore"
)

// scaleState is the state folder 'firmactl init' made, with the binaries
// built for the curve.
type scaleState struct {
	dir      string // working folder of firmad and firmactl; the state is dir/var
	bin      string // firmad and firmactl
	cfg      *config.Config
	pin      string
	operator string // bearer token of the operator init configured
	runs     int
}

// newScaleState builds firmad and firmactl and makes the state with
// 'firmactl init --key-mode wrapped', as an operator would.
func newScaleState(t *testing.T, dir string) *scaleState {
	t.Helper()
	st := &scaleState{dir: dir, bin: t.TempDir()}
	if err := firmadtest.Build(st.bin); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "var")); err != nil {
		t.Fatal(err)
	}
	httpAddr := firmadtest.FreeAddr(t)
	cmd := exec.Command(filepath.Join(st.bin, "firmactl"), "init", "--state", "var", "--key-mode", "wrapped",
		"--listen-grpc", "127.0.0.1:0", "--listen-http", httpAddr, "--ca-base-url", "http://"+httpAddr)
	cmd.Dir = dir
	cmd.Env = firmadtest.CleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("firmactl init: %v\n%s", err, out)
	}
	st.cfg = config.Default()
	if err := st.cfg.LoadFilePartial(filepath.Join(dir, "var", "firmad.yaml")); err != nil {
		t.Fatal(err)
	}
	if st.cfg.HSM.KeyMode != string(keystore.ModeWrapped) || st.cfg.Store.Driver != "sqlite" {
		t.Fatalf("firmactl init wrote key mode %q, store %q: want wrapped keys in SQLite", st.cfg.HSM.KeyMode, st.cfg.Store.Driver)
	}
	for _, f := range []struct {
		path string
		to   *string
	}{{st.cfg.HSM.PINFile, &st.pin}, {filepath.Join("var", "operator.token"), &st.operator}} {
		b, err := os.ReadFile(st.path(f.path))
		if err != nil {
			t.Fatal(err)
		}
		*f.to = strings.TrimSpace(string(b))
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(dir, "var")) })
	return st
}

// path resolves a path of the config, relative to firmad's working folder.
func (st *scaleState) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(st.dir, p)
}

func (st *scaleState) storePath() string { return st.path(st.cfg.Store.Path) }

// storeBytes is the size of the SQLite file after its WAL is folded in,
// so that it counts the rows, not the churn of the last run, and the part
// of it the keys table and its indexes take (SQLite's dbstat).
func (st *scaleState) storeBytes(ctx context.Context) (int64, int64) {
	var keys int64
	if db, err := openScaleStore(ctx, st.storePath()); err == nil {
		db.SQL().ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
		db.SQL().QueryRowContext(ctx, `SELECT COALESCE(SUM(pgsize), 0) FROM dbstat
			WHERE name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'keys')`).Scan(&keys)
		db.Close()
	}
	var n int64
	for _, f := range []string{st.storePath(), st.storePath() + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n, keys
}

// enrol makes wrapped EC P-256 keys for citizens from..to-1 in batches,
// straight into the store firmad opens, on the token firmad uses, and
// returns how many it made. firmad is not running meanwhile.
func (st *scaleState) enrol(ctx context.Context, t *testing.T, from, to int) (int, error) {
	if conf := st.cfg.HSM.SoftHSM2Conf; conf != "" {
		// SoftHSM2 reads it when the module is loaded, just below.
		t.Setenv("SOFTHSM2_CONF", st.path(conf))
	}
	db, err := openScaleStore(ctx, st.storePath())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ks, err := keystore.Open(ctx, keystore.Config{Module: st.cfg.HSM.Module, TokenLabel: st.cfg.HSM.TokenLabel,
		PIN: st.pin, Mode: keystore.ModeWrapped, KEKLabel: st.cfg.HSM.KEKLabel}, db, nil)
	if err != nil {
		return 0, err
	}
	defer ks.Close()
	start, n := time.Now(), 0
	for i := from; i < to; {
		b := min(scaleEnrolBatch, to-i)
		owners := make([]string, b)
		for j := range owners {
			owners[j] = citizenID(i + j)
		}
		if _, err := ks.GenerateWrappedBatch(ctx, owners, keystore.ECP256); err != nil {
			return n, fmt.Errorf("at %d citizens: %w", i, err)
		}
		i, n = i+b, n+b
		if n%100000 == 0 {
			t.Logf("enrolled %d citizens (%.0f/s)", i, float64(n)/time.Since(start).Seconds())
		}
	}
	return n, nil
}

// firmad is one running firmad of the curve.
type firmad struct {
	cmd        *exec.Cmd
	grpc, http string
	log        string
	done       chan error // gets Wait's result once
	stopOnce   sync.Once
	stopErr    error
}

// start runs firmad on the state with hsm.cache_size set as asked (0
// leaves the default) and waits until it listens.
func (st *scaleState) start(t *testing.T, cacheSize int) (*firmad, error) {
	st.runs++
	d := &firmad{log: filepath.Join(st.dir, fmt.Sprintf("firmad-%d.log", st.runs))}
	logf, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // firmad has its own copy once started
	env := []string{"FIRMA_LISTEN_HTTP=" + firmadtest.FreeAddr(t)}
	if cacheSize != 0 {
		env = append(env, "FIRMA_HSM_CACHE_SIZE="+strconv.Itoa(cacheSize))
	}
	d.cmd = exec.Command(filepath.Join(st.bin, "firmad"), "-config", filepath.Join("var", "firmad.yaml"))
	d.cmd.Dir = st.dir
	d.cmd.Env = firmadtest.CleanEnv(env...)
	d.cmd.Stderr = logf
	p, err := firmadtest.Start(d.cmd, 2*time.Minute)
	if err != nil {
		b, _ := os.ReadFile(d.log)
		return nil, fmt.Errorf("%w\n%s", err, b)
	}
	d.grpc, d.http, d.done = p.GRPC, p.HTTP, p.Done
	return d, nil
}

// stop ends firmad with SIGTERM, as a service manager would.
func (d *firmad) stop() error {
	d.stopOnce.Do(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case d.stopErr = <-d.done:
		case <-time.After(60 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
			d.stopErr = fmt.Errorf("firmad did not stop within 60 s of SIGTERM")
		}
	})
	return d.stopErr
}

// counters scrapes firmad's /metrics for the keystore's unwrap and live
// key hit counters.
func (d *firmad) counters(ctx context.Context) (float64, float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.http+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /metrics: %w", err)
	}
	value := func(name string) float64 {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) == 0 {
			return 0
		}
		return f.GetMetric()[0].GetCounter().GetValue()
	}
	return value("firma_keystore_unwraps_total"), value("firma_keystore_live_key_hits_total"), nil
}

// procStatus reads VmRSS and VmHWM of a process, in bytes.
func procStatus(pid int) (int64, int64) {
	var rss, hwm int64
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// signRun starts firmad with the cache setting and drives SignDigests at
// it for random citizens from c.callers goroutines over one gRPC
// connection: c.warmup not counted, then c.signFor measured. A citizen is
// drawn by taking the first key ID after a random one through the
// store's index, so the bench holds no list of citizens. One signature in
// c.verify is verified under the public key the store holds.
func (st *scaleState) signRun(ctx context.Context, t *testing.T, c scaleConfig, cache int) (*scaleRun, error) {
	r := &scaleRun{Cache: cache, CacheSize: cache}
	if cache < 0 {
		r.CacheSize = -1 // hsm.cache_size -1: no cache, every signature unwraps
	}
	d, err := st.start(t, r.CacheSize)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	if r.CacheSize == 0 {
		r.CacheSize = config.Default().HSM.CacheSize
	}
	pid := d.cmd.Process.Pid
	r.RSSStart, _ = procStatus(pid)
	db, err := openScaleStore(ctx, st.storePath())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	conn, err := grpc.NewClient(d.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(api.BearerCredentials{Token: st.operator, Insecure: true}))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := firmav1.NewSigningServiceClient(conn)

	var (
		sigs, errs, ok, bad atomic.Int64
		firstErr            atomic.Value
		mu                  sync.Mutex
		lat                 []time.Duration
		wg                  sync.WaitGroup
	)
	fail := func(err error) {
		firstErr.CompareAndSwap(nil, err.Error())
		errs.Add(1)
	}
	begin := time.Now().Add(c.warmup)
	end := begin.Add(c.signFor)
	for w := range c.callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			from := make([]byte, 16)
			for n := w; time.Now().Before(end); n++ {
				rand.Read(from)
				keys, err := db.Keys(ctx, "", hex.EncodeToString(from), 1)
				if err == nil && len(keys) == 0 {
					keys, err = db.Keys(ctx, "", "", 1)
				}
				if err != nil || len(keys) == 0 {
					fail(fmt.Errorf("pick a citizen: %v", err))
					continue
				}
				if !strings.HasPrefix(keys[0].Owner, citizenPrefix) {
					// The service's own keys (CA, TSA, audit; RSA, on
					// the token) share the table: draw again.
					n--
					continue
				}
				digest := sha256.Sum256(from)
				t0 := time.Now()
				resp, err := client.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: keys[0].ID,
					Hash: firmav1.HashAlgorithm_HASH_ALGORITHM_SHA256, Digests: [][]byte{digest[:]}})
				t1 := time.Now()
				counted := !t0.Before(begin) && !t1.After(end)
				if err == nil && len(resp.GetSignatures()) != 1 {
					err = fmt.Errorf("%d signatures for one digest", len(resp.GetSignatures()))
				}
				if err != nil {
					fail(fmt.Errorf("key %s: %w", keys[0].ID, err))
					continue
				}
				if n%c.verify == 0 {
					pub, err := x509.ParsePKIXPublicKey(keys[0].PublicKey)
					if ep, isEC := pub.(*ecdsa.PublicKey); err == nil && isEC && ecdsa.VerifyASN1(ep, digest[:], resp.GetSignatures()[0]) {
						ok.Add(1)
					} else {
						bad.Add(1)
						t.Logf("signature does not verify: key %s, digest %x, signature %x, public key %x",
							keys[0].ID, digest, resp.GetSignatures()[0], keys[0].PublicKey)
					}
				}
				if counted {
					sigs.Add(1)
					mine = append(mine, t1.Sub(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(time.Until(begin))
	u0, h0, err := d.counters(ctx)
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Until(end))
	u1, h1, err := d.counters(ctx)
	if err != nil {
		return nil, err
	}
	wg.Wait()
	r.RSSBytes, r.HWMBytes = procStatus(pid)
	r.Signatures, r.Errors, r.Verified, r.Unverified = sigs.Load(), errs.Load(), ok.Load(), bad.Load()
	r.SignSeconds = c.signFor.Seconds()
	r.SignPerSecond = float64(r.Signatures) / r.SignSeconds
	r.Unwraps, r.CacheHits = u1-u0, h1-h0
	if v, ok := firstErr.Load().(string); ok {
		r.FirstError = v
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50Millis = float64(lat[len(lat)/2].Microseconds()) / 1000
		r.P99Millis = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	}
	if err := d.stop(); err != nil {
		b, _ := os.ReadFile(d.log)
		return nil, fmt.Errorf("stop firmad: %w\n%s", err, tail(b, 4096))
	}
	return r, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
