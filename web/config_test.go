package web

import "testing"

func TestConfig(t *testing.T) {
	cases := []struct {
		mode, url string
		tls       bool
		valid     bool
		secure    bool
	}{
		{CookiesAuto, "", false, true, false},
		{CookiesAuto, "", true, true, true},
		{CookiesAuto, "https://firma.example.es", false, true, true},
		{CookiesAuto, "http://127.0.0.1:8080", false, true, false},
		{CookiesAlways, "http://firma.internal", false, true, true},
		{CookiesNever, "https://firma.example.es", true, true, false},
		{"sometimes", "", false, false, false},
	}
	for _, c := range cases {
		cfg := Config{SecureCookies: c.mode}
		if err := cfg.Validate(); (err == nil) != c.valid {
			t.Errorf("%s: validate %v", c.mode, err)
			continue
		}
		if c.valid && cfg.Secure(c.url, c.tls) != c.secure {
			t.Errorf("%s %s tls=%v: secure %v, want %v", c.mode, c.url, c.tls, !c.secure, c.secure)
		}
	}
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
