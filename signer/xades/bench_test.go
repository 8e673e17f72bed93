package xades_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/signer/xades"
)

// BenchmarkSignEnveloped is the XML work of one enveloped signature of a
// 9 KB document (one token walk building the tree, C14N in place, the
// signature spliced into the document's bytes) with an in-memory key, for
// profiling; bench/ measures whole XAdES-B-T documents/s with the HSM.
func BenchmarkSignEnveloped(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "BENCH"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	doc := []byte(`<Solicitud xmlns="urn:example:bench">` +
		strings.Repeat(`<Linea n="1">Solicitud de prueba para la firma en la nube.</Linea>`, 140) + `</Solicitud>`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := xades.Sign(ctx, doc, key, []*x509.Certificate{cert}, xades.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
