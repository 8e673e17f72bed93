package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store/sqlite"
)

// TestHSMOutageRecovers moves the SoftHSM2 token's directory away from a
// running firmad and back: meanwhile /readyz fails naming the hsm check
// and an approved transaction is not failed; once the token is back,
// /readyz passes again and the transaction ends signed, without a restart.
// Then the store's write lock is held from outside: /readyz fails naming
// the store, and passes once it is let go. Cost: a firmad start and about
// 15 s of polling.
func TestHSMOutageRecovers(t *testing.T) {
	s := initState(t)
	s.firmactl(t, 0, "demo", "seed", "--state", "var")
	d := s.start(t)
	checked := false
	defer func() {
		if !checked {
			d.stop(t)
		}
	}()
	addr := "--addr=" + d.grpc
	base := "http://" + d.http
	const okURL, errURL, citizen = "https://portal.example.es/ok", "https://portal.example.es/error", "10000002Q"
	m := webAPIKeyRe.FindStringSubmatch(s.firmactl(t, 0, "portals", "create", "--name", "Portal", "--redirect", okURL, "--redirect", errURL, addr))
	if m == nil {
		t.Fatal("no API key")
	}
	apiKey := m[1]
	sum := sha256.Sum256([]byte("documento\n"))
	body, _ := json.Marshal(map[string]any{"subject_id": citizen, "ok_url": okURL, "error_url": errURL,
		"documents": []map[string]any{{"name": "doc.txt", "digest": sum[:], "hash": "sha256", "format": "raw"}}})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/transactions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	var created struct {
		ID string `json:"transaction_id"`
	}
	if code := webJSON(t, req, &created); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	state := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/transactions/"+created.ID, nil)
		req.Header.Set("X-API-Key", apiKey)
		var res struct {
			State string `json:"state"`
		}
		webJSON(t, req, &res)
		return res.State
	}
	// ready polls /readyz until it answers want (the answer is cached for
	// a second, and the keystore backs off up to 4 s between looks).
	ready := func(want int) string {
		t.Helper()
		var code int
		var body string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if code, body = get(t, base+"/readyz"); code == want {
				return body
			}
		}
		t.Fatalf("/readyz: %d %s, want %d", code, body, want)
		return ""
	}
	ready(http.StatusOK)

	// Signed in and sent the code while the token is there.
	b := newBrowser(t, base)
	signPath := "/sign/" + created.ID
	_, html, _ := b.page(http.MethodGet, signPath, nil)
	code, html, loc := b.page(http.MethodPost, signPath+"/login", url.Values{"csrf": {b.csrf(html)}, "citizen": {citizen}, "password": {"Firma-Demo-2026"}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", code, html)
	}
	_, html, _ = b.page(http.MethodGet, loc, nil)
	sm := webSMSCodeRe.FindStringSubmatch(s.firmactl(t, 0, "sms", "outbox", "--to", "+34600000002", "--limit", "1", addr))
	if sm == nil {
		t.Fatal("no code in the outbox")
	}

	tokens := ""
	filepath.WalkDir(s.dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() && e.Name() == "tokens" {
			tokens = p
		}
		return nil
	})
	ents, err := os.ReadDir(tokens)
	if err != nil || len(ents) != 1 {
		t.Fatalf("token folder %q: %v %v", tokens, ents, err)
	}
	tokDir, away := filepath.Join(tokens, ents[0].Name()), filepath.Join(s.dir, "token-away")
	if err := os.Rename(tokDir, away); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := os.Rename(away, tokDir); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	if body := ready(http.StatusServiceUnavailable); !strings.Contains(body, `"hsm":"fail"`) {
		t.Fatalf("/readyz with the token away names no failed hsm check: %s", body)
	}

	// Approved while the token is away: the OTP is spent, the signature
	// cannot be made yet, and the transaction must not fail for it.
	b.page(http.MethodPost, signPath+"/approve", url.Values{"csrf": {b.csrf(html)}, "otp": {sm[1]}})
	if st := state(); st != "approved" && st != "signing" {
		t.Fatalf("transaction approved with the token away is %q, want approved or signing", st)
	}
	time.Sleep(2500 * time.Millisecond) // a resume try with the token still away
	if st := state(); st != "approved" && st != "signing" {
		t.Fatalf("transaction after a resume try with the token away is %q, want approved or signing", st)
	}

	restore()
	if body := ready(http.StatusOK); !strings.Contains(body, `"hsm":"ok"`) {
		t.Fatalf("/readyz after the token came back: %s", body)
	}
	var st string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if st = state(); st == "done" || st == "failed" {
			break
		}
	}
	if st != "done" {
		t.Fatalf("transaction after the token came back is %q, want done\n%s", st, d.stderr)
	}

	// The store: another process holding the SQLite write lock leaves
	// reads working, and readiness must still fail until it lets go.
	db, err := sqlite.Open(context.Background(), filepath.Join(s.dir, "var", "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.SQL().BeginTx(context.Background(), nil) // BEGIN IMMEDIATE
	if err != nil {
		t.Fatal(err)
	}
	if body := ready(http.StatusServiceUnavailable); !strings.Contains(body, `"store":"fail"`) {
		tx.Rollback()
		t.Fatalf("/readyz with the store locked names no failed store check: %s", body)
	}
	tx.Rollback()
	if body := ready(http.StatusOK); !strings.Contains(body, `"store":"ok"`) {
		t.Fatalf("/readyz after the store lock went: %s", body)
	}
	// Nothing lost to the outage: every document signed through it has
	// exactly one key.used, every activation cut short by it is resumed.
	checked = true
	s.checkSigned(t, d)
}
