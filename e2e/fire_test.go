package e2e_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/api/rest/firehttp"
	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/fire"
	"github.com/firma-cloud/firma/store"
)

// fireEnv is a FIRe application in front of a stack: its own HTTPS
// listener for the FIRe service (client certificates verified against a
// test CA, as firmad's tls.client_ca does), the application's client
// certificate registered by digest, and the application's own pages at
// its redirect URLs.
type fireEnv struct {
	t      *testing.T
	s      *stack.Stack
	svc    *fire.Service
	srv    *httptest.Server
	appID  string
	client *http.Client // with the registered certificate
	cert   []byte       // its DER
	// other holds a certificate of the same CA that is not registered;
	// none holds no certificate.
	other, none *http.Client
	site        *httptest.Server
	okURL       string // with a query string, to check it comes back verbatim
	errURL      string
	now         time.Time // the FIRe service's clock when clock is set
	clock       bool
}

func newFire(t *testing.T, s *stack.Stack) *fireEnv {
	t.Helper()
	e := &fireEnv{t: t, s: s, appID: "A1B2C3D4E5F6"}
	site := http.NewServeMux()
	site.HandleFunc("GET /fire/ok", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!DOCTYPE html><title>App</title><h1 id="app-ok">%s</h1>`, html.EscapeString(r.URL.RawQuery))
	})
	site.HandleFunc("GET /fire/ko", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!DOCTYPE html><title>App</title><h1 id="app-ko">%s</h1>`, html.EscapeString(r.URL.RawQuery))
	})
	e.site = httptest.NewServer(site)
	t.Cleanup(e.site.Close)
	base := strings.Replace(e.site.URL, "127.0.0.1", "localhost", 1)
	e.okURL, e.errURL = base+"/fire/ok?tramite=2026-77&paso=fin", base+"/fire/ko?tramite=2026-77"
	p, _ := s.Portal("Aplicación FIRe de pruebas", e.okURL, e.errURL)

	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "apps CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(n int64) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: fmt.Sprint("app ", n)},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	mine, theirs := issue(2), issue(3)
	// Registered as FIRe does it by default: SHA-256 of the DER; a SHA-1
	// one too, as FIRe's database may hold.
	d256, _ := fire.Digest("sha256", mine.Certificate[0])
	d1, _ := fire.Digest("sha1", mine.Certificate[0])
	if err := s.DB.PutFireApp(s.Ctx, &store.FireApp{AppID: e.appID, PortalID: p.ID, CertDigests: []string{d1, d256},
		CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	e.srv = httptest.NewUnstartedServer(mux)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	e.srv.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	var err error
	e.svc, err = fire.New(fire.Options{Store: s.DB, Transactions: s.Tx, Portals: s.Portals,
		ReturnBase: e.srv.URL + firehttp.ReturnPath(fire.DefaultPath), Clock: func() time.Time {
			if e.clock {
				return e.now
			}
			return time.Now()
		}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := firehttp.New(e.svc, firehttp.Options{MaxParamBytes: 64 << 10, MaxRequestBytes: 96 << 10})
	if err != nil {
		t.Fatal(err)
	}
	h.Register(mux)
	client := func(certs ...tls.Certificate) *http.Client {
		tr := e.srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = certs
		return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	e.client, e.other, e.none = client(mine), client(theirs), client()
	e.cert = mine.Certificate[0]
	return e
}

// answer is one HTTP answer of the FIRe service.
type answer struct {
	status int
	ct     string
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("HTTP %d %q %s", a.status, a.ct, a.body) }

// post sends body as the clients do: a POST to the service path, the
// body as they build it byte for byte (the .NET client sets the form
// content type; Java's HttpURLConnection sends its default).
func (e *fireEnv) post(c *http.Client, body string) answer {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+fire.DefaultPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

// wantError checks FIRe's error form: HTTP status, exactly
// application/json once the parameters are stripped (as Java and PHP
// compare), and {"c":code,"m":...}.
func wantError(t *testing.T, a answer, status, code int) {
	t.Helper()
	mt, _, _ := strings.Cut(a.ct, ";")
	want := fmt.Sprintf(`{"c":%d,"m":"`, code)
	if a.status != status || mt != "application/json" || !bytes.HasPrefix(a.body, []byte(want)) {
		t.Fatalf("%v, want HTTP %d with %s...", a, status, want)
	}
}

// b64 is the clients' encoding: standard base64 made URL-safe, padding kept.
func b64(b []byte) string {
	return strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(b))
}

// javaProps is a properties map as Java's Properties.store writes it
// (comment and date lines, ':' '=' '#' '!' escaped, non-ASCII as \uXXXX)
// and the Java client sends it: b64.
func javaProps(m map[string]string) string {
	var b strings.Builder
	b.WriteString("#Propiedades de FIRe\n#Mon Dec 07 23:00:00 CET 2026\n")
	esc := func(s string) string {
		var o strings.Builder
		for _, r := range s {
			switch {
			case strings.ContainsRune(":=#!", r):
				o.WriteString(`\` + string(r))
			case r > 0x7e:
				fmt.Fprintf(&o, `\u%04X`, r)
			default:
				o.WriteRune(r)
			}
		}
		return o.String()
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(esc(k) + "=" + esc(m[k]) + "\n")
	}
	return b64([]byte(b.String()))
}

// phpProps is the same as the PHP samples build it: plain UTF-8 lines.
func phpProps(m map[string]string) string {
	var b strings.Builder
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "=" + m[k] + "\n")
	}
	return b64([]byte(b.String()))
}
