package fire

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := (&Config{Path: DefaultPath, MaxParamBytes: 1 << 10, MaxRequestBytes: 1 << 10, MaxBatch: 1}).Validate(); err != nil {
		t.Fatalf("smallest valid: %v", err)
	}
	d := DefaultConfig()
	if err := d.Validate(); err != nil || d.Path != "/fire-signature/fireService" || d.MaxParamBytes != 8<<20 ||
		d.MaxRequestBytes != 12<<20 || d.MaxBatch != 10 || d.Enabled || d.CertHeader != "" {
		t.Fatalf("defaults %+v: %v", d, err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"path", func(c *Config) { c.Path = "fire" }},
		{"path", func(c *Config) { c.Path = "/fire/" }},
		{"max_param_bytes", func(c *Config) { c.MaxParamBytes = 10 }},
		{"max_request_bytes", func(c *Config) { c.MaxRequestBytes = c.MaxParamBytes - 1 }},
		{"max_batch", func(c *Config) { c.MaxBatch = 0 }},
		{"cert_header", func(c *Config) { c.CertHeader = "X Cert" }},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
}

func TestDigests(t *testing.T) {
	der := []byte("not really DER, but digested all the same")
	var all []string
	for _, alg := range []string{"sha1", "sha256", "sha512"} {
		d, err := Digest(alg, der)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, d)
		// openssl's form: upper case with colons.
		_, hexPart, _ := strings.Cut(d, ":")
		var b strings.Builder
		for i := 0; i < len(hexPart); i += 2 {
			if i > 0 {
				b.WriteByte(':')
			}
			b.WriteString(strings.ToUpper(hexPart[i : i+2]))
		}
		if p, err := ParseDigest(strings.ToUpper(alg[:3]) + "-" + alg[3:] + ":" + b.String()); err != nil || p != d {
			t.Errorf("ParseDigest of openssl's form: %q, %v; want %q", p, err, d)
		}
		if !DigestMatches([]string{d}, der) || DigestMatches([]string{d}, append(der, 0)) {
			t.Errorf("%s: match", alg)
		}
	}
	if DigestMatches(all, nil) || DigestMatches([]string{"md5:00"}, der) {
		t.Error("matched nothing or an unknown algorithm")
	}
	for _, bad := range []string{"sha256:abcd", "md5:" + strings.Repeat("0", 32), "sha1", "sha1:zz"} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
