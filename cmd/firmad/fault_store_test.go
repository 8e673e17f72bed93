package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store/sqlite"
)

// ready polls /readyz until it answers want and returns the body.
func ready(t *testing.T, d *daemon, want int, within time.Duration) string {
	t.Helper()
	var code int
	var body string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code, body = get(t, "http://"+d.http+"/readyz"); code == want {
			return body
		}
	}
	t.Fatalf("/readyz: %d %s, want %d", code, body, want)
	return ""
}

// problemShaped fails the test unless a REST error answer is a problem
// document with a stable code, and not a 500.
func problemShaped(t *testing.T, what string, code int, ctype string, body []byte) {
	t.Helper()
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	if code == http.StatusInternalServerError || !strings.HasPrefix(ctype, "application/problem+json") ||
		json.Unmarshal(body, &p) != nil || p.Code == "" || p.Status != code {
		t.Errorf("%s: %d %s %s, want a problem document with a code, not a 500", what, code, ctype, body)
	}
}

// TestStoreLockedFromOutside holds the SQLite write lock from another
// connection (another process would do the same) while a portal creates
// a transaction, another asks for a status and a citizen approves:
// /readyz names the store, the writes fail with a problem document after
// the store's busy timeout (or succeed once it lets go), never a bare
// 500; once the lock goes, /readyz passes, the approval goes through and
// the batch is signed; the audit log verifies and accounts for it. Cost:
// a firmad start and the store's 10 s busy timeout.
func TestStoreLockedFromOutside(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite")
	}
	s := newFaultState(t)
	d := s.run(t)
	s.createPortal(t, d)
	docs := batch("locked", 10)
	id := s.create(t, d, docs, "")
	a := s.signIn(t, d, id)
	ready(t, d, http.StatusOK, 20*time.Second)

	db, err := sqlite.Open(context.Background(), filepath.Join(s.dir, "var", "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lock, err := db.SQL().BeginTx(context.Background(), nil) // BEGIN IMMEDIATE
	if err != nil {
		t.Fatal(err)
	}
	locked := true
	release := func() {
		if locked {
			locked = false
			if err := lock.Rollback(); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer release()
	if body := ready(t, d, http.StatusServiceUnavailable, 20*time.Second); !strings.Contains(body, `"store":"fail"`) {
		t.Fatalf("/readyz with the store locked names no failed store check: %s", body)
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.http+"/api/v1/transactions",
			strings.NewReader(`{"subject_id":"`+faultCitizen+`","ok_url":"`+faultOK+`","error_url":"`+faultKO+`","documents":[{"name":"a.txt","media_type":"text/plain","content":"YQ==","format":"cades"}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", s.apiKey)
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			t.Errorf("create with the store locked: %v", err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			problemShaped(t, "create with the store locked", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		t.Logf("create with the store locked: %d %s", resp.StatusCode, body)
	})
	var approveCode int
	wg.Go(func() {
		code, _, err := a.approve("http://" + d.http)
		if err != nil {
			t.Errorf("approve with the store locked: %v", err)
		}
		approveCode = code
	})
	wg.Wait()
	if approveCode == http.StatusInternalServerError {
		t.Errorf("approve with the store locked: 500")
	}
	t.Logf("approve with the store locked: %d", approveCode)
	release()
	if body := ready(t, d, http.StatusOK, 20*time.Second); !strings.Contains(body, `"store":"ok"`) {
		t.Fatalf("/readyz after the lock went: %s", body)
	}
	st, err := s.txState(t, d, id)
	if err != nil {
		t.Fatal(err)
	}
	if st == "otp_sent" {
		// The approval was refused while the store could not take it: the
		// code still stands.
		if code, _, err := a.approve("http://" + d.http); err != nil || code != http.StatusSeeOther {
			t.Fatalf("approve after the lock went: %d %v", code, err)
		}
	}
	if st, _ := s.waitFinal(t, d, id, 30*time.Second); st != "done" {
		t.Fatalf("transaction ended %s\n%s", st, d.stderr)
	}
	checkSigned(t, s.result(t, d, id), docs, 2)
	// And a new transaction goes through end to end.
	docs2 := batch("after the lock", 5)
	id2 := s.create(t, d, docs2, "")
	a2 := s.signIn(t, d, id2)
	if code, _, err := a2.approve("http://" + d.http); err != nil || code != http.StatusSeeOther {
		t.Fatalf("approve: %d %v", code, err)
	}
	if st, _ := s.waitFinal(t, d, id2, 30*time.Second); st != "done" {
		t.Fatalf("transaction after the lock ended %s", st)
	}
	key := s.verifierKey(t, d)
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d\n%s", code, d.stderr)
	}
	s.checkAudit(t, key)
}
