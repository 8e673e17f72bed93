package limit

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/config"
)

func TestProxiesClient(t *testing.T) {
	p, err := ParseProxies([]string{"10.0.0.0/8", "192.0.2.10", "2001:db8:1::/48"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer, spoofed header ignored", "198.51.100.7:4000", []string{"203.0.113.1"}, "198.51.100.7"},
		{"untrusted peer, no header", "198.51.100.7:4000", nil, "198.51.100.7"},
		{"trusted peer, no header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"trusted peer forwards its client", "10.1.2.3:4000", []string{"203.0.113.5"}, "203.0.113.5"},
		// The client wrote the left hop itself: the right-most untrusted
		// hop is the one the trusted proxy heard from.
		{"client's own hop left of the real one", "10.1.2.3:4000", []string{"1.2.3.4, 203.0.113.5"}, "203.0.113.5"},
		{"two trusted proxies", "192.0.2.10:4000", []string{"1.2.3.4, 203.0.113.5", "10.9.9.9"}, "203.0.113.5"},
		{"every hop trusted", "10.1.2.3:4000", []string{"10.4.4.4, 10.5.5.5"}, "10.4.4.4"},
		{"garbage hop stops at the proxy that wrote it", "10.1.2.3:4000", []string{"203.0.113.5, not-an-ip, 10.7.7.7"}, "10.7.7.7"},
		{"hop with a port", "10.1.2.3:4000", []string{"203.0.113.5:5555"}, "203.0.113.5"},
		{"IPv6 proxy and client", "[2001:db8:1::2]:443", []string{"2001:db8:99::1"}, "2001:db8:99::1"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:4000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"peer not an address", "@unix", []string{"203.0.113.5"}, "@unix"},
	} {
		if got := p.Client(tt.peer, tt.xff); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	var none *Proxies
	if got := none.Client("10.1.2.3:4000", []string{"203.0.113.5"}); got != "10.1.2.3" {
		t.Errorf("no trusted proxies: %q, want the peer", got)
	}
}

func TestParseProxiesErrors(t *testing.T) {
	_, err := ParseProxies([]string{"10.0.0.0/8", "10.0.0.0/33", "proxy.example"})
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	if strings.Join(fields, " ") != "trusted_proxies[1] trusted_proxies[2]" {
		t.Fatalf("fields %v", fields)
	}
	cfg := config.Default()
	if err := cfg.Decode(strings.NewReader("server:\n  trusted_proxies: [10.0.0.0/8, 192.0.2.1]\n")); err != nil {
		t.Fatal(err)
	}
	if sc := config.SectionOf[ServerConfig](cfg, ServerSectionName); sc == nil || len(sc.TrustedProxies) != 2 {
		t.Fatalf("decoded section: %+v", sc)
	}
	bad := config.Default()
	if err := bad.Decode(strings.NewReader("server:\n  trusted_proxies: [nope]\n")); err != nil {
		t.Fatal(err)
	}
	if msg := validate(bad); !strings.Contains(msg, "server.trusted_proxies[0]") {
		t.Fatalf("a bad proxy is not named by validation: %s", msg)
	}
}

func validate(c *config.Config) string {
	if err := c.Validate(); err != nil {
		return err.Error()
	}
	return ""
}

// TestClientIPSpoofing: behind the middleware, a rate limiter keyed by
// ClientKey gives an untrusted client one bucket however it varies
// X-Forwarded-For, while clients behind a trusted proxy get one each.
func TestClientIPSpoofing(t *testing.T) {
	p, _ := ParseProxies([]string{"10.0.0.0/8"})
	rate := NewClients(1.0/60, 1, 100, time.Minute)
	h := ClientIP(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := rate.Check(ClientKey(r)); err != nil {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(ClientKey(r)))
	}))
	do := func(peer, xff string) (int, string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if code, who := do("198.51.100.7:1", "203.0.113.1"); code != 200 || who != "198.51.100.7" {
		t.Fatalf("first from an untrusted peer: %d %q", code, who)
	}
	for _, spoof := range []string{"203.0.113.2", "203.0.113.3, 203.0.113.4", "10.0.0.1"} {
		if code, _ := do("198.51.100.7:2", spoof); code != http.StatusTooManyRequests {
			t.Fatalf("spoofed %q from the untrusted peer got a fresh bucket: %d", spoof, code)
		}
	}
	for _, client := range []string{"203.0.113.10", "203.0.113.11"} {
		if code, who := do("10.0.0.2:3", client); code != 200 || who != client {
			t.Fatalf("client %s behind the trusted proxy: %d %q", client, code, who)
		}
	}
}
