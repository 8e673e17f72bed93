package firehttp

import (
	"strings"
	"testing"
)

// FuzzParams feeds FIRe request bodies through the parameter form, the
// base64 reader and the Java-properties reader: no panic, and the first
// value of a name always wins.
func FuzzParams(f *testing.F) {
	for _, s := range []string{"op=1&appid=A&dat=SGVsbG8=&config=cmVkaXJlY3RPa1VybD1odHRwczovL2Evb2s=", "&op=8&op=9",
		"properties=bW9kZT1pbXBsaWNpdA==&x=%3D%", "config=I2MKYT1cdTAwRjMK"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		p := parse([]byte(body), "")
		for k, v := range p {
			_, _ = decodeB64(v)
			_, _ = props(k, v)
		}
		first, _, _ := strings.Cut(strings.TrimLeft(body, "& \t\r\n"), "&")
		if k, v, ok := strings.Cut(strings.TrimSpace(first), "="); ok && k != "" && !strings.Contains(v, "%") && p[k] != v {
			t.Fatalf("first pair %q=%q, parsed %q", k, v, p[k])
		}
	})
}
