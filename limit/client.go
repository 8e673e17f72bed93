package limit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/firma-cloud/firma/config"
)

// ServerSectionName is the top-level key of ServerConfig in firmad.yaml.
const ServerSectionName = "server"

// ServerConfig is the `server:` section: how firmad tells its clients
// apart.
type ServerConfig struct {
	// TrustedProxies are the addresses (CIDRs, or single IPs) of the
	// reverse proxies in front of firmad. Only a request whose peer is one
	// of them has its X-Forwarded-For read, and then only up to the first
	// hop (from the right) that is not one of them. Empty: the peer is the
	// client, whatever the request says.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

func init() {
	config.RegisterSection(ServerSectionName, func() any { return &ServerConfig{} })
}

// Validate names every entry that is neither a CIDR nor an IP address.
func (c *ServerConfig) Validate() error {
	_, err := ParseProxies(c.TrustedProxies)
	return err
}

// Proxies is a set of trusted proxies; the nil or empty set trusts none.
type Proxies struct{ nets []netip.Prefix }

// ParseProxies parses CIDRs or single addresses (a /32 or /128).
func ParseProxies(cidrs []string) (*Proxies, error) {
	p := &Proxies{}
	var all []error
	for i, s := range cidrs {
		s = strings.TrimSpace(s)
		if pfx, err := netip.ParsePrefix(s); err == nil {
			p.nets = append(p.nets, pfx.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			p.nets = append(p.nets, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		all = append(all, &config.FieldError{Field: fmt.Sprintf("trusted_proxies[%d]", i), Msg: fmt.Sprintf("%q is neither a CIDR nor an IP address", s)})
	}
	return p, errors.Join(all...)
}

func (p *Proxies) trusts(a netip.Addr) bool {
	if p == nil {
		return false
	}
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// Client is the client's address given the connection's peer (host or
// host:port) and the request's X-Forwarded-For values in order: the peer
// unless it is a trusted proxy; then the right-most hop that is not one
// (each trusted proxy appends the address it heard from, so hops left of
// the first untrusted one are the client's to write). A hop that is not
// an address ends the walk at the proxy that wrote it.
func (p *Proxies) Client(peer string, forwardedFor []string) string {
	host := peer
	if h, _, err := net.SplitHostPort(peer); err == nil {
		host = h
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !p.trusts(addr) {
		return host
	}
	var hops []string
	for _, v := range forwardedFor {
		for h := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	client := addr.Unmap()
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(hops[i])
		if err != nil {
			if ap, perr := netip.ParseAddrPort(hops[i]); perr == nil {
				hop = ap.Addr()
			} else {
				break
			}
		}
		client = hop.Unmap()
		if !p.trusts(client) {
			break
		}
	}
	return client.String()
}

type clientKey struct{}

// ClientIP is middleware that finds each request's client once
// (Proxies.Client over the peer and X-Forwarded-For) for ClientKey.
func ClientIP(p *Proxies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := p.Client(r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, c)))
	})
}

// ClientKey is the client a request is limited and logged by: what
// ClientIP found, else (no middleware) its peer's IP address. Forwarding
// headers count only from trusted proxies (server.trusted_proxies), as
// they are otherwise the client's to write.
func ClientKey(r *http.Request) string {
	if c, ok := r.Context().Value(clientKey{}).(string); ok {
		return c
	}
	return (*Proxies)(nil).Client(r.RemoteAddr, nil)
}
