package xades_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/signer/xades"
)

// TestParseRefuses feeds the classic XML attacks and malformed input to
// Parse and to Verify and measures the live heap around them: each is
// refused with its error and leaves no growth behind. Cost: well under a
// second; each input is at most a few MiB.
func TestParseRefuses(t *testing.T) {
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">` +
		`<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">` +
		`<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><lolz>&lol9;</lolz>`
	xxe := `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`
	quadratic := `<!DOCTYPE r [<!ENTITY a "` + strings.Repeat("a", 100000) + `">]><r>` + strings.Repeat("&a;", 10000) + `</r>`
	tests := []struct {
		name string
		in   string
		lim  xades.Limits
		want error
	}{
		{"billion laughs", laughs, xades.Limits{}, xades.ErrDoctype},
		{"external entity (XXE)", xxe, xades.Limits{}, xades.ErrDoctype},
		{"quadratic blow-up", quadratic, xades.Limits{}, xades.ErrDoctype},
		{"parameter entity", `<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><r/>`, xades.Limits{}, xades.ErrDoctype},
		{"undeclared entity", `<r>&undeclared;</r>`, xades.Limits{}, xades.ErrMalformed},
		{"deep nesting", strings.Repeat("<a>", 100000) + strings.Repeat("</a>", 100000), xades.Limits{}, xades.ErrTooLarge},
		{"over the size limit", "<r>" + strings.Repeat("x", 2<<20) + "</r>", xades.Limits{MaxBytes: 1 << 20}, xades.ErrTooLarge},
		{"too many elements", "<r>" + strings.Repeat("<e/>", 5000) + "</r>", xades.Limits{MaxElements: 1000}, xades.ErrTooLarge},
		{"too many attributes", "<r " + attrs(300) + "/>", xades.Limits{}, xades.ErrTooLarge},
		{"repeated attribute", `<r a="1" a="2"/>`, xades.Limits{}, xades.ErrMalformed},
		{"unclosed", `<r><a></r>`, xades.Limits{}, xades.ErrMalformed},
		{"two roots", `<r/><s/>`, xades.Limits{}, xades.ErrMalformed},
		{"not XML", `%PDF-1.7`, xades.Limits{}, xades.ErrMalformed},
		{"latin-1", `<?xml version="1.0" encoding="ISO-8859-1"?><r/>`, xades.Limits{}, xades.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := liveHeap()
			_, err := xades.Parse([]byte(tc.in), tc.lim)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse: %v, want %v", err, tc.want)
			}
			if _, err := xades.Verify([]byte(tc.in), nil, tc.lim); !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			// Live heap after, less the input itself: nothing kept.
			if grew := int64(liveHeap()) - int64(before); grew > 1<<20 {
				t.Errorf("live heap grew by %d bytes", grew)
			}
		})
	}
	// A bomb refused at once also peaks low: the whole run's allocation
	// stays within a few times the input.
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, _ = xades.Parse([]byte(laughs), xades.Limits{})
	runtime.ReadMemStats(&m1)
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 1<<20 {
		t.Errorf("billion laughs allocated %d bytes before being refused", alloc)
	}
}

func attrs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, ` a%d="x"`, i)
	}
	return b.String()
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
