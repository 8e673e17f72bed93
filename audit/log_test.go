package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/store/testdb"
)

// Many goroutines appending at once lose nothing, each record lands once
// with its own sequence number, batches form, and the tree verifies.
func TestGroupCommitConcurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, audit.Options{Registerer: reg})
	const workers, each = 32, 40
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int64]string{}
	)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := sample(w*each + i)
				r.RequestID = "w" + string(rune('A'+w)) + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
				if err := e.log.Append(context.Background(), r); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := seen[r.Seq]; dup {
					t.Errorf("seq %d given to %s and %s", r.Seq, prev, r.RequestID)
				}
				seen[r.Seq] = r.RequestID
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	const n = workers * each
	if len(seen) != n || e.log.Size() != n {
		t.Fatalf("%d distinct seqs, log size %d; want %d", len(seen), e.log.Size(), n)
	}
	// Every acknowledged record is in the store under its seq.
	var stored int
	for cursor := int64(0); ; {
		page, err := e.log.Query(context.Background(), audit.Filter{Limit: 300, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			if seen[r.Seq] != r.RequestID {
				t.Errorf("stored record %d has request %q, appender got %q", r.Seq, r.RequestID, seen[r.Seq])
			}
			stored++
		}
		if cursor = page.Next; cursor == 0 {
			break
		}
	}
	if stored != n {
		t.Errorf("query returned %d records, want %d", stored, n)
	}
	cp := checkpoint(t, e.log)
	if _, err := audit.VerifyStore(context.Background(), e.db, e.keys, cp.Note); err != nil {
		t.Fatalf("verify after concurrent appends: %v", err)
	}
	batches := histogramCount(t, reg, "firma_audit_batch_records")
	if batches == 0 || batches >= n {
		t.Errorf("%d commits for %d records: group commit did not batch", batches, n)
	}
	t.Logf("%d records in %d commits", n, batches)
	if got := counterSum(t, reg, "firma_audit_appended_records_total"); got != n {
		t.Errorf("appended counter = %v, want %d", got, n)
	}
	// sample(i) is a key.used of 2 documents, PAdES with ecdsa-p256, when
	// i%5 is 0 or 1.
	for _, m := range gather(t, reg, "firma_audit_signatures_total").GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["algorithm"] != "ecdsa-p256" || labels["format"] != "pades" || labels["outcome"] != "success" || !strings.HasPrefix(labels["portal"], "portal-") {
			t.Errorf("signature series %v", labels)
		}
	}
	if got := counterSum(t, reg, "firma_audit_signatures_total"); got != n*2/5*2 {
		t.Errorf("signatures counter = %v, want %d", got, n*2/5*2)
	}
}

func gather(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	return gather(t, reg, name).GetMetric()[0].GetHistogram().GetSampleCount()
}

func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	var s float64
	for _, m := range gather(t, reg, name).GetMetric() {
		s += m.GetCounter().GetValue()
	}
	return s
}

// Records appended and acknowledged before the process dies are there
// when the log is opened again, and the log goes on where it stopped.
func TestReopenContinues(t *testing.T) {
	e := newEnv(t, audit.Options{})
	fill(t, e.log, 0, 10)
	c1 := checkpoint(t, e.log)
	e.log.Close()
	l, err := audit.Open(context.Background(), e.db, audit.Options{Origin: origin, Signer: e.signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Size() != 10 {
		t.Fatalf("reopened size %d, want 10", l.Size())
	}
	fill(t, l, 10, 25)
	c2, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.ConsistencyProof(context.Background(), c1.Size, c2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyConsistency(c1, c2, p); err != nil {
		t.Fatalf("checkpoint after reopen does not extend the one before: %v", err)
	}
	if err := l.Append(context.Background(), sample(1)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := l.Append(context.Background(), sample(1)); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
}

// Fail closed: when the store cannot commit, Append says so and the caller
// must refuse the operation.
func TestAppendFailsClosed(t *testing.T) {
	e := newEnv(t, audit.Options{})
	fill(t, e.log, 0, 3)
	// Make the database refuse writes as a full or read-only disk would.
	refuse, allow := []string{"CREATE TRIGGER refuse BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'disk full'); END"},
		[]string{"DROP TRIGGER refuse"}
	if e.b.Name == testdb.Postgres.Name {
		refuse = []string{`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END; $$`,
			"CREATE TRIGGER refuse BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION refuse()"}
		allow = []string{"DROP TRIGGER refuse ON audit_records"}
	}
	e.b.Exec(t, e.db, refuse...)
	err := e.log.Append(context.Background(), sample(3))
	if !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("append on a failing store: %v, want ErrUnavailable", err)
	}
	if e.log.Size() != 3 {
		t.Fatalf("size %d after a failed commit, want 3", e.log.Size())
	}
	e.b.Exec(t, e.db, allow...)
	fill(t, e.log, 3, 6)
	cp := checkpoint(t, e.log)
	if _, err := audit.VerifyStore(context.Background(), e.db, e.keys, cp.Note); err != nil {
		t.Fatalf("log after a failed commit: %v", err)
	}
}

func TestProofs(t *testing.T) {
	e := newEnv(t, audit.Options{})
	ctx := context.Background()
	var cps []*audit.Checkpoint
	for _, n := range []int{1, 2, 7, 8, 13, 32, 33} {
		fill(t, e.log, int(e.log.Size()), n)
		cps = append(cps, checkpoint(t, e.log))
	}
	recs, err := e.log.Query(ctx, audit.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cps {
		// Each checkpoint must verify with the auditor's key.
		if _, err := audit.OpenCheckpoint(c.Note, e.keys); err != nil {
			t.Fatalf("checkpoint %d: %v", c.Size, err)
		}
		for _, idx := range []int64{0, c.Size / 2, c.Size - 1} {
			p, err := e.log.InclusionProof(ctx, idx, c.Size)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := recs.Records[idx].Leaf()
			if err != nil {
				t.Fatal(err)
			}
			if err := audit.VerifyInclusion(c, idx, leaf, p); err != nil {
				t.Errorf("inclusion of %d in %d: %v", idx, c.Size, err)
			}
			other, _ := recs.Records[(idx+1)%c.Size].Leaf()
			if c.Size > 1 && audit.VerifyInclusion(c, idx, other, p) == nil {
				t.Errorf("inclusion of a different record at %d in %d verified", idx, c.Size)
			}
		}
	}
	for i := range cps {
		for j := i + 1; j < len(cps); j++ {
			p, err := e.log.ConsistencyProof(ctx, cps[i].Size, cps[j].Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := audit.VerifyConsistency(cps[i], cps[j], p); err != nil {
				t.Errorf("consistency %d -> %d: %v", cps[i].Size, cps[j].Size, err)
			}
			forged := *cps[i]
			forged.Root[0] ^= 1
			if audit.VerifyConsistency(&forged, cps[j], p) == nil {
				t.Errorf("consistency %d -> %d held for a different old root", cps[i].Size, cps[j].Size)
			}
		}
	}
	if _, err := e.log.InclusionProof(ctx, 40, 33); !errors.Is(err, audit.ErrRange) {
		t.Errorf("proof beyond the log: %v, want ErrRange", err)
	}
	if _, err := e.log.ConsistencyProof(ctx, 5, 99); !errors.Is(err, audit.ErrRange) {
		t.Errorf("consistency beyond the log: %v, want ErrRange", err)
	}
}

// The HSM-made checkpoint signature verifies, with our verifier and with
// openssl, and fails on any changed byte.
func TestCheckpointSignatureHSM(t *testing.T) {
	e := newEnv(t, audit.Options{})
	fill(t, e.log, 0, 5)
	c := checkpoint(t, e.log)
	if _, err := audit.OpenCheckpoint(c.Note, e.keys); err != nil {
		t.Fatalf("checkpoint signed in the HSM: %v", err)
	}
	text, sigs, _ := strings.Cut(string(c.Note), "\n\n")
	text += "\n"
	want := "firma.test/audit\n5\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
	if text != want {
		t.Errorf("checkpoint text %q, want %q", text, want)
	}
	// The signature line is "— name base64(keyhash || DER sig)": check the
	// DER signature with openssl against the HSM key's public key.
	fields := strings.Fields(sigs)
	if len(fields) != 3 || fields[0] != "—" || fields[1] != origin {
		t.Fatalf("signature line %q", sigs)
	}
	raw, err := base64.StdEncoding.DecodeString(fields[2])
	if err != nil || len(raw) < 8 {
		t.Fatalf("signature %q: %v", fields[2], err)
	}
	dir := t.TempDir()
	spki, err := x509.MarshalPKIXPublicKey(e.key.Public)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pub := write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	msg := write("text", []byte(text))
	sig := write("sig.der", raw[4:])
	out, err := exec.Command("openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, msg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl dgst -verify: %v\n%s", err, out)
	}
	// Key ID per C2SP signed-note type 0x02: SHA-256 of the SPKI.
	kh := sha256.Sum256(spki)
	if !bytes.Equal(raw[:4], kh[:4]) || e.signer.KeyHash() != uint32(kh[0])<<24|uint32(kh[1])<<16|uint32(kh[2])<<8|uint32(kh[3]) {
		t.Errorf("key id %x, want %x", raw[:4], kh[:4])
	}
	// Any changed byte of the text, or of the signature itself, fails. (The
	// signature is compared decoded: base64's unused low bits in its last
	// character carry nothing.)
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			continue
		}
		bad := bytes.Clone(c.Note)
		bad[i] ^= 0x01
		if _, err := audit.OpenCheckpoint(bad, e.keys); err == nil {
			t.Fatalf("checkpoint with text byte %d changed still verifies", i)
		}
	}
	rebuilt := text + "\n— " + origin + " " + base64.StdEncoding.EncodeToString(raw) + "\n"
	if _, err := audit.OpenCheckpoint([]byte(rebuilt), e.keys); err != nil {
		t.Fatalf("rebuilt checkpoint: %v", err)
	}
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		forged := text + "\n— " + origin + " " + base64.StdEncoding.EncodeToString(bad) + "\n"
		if _, err := audit.OpenCheckpoint([]byte(forged), e.keys); err == nil {
			t.Fatalf("checkpoint with signature byte %d changed still verifies", i)
		}
	}
	// note's own verifier (Ed25519) must not take our key for its own.
	if _, err := note.NewVerifier(e.vkey); err == nil {
		t.Error("note.NewVerifier accepted an ECDSA key")
	}
}

// Checkpoint is idempotent while the log does not grow.
func TestCheckpointOnlyWhenGrown(t *testing.T) {
	e := newEnv(t, audit.Options{})
	fill(t, e.log, 0, 3)
	a, b := checkpoint(t, e.log), checkpoint(t, e.log)
	if !bytes.Equal(a.Note, b.Note) {
		t.Error("a second checkpoint of the same size was signed")
	}
	fill(t, e.log, 3, 4)
	if c := checkpoint(t, e.log); c.Size != 4 {
		t.Errorf("checkpoint size %d, want 4", c.Size)
	}
	if n := e.b.QueryString(t, e.db, "SELECT CAST(COUNT(*) AS TEXT) FROM audit_checkpoints"); n != "2" {
		t.Errorf("%s checkpoints stored, want 2", n)
	}
	if _, err := tlog.TreeHash(0, nil); err != nil {
		t.Fatal(err)
	}
}

// Two logs on one database, as two nodes on a shared store: every append
// lands once, and the tree they build together verifies.
func TestTwoWriters(t *testing.T) {
	testdb.Each(t, testTwoWriters)
}

func testTwoWriters(t *testing.T, b testdb.Backend) {
	e := newEnvOn(t, b, audit.Options{})
	other, err := audit.Open(context.Background(), e.db, audit.Options{Node: "node-2", Origin: origin, Signer: e.signer})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		l := e.log
		if w%2 == 1 {
			l = other
		}
		wg.Go(func() {
			for i := 0; i < 25; i++ {
				if err := l.Append(context.Background(), sample(w*25+i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	size, err := e.db.AuditSize(context.Background())
	if err != nil || size != 400 {
		t.Fatalf("size %d, %v; want 400", size, err)
	}
	c, err := other.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != other.Size() {
		t.Fatalf("checkpoint %d, log %d", c.Size, other.Size())
	}
	if err := e.log.Append(context.Background(), sample(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.log.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyStore(context.Background(), e.db, e.keys)
	if err != nil || rep.Records != 401 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}
