package bench

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/transaction"
)

// cscBatch is the size of the CSC-against-portal comparison.
const cscBatch = 64

// BenchmarkCSCBatch compares, in the same run on the same token and
// store (e2e/stack: SoftHSM2, SQLite, the audit log), signing 64 digests
// by signatures/signHash with a valid credential-scope token (the SAD the
// OAuth server issues after the citizen's consent) against the same 64
// digests through the portal batch API (a transaction of 64 digest
// documents, approved with the SMS code). Only the signing call is timed:
// signHash, and the transaction's Approve (code check, signing, results);
// the token, the transaction, the sign-in and the SMS are made with the
// timer stopped. Both are in-process calls of the domain services, so the
// figure compares the two ways through the one signing path, not HTTP.
// Issue 15's target: csc at least 0.9 of the portal's signatures/s.
func BenchmarkCSCBatch(b *testing.B) {
	s := stack.New(b, stack.Options{OAuth: true})
	ctx := context.Background()
	citizen := s.Advanced(45454545, "Marta", "Bench Csc")
	cred := s.Certificate(citizen).ID
	p, err := s.Portals.Create(ctx, portal.Spec{Name: "Bench CSC", RedirectURLs: []string{"https://bench.example.es/ok"}, IssueAPIKey: true,
		Limits: portal.Limits{MaxDocuments: cscBatch, RatePerMin: 1_000_000}})
	if err != nil {
		b.Fatal(err)
	}
	seq := 0
	digests := func() [][]byte {
		out := make([][]byte, cscBatch)
		for i := range out {
			var buf [16]byte
			binary.BigEndian.PutUint64(buf[:8], uint64(seq))
			binary.BigEndian.PutUint64(buf[8:], uint64(i))
			d := sha256.Sum256(buf[:])
			out[i] = d[:]
		}
		seq++
		return out
	}
	caller := csc.Caller{ID: p.Portal.ID, Name: p.Portal.Name}

	b.Run("csc-signhash-64", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			ds := digests()
			a, err := s.CSC.IssueSAD(ctx, caller, cred, citizen, "2.16.840.1.101.3.4.2.1", ds)
			if err != nil {
				b.Fatal(err)
			}
			b64 := make([]string, len(ds))
			for i, d := range ds {
				b64[i] = base64.StdEncoding.EncodeToString(d)
			}
			tokCaller := csc.Caller{ID: p.Portal.ID, Name: p.Portal.Name, Token: a.SAD, Citizen: citizen}
			b.StartTimer()
			sigs, err := s.CSC.SignHash(ctx, tokCaller, csc.SignHashRequest{CredentialID: cred, Hashes: b64,
				HashAlgorithm: "2.16.840.1.101.3.4.2.1", SignAlgo: "1.2.840.10045.4.3.2"})
			if err != nil || len(sigs) != cscBatch {
				b.Fatalf("signHash: %d signatures, %v", len(sigs), err)
			}
		}
		b.ReportMetric(float64(b.N*cscBatch)/b.Elapsed().Seconds(), "signatures/s")
	})

	b.Run("portal-batch-64", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			ds := digests()
			docs := make([]transaction.DocumentInput, len(ds))
			for i, d := range ds {
				docs[i] = transaction.DocumentInput{Name: fmt.Sprintf("doc-%d", i), Digest: d, Format: signer.FormatRaw}
			}
			c, err := s.Tx.Create(ctx, p.Portal, transaction.CreateRequest{CitizenID: citizen, Documents: docs,
				OKURL: "https://bench.example.es/ok", ErrorURL: "https://bench.example.es/ok"})
			if err != nil {
				b.Fatal(err)
			}
			sess, err := s.Tx.Authenticate(ctx, c.ID, citizen, stack.Password)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Tx.SendOTP(ctx, c.ID, sess.Token); err != nil {
				b.Fatal(err)
			}
			code, _ := s.LastOTP(citizen)
			b.StartTimer()
			if _, err := s.Tx.Approve(ctx, c.ID, sess.Token, code); err != nil {
				b.Fatalf("approve: %v", err)
			}
			// Signed by the workers, off the approving call: timed to the end.
			if err := s.Tx.Wait(ctx, c.ID); err != nil {
				b.Fatalf("signing: %v", err)
			}
			v, err := s.Tx.View(ctx, c.ID)
			if err != nil || v.State != transaction.StateDone || v.Summary != transaction.SummaryAllSigned {
				b.Fatalf("approve: %v %+v", err, v)
			}
		}
		b.ReportMetric(float64(b.N*cscBatch)/b.Elapsed().Seconds(), "signatures/s")
	})
}
