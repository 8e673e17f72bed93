package bench

import (
	"context"
	"crypto"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/internal/cputime"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store/sqlite"
)

// BenchmarkAudit measures signing throughput with the audit log off and on
// in the same run (issue 6 asks on >= 0.9x off): "on" commits a key.used
// record with every document's digest before the signatures are handed
// back, as firmad does, group-committed to SQLite's audit journal and moved
// into its tables in bulk; "flush" also fsyncs every batch
// (audit.Options.Flush), so that records survive a power cut and not only
// a killed process; "tables" commits every batch straight into the tables
// (audit.journal: false).
func BenchmarkAudit(b *testing.B) {
	for _, t := range []keystore.Type{keystore.ECP256, keystore.RSA2048} {
		b.Run(string(t), func(b *testing.B) {
			for _, v := range []struct {
				name           string
				batch, callers int
			}{
				{"batch1", 1, 2 * sessions()},
				{"batch64", 64, 2 * sessions()},
				// A service has many requests in flight, each waiting on its
				// commit: with more callers, group commit batches more.
				{"batch1-callers64", 1, 64},
			} {
				modes := []auditMode{auditOff, auditOn, auditFlush}
				if v.batch == 1 {
					modes = append(modes, auditTables) // where the journal matters
				}
				for _, m := range modes {
					b.Run(string(m)+"-"+v.name, func(b *testing.B) { benchAudit(b, t, v.batch, v.callers, m) })
				}
			}
			// The service as operators reach it: SignDigests over gRPC,
			// each call a key.activated and a key.used record (package
			// signing), or with the records discarded as the baseline.
			for _, batch := range []int{1, 64} {
				name := fmt.Sprintf("grpc-batch%d", batch)
				b.Run("off-"+name, func(b *testing.B) { benchGRPCWith(b, t, batch, false) })
				b.Run("on-"+name, func(b *testing.B) { benchGRPCWith(b, t, batch, true) })
			}
		})
	}
}

// auditMode is how benchAudit keeps the log.
type auditMode string

const (
	auditOff    auditMode = "off"    // no audit log
	auditOn     auditMode = "on"     // firmad's default: group commit through the SQLite journal
	auditFlush  auditMode = "flush"  // and an fsync every commit (audit.flush)
	auditTables auditMode = "tables" // group commit straight into the tables (audit.journal: false)
)

func benchAudit(b *testing.B, t keystore.Type, batch, callers int, mode auditMode) {
	f := setup(b)
	ks, st, err := f.open(keystore.ModeToken, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	defer ks.Close()
	core := signer.New(ks, signer.Config{})
	key := f.token[t]
	req := signer.Request{KeyID: key.ID, Scheme: schemeOf(t), Hash: crypto.SHA256, Digests: batchOf(batch)}
	ctx := context.Background()
	on := mode != auditOff
	var (
		l  *audit.Log
		db *sqlite.DB
	)
	if on {
		// Its own database file, apart from the key store's.
		db = auditDB(b, mode == auditTables)
		if l, err = audit.Open(ctx, db, audit.Options{Node: "bench", Flush: mode == auditFlush}); err != nil {
			b.Fatal(err)
		}
		defer l.Close()
	}
	docs := make([]audit.Document, batch)
	for i, d := range req.Digests {
		docs[i] = audit.Digest(crypto.SHA256, d)
	}
	if _, err := core.Sign(ctx, req); err != nil { // warm the caches
		b.Fatal(err)
	}
	cpu0 := cputime.Process()
	runParallel(b, callers, batch, func(int) error {
		if _, err := core.Sign(ctx, req); err != nil || !on {
			return err
		}
		return l.Append(ctx, &audit.Record{
			Event: audit.KeyUsed, Outcome: audit.Success, Actor: audit.Actor{Role: audit.RolePortal, ID: "bench-portal"},
			Citizen: "bench-citizen", Portal: "bench-portal", KeyID: key.ID, Documents: docs,
			Details: map[string]string{audit.DetailAlgorithm: string(t), audit.DetailFormat: "raw"},
		})
	})
	if on {
		// The records still in the journal move now, inside the figure.
		l.Close()
		if _, err := db.AuditRecords(ctx, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
	// CPU per signature, SoftHSM2's included (it runs in the process): on
	// minus off is what audit costs, whatever else the machine runs.
	b.ReportMetric(float64(cputime.Process()-cpu0)/1e3/float64(b.N*batch), "cpu-µs/sig")
}

// auditDB opens a SQLite database for the audit log as firmad does: its
// appends go through the journal (audit.journal, on by default), unless
// tables asks for commits straight into the tables.
func auditDB(b *testing.B, tables bool) *sqlite.DB {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if !tables {
		if err := db.JournalAudit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return db
}
