package mail_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/firma-cloud/firma/mail"
	"github.com/firma-cloud/firma/mail/smtptest"
)

const (
	from     = `"Cl@ve Firma" <no-reply@firma.example.es>`
	rcpt     = "ana.garcia@example.es"
	user     = "firma"
	password = "s3cret-relay-pass"
	subject  = "Cl@ve Firma: notificación de firma — ñandú"
	body     = "Cl@ve Firma: el 25/11/2026 a las 11:00 se firmaron 2 documentos con su certificado a petición de Ayuntamiento.\n" +
		"Si no reconoce esta firma, revóquelo y contacte con su oficina de registro."
)

// closedAddr is a loopback port with nothing listening.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestSMTPGateway(t *testing.T) {
	sent := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		server  smtptest.Options
		tls     mail.TLSMode
		user    string
		pass    string
		trust   bool   // give the gateway the server's CA
		addr    string // instead of the server's
		to      string
		want    error
		temp    bool
		tlsUsed bool
	}{
		{name: "starttls with auth", server: smtptest.Options{Username: user, Password: password}, tls: mail.StartTLS, user: user, pass: password, trust: true, tlsUsed: true},
		{name: "implicit tls with auth", server: smtptest.Options{TLS: smtptest.Implicit, Username: user, Password: password}, tls: mail.ImplicitTLS, user: user, pass: password, trust: true, tlsUsed: true},
		{name: "starttls without auth", server: smtptest.Options{}, tls: mail.StartTLS, trust: true, tlsUsed: true},
		{name: "plaintext to loopback", server: smtptest.Options{TLS: smtptest.None}, tls: mail.NoTLS},
		{name: "plaintext to loopback with auth", server: smtptest.Options{TLS: smtptest.None, Username: user, Password: password}, tls: mail.NoTLS, user: user, pass: password},
		{name: "relay without starttls", server: smtptest.Options{TLS: smtptest.None, Username: user, Password: password}, tls: mail.StartTLS, user: user, pass: password, trust: true, want: mail.ErrTLS},
		{name: "untrusted certificate", server: smtptest.Options{}, tls: mail.StartTLS, want: mail.ErrTLS},
		{name: "implicit tls against plaintext", server: smtptest.Options{TLS: smtptest.None}, tls: mail.ImplicitTLS, trust: true, want: mail.ErrTLS},
		{name: "wrong password", server: smtptest.Options{Username: user, Password: password}, tls: mail.StartTLS, user: user, pass: "wrong-pass", trust: true, want: mail.ErrAuth},
		{name: "credentials missing", server: smtptest.Options{Username: user, Password: password}, tls: mail.StartTLS, trust: true, want: mail.ErrAuth},
		{name: "recipient refused", server: smtptest.Options{Refuse: []string{rcpt}}, tls: mail.StartTLS, trust: true, want: mail.ErrRefused},
		{name: "recipient deferred", server: smtptest.Options{Defer: []string{rcpt}}, tls: mail.StartTLS, trust: true, want: mail.ErrRejected, temp: true},
		{name: "unreachable", tls: mail.StartTLS, addr: "closed", want: mail.ErrUnreachable, temp: true},
		{name: "invalid recipient", server: smtptest.Options{}, tls: mail.StartTLS, trust: true, to: "Ana <" + rcpt + ">", want: mail.ErrRecipient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var srv *smtptest.Server
			addr := tc.addr
			if addr == "closed" {
				addr = closedAddr(t)
			} else {
				srv = smtptest.New(t, tc.server)
				addr = srv.Addr
			}
			opt := mail.SMTPOptions{Addr: addr, From: from, Username: tc.user, Password: tc.pass, TLS: tc.tls,
				Timeout: 5 * time.Second, Registerer: prometheus.NewRegistry(), Clock: func() time.Time { return sent }}
			if tc.trust {
				opt.RootCAs = srv.CertPool
			}
			reg := prometheus.NewRegistry()
			opt.Registerer = reg
			g, err := mail.NewSMTP(opt)
			if err != nil {
				t.Fatal(err)
			}
			to := rcpt
			if tc.to != "" {
				to = tc.to
			}
			err = g.Send(context.Background(), to, subject, body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("send: %v, want %v", err, tc.want)
			}
			if err != nil {
				for _, secret := range []string{rcpt, password, "wrong-pass", "ana.garcia"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q gives away %q", err, secret)
					}
				}
				if mail.IsTemporary(err) != tc.temp {
					t.Errorf("IsTemporary(%v) = %t, want %t", err, !tc.temp, tc.temp)
				}
				if srv != nil && len(srv.Messages()) != 0 {
					t.Errorf("a failed send delivered %d messages", len(srv.Messages()))
				}
				return
			}
			if n := testutil.ToFloat64(gatherCounter(t, reg, "sent")); n != 1 {
				t.Errorf("sent counter %v", n)
			}
			ms := srv.Wait(t, 1, 5*time.Second)
			got := ms[0]
			if got.From != "no-reply@firma.example.es" || len(got.To) != 1 || got.To[0] != rcpt || got.User != tc.user || got.TLS != tc.tlsUsed {
				t.Errorf("envelope from %q to %v, user %q, tls %t", got.From, got.To, got.User, got.TLS)
			}
			checkMessage(t, got.Data, sent)
		})
	}
}

// gatherCounter returns the firma_mail_smtp_messages_total series with the
// given outcome.
func gatherCounter(t *testing.T, reg *prometheus.Registry, outcome string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "firma_mail_smtp_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
}

// checkMessage parses the received message as RFC 5322 and checks every
// header a notice must have and its decoded body.
func checkMessage(t *testing.T, data []byte, sent time.Time) {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	h := m.Header
	if a, err := netmail.ParseAddress(h.Get("From")); err != nil || a.Address != "no-reply@firma.example.es" || a.Name != "Cl@ve Firma" {
		t.Errorf("From %q: %v %v", h.Get("From"), a, err)
	}
	if a, err := netmail.ParseAddress(h.Get("To")); err != nil || a.Address != rcpt {
		t.Errorf("To %q", h.Get("To"))
	}
	raw := h.Get("Subject")
	if !strings.HasPrefix(raw, "=?UTF-8?") && !strings.HasPrefix(raw, "=?utf-8?") {
		t.Errorf("Subject %q is not an RFC 2047 encoded word", raw)
	}
	checkMessageSubject(t, data, subject)
	if d, err := h.Date(); err != nil || !d.Equal(sent) {
		t.Errorf("Date %q: %v %v", h.Get("Date"), d, err)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@firma.example.es>") || len(id) < 40 {
		t.Errorf("Message-ID %q", id)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		t.Errorf("Content-Type %q", h.Get("Content-Type"))
	}
	if v := h.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted %q", v)
	}
	if h.Get("User-Agent") != "" || h.Get("X-Mailer") != "" {
		t.Errorf("the message names its software: %q %q", h.Get("User-Agent"), h.Get("X-Mailer"))
	}
	var r io.Reader = m.Body
	switch cte := strings.ToLower(h.Get("Content-Transfer-Encoding")); cte {
	case "quoted-printable":
		r = quotedprintable.NewReader(m.Body)
	case "", "7bit", "8bit":
	default:
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"); got != body {
		t.Errorf("body %q, want %q", got, body)
	}
}

func TestNewSMTPRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  mail.SMTPOptions
		want string
	}{
		{"no port", mail.SMTPOptions{Addr: "smtp.example.es", From: from}, "host:port"},
		{"bad port", mail.SMTPOptions{Addr: "smtp.example.es:x", From: from}, "host:port"},
		{"no from", mail.SMTPOptions{Addr: "smtp.example.es:587"}, "from"},
		{"bad from", mail.SMTPOptions{Addr: "smtp.example.es:587", From: "Firma <no-reply>"}, "from"},
		{"plaintext off loopback", mail.SMTPOptions{Addr: "smtp.example.es:25", From: from, TLS: mail.NoTLS}, "loopback"},
		{"username without password", mail.SMTPOptions{Addr: "smtp.example.es:587", From: from, Username: "u"}, "password"},
		{"unknown tls", mail.SMTPOptions{Addr: "smtp.example.es:587", From: from, TLS: "ssl"}, "starttls, implicit or none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mail.NewSMTP(tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSMTP: %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// A deadline shorter than the relay's answer ends the send.
func TestSMTPGatewayContext(t *testing.T) {
	// A listener that accepts and never greets.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	g, err := mail.NewSMTP(mail.SMTPOptions{Addr: l.Addr().String(), From: from, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, nil},
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			err := g.Send(ctx, rcpt, subject, body)
			if !errors.Is(err, mail.ErrUnreachable) || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("send to a silent relay: %v, want ErrUnreachable (%v)", err, tc.want)
			}
		})
	}
}

// checkMessageSubject decodes the message's Subject header.
func checkMessageSubject(t *testing.T, data []byte, want string) {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || dec != want {
		t.Errorf("Subject decodes to %q (%v), want %q", dec, err, want)
	}
}
