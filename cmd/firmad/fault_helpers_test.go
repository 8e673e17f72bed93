package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/internal/firmadtest"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/backend"
	"github.com/firma-cloud/firma/store/sqlite"
)

// The fault suite's helpers: a state set up for many approvals, a portal,
// a batch of small documents, the citizen's approval over HTTP, polling
// the portal status API, checking results and the audit log at the end.

const (
	faultOK, faultKO  = "https://portal.example.es/ok", "https://portal.example.es/error"
	faultCitizen      = "10000002Q"
	faultCitizenPhone = "+34600000002"
	faultPassword     = "Firma-Demo-2026"
)

var faultVerifierRe = regexp.MustCompile(`(?m)^verifier key: (\S+)$`)

// faultState is a state made by `firmactl init` and `demo seed`, with an
// auditor (for 'firmactl audit checkpoint'), light password hashing and
// per-client limits raised for a test that signs in many times from one
// address. extra are further replacements of firmad.yaml lines.
type faultState struct {
	*state
	auditor string
	apiKey  string
	usedOTP map[string]bool // SMS codes taken already
	env     []string        // the store's settings for every process, if not the state's SQLite
	dsn     string          // the PostgreSQL database, if env names one
}

func newFaultState(t *testing.T, extra ...[2]string) *faultState {
	t.Helper()
	return newFaultStateOn(t, "", extra...)
}

// newFaultStateOn is newFaultState with the store on the PostgreSQL
// database dsn, if not "".
func newFaultStateOn(t *testing.T, dsn string, extra ...[2]string) *faultState {
	t.Helper()
	s := &faultState{state: initState(t), usedOTP: map[string]bool{}, dsn: dsn}
	if dsn != "" {
		// init put the CA in the SQLite store of the config it wrote;
		// 'ca init' reads the environment and puts it in PostgreSQL.
		s.env = []string{"FIRMA_STORE_DRIVER=postgres", "FIRMA_STORE_DSN=" + dsn}
		s.ctl(t, "ca", "init", "--state", "var")
	}
	s.ctl(t, "demo", "seed", "--state", "var")
	tok := make([]byte, 20)
	rand.Read(tok)
	s.auditor = hex.EncodeToString(tok)
	sum := sha256.Sum256([]byte(s.auditor))
	s.patchConfig(t, append([][2]string{
		{"    auditors: []\n", "    auditors:\n        - name: officer\n          token_sha256: " + hex.EncodeToString(sum[:]) + "\n"},
		{"    argon2_time: 3\n", "    argon2_time: 1\n"},
		{"    argon2_memory_kib: 65536\n", "    argon2_memory_kib: 8192\n"},
		{"    argon2_threads: 4\n", "    argon2_threads: 1\n"},
		{"    login_per_minute: 20\n", "    login_per_minute: 6000\n"},
		{"    login_burst: 10\n", "    login_burst: 1000\n"},
		{"    sms_per_minute: 6\n", "    sms_per_minute: 6000\n"},
		{"    sms_burst: 5\n", "    sms_burst: 1000\n"},
	}, extra...)...)
	return s
}

// ctl runs firmactl with the state's store settings; it must succeed.
func (s *faultState) ctl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "firmactl"), args...)
	cmd.Dir, cmd.Env = s.dir, firmadtest.CleanEnv(s.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("firmactl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// run starts firmad with the state's store settings.
func (s *faultState) run(t *testing.T) *daemon {
	t.Helper()
	return s.start(t, s.env...)
}

// patchConfig replaces lines of var/firmad.yaml, each of which must be
// there.
func (s *state) patchConfig(t *testing.T, repl ...[2]string) {
	t.Helper()
	path := filepath.Join(s.dir, "var/firmad.yaml")
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range repl {
		changed := bytes.Replace(cfg, []byte(r[0]), []byte(r[1]), 1)
		if bytes.Equal(changed, cfg) {
			t.Fatalf("no %q in firmad.yaml to replace", r[0])
		}
		cfg = changed
	}
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
}

// createPortal registers the portal the batches come from.
func (s *faultState) createPortal(t *testing.T, d *daemon) {
	t.Helper()
	m := webAPIKeyRe.FindStringSubmatch(s.ctl(t, "portals", "create", "--name", "Portal", "--redirect", faultOK,
		"--redirect", faultKO, "--addr="+d.grpc))
	if m == nil {
		t.Fatal("portals create printed no API key")
	}
	s.apiKey = m[1]
}

// faultDoc is a document of a batch as the portal sent it.
type faultDoc struct {
	format  string // raw or cades
	content []byte // what was signed: the document (cades), or the data whose digest was (raw)
}

// batch makes n small documents, every third CAdES and the rest raw
// digests: raw ones are signed in one HSM batch, CAdES ones one at a time
// with their outcome stored after each, so the signing has many points
// to be interrupted at.
func batch(tag string, n int) []faultDoc {
	docs := make([]faultDoc, n)
	for i := range docs {
		docs[i] = faultDoc{format: "raw", content: fmt.Appendf(nil, "%s: documento %d\n", tag, i)}
		if i%3 == 0 {
			docs[i].format = "cades"
		}
	}
	return docs
}

// doRequest sends a request as the portal; it returns the status, and
// the body decoded into out if out is not nil.
func (s *faultState) doRequest(t *testing.T, method, url string, body []byte, out any) (int, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", s.apiKey)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, b, fmt.Errorf("%s %s: %d %s: %w", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, b, nil
}

// create posts docs as a transaction and returns its ID.
func (s *faultState) create(t *testing.T, d *daemon, docs []faultDoc, level string) string {
	t.Helper()
	var js []map[string]any
	for i, doc := range docs {
		name := fmt.Sprintf("doc-%02d.txt", i)
		if doc.format == "raw" {
			sum := sha256.Sum256(doc.content)
			js = append(js, map[string]any{"name": name, "digest": sum[:], "hash": "sha256", "format": "raw"})
		} else {
			js = append(js, map[string]any{"name": name, "media_type": "text/plain", "content": doc.content, "format": doc.format})
		}
	}
	req := map[string]any{"subject_id": faultCitizen, "ok_url": faultOK, "error_url": faultKO, "documents": js}
	if level != "" {
		req["level"] = level
	}
	body, _ := json.Marshal(req)
	var created struct {
		ID string `json:"transaction_id"`
	}
	code, b, err := s.doRequest(t, http.MethodPost, "http://"+d.http+"/api/v1/transactions", body, &created)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create: %d %v %s", code, err, b)
	}
	return created.ID
}

// approval is a citizen signed in on the approval page of a transaction
// with the SMS code in hand, ready to approve.
type approval struct {
	b        *browser
	path     string
	csrf     string
	otp      string
	approved bool
}

// signIn signs the citizen in and reads the code from the SMS outbox.
func (s *faultState) signIn(t *testing.T, d *daemon, id string) *approval {
	t.Helper()
	a := &approval{b: newBrowser(t, "http://"+d.http), path: "/sign/" + id}
	_, html, _ := a.b.page(http.MethodGet, a.path, nil)
	code, html, loc := a.b.page(http.MethodPost, a.path+"/login", url.Values{"csrf": {a.b.csrf(html)}, "citizen": {faultCitizen}, "password": {faultPassword}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", code, html)
	}
	_, html, _ = a.b.page(http.MethodGet, loc, nil)
	a.csrf = a.b.csrf(html)
	// The SMS goes out after the page answers, and key-use notices come
	// to the same phone within the same second (the outbox orders by the
	// second first): take a code never taken before.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out := s.ctl(t, "sms", "outbox", "--to", faultCitizenPhone, "--limit", "200", "--addr="+d.grpc)
		for _, m := range webSMSCodeRe.FindAllStringSubmatch(out, -1) {
			if !s.usedOTP[m[1]] {
				a.otp = m[1]
				s.usedOTP[m[1]] = true
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new code in the outbox: %s", out)
		}
	}
}

// approve posts the approval and returns the status and Location, or the
// transport error (firmad may be killed meanwhile). It may be called from
// any goroutine.
func (a *approval) approve(base string) (int, string, error) {
	form := url.Values{"csrf": {a.csrf}, "otp": {a.otp}}
	req, _ := http.NewRequest(http.MethodPost, base+a.path+"/approve", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := a.b.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// txState is the transaction's state from the portal status API.
func (s *faultState) txState(t *testing.T, d *daemon, id string) (string, error) {
	t.Helper()
	var st struct {
		State string `json:"state"`
	}
	code, b, err := s.doRequest(t, http.MethodGet, "http://"+d.http+"/api/v1/transactions/"+id, nil, &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("status %d: %s", code, b)
	}
	return st.State, err
}

// waitFinal polls the status API until the transaction is in a final
// state or within is up, and returns the state and how long it took.
func (s *faultState) waitFinal(t *testing.T, d *daemon, id string, within time.Duration) (string, time.Duration) {
	t.Helper()
	return s.waitFinalEvery(t, d, id, within, 50*time.Millisecond)
}

func (s *faultState) waitFinalEvery(t *testing.T, d *daemon, id string, within, every time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	var st string
	var err error
	for time.Since(start) < within {
		if st, err = s.txState(t, d, id); err == nil && finalState(st) {
			return st, time.Since(start)
		}
		time.Sleep(every)
	}
	t.Fatalf("transaction %s still %q (%v) after %v\n%s", id, st, err, within, d.stderr)
	return "", 0
}

func finalState(st string) bool {
	switch st {
	case "done", "failed", "rejected", "expired", "cancelled":
		return true
	}
	return false
}

// txResult is the portal's result of a transaction.
type txResult struct {
	State     string   `json:"state"`
	ErrorCode string   `json:"error_code"`
	Chain     [][]byte `json:"certificate_chain"`
	Documents []struct {
		Index     int    `json:"index"`
		Status    string `json:"status"`
		ErrorCode string `json:"error_code"`
		Signature []byte `json:"signature"`
	} `json:"documents"`
}

func (s *faultState) result(t *testing.T, d *daemon, id string) *txResult {
	t.Helper()
	var r txResult
	code, b, err := s.doRequest(t, http.MethodGet, "http://"+d.http+"/api/v1/transactions/"+id+"/result", nil, &r)
	if err != nil || code != http.StatusOK {
		t.Fatalf("result of %s: %d %v %s", id, code, err, b)
	}
	return &r
}

// checkSigned asserts that every document of r is signed once and that
// the signature verifies against it: every raw one in Go, the CAdES ones
// with 'openssl cms -verify' on up to cadesSample of them (signature and
// content digest; the chain is the CA's own, checked elsewhere).
func checkSigned(t *testing.T, r *txResult, docs []faultDoc, cadesSample int) {
	t.Helper()
	if r.State != "done" || len(r.Documents) != len(docs) || len(r.Chain) == 0 {
		t.Fatalf("result: state %s, %d documents of %d, chain %d", r.State, len(r.Documents), len(docs), len(r.Chain))
	}
	cert, err := x509.ParseCertificate(r.Chain[0])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range r.Documents {
		doc := docs[d.Index]
		if d.Status != "signed" || len(d.Signature) == 0 {
			t.Fatalf("document %d: %s (%s), want signed", d.Index, d.Status, d.ErrorCode)
		}
		switch doc.format {
		case "raw":
			sum := sha256.Sum256(doc.content)
			var ok bool
			switch pub := cert.PublicKey.(type) {
			case *ecdsa.PublicKey:
				ok = ecdsa.VerifyASN1(pub, sum[:], d.Signature)
			case *rsa.PublicKey:
				ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], d.Signature) == nil
			}
			if !ok {
				t.Fatalf("document %d: the raw signature does not verify against its digest", d.Index)
			}
		default:
			if cadesSample <= 0 {
				continue
			}
			cadesSample--
			content, sig := filepath.Join(dir, "content"), filepath.Join(dir, "sig")
			os.WriteFile(content, doc.content, 0o600)
			os.WriteFile(sig, d.Signature, 0o600)
			out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-noverify", "-inform", "DER", "-in", sig,
				"-content", content, "-out", os.DevNull).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verification successful") {
				t.Fatalf("document %d: openssl cms -verify: %v\n%s", d.Index, err, out)
			}
		}
	}
}

// verifierKey takes a signed checkpoint as the auditor and returns the
// log's verifier key.
func (s *faultState) verifierKey(t *testing.T, d *daemon) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "firmactl"), "audit", "checkpoint", "--addr", d.grpc)
	cmd.Dir, cmd.Env = s.dir, firmadtest.CleanEnv("FIRMA_TOKEN="+s.auditor)
	out, err := cmd.CombinedOutput()
	m := faultVerifierRe.FindStringSubmatch(string(out))
	if err != nil || m == nil {
		t.Fatalf("audit checkpoint: %v\n%s", err, out)
	}
	return m[1]
}

// checkAudit runs, on a stopped firmad's state (its last checkpoint
// signed at shutdown), 'firmactl audit verify --db' and audit.CheckSigned,
// and returns the latter's report. Both must pass.
func (s *faultState) checkAudit(t *testing.T, key string) *audit.SignedReport {
	t.Helper()
	return s.checkAuditAt(t, key, filepath.Join(s.dir, "var", "firma.db"))
}

// checkAuditAt is checkAudit on the database at db.
func (s *faultState) checkAuditAt(t *testing.T, key, db string) *audit.SignedReport {
	t.Helper()
	var st store.Store
	var err error
	if s.dsn != "" {
		// firmactl takes a postgres:// URL; pgtest gives key=value pairs.
		kv := map[string]string{}
		for _, f := range strings.Fields(s.dsn) {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		db = fmt.Sprintf("postgres://%s@%s:%s/%s?sslmode=%s", kv["user"], kv["host"], kv["port"], kv["dbname"], kv["sslmode"])
		st, err = backend.Open(context.Background(), backend.Postgres, s.dsn)
	} else {
		st, err = sqlite.Open(context.Background(), db)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := s.ctl(t, "audit", "verify", "--db", db, "--key", key, "--signed")
	if !strings.Contains(out, "verified") {
		t.Fatalf("audit verify:\n%s", out)
	}
	v, err := audit.NewNoteVerifiers(key)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.CheckSigned(context.Background(), st, audit.VerifyOptions{Keys: v})
	if err != nil {
		t.Fatalf("audit.CheckSigned: %v", err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("audit.CheckSigned: %v", err)
	}
	// The built-in TSA's records of the last checkpoint's timestamp come
	// after it, necessarily: nothing else may be left unchecked.
	recs, err := st.AuditRecords(context.Background(), rep.Log.Records, rep.Log.Records+rep.Log.Unsigned)
	if err != nil {
		t.Fatal(err)
	}
	tsa := map[string]bool{}
	for _, sr := range recs {
		r, err := audit.ParseRecord(sr.Data)
		if err != nil {
			t.Fatal(err)
		}
		act := r.Details[audit.DetailActivation]
		switch {
		case r.Event == audit.KeyActivated && r.Details["signing_purpose"] == "tsa":
			tsa[act] = true
		case r.Event == audit.KeyUsed && tsa[act]:
		default:
			t.Fatalf("record %d (%s) after the last checkpoint was not checked", sr.Index, sr.Event)
		}
	}
	purposes := map[string]int{}
	all, err := st.AuditRecords(context.Background(), 0, rep.Log.Records)
	if err != nil {
		t.Fatal(err)
	}
	for _, sr := range all {
		if r, err := audit.ParseRecord(sr.Data); err == nil && r.Event == audit.KeyActivated {
			purposes[r.Details["signing_purpose"]]++
		}
	}
	t.Logf("key activations by purpose: %v", purposes)
	t.Logf("audit: %d records, %d activations (%d unfinished); %d signed documents checked, %d activations resumed, %d signatures made again, %d discarded",
		rep.Log.Records, rep.Log.Activations, len(rep.Log.Unfinished), rep.Signed, rep.Resumed, rep.Resigned, rep.Discarded)
	return rep
}

// statusesInStore counts a transaction's documents by status in the
// SQLite store while firmad is down ("recording": signatures stored
// hidden, their key.used perhaps not written).
func (s *faultState) statusesInStore(t *testing.T, id string) (map[string]int, error) {
	t.Helper()
	if s.dsn != "" {
		return nil, errors.New("not read from PostgreSQL")
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(s.dir, "var", "firma.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	docs, err := st.Documents(context.Background(), id, false)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, d := range docs {
		out[d.Status]++
	}
	return out, nil
}

// stateInStore reads a transaction's state from the SQLite store while
// firmad is down.
func (s *faultState) stateInStore(t *testing.T, id string) (string, error) {
	t.Helper()
	if s.dsn != "" {
		return "", errors.New("not read from PostgreSQL")
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(s.dir, "var", "firma.db"))
	if err != nil {
		return "", err
	}
	defer st.Close()
	tx, err := st.Transaction(context.Background(), id)
	if err != nil {
		return "", err
	}
	return tx.State, nil
}
