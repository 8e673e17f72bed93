package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/api/rest/firehttp"
	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/fire"
	"github.com/firma-cloud/firma/internal/cputime"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/store"
)

// BenchmarkFIReBatch is issue 14's figure: a batch of txDocs CAdES
// documents signed through the FIRe endpoint (createBatch, txDocs
// addDocumentToBatch, signBatch, recoverBatch, txDocs recoverBatchSign:
// 23 requests) against the same batch through /api/v1 (one creation, one
// result: 2 requests), on the same service, token and run. Both are HTTP
// on loopback with keep-alive; the FIRe application authenticates by the
// loopback proxy's certificate header, so that TLS costs neither. The
// citizen's approval (light argon2) is the same service calls in both.
// Target: fire batches/s >= 0.9 x api-v1 batches/s. Each side also
// reports its CPU per signature (the whole process's: handlers, store,
// approval, signing), which on a machine shared with other load says
// more than the throughput: the two cores are not this bench's alone.
func BenchmarkFIReBatch(b *testing.B) {
	workers := sessions()
	tb := newTxBench(b, registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1}, workers)
	ctx := context.Background()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	portals := portal.New(tb.db, portal.Options{})
	portalhttp.NewHandler(tb.svc, portals, nil, 0).Register(mux)
	fs, err := fire.New(fire.Options{Store: tb.db, Transactions: tb.svc, Portals: portals,
		ReturnBase: srv.URL + firehttp.ReturnPath(fire.DefaultPath)})
	if err != nil {
		b.Fatal(err)
	}
	fh, err := firehttp.New(fs, firehttp.Options{CertHeader: "X-Client-Cert"})
	if err != nil {
		b.Fatal(err)
	}
	fh.Register(mux)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	dg, _ := fire.Digest("sha256", der)
	if err := tb.db.PutFireApp(ctx, &store.FireApp{AppID: "BENCH", PortalID: tb.portal.ID, CertDigests: []string{dg},
		CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	certHeader := base64.StdEncoding.EncodeToString(der)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	const okURL = "https://bench.example.es/ok"
	config := base64.URLEncoding.EncodeToString([]byte("redirectOkUrl=https\\://bench.example.es/ok\n"))

	var (
		mu  sync.Mutex
		seq int
	)
	next := func() int {
		mu.Lock()
		defer mu.Unlock()
		seq++
		return seq
	}
	doc := func(s, i int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("documento %d del lote %d; ", i, s)), 32)
	}
	call := func(req *http.Request, want int) ([]byte, error) {
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != want {
			err = fmt.Errorf("%s: HTTP %d %s", req.URL.Path, resp.StatusCode, body)
		}
		return body, err
	}
	fireCall := func(body string) ([]byte, error) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+fire.DefaultPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Client-Cert", certHeader)
		return call(req, http.StatusOK)
	}

	b.Run("api-v1-10cades", func(b *testing.B) {
		defer cpuPerSig(b)()
		runParallel(b, workers, txDocs, func(w int) error {
			s, citizen := next(), tb.citizens[w]
			in := portalhttp.CreateJSON{SubjectID: citizen, OKURL: okURL, ErrorURL: okURL}
			for i := range txDocs {
				in.Documents = append(in.Documents, portalhttp.DocumentJSON{Name: fmt.Sprint("doc-", i), MediaType: "text/plain",
					Content: doc(s, i), Format: "cades"})
			}
			body, _ := json.Marshal(in)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/transactions", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", tb.apiKey)
			out, err := call(req, http.StatusCreated)
			if err != nil {
				return err
			}
			var c portalhttp.CreatedJSON
			if err := json.Unmarshal(out, &c); err != nil {
				return err
			}
			if err := tb.approve(ctx, c.TransactionID, citizen); err != nil {
				return err
			}
			req, _ = http.NewRequest(http.MethodGet, srv.URL+"/api/v1/transactions/"+c.TransactionID+"/result", nil)
			req.Header.Set("X-API-Key", tb.apiKey)
			out, err = call(req, http.StatusOK)
			if err != nil {
				return err
			}
			var res portalhttp.ResultJSON
			if err := json.Unmarshal(out, &res); err != nil || len(res.Documents) != txDocs || len(res.Documents[txDocs-1].Signature) == 0 {
				return fmt.Errorf("result: %v", err)
			}
			return nil
		})
	})
	b.Run("fire-10cades", func(b *testing.B) {
		defer cpuPerSig(b)()
		runParallel(b, workers, txDocs, func(w int) error {
			s, citizen := next(), tb.citizens[w]
			base := "appid=BENCH&subjectid=" + citizen
			out, err := fireCall("op=5&" + base + "&cop=sign&algorithm=SHA256withRSA&format=CAdES&properties=&config=" + config)
			if err != nil {
				return err
			}
			var c map[string]string
			if err := json.Unmarshal(out, &c); err != nil {
				return err
			}
			tx := base + "&transactionid=" + c["transactionid"]
			for i := range txDocs {
				if _, err := fireCall(fmt.Sprintf("op=6&%s&docid=d%d&dat=%s&config=", tx, i, base64.URLEncoding.EncodeToString(doc(s, i)))); err != nil {
					return err
				}
			}
			if _, err := fireCall("op=7&" + tx + "&stoponerror=false"); err != nil {
				return err
			}
			if err := tb.approve(ctx, c["transactionid"], citizen); err != nil {
				return err
			}
			if _, err := fireCall("op=8&" + tx); err != nil {
				return err
			}
			for i := range txDocs {
				sig, err := fireCall(fmt.Sprintf("op=10&%s&docid=d%d", tx, i))
				if err != nil {
					return err
				}
				if len(sig) == 0 {
					return fmt.Errorf("document %d: no signature", i)
				}
			}
			return nil
		})
	})
}

// cpuPerSig reports, when the returned func runs, the process CPU per
// signature since cpuPerSig was called (txDocs signatures a batch).
func cpuPerSig(b *testing.B) func() {
	cpu0 := cputime.Process()
	return func() {
		if !b.Failed() {
			b.ReportMetric(float64(cputime.Process()-cpu0)/1e3/float64(b.N*txDocs), "cpu-µs/sig")
		}
	}
}
