package bench

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/firma-cloud/firma/transaction"
)

// txDocs is the batch size of the end-to-end figure.
const txDocs = 10

const txPassword = "Bench-Password-2026"

var txOTP = regexp.MustCompile(`Cl@ve Firma: (\d{6}) `)

// BenchmarkTransactions is the end-to-end figure of issue 4: approved
// signing transactions per second, each of txDocs documents, driven as a
// portal and a citizen would (create, sign in with the password, send the
// OTP, read it from the SMS outbox, approve, which signs), with p50/p99
// latency of a whole transaction. The raw PKCS#11 P-256 figure on the same
// token is measured in the same run for comparison.
//
// "argon2-default" signs in with the production password hash (argon2id,
// 64 MiB, 3 passes), which dominates; "argon2-light" (8 MiB, 1 pass)
// shows what the transaction machinery itself costs.
func BenchmarkTransactions(b *testing.B) {
	b.Run("raw-pkcs11", func(b *testing.B) { benchRaw(b, keystore.ECP256) })
	b.Run("approved-10docs-argon2-default", func(b *testing.B) { benchTransactions(b, registry.DefaultArgon2) })
	b.Run("approved-10docs-argon2-light", func(b *testing.B) {
		benchTransactions(b, registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1})
	})
}

// txBench is a whole signing service on the bench token.
type txBench struct {
	svc      *transaction.Service
	db       *sqlite.DB
	portal   *store.Portal
	apiKey   string
	citizens []string
}

var txCounter struct {
	sync.Mutex
	n int
}

func newTxBench(b *testing.B, kdf registry.Argon2, workers int) *txBench {
	b.Helper()
	f := setup(b)
	ctx := context.Background()
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "tx.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	ks, err := keystore.Open(ctx, keystore.Config{Module: f.tok.Module, TokenLabel: f.tok.Label, PIN: f.tok.PIN}, db, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ks.Close() })
	outbox, err := sms.NewOutbox(db, sms.OutboxOptions{})
	if err != nil {
		b.Fatal(err)
	}
	auth, err := ca.New(ca.Config{BaseURL: "http://127.0.0.1:1"}, ks, db, nil, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := auth.Init(ctx); err != nil {
		b.Fatal(err)
	}
	reg, err := registry.New(db, registry.Options{SMS: outbox, Argon2: kdf})
	if err != nil {
		b.Fatal(err)
	}
	auth.SetCitizens(reg)
	portals := portal.New(db, portal.Options{})
	p, err := portals.Create(ctx, portal.Spec{Name: "Bench portal", RedirectURLs: []string{"https://bench.example.es/ok"}, IssueAPIKey: true,
		Limits: portal.Limits{RatePerMin: 1_000_000}})
	if err != nil {
		b.Fatal(err)
	}
	// Signing is always audited: key.activated and key.used per
	// transaction, as in firmad.
	al, err := audit.Open(ctx, db, audit.Options{Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { al.Close() })
	sg, err := signing.New(signing.Options{Keys: ks, Core: signer.New(ks, signer.Config{}), CA: auth, Citizens: reg, Auditor: al})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := transaction.New(transaction.Options{Store: db, Portals: portals, Citizens: reg, Certificates: auth,
		Signing: sg, SMS: outbox, OTPKey: []byte("bench otp key, thirty-two bytes or more"),
		BaseURL: "https://firma.example.es"})
	if err != nil {
		b.Fatal(err)
	}
	tb := &txBench{svc: svc, db: db, portal: p.Portal, apiKey: p.APIKey}
	// One citizen per worker, so that the newest SMS to a number is always
	// that worker's code. Their certificates are issued here, not timed.
	for w := range workers {
		txCounter.Lock()
		txCounter.n++
		n := 40000000 + txCounter.n
		txCounter.Unlock()
		id := fmt.Sprintf("%08d%c", n, "TRWAGMYFPDXBNJZSQVHLCKE"[n%23])
		conf, err := reg.RegisterInPerson(ctx, registry.Staff{Name: "bench", Role: policy.Registrar}, registry.Person{ID: id,
			GivenName: "Carmen", Surnames: "Bench", Mobile: fmt.Sprintf("+3460%07d", n%10000000), Email: fmt.Sprintf("b%d@example.es", w)})
		if err != nil {
			b.Fatal(err)
		}
		if err := reg.SetPassword(ctx, id, conf.ActivationCode, txPassword); err != nil {
			b.Fatal(err)
		}
		if _, err := auth.EnsureCertificate(ctx, id); err != nil {
			b.Fatal(err)
		}
		tb.citizens = append(tb.citizens, id)
	}
	return tb
}

// one runs a whole transaction for the worker's citizen.
func (tb *txBench) one(ctx context.Context, w, seq int) error {
	citizen := tb.citizens[w]
	docs := make([]transaction.DocumentInput, txDocs)
	for i := range docs {
		var buf [16]byte
		binary.BigEndian.PutUint64(buf[:8], uint64(seq))
		binary.BigEndian.PutUint64(buf[8:], uint64(i))
		d := sha256.Sum256(append([]byte(citizen), buf[:]...))
		docs[i] = transaction.DocumentInput{Name: fmt.Sprintf("doc-%d", i), Digest: d[:], Format: signer.FormatRaw}
	}
	c, err := tb.svc.Create(ctx, tb.portal, transaction.CreateRequest{CitizenID: citizen, Documents: docs,
		OKURL: "https://bench.example.es/ok", ErrorURL: "https://bench.example.es/ok"})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	return tb.approve(ctx, c.ID, citizen)
}

// approve signs the citizen in to transaction id, sends the code, reads
// it from the outbox and approves, which signs.
func (tb *txBench) approve(ctx context.Context, id, citizen string) error {
	sess, err := tb.svc.Authenticate(ctx, id, citizen, txPassword)
	if err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	st, err := tb.svc.SendOTP(ctx, id, sess.Token)
	if err != nil {
		return fmt.Errorf("send otp: %w", err)
	}
	msgs, err := tb.db.SMSes(ctx, mobileOf(st.SentTo, citizen, tb), 1)
	if err != nil || len(msgs) == 0 {
		return fmt.Errorf("outbox: %v", err)
	}
	m := txOTP.FindStringSubmatch(msgs[0].Text)
	if m == nil {
		return fmt.Errorf("no code in the SMS")
	}
	if _, err := tb.svc.Approve(ctx, id, sess.Token, m[1]); err != nil {
		return fmt.Errorf("approve: %w", err)
	}
	// Signed by the workers, off the approving call: the figure is
	// approval to the end of signing, as before.
	if err := tb.svc.Wait(ctx, id); err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	v, err := tb.svc.View(ctx, id)
	if err != nil {
		return err
	}
	if v.State != transaction.StateDone || v.Summary != transaction.SummaryAllSigned {
		return fmt.Errorf("transaction ended %s/%s: %s", v.State, v.Summary, v.ErrorMessage)
	}
	return nil
}

// mobileOf is the citizen's full number (the status masks it).
func mobileOf(_ string, citizen string, tb *txBench) string {
	var n int
	fmt.Sscanf(citizen[:8], "%d", &n)
	return fmt.Sprintf("+3460%07d", n%10000000)
}

func benchTransactions(b *testing.B, kdf registry.Argon2) {
	workers := sessions()
	tb := newTxBench(b, kdf, workers)
	ctx := context.Background()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		seq       int
	)
	start := time.Now()
	runParallel(b, workers, txDocs, func(w int) error {
		mu.Lock()
		seq++
		s := seq
		mu.Unlock()
		t0 := time.Now()
		if err := tb.one(ctx, w, s); err != nil {
			return err
		}
		d := time.Since(t0)
		mu.Lock()
		latencies = append(latencies, d)
		mu.Unlock()
		return nil
	})
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "tx/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	if os.Getenv("FIRMA_BENCH_VERBOSE") != "" {
		b.Logf("%d transactions of %d documents on %d workers in %s", len(latencies), txDocs, workers, elapsed)
	}
}
