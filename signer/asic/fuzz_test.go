package asic_test

import (
	"errors"
	"testing"
	"time"

	"github.com/firma-cloud/firma/signer/asic"
)

// FuzzOpen splices bytes into a small container and checks that Open
// never panics and fails only with its own errors, within its limits.
func FuzzOpen(f *testing.F) {
	c, err := asic.Build(asic.MimeASiCE, []asic.Document{{Name: "a.txt", Content: []byte("hola")}}, asic.XAdESEntry, []byte("<x/>"), time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint16(10), uint8(1), []byte{0})
	f.Add(uint16(38), uint8(4), []byte("asic-s"))
	f.Fuzz(func(t *testing.T, pos uint16, cut uint8, patch []byte) {
		p := int(pos) % (len(c) + 1)
		end := min(p+int(cut), len(c))
		in := append(append(append([]byte{}, c[:p]...), patch...), c[end:]...)
		_, err := asic.Open(in, asic.Limits{MaxEntries: 10, MaxEntryBytes: 1 << 16, MaxTotalBytes: 1 << 16})
		if err != nil && !errors.Is(err, asic.ErrContainer) && !errors.Is(err, asic.ErrTooLarge) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
