package main

import (
	"bytes"
	"crypto"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/digitorus/timestamp"
)

var (
	tsaSerialRe   = regexp.MustCompile(`(?m)^Serial number: (0x[0-9A-F]+)$`)
	verifierKeyRe = regexp.MustCompile(`verifier_key[=":]+([^"\s]+)`)
	tsaSummaryRe  = regexp.MustCompile(`(?m)^(\d+) TSA interval summaries, (\d+) tokens: each matches the issuance log`)
)

// TestBuiltInTSA runs the built-in TSA of a real firmad made by firmactl
// init, which sets up the CA too: openssl makes the query and verifies the
// reply against the root firmactl wrote, the TSA certificate's CRL URL is
// on firmad's own listener and serves a CRL openssl parses, and serials
// keep increasing across a restart. Each run's tokens are one audit
// interval, closed on SIGTERM, which firmactl audit verify checks against
// the issuance log.
func TestBuiltInTSA(t *testing.T) {
	s := initState(t)
	data := filepath.Join(s.dir, "doc.txt")
	if err := os.WriteFile(data, []byte("Resolución 2026/0042\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	query := filepath.Join(s.dir, "q.tsq")
	if out, err := exec.Command("openssl", "ts", "-query", "-data", data, "-sha256", "-cert", "-out", query).CombinedOutput(); err != nil {
		t.Fatalf("openssl ts -query: %v\n%s", err, out)
	}
	q, err := os.ReadFile(query)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(s.dir, "var", "ca", "root.pem")
	var last *big.Int
	for run := range 2 {
		d := s.start(t)
		code, chain := get(t, "http://"+d.http+"/tsa/certs")
		if code != http.StatusOK || strings.Count(chain, "BEGIN CERTIFICATE") != 2 {
			t.Fatalf("/tsa/certs: %d\n%s", code, chain)
		}
		untrusted := filepath.Join(s.dir, "tsa-chain.pem")
		os.WriteFile(untrusted, []byte(chain), 0o600)
		if d.http != s.http {
			t.Fatalf("firmad listens on %s, want %s", d.http, s.http)
		}
		out, err := exec.Command("openssl", "x509", "-in", untrusted, "-noout", "-ext", "crlDistributionPoints").CombinedOutput()
		crlURL := "http://" + s.http + "/crl/issuing.crl"
		if err != nil || !strings.Contains(string(out), crlURL) {
			t.Fatalf("TSA certificate's CRL distribution point is not %s: %v\n%s", crlURL, err, out)
		}
		crl := filepath.Join(s.dir, "issuing.crl")
		if code, body := get(t, crlURL); code != http.StatusOK {
			t.Fatalf("GET %s: %d", crlURL, code)
		} else {
			os.WriteFile(crl, []byte(body), 0o600)
		}
		if out, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", crl, "-noout", "-issuer").CombinedOutput(); err != nil {
			t.Fatalf("openssl crl on %s: %v\n%s", crlURL, err, out)
		}
		for i := range 2 {
			resp, err := http.Post("http://"+d.http+"/tsa", "application/timestamp-query", bytes.NewReader(q))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/timestamp-reply" {
				t.Fatalf("POST /tsa: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), d.stderr)
			}
			reply := filepath.Join(s.dir, "r.tsr")
			os.WriteFile(reply, body, 0o600)
			out, err := exec.Command("openssl", "ts", "-verify", "-queryfile", query, "-in", reply, "-CAfile", root, "-untrusted", untrusted).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verification: OK") {
				t.Fatalf("run %d token %d: openssl ts -verify: %v\n%s", run, i, err, out)
			}
			out, err = exec.Command("openssl", "ts", "-reply", "-in", reply, "-text").CombinedOutput()
			m := tsaSerialRe.FindStringSubmatch(string(out))
			if err != nil || m == nil || !strings.Contains(string(out), "Policy OID: 0.4.0.2023.1.1") {
				t.Fatalf("openssl ts -reply -text: %v\n%s", err, out)
			}
			serial, _ := new(big.Int).SetString(m[1][2:], 16)
			if last != nil && serial.Cmp(last) <= 0 {
				t.Fatalf("run %d token %d: serial %v after %v", run, i, serial, last)
			}
			last = serial
		}
		if code, body := get(t, "http://"+d.http+"/metrics"); code != http.StatusOK || !strings.Contains(body, `firma_tsa_server_requests_total{result="granted"} 2`) {
			t.Fatalf("/metrics lacks the TSA counter:\n%s", body)
		}
		if code := d.stop(t); code != 0 {
			t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
		}
		m := verifierKeyRe.FindStringSubmatch(d.stderr.String())
		if m == nil {
			t.Fatalf("firmad logged no audit verifier key:\n%s", d.stderr)
		}
		verified := s.firmactl(t, 0, "audit", "verify", "--db", "var/firma.db", "--key", m[1])
		sm := tsaSummaryRe.FindStringSubmatch(verified)
		// One interval per run (more only if one outlasted
		// tsa.audit_interval); at least the two tokens asked for, and those
		// that timestamped audit checkpoints.
		if sm == nil || strings.Contains(verified, "decided, not completed") {
			t.Fatalf("run %d: audit verify:\n%s", run, verified)
		}
		if n, _ := strconv.Atoi(sm[1]); n < run+1 {
			t.Errorf("run %d: %s summaries, want one per run at least", run, sm[1])
		}
		if n, _ := strconv.Atoi(sm[2]); n < 2*(run+1) {
			t.Errorf("run %d: %s tokens summarised, want at least %d", run, sm[2], 2*(run+1))
		}
	}
}

// TestBuiltInTSAKilled: a firmad killed (SIGKILL) with an audit interval
// open leaves its key.activated and the tokens' issuance rows, no
// summary; after a restart, firmactl audit verify passes and reports that
// interval as decided, not completed, with the tokens it issued, and the
// next run's interval summarised. Cost: two firmad starts.
func TestBuiltInTSAKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real firmad")
	}
	s := initState(t)
	q, err := timestamp.CreateRequest(strings.NewReader("acta 2026/0042"), &timestamp.RequestOptions{Hash: crypto.SHA256, Certificates: true})
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(d *daemon, n int) {
		t.Helper()
		for range n {
			resp, err := http.Post("http://"+d.http+"/tsa", "application/timestamp-query", bytes.NewReader(q))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /tsa: %d\n%s", resp.StatusCode, d.stderr)
			}
		}
	}
	d := s.start(t)
	stamp(d, 3)
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.done
	d = s.start(t)
	stamp(d, 2)
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}
	m := verifierKeyRe.FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("firmad logged no audit verifier key:\n%s", d.stderr)
	}
	out := s.firmactl(t, 0, "audit", "verify", "--db", "var/firma.db", "--key", m[1])
	t.Logf("audit verify:\n%s", out)
	if !strings.Contains(out, "a TSA audit interval with no summary: the issuance log holds 3 tokens issued under it") {
		t.Errorf("the killed run's interval is not reported with its 3 tokens:\n%s", out)
	}
	if sm := tsaSummaryRe.FindStringSubmatch(out); sm == nil {
		t.Errorf("no summary checked against the issuance log:\n%s", out)
	} else if n, _ := strconv.Atoi(sm[2]); n < 2 {
		t.Errorf("%s tokens summarised, want the second run's 2 at least", sm[2])
	}
}
