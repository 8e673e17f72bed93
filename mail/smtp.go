package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gomail "github.com/wneessen/go-mail"

	"github.com/firma-cloud/firma/errs"
)

// TLSMode is how the SMTP gateway protects its connection to the relay.
type TLSMode string

// TLS modes.
const (
	// StartTLS connects in plaintext and requires the relay to offer
	// STARTTLS (usually port 587); without it nothing is sent.
	StartTLS TLSMode = "starttls"
	// ImplicitTLS speaks TLS from the first byte (usually port 465).
	ImplicitTLS TLSMode = "implicit"
	// NoTLS is plaintext, allowed only to a relay on the loopback
	// interface (a local MTA that relays onwards itself).
	NoTLS TLSMode = "none"
)

// Sentinel errors of the SMTP gateway. None of them, nor the errors
// wrapping them, carries the recipient's address or the password.
var (
	// ErrUnreachable is a relay that could not be reached or that dropped
	// the connection; nothing was sent.
	ErrUnreachable = errors.New("mail relay unreachable")
	// ErrTLS is a relay that does not offer STARTTLS or whose TLS
	// handshake failed; nothing was sent.
	ErrTLS = errors.New("mail relay TLS failed")
	// ErrAuth is a relay that refused the credentials or offers no
	// mechanism to present them; nothing was sent.
	ErrAuth = errors.New("mail relay refused the credentials")
	// ErrRefused is a recipient the relay refused for good (a 5xx answer
	// to RCPT TO): retrying the same address will not help.
	ErrRefused = errors.New("mail relay refused the recipient")
	// ErrRejected is a message the relay did not take, for any other
	// reason; IsTemporary tells whether a retry may succeed.
	ErrRejected = errors.New("mail relay rejected the message")
)

// SMTPOptions configures the SMTP gateway. Addr and From are required.
type SMTPOptions struct {
	Addr string // host:port of the relay
	// From is the sender, with or without a display name:
	// `"Cl@ve Firma" <no-reply@firma.example.es>` (a name holding '@'
	// must be quoted). Its domain also names
	// the Message-ID.
	From string
	// Username and Password authenticate to the relay (SMTP AUTH) when
	// Username is set. The password is a secret and is never logged.
	Username string
	Password string
	TLS      TLSMode        // default StartTLS
	RootCAs  *x509.CertPool // the relay's CAs; nil means the system's
	// HELO is the name given in EHLO; default the From address's domain.
	HELO    string
	Timeout time.Duration // per message; default 30s
	Log     *slog.Logger
	// Registerer takes firma_mail_smtp_messages_total and
	// firma_mail_smtp_send_seconds.
	Registerer prometheus.Registerer
	Clock      func() time.Time
}

// SMTP is a Gateway that hands messages to a mail relay.
type SMTP struct {
	host    string
	opts    []gomail.Option
	from    *netmail.Address
	domain  string
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	msgs    *prometheus.CounterVec
	latency prometheus.Histogram
}

var _ Gateway = (*SMTP)(nil)

// NewSMTP returns an SMTP gateway. It checks the options but does not
// connect: the relay may come up after firmad.
func NewSMTP(opt SMTPOptions) (*SMTP, error) {
	host, portText, err := net.SplitHostPort(opt.Addr)
	port, perr := strconv.Atoi(portText)
	if err != nil || host == "" || perr != nil || port < 1 || port > 65535 {
		return nil, optionError("smtp_addr", "mail smtp: address %q: want host:port", opt.Addr)
	}
	from, err := netmail.ParseAddress(opt.From)
	if err != nil {
		return nil, optionError("from", "mail smtp: from %q: want an address such as \"Firma\" <no-reply@example.es> (quote a name holding @)", opt.From)
	}
	at := strings.LastIndexByte(from.Address, '@')
	domain := from.Address[at+1:]
	if opt.TLS == "" {
		opt.TLS = StartTLS
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	if opt.HELO == "" {
		opt.HELO = domain
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	tc := &tls.Config{ServerName: host, RootCAs: opt.RootCAs, MinVersion: tls.VersionTLS12}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithHELO(opt.HELO),
		gomail.WithTLSConfig(tc)}
	switch opt.TLS {
	case StartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case ImplicitTLS:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	case NoTLS:
		if !loopback(host) {
			return nil, optionError("tls", "mail smtp: tls none is allowed only to a relay on the loopback interface, not %q", host)
		}
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, optionError("tls", "mail smtp: tls %q: want starttls, implicit or none", opt.TLS)
	}
	if opt.Username != "" {
		if opt.Password == "" {
			return nil, errors.New("mail smtp: a username needs a password")
		}
		// Over TLS the best mechanism the relay offers; in plaintext
		// (loopback only, checked above) PLAIN, which go-mail would
		// otherwise refuse to send unencrypted.
		auth := gomail.SMTPAuthAutoDiscover
		if opt.TLS == NoTLS {
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(opt.Username), gomail.WithPassword(opt.Password))
	}
	if _, err := gomail.NewClient(host, opts...); err != nil {
		return nil, fmt.Errorf("mail smtp: %w", err)
	}
	s := &SMTP{host: host, opts: opts, from: from, domain: domain, timeout: opt.Timeout, now: opt.Clock, log: opt.Log,
		msgs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_mail_smtp_messages_total",
			Help: "E-mails handed to the SMTP relay, by outcome (sent, refused, failed)."}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "firma_mail_smtp_send_seconds",
			Help: "Time to hand one e-mail to the SMTP relay, connection included.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
	}
	for _, o := range []string{"sent", "refused", "failed"} {
		s.msgs.WithLabelValues(o) // exported at 0 before the first message, for alerts on rate()
	}
	if opt.Registerer != nil {
		for _, col := range []prometheus.Collector{s.msgs, s.latency} {
			if err := opt.Registerer.Register(col); err != nil {
				return nil, fmt.Errorf("mail smtp metrics: %w", err)
			}
		}
	}
	return s, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Send writes the message (RFC 5322, text/plain in UTF-8, marked
// Auto-Submitted so that vacation responders stay quiet) and hands it to
// the relay over a connection of its own. It does not retry: the caller
// (the notifier) tries again later.
func (s *SMTP) Send(ctx context.Context, to, subject, text string) error {
	if err := Check(to, subject, text); err != nil {
		s.msgs.WithLabelValues("failed").Inc()
		return err
	}
	m, id, err := s.message(to, subject, text)
	if err != nil {
		s.msgs.WithLabelValues("failed").Inc()
		return err
	}
	start := time.Now()
	// go-mail stops watching ctx once connected, so a cancelled ctx (a
	// shutdown) is answered here at once; the abandoned attempt ends by
	// its own deadline, and may still deliver: notices are at least once.
	done := make(chan error, 1)
	go func() { done <- s.deliver(ctx, m) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done: // finished as ctx ended: its outcome stands
		default:
			err = fmt.Errorf("mail smtp: %w: %w", ErrUnreachable, ctx.Err())
		}
	}
	s.latency.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		s.msgs.WithLabelValues("sent").Inc()
		s.log.InfoContext(ctx, "mail sent", "to", Mask(to), "message_id", id)
		return nil
	case errors.Is(err, ErrRefused):
		s.msgs.WithLabelValues("refused").Inc()
	default:
		s.msgs.WithLabelValues("failed").Inc()
	}
	s.log.WarnContext(ctx, "mail not sent", "to", Mask(to), "message_id", id, "err", err)
	return err
}

// message builds the e-mail; go-mail encodes a non-ASCII subject as an
// RFC 2047 encoded word and the body as quoted-printable.
func (s *SMTP) message(to, subject, text string) (*gomail.Msg, string, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(s.from)
	if err := m.To(to); err != nil {
		return nil, "", fmt.Errorf("mail: %w: want a bare address such as name@example.es", ErrRecipient)
	}
	m.Subject(subject)
	m.SetDateWithValue(s.now())
	r := make([]byte, 16)
	if _, err := rand.Read(r); err != nil {
		return nil, "", fmt.Errorf("mail smtp: %w", err)
	}
	id := hex.EncodeToString(r) + "@" + s.domain
	m.SetMessageIDWithValue(id)
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	m.SetBodyString(gomail.TypeTextPlain, text)
	return m, id, nil
}

// deliver connects, sends and quits. The connection's deadline is the
// sooner of the timeout and ctx's deadline: go-mail watches ctx only while
// dialling, and after that only its own timeout, so each message gets a
// client (a few option values, no connection) whose timeout is what ctx
// leaves.
func (s *SMTP) deliver(ctx context.Context, m *gomail.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	left := s.timeout
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	if left <= 0 {
		return fmt.Errorf("mail smtp: %w: %w", ErrUnreachable, context.DeadlineExceeded)
	}
	client, err := gomail.NewClient(s.host, append(slices.Clip(s.opts), gomail.WithTimeout(left))...)
	if err != nil {
		return fmt.Errorf("mail smtp: %w", err)
	}
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("mail smtp: %w: %w", ErrUnreachable, ctx.Err())
		}
		return dialError(err)
	}
	err = client.SendWithSMTPClient(conn, m)
	// The message is the relay's once DATA is accepted; a failing QUIT
	// does not undo that.
	_ = client.CloseWithSMTPClient(conn)
	if err != nil {
		return sendError(err)
	}
	return nil
}

// dialError names what failed while connecting, starting TLS or
// authenticating, without the server's reply text (which may quote
// addresses) or the password.
func dialError(err error) error {
	var (
		tpe     *textproto.Error
		netErr  net.Error
		certErr *tls.CertificateVerificationError
		alert   tls.AlertError
		recErr  tls.RecordHeaderError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
	)
	switch {
	case strings.Contains(err.Error(), "does not support STARTTLS"):
		return fmt.Errorf("mail smtp: %w: the relay does not offer STARTTLS", ErrTLS)
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &host):
		return fmt.Errorf("mail smtp: %w: the relay's certificate is not trusted", ErrTLS)
	case errors.As(err, &alert), errors.As(err, &recErr):
		return fmt.Errorf("mail smtp: %w: handshake failed", ErrTLS)
	case errors.Is(err, gomail.ErrNoSupportedAuthDiscovered), errors.Is(err, gomail.ErrPlainAuthNotSupported),
		strings.Contains(err.Error(), "does not support SMTP AUTH"):
		return fmt.Errorf("mail smtp: %w: the relay offers no usable authentication mechanism", ErrAuth)
	case errors.As(err, &tpe):
		switch {
		case tpe.Code == 530 || tpe.Code == 534 || tpe.Code == 535 || tpe.Code == 538 || tpe.Code == 454 && strings.Contains(strings.ToLower(tpe.Msg), "auth"):
			return fmt.Errorf("mail smtp: %w (%d)", ErrAuth, tpe.Code)
		case tpe.Code == 454:
			return fmt.Errorf("mail smtp: %w: STARTTLS refused (%d)", ErrTLS, tpe.Code)
		}
		return &rejectedError{code: tpe.Code, temporary: tpe.Code/100 == 4, stage: "connection"}
	case errors.As(err, &netErr):
		if netErr.Timeout() {
			return fmt.Errorf("mail smtp: %w: timed out", ErrUnreachable)
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			return fmt.Errorf("mail smtp: %w: %s", ErrUnreachable, opText(op))
		}
		return fmt.Errorf("mail smtp: %w", ErrUnreachable)
	}
	return fmt.Errorf("mail smtp: %w: connection failed", ErrUnreachable)
}

// opText is the kind of network failure, e.g. "connection refused".
func opText(op *net.OpError) string {
	s := op.Err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// sendError classifies a failure after connecting, by the stage and the
// relay's reply code.
func sendError(err error) error {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return fmt.Errorf("mail smtp: %w: connection lost", ErrUnreachable)
	}
	code := se.ErrorCode()
	switch {
	case code == 530:
		// A relay that wants credentials we were not given.
		return fmt.Errorf("mail smtp: %w: authentication required (%d)", ErrAuth, code)
	case se.Reason == gomail.ErrSMTPRcptTo && code/100 == 5:
		return &rejectedError{code: code, enhanced: se.EnhancedStatusCode(), stage: "recipient", refused: true}
	case code == 0:
		return fmt.Errorf("mail smtp: %w: connection lost while %s", ErrUnreachable, se.Reason)
	}
	return &rejectedError{code: code, enhanced: se.EnhancedStatusCode(), temporary: code/100 == 4, stage: se.Reason.String()}
}

// rejectedError is a relay's refusal, by reply code only.
type rejectedError struct {
	code      int
	enhanced  string
	stage     string
	temporary bool
	refused   bool // the recipient, for good
}

func (e *rejectedError) Error() string {
	code := strconv.Itoa(e.code)
	if e.enhanced != "" {
		code += " " + e.enhanced
	}
	if e.refused {
		return fmt.Sprintf("mail smtp: %s (%s)", ErrRefused, code)
	}
	kind := "for good"
	if e.temporary {
		kind = "for now"
	}
	return fmt.Sprintf("mail smtp: %s %s at %s (%s)", ErrRejected, kind, e.stage, code)
}

func (e *rejectedError) Is(target error) bool {
	return (e.refused && target == ErrRefused) || (!e.refused && target == ErrRejected)
}

// Temporary reports a 4xx answer: the relay may take the message later.
func (e *rejectedError) Temporary() bool { return e.temporary }

// IsTemporary reports whether err is a refusal the relay said was
// temporary (a 4xx reply), or a failure to reach it.
func IsTemporary(err error) bool {
	var re *rejectedError
	if errors.As(err, &re) {
		return re.temporary
	}
	return errors.Is(err, ErrUnreachable)
}

// optionError is NewSMTP's refusal of an option; Field is the audit
// section's key for it (smtp_addr, from, tls).
func optionError(field, format string, args ...any) error {
	return &errs.Error{Kind: errs.Invalid, Code: "invalid_smtp_option", Field: field, Detail: fmt.Sprintf(format, args...)}
}
