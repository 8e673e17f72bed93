package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var portalKeyLineRe = regexp.MustCompile(`(?m)^api key\s+(\S+\.\S+)`)

// restCreate posts a transaction as the portal and returns the status and
// the decoded body.
func restCreate(t *testing.T, base, key, subject string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"subject_id": subject, "ok_url": "http://127.0.0.1:9/ok", "error_url": "http://127.0.0.1:9/ko",
		"documents": []map[string]any{{"name": "solicitud.txt", "media_type": "text/plain", "content": []byte("Solicitud 2026/0042\n")}}})
	req, _ := http.NewRequest("POST", base+"/api/v1/transactions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("POST /api/v1/transactions: %d %s", resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// TestTransactionsThroughFirmad drives the portal side of firmad as built:
// a portal registered with firmactl creates transactions over REST for
// every sandbox citizen, each refused with its stable code or accepted;
// an accepted one survives a restart of firmad and is cancelled with
// firmactl.
func TestTransactionsThroughFirmad(t *testing.T) {
	s := initState(t)
	s.firmactl(t, 0, "demo", "seed", "--state", "var")
	d := s.start(t)
	addr := "--addr=" + d.grpc
	out := s.firmactl(t, 0, "portals", "create", addr, "--name", "Sede de pruebas", "--redirect", "http://127.0.0.1:9/ok",
		"--redirect", "http://127.0.0.1:9/ko", "--max-documents", "5")
	m := portalKeyLineRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("portals create printed no API key:\n%s", out)
	}
	key := m[1]
	keyFile := filepath.Join(s.dir, "portal.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if list := s.firmactl(t, 0, "portals", "list", addr); !strings.Contains(list, "Sede de pruebas") || strings.Contains(list, key) {
		t.Fatalf("portals list:\n%s", list)
	}
	base := "http://" + d.http
	for _, tc := range []struct {
		subject string
		status  int
		code    string
	}{
		{"10000003V", 422, "weak_registration"},
		{"10000004H", 422, "credential_locked"},
		{"10000005L", 422, "certificate_blocked"},
		{"99999999R", 422, "unknown_citizen"},
		{"10000001S", 201, ""},
	} {
		status, body := restCreate(t, base, key, tc.subject)
		if status != tc.status || (tc.code != "" && body["code"] != tc.code) {
			t.Errorf("%s: %d %v, want %d %s", tc.subject, status, body, tc.status, tc.code)
		}
	}
	status, body := restCreate(t, base, key, "10000002Q")
	if status != 201 {
		t.Fatalf("create for a citizen without a certificate yet: %d %v", status, body)
	}
	id, _ := body["transaction_id"].(string)
	// The listener's port is chosen at start (127.0.0.1:0) and no
	// public_url is set, so only the path is known here.
	if u, _ := body["redirect_url"].(string); !strings.HasSuffix(u, "/sign/"+id) || len(id) != 32 {
		t.Errorf("redirect_url %q for transaction %q", u, id)
	}

	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}
	d = s.start(t)
	addr = "--addr=" + d.grpc
	st := s.firmactl(t, 0, "transactions", "status", addr, "--api-key-file", keyFile, id)
	if !strings.Contains(st, "state        created") && !regexp.MustCompile(`state\s+created`).MatchString(st) {
		t.Fatalf("status after restart:\n%s", st)
	}
	out = s.firmactl(t, 0, "transactions", "cancel", addr, "--api-key-file", keyFile, id)
	if !regexp.MustCompile(`state\s+cancelled`).MatchString(out) || !regexp.MustCompile(`0\s+solicitud.txt\s+cades\s+not_processed`).MatchString(out) {
		t.Fatalf("cancel:\n%s", out)
	}
	if out := s.firmactl(t, 1, "transactions", "cancel", addr, "--api-key-file", keyFile, id); !strings.Contains(out, "cancelled") {
		t.Fatalf("second cancel:\n%s", out)
	}
	list := s.firmactl(t, 0, "transactions", "list", addr, "--api-key-file", keyFile)
	if !regexp.MustCompile(id+`\s+10000002Q\s+cancelled`).MatchString(list) || strings.Count(list, "\n") != 3 {
		t.Fatalf("transactions list:\n%s", list)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}
	if strings.Contains(d.stderr.String(), key) {
		t.Fatal("firmad logged the portal's API key")
	}
}
