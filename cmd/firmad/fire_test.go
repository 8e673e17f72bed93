package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/fire"
	"gopkg.in/yaml.v3"
)

var firePortalIDRe = regexp.MustCompile(`id \(app_id\)\s+(\S+)`)

// firmad serves the FIRe endpoint at FIRe's default path when
// fire.enabled, over TLS with the application's client certificate;
// firmactl registers the application and rotates its certificate.
// Cost: one firmad, no browser.
func TestFIReEndpointThroughFirmad(t *testing.T) {
	s := initState(t)
	s.firmactl(t, 0, "demo", "seed", "--state", "var")
	v := filepath.Join(s.dir, "var")
	writePKI(t, v)
	path := filepath.Join(v, "firmad.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["tls"] = map[string]any{"cert": "var/server.pem", "key": "var/server.key", "client_ca": "var/ca.pem"}
	doc["fire"] = map[string]any{"enabled": true}
	b, _ := yaml.Marshal(doc)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d := s.start(t)
	defer d.stop(t)
	const okURL = "https://sede.example.es/fire/ok?tramite=1"
	out := s.firmactl(t, 0, "portals", "create", "--name", "Sede FIRe", "--redirect", okURL, "--addr", d.grpc, "--ca", "var/ca.pem")
	m := firePortalIDRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no portal id in:\n%s", out)
	}
	out = s.firmactl(t, 0, "portals", "fire-register", "--state", "var", "--appid", "ABC123", "--cert", "var/client.pem", m[1])
	if !strings.Contains(out, "appid\tABC123") || !strings.Contains(out, "certificate\tsha256:") {
		t.Fatalf("fire-register:\n%s", out)
	}

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(v, "ca.pem"))
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(filepath.Join(v, "client.pem"), filepath.Join(v, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	enc := func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }
	post := func(body string) (int, string) {
		resp, err := hc.Post("https://"+d.http+"/fire-signature/fireService", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sign := "op=1&appid=ABC123&subjectid=10000002Q&cop=sign&algorithm=SHA256withRSA&format=CAdES&properties=&dat=" + enc("hola") +
		"&config=" + enc("redirectOkUrl="+okURL+"\n")
	code, body := post(sign)
	var started map[string]string
	if code != 200 || json.Unmarshal([]byte(body), &started) != nil || started["redirecturl"] != "https://"+d.http+"/sign/"+started["transactionid"] {
		t.Fatalf("op 1: %d %s", code, body)
	}
	if code, body := post(strings.Replace(sign, "appid=ABC123", "appid=OTHER", 1)); code != 401 || !strings.HasPrefix(body, `{"c":502,`) {
		t.Fatalf("unknown appid: %d %s", code, body)
	}
	// Rotation: another certificate in, the first one out.
	s.firmactl(t, 0, "portals", "fire-rotate", "--state", "var", "--digest", "sha1:"+strings.Repeat("ab", 20), "ABC123")
	out = s.firmactl(t, 0, "portals", "fire-show", "--state", "var", "ABC123")
	first := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(out)
	if first == "" || !strings.Contains(out, "sha1:"+strings.Repeat("ab", 20)) {
		t.Fatalf("fire-show:\n%s", out)
	}
	s.firmactl(t, 0, "portals", "fire-rotate", "--state", "var", "--remove", first, "ABC123")
	// firmad keeps a verified application for fire.DefaultAuthCacheTTL:
	// the removal must hold within it.
	removed := time.Now()
	for {
		code, body := post(sign)
		if code == 401 && strings.HasPrefix(body, `{"c":502,`) {
			break
		}
		if time.Since(removed) > fire.DefaultAuthCacheTTL+time.Second {
			t.Fatalf("%s after the certificate was removed: %d %s", time.Since(removed), code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.firmactl(t, 2, "portals", "fire-rotate", "--state", "var", "ABC123")
}
