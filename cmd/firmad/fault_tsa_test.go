package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/firma-cloud/firma/internal/firmadtest"
	"github.com/firma-cloud/firma/verify/testpki"
)

// TestTSAFaultsDuringBatch signs B-T batches with an external TSA that is
// closed (nothing listens), hung (accepts and never answers) or slow
// (answers, through a proxy to a real TSA, after a delay below the
// timeout), firmad restarted between cases so that each starts with its
// breaker closed. Closed and hung end the batch failed, every document
// with timestamp_failed, within tsa.timeout × (tsa.retries + 1) — the
// breaker opens on the first timeout or refused connection, so the other
// documents do not wait — plus a margin for signing; slow ends signed
// within the documents' delays plus the margin. No transaction is left
// in signing, and the audit log verifies and accounts for every key use.
// Cost: about 15 s (a test PKI, three firmad starts, 2 s of hung timeout).
func TestTSAFaultsDuringBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite")
	}
	const (
		timeout = 2 * time.Second
		retries = 1
		delay   = 200 * time.Millisecond // the slow TSA's, per token
		n       = 10
		margin  = 15 * time.Second // signing and polling on a busy machine: generous, an upper bound only
	)
	pki := testpki.New(t)
	roots := testpki.WritePEM(t, t.TempDir(), "tsa-roots.pem", pki.TSARoot.Cert)

	// The TSA's address: nothing listens there for "closed"; the test
	// listens there for "hung" and "slow".
	addr := firmadtest.FreeAddr(t)
	s := newFaultState(t, [2]string{"    breaker_cooldown: 30s\n", fmt.Sprintf(
		"    breaker_cooldown: 30s\n    urls:\n        - http://%s/tsa\n    roots:\n        - %s\n", addr, roots)},
		[2]string{"    timeout: 10s\n    retries: 2\n", fmt.Sprintf("    timeout: %s\n    retries: %d\n", timeout, retries)},
		[2]string{"    policy: 0.4.0.2023.1.1\n", "    policy: 1.3.6.1.4.1.99999.1\n"}) // the test PKI's TSA's

	serve := func(t *testing.T, h http.HandlerFunc) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	cases := []struct {
		name  string
		serve func(t *testing.T)
		ok    bool
		bound time.Duration
	}{
		{"slow", func(t *testing.T) {
			serve(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				time.Sleep(delay)
				resp, err := http.Post(pki.TSAURL, r.Header.Get("Content-Type"), bytes.NewReader(body))
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				defer resp.Body.Close()
				w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
				w.WriteHeader(resp.StatusCode)
				io.Copy(w, resp.Body)
			})
		}, true, n*delay + margin},
		{"hung", func(t *testing.T) {
			serve(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-hung:
				case <-r.Context().Done():
				}
			})
		}, false, timeout*(retries+1) + margin},
		{"closed", func(*testing.T) {}, false, timeout*(retries+1) + margin},
	}
	var d *daemon
	outer := t // the last firmad outlives its subtest
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.serve(t)
			d = s.start(outer, s.env...)
			if s.apiKey == "" {
				s.createPortal(t, d)
			}
			docs := batch("tsa "+tc.name, n)
			for i := range docs {
				docs[i].format = "cades"
			}
			id := s.create(t, d, docs, "B-T")
			a := s.signIn(t, d, id)
			start := time.Now()
			if _, _, err := a.approve("http://" + d.http); err != nil {
				t.Fatalf("approve: %v", err)
			}
			st, _ := s.waitFinal(t, d, id, 2*tc.bound)
			took := time.Since(start)
			t.Logf("%s TSA: batch of %d ended %s %v after approval (bound %v)", tc.name, n, st, took.Round(time.Millisecond), tc.bound)
			if took > tc.bound {
				t.Errorf("the batch took %v, more than %v", took, tc.bound)
			}
			r := s.result(t, d, id)
			if tc.ok {
				if st != "done" {
					t.Fatalf("state %s, want done; first document: %+v\n%s", st, r.Documents[0], d.stderr)
				}
				checkSigned(t, r, docs, 2)
			} else {
				if st != "failed" {
					t.Fatalf("state %s, want failed", st)
				}
				for _, doc := range r.Documents {
					if doc.Status != "failed" || doc.ErrorCode != "timestamp_failed" {
						t.Errorf("document %d: %s %s, want failed timestamp_failed", doc.Index, doc.Status, doc.ErrorCode)
					}
				}
			}
			if tc.name != "closed" {
				if code := d.stop(t); code != 0 {
					t.Fatalf("firmad exit %d\n%s", code, d.stderr)
				}
			}
		})
	}
	if d == nil || d.cmd.ProcessState != nil {
		t.Fatal("no firmad left running")
	}
	key := s.verifierKey(t, d)
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d\n%s", code, d.stderr)
	}
	s.checkAudit(t, key)
}
