package asic_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/asic"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

func tool(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// outside unpacks a container with unzip and checks its signature with
// openssl cms (CAdES) or xmlsec1 (XAdES); nil when they accept it.
func outside(t *testing.T, container []byte, rootPEM string) error {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.asice")
	if err := os.WriteFile(path, container, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x")
	if o, err := tool(dir, "unzip", "-q", path, "-d", out); err != nil {
		return errors.New("unzip: " + o)
	}
	if _, err := os.Stat(filepath.Join(out, "META-INF", "signature.p7s")); err == nil {
		o, err := tool(out, "openssl", "cms", "-verify", "-binary", "-content", "solicitud.txt", "-inform", "DER",
			"-in", "META-INF/signature.p7s", "-CAfile", rootPEM, "-purpose", "any", "-out", os.DevNull)
		if err != nil || !strings.Contains(o, "Verification successful") {
			return errors.New("openssl cms -verify: " + o)
		}
		return nil
	}
	// The references are relative to the container's root, where xmlsec1
	// runs; it resolves them against its working directory.
	o, err := tool(out, "xmlsec1", "--verify", "--trusted-pem", rootPEM, "--enabled-reference-uris", "empty,same-doc,local,remote",
		"--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", "META-INF/signatures.xml")
	if err != nil || !strings.Contains(o, "OK") {
		return errors.New("xmlsec1: " + o)
	}
	// xadesjs too, installed by make deps-test beside signer/xades's tests.
	js, err := filepath.Abs("../xades/testdata/xadesjs/check.js")
	if err != nil {
		t.Fatal(err)
	}
	if o, err := tool(out, "node", js, "META-INF/signatures.xml", "solicitud.txt"); err != nil {
		return errors.New("xadesjs: " + o)
	}
	return nil
}

// verifyMu serialises verification across the parallel subtests:
// github.com/digitorus/pkcs7's BER decoder, under every time-stamp token
// parse, writes a package-level counter (encodeIndent in ber.go), a data
// race the race detector reports when two tokens are parsed at once.
var verifyMu sync.Mutex

func verifyASiC(ctx context.Context, v *verify.Verifier, c []byte) (*verify.Report, error) {
	verifyMu.Lock()
	defer verifyMu.Unlock()
	return v.ASiC(ctx, c)
}

func TestASiC(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	rootPEM := testpki.WritePEM(t, t.TempDir(), "root.pem", pki.Root.Cert, pki.Issuing.Cert)
	key, chain := pki.User(t, keystore.ECP256, "ELENA DIAZ")
	v, err := verify.New(verify.Config{Roots: testpki.Pool(pki.Root.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert), Revocation: &verify.Online{}})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("Solicitud de prueba dentro de un contenedor ASiC.\n")
	doc := signer.Document{Type: "text/plain", Content: content, Name: "solicitud.txt"}
	for _, tc := range []struct {
		format signer.Format
		mime   string
		entry  string
	}{
		{signer.FormatASiCSCAdES, asic.MimeASiCS, asic.CAdESEntry},
		{signer.FormatASiCSXAdES, asic.MimeASiCS, asic.XAdESEntry},
		{signer.FormatASiCEXAdES, asic.MimeASiCE, asic.XAdESEntry},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			t.Parallel()
			ts := pki.Timestamper(t)
			// The tsa client parses every token it gets: serialised too.
			opt := signer.Options{Level: signer.LevelT, Timestamper: signer.TimestamperFunc(func(ctx context.Context, h crypto.Hash, d []byte) ([]byte, error) {
				verifyMu.Lock()
				defer verifyMu.Unlock()
				return ts.Timestamp(ctx, h, d)
			})}
			c, err := signer.SignDocument(ctx, tc.format, signer.StandardFormats(), doc, key, chain, opt, signer.PDFOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// unzip -v: mimetype first, stored, holding the media type.
			path := filepath.Join(t.TempDir(), "c.zip")
			os.WriteFile(path, c, 0o600)
			listing, err := tool(".", "unzip", "-v", path)
			if err != nil {
				t.Fatalf("unzip -v: %v\n%s", err, listing)
			}
			var entries []string
			for _, l := range strings.Split(listing, "\n") {
				if f := strings.Fields(l); len(f) == 8 && f[0] != "Length" && !strings.HasPrefix(f[0], "-") {
					entries = append(entries, f[7]+" "+f[1])
				}
			}
			want := []string{"mimetype Stored", "solicitud.txt Defl:N", tc.entry + " Defl:N"}
			if strings.Join(entries, ",") != strings.Join(want, ",") {
				t.Errorf("unzip -v entries %q, want %q\n%s", entries, want, listing)
			}
			if !bytes.Equal(c[30:38], []byte("mimetype")) || !bytes.Equal(c[38:38+len(tc.mime)], []byte(tc.mime)) {
				t.Errorf("the media type is not at offset 38: %q", c[30:38+len(tc.mime)])
			}
			if err := outside(t, c, rootPEM); err != nil {
				t.Fatalf("outside tool: %v", err)
			}
			r, err := verifyASiC(ctx, v, c)
			if err != nil || r.Verdict != verify.Valid || r.Signatures[0].Format != string(tc.format) || r.Signatures[0].Level != "B-T" {
				t.Fatalf("firma verify: %v %+v", err, r)
			}

			// The same signature beside a changed document: refused by all.
			opened, err := asic.Open(c, asic.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			changed := bytes.Clone(content)
			changed[3] ^= 0x01
			forged, err := asic.Build(tc.mime, []asic.Document{{Name: "solicitud.txt", Content: changed}}, opened.SignatureName, opened.Signature, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := outside(t, forged, rootPEM); err == nil {
				t.Error("the outside tool accepted a changed document")
			}
			if r, err := verifyASiC(ctx, v, forged); err == nil && r.Verdict == verify.Valid {
				t.Error("firma accepted a changed document")
			}
			// Each byte of the document changed in turn: never valid.
			for i := range content {
				changed := bytes.Clone(content)
				changed[i] ^= 0x01
				forged, err := asic.Build(tc.mime, []asic.Document{{Name: "solicitud.txt", Content: changed}}, opened.SignatureName, opened.Signature, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if r, err := verifyASiC(ctx, v, forged); err == nil && r.Verdict == verify.Valid {
					t.Fatalf("firma accepted the document with byte %d changed", i)
				}
			}
			// Each byte of the container changed in turn: either Open
			// refuses it (ZIP structure, CRC), or it holds the very same
			// document and signature (the byte was ZIP bookkeeping, such as
			// a version or time field), or it must not verify. Only the
			// last are verified, which keeps this loop cheap. A CAdES
			// signature does not cover the document's file name (EN 319
			// 162-1 signs only the content in ASiC-S), so with CAdES a
			// renamed document is the same document.
			for i := range c {
				bad := bytes.Clone(c)
				bad[i] ^= 0x01
				o, err := asic.Open(bad, asic.Limits{})
				if err != nil {
					continue
				}
				sameName := len(o.Documents) == 1 && (o.Documents[0].Name == "solicitud.txt" || tc.format == signer.FormatASiCSCAdES)
				if err != nil || (o.MimeType == tc.mime && sameName &&
					bytes.Equal(o.Documents[0].Content, content) && bytes.Equal(o.Signature, opened.Signature)) {
					continue
				}
				if r, err := verifyASiC(ctx, v, bad); err == nil && r.Verdict == verify.Valid {
					t.Fatalf("byte %d changed what the container holds, yet it verifies", i)
				}
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	at := time.Now()
	zipOf := func(entries ...*zip.FileHeader) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, h := range entries {
			w, err := zw.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			switch h.Name {
			case "mimetype":
				w.Write([]byte(asic.MimeASiCS))
			case "bomb":
				w.Write(make([]byte, 8<<20)) // 8 MiB of zeros, a few KiB deflated
			default:
				w.Write([]byte("x"))
			}
		}
		zw.Close()
		return buf.Bytes()
	}
	good, err := asic.Build(asic.MimeASiCS, []asic.Document{{Name: "a.txt", Content: []byte("a")}}, asic.CAdESEntry, []byte("sig"), at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asic.Open(good, asic.Limits{}); err != nil {
		t.Fatalf("a well-made container: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		lim  asic.Limits
		want error
	}{
		{"not a zip", []byte("PK\x03\x04 broken"), asic.Limits{}, asic.ErrContainer},
		{"mimetype deflated", zipOf(&zip.FileHeader{Name: "mimetype", Method: zip.Deflate}, &zip.FileHeader{Name: "a"}, &zip.FileHeader{Name: asic.CAdESEntry}), asic.Limits{}, asic.ErrContainer},
		{"mimetype not first", zipOf(&zip.FileHeader{Name: "a"}, &zip.FileHeader{Name: "mimetype"}, &zip.FileHeader{Name: asic.CAdESEntry}), asic.Limits{}, asic.ErrContainer},
		{"name climbing out", zipOf(&zip.FileHeader{Name: "mimetype"}, &zip.FileHeader{Name: "../etc/x"}, &zip.FileHeader{Name: asic.CAdESEntry}), asic.Limits{}, asic.ErrContainer},
		{"no signature", zipOf(&zip.FileHeader{Name: "mimetype"}, &zip.FileHeader{Name: "a"}), asic.Limits{}, asic.ErrContainer},
		{"two documents in ASiC-S", zipOf(&zip.FileHeader{Name: "mimetype"}, &zip.FileHeader{Name: "a"}, &zip.FileHeader{Name: "b"}, &zip.FileHeader{Name: asic.CAdESEntry}), asic.Limits{}, asic.ErrContainer},
		{"zip bomb", zipOf(&zip.FileHeader{Name: "mimetype"}, &zip.FileHeader{Name: "bomb", Method: zip.Deflate}, &zip.FileHeader{Name: asic.CAdESEntry}),
			asic.Limits{MaxEntries: 10, MaxEntryBytes: 1 << 20, MaxTotalBytes: 1 << 20}, asic.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := asic.Open(tc.in, tc.lim); !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := asic.Build(asic.MimeASiCS, []asic.Document{{Name: "META-INF/x", Content: []byte("a")}}, asic.CAdESEntry, nil, at); !errors.Is(err, asic.ErrName) {
		t.Errorf("a document in META-INF/: %v", err)
	}
}
