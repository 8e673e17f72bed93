package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestWebAndCSCServed: the built firmad serves the approval page, its
// assets and the CSC API next to the portal API.
func TestWebAndCSCServed(t *testing.T) {
	s := initState(t)
	d := s.start(t)
	defer d.stop(t)
	base := "http://" + d.http

	code, body := get(t, base+"/csc/v2/info")
	var info struct {
		Specs   string   `json:"specs"`
		Methods []string `json:"methods"`
	}
	if err := json.Unmarshal([]byte(body), &info); code != 200 || err != nil || !strings.HasPrefix(info.Specs, "2.") || !slices.Contains(info.Methods, "signatures/signHash") {
		t.Fatalf("/csc/v2/info: %d %s", code, body)
	}
	if code, body := get(t, base+"/sign/0123456789abcdef0123456789abcdef"); code != 404 || !strings.Contains(body, "La solicitud de firma no existe") {
		t.Fatalf("/sign/<unknown>: %d %s", code, body)
	}
	if code, body := get(t, base+"/sign/assets/style.css"); code != 200 || !strings.Contains(body, "@media") {
		t.Fatalf("style.css: %d", code)
	}
	if code, body := get(t, base+"/csc/v2/credentials/list"); code != 405 {
		t.Fatalf("GET credentials/list: %d %s", code, body)
	}
}

var (
	webAPIKeyRe  = regexp.MustCompile(`(?m)^api key\s+(\S+) \(shown only now`)
	webCSRFRe    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	webSMSCodeRe = regexp.MustCompile(`Cl@ve Firma: (\d{6}) `)
)

// TestApprovalThroughBinary walks a whole signature through the built
// firmad and firmactl: sandbox citizens, a portal registered by the
// operator, a transaction from the portal REST API, the approval page
// (sign-in, SMS code read with 'firmactl sms outbox', approve) and the
// results, verified with openssl.
func TestApprovalThroughBinary(t *testing.T) {
	s := initState(t)
	s.firmactl(t, 0, "demo", "seed", "--state", "var")
	d := s.start(t)
	defer d.stop(t)
	addr := "--addr=" + d.grpc
	base := "http://" + d.http
	const okURL, errURL, citizen = "https://portal.example.es/ok", "https://portal.example.es/error", "10000002Q"
	out := s.firmactl(t, 0, "portals", "create", "--name", "Portal de prueba", "--redirect", okURL, "--redirect", errURL, addr)
	m := webAPIKeyRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no API key in:\n%s", out)
	}
	apiKey := m[1]

	doc := []byte("Solicitud de prueba firmada por el binario\n")
	sum := sha256.Sum256(doc)
	body, _ := json.Marshal(map[string]any{"subject_id": citizen, "ok_url": okURL, "error_url": errURL,
		"documents": []map[string]any{{"name": "solicitud.txt", "digest": sum[:], "hash": "sha256", "format": "raw"}}})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/transactions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	var created struct {
		ID  string `json:"transaction_id"`
		URL string `json:"redirect_url"`
	}
	if code := webJSON(t, req, &created); code != http.StatusCreated || !strings.HasSuffix(created.URL, "/sign/"+created.ID) {
		t.Fatalf("create: %d %+v", code, created)
	}

	b := newBrowser(t, base)
	page, token := b.page, b.csrf
	signPath := "/sign/" + created.ID
	_, html, _ := page(http.MethodGet, signPath, nil)
	code, html, loc := page(http.MethodPost, signPath+"/login", url.Values{"csrf": {token(html)}, "citizen": {citizen}, "password": {"Firma-Demo-2026"}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", code, html)
	}
	_, html, _ = page(http.MethodGet, loc, nil)
	outbox := s.firmactl(t, 0, "sms", "outbox", "--to", "+34600000002", "--limit", "1", addr)
	sm := webSMSCodeRe.FindStringSubmatch(outbox)
	if sm == nil {
		t.Fatalf("no code in the outbox:\n%s", outbox)
	}
	code, html, loc = b.follow(page(http.MethodPost, signPath+"/approve", url.Values{"csrf": {token(html)}, "otp": {sm[1]}}))
	if code != http.StatusSeeOther || loc != okURL+"?transaction_id="+created.ID {
		t.Fatalf("approve: %d %q\n%s", code, loc, html)
	}

	req, _ = http.NewRequest(http.MethodGet, base+"/api/v1/transactions/"+created.ID+"/result", nil)
	req.Header.Set("X-API-Key", apiKey)
	var res struct {
		State     string   `json:"state"`
		Chain     [][]byte `json:"certificate_chain"`
		Documents []struct {
			Signature []byte `json:"signature"`
		} `json:"documents"`
	}
	if code := webJSON(t, req, &res); code != http.StatusOK || res.State != "done" || len(res.Documents) != 1 || len(res.Chain) == 0 {
		t.Fatalf("result: %d %+v", code, res)
	}
	dir := t.TempDir()
	leaf := filepath.Join(dir, "leaf.pem")
	os.WriteFile(leaf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: res.Chain[0]}), 0o600)
	pub := filepath.Join(dir, "pub.pem")
	if o, err := exec.Command("openssl", "x509", "-in", leaf, "-pubkey", "-noout", "-out", pub).CombinedOutput(); err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, o)
	}
	docPath, sigPath := filepath.Join(dir, "doc"), filepath.Join(dir, "sig")
	os.WriteFile(docPath, doc, 0o600)
	os.WriteFile(sigPath, res.Documents[0].Signature, 0o600)
	if o, err := exec.Command("openssl", "dgst", "-sha256", "-verify", pub, "-signature", sigPath, docPath).CombinedOutput(); err != nil ||
		!strings.Contains(string(o), "Verified OK") {
		t.Fatalf("openssl dgst -verify: %v\n%s", err, o)
	}
	// The SMS metric counts what went into the outbox: at least the code
	// just read from it (one outbox per process, whoever sends).
	_, metrics := get(t, "http://"+d.http+"/metrics")
	sent := regexp.MustCompile(`(?m)^firma_sms_sent_total (\d+)`).FindStringSubmatch(metrics)
	if sent == nil || sent[1] == "0" {
		t.Fatalf("firma_sms_sent_total %v after an SMS code went out", sent)
	}
}

func webJSON(t *testing.T, req *http.Request, out any) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	return resp.StatusCode
}
