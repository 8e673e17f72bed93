package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/postgres/pgtest"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	pgtest.Cleanup()
	os.Exit(code)
}

func TestVerifyCommand(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	roots := testpki.WritePEM(t, dir, "roots.pem", pki.Root.Cert)
	tsaRoots := testpki.WritePEM(t, dir, "tsa-roots.pem", pki.TSARoot.Cert)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	opt := signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain, err := os.ReadFile("../../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	signedPDF, err := signer.PAdES(ctx, plain, key, chain, opt, signer.PDFOptions{Visible: true})
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte("Solicitud de subvención 2026/31")
	sig, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, opt)
	if err != nil {
		t.Fatal(err)
	}
	pdfPath, sigPath, docPath := write("signed.pdf", signedPDF), write("doc.p7s", sig), write("doc.txt", doc)
	xml := []byte(`<Solicitud xmlns="urn:example"><Expediente>2026/31</Expediente></Solicitud>`)
	signedXML, err := signer.SignDocument(ctx, signer.FormatXAdES, signer.StandardFormats(), signer.Document{Type: "application/xml", Content: xml}, key, chain, opt, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	xadesDetached, err := signer.SignDocument(ctx, signer.FormatXAdES, signer.StandardFormats(), signer.Document{Type: "text/plain", Content: doc, Name: "doc.txt"}, key, chain, opt, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	xmlPath, xadesPath := write("signed.xml", signedXML), write("doc.xades.xml", xadesDetached)
	container, err := signer.SignDocument(ctx, signer.FormatASiCEXAdES, signer.StandardFormats(), signer.Document{Type: "text/plain", Content: doc, Name: "doc.txt"}, key, chain, opt, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	asicPath := write("doc.asice", container)
	changedXMLPath := write("changed.xml", bytes.Replace(signedXML, []byte("2026/31"), []byte("2026/32"), 1))
	changedPath := write("changed.txt", append([]byte("X"), doc[1:]...))
	d := sha256.Sum256(doc)

	// A firmad stand-in: the VerifyService on a loopback port.
	v, err := verify.New(verify.Config{Roots: testpki.Pool(pki.Root.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert), Revocation: &verify.Online{}})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	firmav1.RegisterVerifyServiceServer(gs, api.NewVerifyService(v, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)

	local := []string{"--roots", roots, "--tsa-roots", tsaRoots}
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"pdf local", append([]string{"verify", pdfPath}, local...), 0,
			[]string{"VALID (1 signature(s))", "pades B-T", "[passed       ] integrity", "[passed       ] revocation", "the whole document"}},
		{"cades detached local", append([]string{"verify", sigPath, "--detached", docPath}, local...), 0,
			[]string{"signature 1: VALID (cades B-T)", "CN=MARIA GARCIA LOPEZ", "[passed       ] timestamp"}},
		{"cades digest local", append([]string{"verify", sigPath, "--digest", hex.EncodeToString(d[:])}, local...), 0,
			[]string{"VALID"}},
		{"xades enveloped local", append([]string{"verify", xmlPath}, local...), 0,
			[]string{"signature 1: VALID (xades B-T)", "CN=MARIA GARCIA LOPEZ", "[passed       ] timestamp", "[passed       ] signing-certificate"}},
		{"xades detached local", append([]string{"verify", xadesPath, "--detached", docPath}, local...), 0,
			[]string{"VALID (xades B-T)"}},
		{"xades detached, changed content", append([]string{"verify", xadesPath, "--detached", changedPath}, local...), 1,
			[]string{"INVALID", "[failed       ] integrity"}},
		{"xades changed document", append([]string{"verify", changedXMLPath}, local...), 1,
			[]string{"INVALID", "[failed       ] integrity"}},
		{"xades remote", []string{"verify", xmlPath, "--addr", lis.Addr().String()}, 0,
			[]string{"VALID (xades B-T)", "[passed       ] chain"}},
		{"asic-e local", append([]string{"verify", asicPath}, local...), 0,
			[]string{"VALID (asic-e-xades B-T)", "[passed       ] integrity"}},
		{"asic with content", append([]string{"verify", asicPath, "--detached", docPath}, local...), 1, nil},
		{"xades detached without content", append([]string{"verify", xadesPath}, local...), 1, nil},
		{"changed content", append([]string{"verify", sigPath, "--detached", changedPath}, local...), 1,
			[]string{"INVALID", "[failed       ] integrity"}},
		{"untrusted roots", []string{"verify", pdfPath, "--roots", tsaRoots, "--tsa-roots", tsaRoots}, 1,
			[]string{"INDETERMINATE", "[indeterminate] chain"}},
		{"no revocation", append([]string{"verify", pdfPath, "--no-revocation"}, local...), 1,
			[]string{"INDETERMINATE", "[indeterminate] revocation          no revocation checker configured"}},
		{"json", append([]string{"verify", pdfPath, "--json"}, local...), 0,
			[]string{`"verdict": "VERDICT_VALID"`}},
		{"remote", []string{"verify", sigPath, "--detached", docPath, "--addr", lis.Addr().String()}, 0,
			[]string{"VALID", "[passed       ] chain"}},
		{"not a signature", append([]string{"verify", docPath, "--detached", docPath}, local...), 1, nil},
		{"no file", []string{"verify"}, 2, nil},
		{"both content and digest", []string{"verify", sigPath, "--detached", docPath, "--digest", "00"}, 2, nil},
	}
	getenv := func(k string) string {
		if k == "FIRMA_TOKEN" {
			return "unused-by-the-stand-in"
		}
		return ""
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(ctx, tc.args, getenv, &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errOut.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestPrintReportPolicyCounterSignature: the text report names the
// declared policy and what a countersignature countersigns.
func TestPrintReportPolicyCounterSignature(t *testing.T) {
	var out bytes.Buffer
	printReport(&out, "doc.p7s", &firmav1.VerifyResponse{Signatures: []*firmav1.SignatureReport{
		{Format: "cades", Level: "B-T", Policy: &firmav1.SignaturePolicy{Oid: "2.16.724.1.3.1.1.2.1.9", Name: "FirmaAGE"}},
		{Format: "cades", Level: "B-B", CountersignatureOf: 1},
	}})
	for _, want := range []string{"policy:          2.16.724.1.3.1.1.2.1.9 FirmaAGE", "countersigns:    signature 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
