package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/firma-cloud/firma/audit"
)

// fuzzExport is a valid export signed with a software key: the fuzzers
// check parsing of outside input, not the HSM.
func fuzzExport(f *testing.F) ([]byte, string, []byte) {
	f.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ns, err := audit.NewNoteSigner(origin, k)
	if err != nil {
		f.Fatal(err)
	}
	vkey, err := audit.NoteVerifierKey(origin, k.Public())
	if err != nil {
		f.Fatal(err)
	}
	db, _ := openDB(f)
	l, err := audit.Open(context.Background(), db, audit.Options{Origin: origin, Signer: ns})
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	fill(f, l, 0, 3)
	c := checkpoint(f, l)
	fill(f, l, 3, 5)
	var b bytes.Buffer
	if err := l.Export(context.Background(), &b); err != nil {
		f.Fatal(err)
	}
	return b.Bytes(), vkey, c.Note
}

// VerifyExport never panics, and anything it accepts is a whole, signed log.
func FuzzVerifyExport(f *testing.F) {
	exp, vkey, note := fuzzExport(f)
	keys, err := audit.NewNoteVerifiers(vkey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(exp)
	f.Add(exp[:len(exp)/2])
	f.Add(bytes.Replace(exp, []byte(`"seq":1`), []byte(`"seq":2`), 1))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rep, err := audit.VerifyExport(bytes.NewReader(in), keys, note)
		if err != nil {
			if rep != nil {
				t.Fatal("report with an error")
			}
			if !errors.Is(err, audit.ErrExport) && !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		if rep.Records != rep.Size || rep.Size < 3 || rep.Checkpoints < 1 {
			t.Fatalf("accepted %+v", rep)
		}
	})
}

func FuzzNewNoteVerifier(f *testing.F) {
	_, vkey, _ := fuzzExport(f)
	f.Add(vkey)
	f.Add("a+00000000+AQ==")
	f.Add("name+1234abcd+" + "Ag==")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := audit.NewNoteVerifier(s)
		if err == nil && (v.Name() == "" || v.Verify([]byte("x\n"), []byte("sig"))) {
			t.Fatalf("verifier from %q accepts junk", s)
		}
	})
}

func FuzzParseRecord(f *testing.F) {
	r := sample(0)
	r.Seq = 7
	leaf, err := r.Leaf()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(leaf)
	f.Add([]byte(`{"seq":1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := audit.ParseRecord(in)
		if err != nil {
			return
		}
		// What parses re-encodes, and re-parses to the same leaf.
		leaf, err := r.Leaf()
		if err != nil {
			return
		}
		r2, err := audit.ParseRecord(leaf)
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
		leaf2, err := r2.Leaf()
		if err != nil || !bytes.Equal(leaf, leaf2) {
			t.Fatalf("leaf not stable:\n%s\n%s", leaf, leaf2)
		}
	})
}
