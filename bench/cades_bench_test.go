package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/api/rest/tsahttp"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/signer/xades"
	"github.com/firma-cloud/firma/tsa"
)

// BenchmarkFormats measures documents/s of CAdES-B-B, CAdES-B-T and
// PAdES-B-T (issue 5), CAdES-B-LT and B-LTA (issue 16) and XAdES-B-T
// (issue 17, an enveloped XML document of the same size as the CAdES one),
// next to raw signatures/s with the same HSM key in the same run. B-T asks
// the built-in TSA over loopback HTTP through the production client, which
// checks every reply, so a document costs two HSM signatures (the signer's
// and the TSA's) plus the TSA round trip. B-LT gathers the validation
// material once per batch of ltBatch documents (one OCSP exchange per
// certificate, each an HSM signature of the responder); B-LTA adds an
// archive timestamp (a third HSM signature).
func BenchmarkFormats(b *testing.B) {
	f := setup(b)
	ks, st, err := f.open(keystore.ModeToken, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	defer ks.Close()
	ctx := context.Background()
	hsm := func(owner string) *keystore.Signer {
		k, err := ks.GenerateMode(ctx, owner, keystore.ECP256, keystore.ModeToken)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ks.Signer(ctx, k.ID)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	caKey := hsm("bench:formats-ca")
	now := time.Now()
	caCert := formatsCert(b, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench Formats CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, caKey.Public(), caKey)
	userKey := hsm("bench:citizen")
	// The CA's OCSP responder, signing with its HSM key as firmad's does
	// when its cache is cold.
	ocspSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		t := time.Now().Truncate(time.Second)
		der, err := ocsp.CreateResponse(caCert, caCert, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: t, NextUpdate: t.Add(time.Hour)}, caKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(der)
	}))
	defer ocspSrv.Close()
	userCert := formatsCert(b, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "BENCH CITIZEN"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:   x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		OCSPServer: []string{ocspSrv.URL},
	}, caCert, userKey.Public(), caKey)
	chain := []*x509.Certificate{userCert, caCert}

	tsaKey := hsm(tsa.Owner)
	tsaCert, err := tsa.IssueCertificate(caCert, caKey, tsaKey.Public(), tsa.CertOptions{OCSPServer: []string{ocspSrv.URL}})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := tsa.NewServer(tsa.ServerConfig{
		Signer: tsaKey, Cert: tsaCert, Chain: []*x509.Certificate{caCert}, Signing: benchSigning(b, ks),
		Policy: tsaBenchPolicy, Serials: tsa.NewSequence(st, "bench-formats-"+randHex(4), 64), Issuance: st,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close(ctx)
	hs := httptest.NewServer(tsahttp.Handler(srv, nil))
	defer hs.Close()
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	client, err := tsa.NewClient(tsa.ClientConfig{URLs: []string{hs.URL}, Roots: roots, Policy: tsaBenchPolicy, Retries: -1})
	if err != nil {
		b.Fatal(err)
	}
	ts := signer.TimestamperFunc(func(ctx context.Context, h crypto.Hash, d []byte) ([]byte, error) {
		t, err := client.Timestamp(ctx, h, d)
		if err != nil {
			return nil, err
		}
		return t.DER, nil
	})
	doc := bytes.Repeat([]byte("Solicitud de prueba para la firma en la nube. "), 200) // about 9 KB
	xmlDoc := []byte(`<Solicitud xmlns="urn:example:bench">` +
		strings.Repeat(`<Linea n="1">Solicitud de prueba para la firma en la nube.</Linea>`, 140) + `</Solicitud>`) // about 9 KB
	pdf, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		b.Fatal(err)
	}
	n := sessions()
	docs := func(b *testing.B) { b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s") }

	b.Run("raw", func(b *testing.B) {
		runParallel(b, n, 1, func(int) error {
			_, err := userKey.Sign(rand.Reader, benchDigest, crypto.SHA256)
			return err
		})
	})
	b.Run("cades-bb", func(b *testing.B) {
		runParallel(b, n, 1, func(int) error {
			_, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), userKey, chain, signer.Options{})
			return err
		})
		docs(b)
	})
	b.Run("cades-bt", func(b *testing.B) {
		runParallel(b, n, 1, func(int) error {
			_, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), userKey, chain, signer.Options{Level: signer.LevelT, Timestamper: ts})
			return err
		})
		docs(b)
	})
	// One ltv.Batch per ltBatch documents, as one per transaction.
	const ltBatch = 10
	g := &ltv.Gatherer{}
	var (
		batches sync.Map
		ops     atomic.Int64
	)
	nextBatch := func() signer.Validation {
		v, _ := batches.LoadOrStore(ops.Add(1)/ltBatch, g.Batch())
		return v.(*ltv.Batch)
	}
	for _, level := range []signer.Level{signer.LevelLT, signer.LevelLTA} {
		b.Run("cades-"+strings.ToLower(strings.ReplaceAll(string(level), "-", "")), func(b *testing.B) {
			batches.Clear()
			ops.Store(0)
			runParallel(b, n, 1, func(int) error {
				_, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), userKey, chain,
					signer.Options{Level: level, Timestamper: ts, Validation: nextBatch()})
				return err
			})
			docs(b)
		})
	}
	b.Run("xades-bt", func(b *testing.B) {
		runParallel(b, n, 1, func(int) error {
			_, err := xades.Sign(ctx, xmlDoc, userKey, chain, xades.Options{Level: xades.LevelT, Timestamper: ts})
			return err
		})
		docs(b)
	})
	b.Run("pades-bt", func(b *testing.B) {
		runParallel(b, n, 1, func(int) error {
			_, err := signer.PAdES(ctx, pdf, userKey, chain, signer.Options{Level: signer.LevelT, Timestamper: ts}, signer.PDFOptions{})
			return err
		})
		docs(b)
	})
}

func formatsCert(b *testing.B, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	b.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		b.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
