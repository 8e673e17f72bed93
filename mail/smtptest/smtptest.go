package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLS modes of a test server.
const (
	StartTLS = "starttls" // plaintext, offering STARTTLS
	Implicit = "implicit" // TLS from the first byte
	None     = "none"     // plaintext, no STARTTLS
)

// Options configure a test server.
type Options struct {
	TLS string // StartTLS (default), Implicit or None
	// Username and Password, when set, are required before MAIL FROM
	// (AUTH PLAIN; offered only over TLS unless TLS is None).
	Username, Password string
	// Refuse lists recipients answered 550 5.1.1 at RCPT TO.
	Refuse []string
	// Defer lists recipients answered 451 4.3.0 at RCPT TO.
	Defer []string
}

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	User string // the authenticated user, "" if none
	TLS  bool   // received over TLS
	Data []byte // as received, headers and body
}

// Server is a running test server.
type Server struct {
	Addr string
	// CertPool trusts the server's certificate; CAFile is the same as a
	// PEM file.
	CertPool *x509.CertPool
	CAFile   string

	opt  Options
	srv  *smtp.Server
	mu   sync.Mutex
	msgs []Message
	got  chan struct{}
}

// New starts a server on 127.0.0.1 that stops when the test ends.
func New(t testing.TB, opt Options) *Server {
	t.Helper()
	if opt.TLS == "" {
		opt.TLS = StartTLS
	}
	cert, pemCert := selfSigned(t)
	s := &Server{opt: opt, CertPool: x509.NewCertPool(), got: make(chan struct{}, 1000)}
	s.CertPool.AppendCertsFromPEM(pemCert)
	s.CAFile = filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(s.CAFile, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, tlsOn := c.TLSConnectionState()
		return &session{s: s, conn: c, tls: tlsOn}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = testLogger{t}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 10
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	var l net.Listener
	var err error
	switch opt.TLS {
	case StartTLS:
		srv.TLSConfig = tc
		l, err = net.Listen("tcp", "127.0.0.1:0")
	case Implicit:
		srv.TLSConfig = tc
		l, err = tls.Listen("tcp", "127.0.0.1:0", tc)
	case None:
		srv.AllowInsecureAuth = true
		l, err = net.Listen("tcp", "127.0.0.1:0")
	default:
		t.Fatalf("smtptest: tls %q", opt.TLS)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.srv, s.Addr = srv, l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		// Serve may not have registered l yet when Close runs.
		srv.Close()
		l.Close()
		<-done
	})
	return s
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Wait returns once n messages have been accepted, or fails the test
// after timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if ms := s.Messages(); len(ms) >= n {
			return ms
		}
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("smtptest: %d messages after %s, want %d", len(s.Messages()), timeout, n)
		}
	}
}

type session struct {
	s    *Server
	conn *smtp.Conn
	tls  bool
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (x *session) AuthMechanisms() []string {
	if x.s.opt.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		okUser := subtle.ConstantTimeCompare([]byte(username), []byte(x.s.opt.Username)) == 1
		okPass := subtle.ConstantTimeCompare([]byte(password), []byte(x.s.opt.Password)) == 1
		if identity != "" && identity != username || !okUser || !okPass {
			return smtp.ErrAuthFailed
		}
		x.user = username
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.opt.Username != "" && x.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	if _, ok := x.conn.TLSConnectionState(); ok {
		x.tls = true
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch {
	case slices.Contains(x.s.opt.Refuse, to):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: Recipient address rejected"}
	case slices.Contains(x.s.opt.Defer, to):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "<" + to + ">: try again later"}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(x.to) == 0 {
		return errors.New("no recipients")
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, Message{From: x.from, To: x.to, User: x.user, TLS: x.tls, Data: b})
	x.s.mu.Unlock()
	select {
	case x.s.got <- struct{}{}:
	default:
	}
	return nil
}

func (x *session) Reset() { x.from, x.to = "", nil }

func (x *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost.
func selfSigned(t testing.TB) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "smtptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pemCert
}

// testLogger sends the server's errors to the test's log.
type testLogger struct{ t testing.TB }

func (l testLogger) Printf(format string, v ...any) { l.t.Logf("smtptest: "+format, v...) }
func (l testLogger) Println(v ...any)               { l.t.Log(append([]any{"smtptest:"}, v...)...) }
