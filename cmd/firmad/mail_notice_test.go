package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	netmail "net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/internal/firmadtest"
	"github.com/firma-cloud/firma/mail"
	"github.com/firma-cloud/firma/mail/smtptest"
)

// signedOnce is what signOnce did: the values a notice must name or must
// not give away.
type signedOnce struct {
	portal string
	otp    string
	digest []byte
}

// signOnce has sandbox citizen 10000002Q approve one transaction of a new
// portal through the built firmad: the portal REST API, the approval page
// and the SMS code read from the SMS outbox.
func signOnce(t *testing.T, s *state, d *daemon) signedOnce {
	t.Helper()
	addr := "--addr=" + d.grpc
	base := "http://" + d.http
	const okURL, errURL, citizen, portal = "https://sede.example.es/ok", "https://sede.example.es/error", "10000002Q", "Sede de Pruebas"
	out := s.firmactl(t, 0, "portals", "create", "--name", portal, "--redirect", okURL, "--redirect", errURL, addr)
	m := webAPIKeyRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no API key in:\n%s", out)
	}
	sum := sha256.Sum256([]byte("Declaración firmada para el aviso por correo\n"))
	body, _ := json.Marshal(map[string]any{"subject_id": citizen, "ok_url": okURL, "error_url": errURL,
		"documents": []map[string]any{{"name": "declaracion.txt", "digest": sum[:], "hash": "sha256", "format": "raw"}}})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/transactions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", m[1])
	var created struct {
		ID string `json:"transaction_id"`
	}
	if code := webJSON(t, req, &created); code != http.StatusCreated {
		t.Fatalf("create: %d %+v", code, created)
	}
	b := newBrowser(t, base)
	page, csrf := b.page, b.csrf
	signPath := "/sign/" + created.ID
	_, html, _ := page(http.MethodGet, signPath, nil)
	code, html, loc := page(http.MethodPost, signPath+"/login", url.Values{"csrf": {csrf(html)}, "citizen": {citizen}, "password": {"Firma-Demo-2026"}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", code, html)
	}
	_, html, _ = page(http.MethodGet, loc, nil)
	sm := webSMSCodeRe.FindStringSubmatch(s.firmactl(t, 0, "sms", "outbox", "--to", "+34600000002", "--limit", "1", addr))
	if sm == nil {
		t.Fatal("no code in the SMS outbox")
	}
	code, html, loc = b.follow(page(http.MethodPost, signPath+"/approve", url.Values{"csrf": {csrf(html)}, "otp": {sm[1]}}))
	if code != http.StatusSeeOther || loc != okURL+"?transaction_id="+created.ID {
		t.Fatalf("approve: %d %q\n%s", code, loc, html)
	}
	return signedOnce{portal: portal, otp: sm[1], digest: sum[:]}
}

// checkNotice checks a notice's text: when, which portal (by name), how
// many documents, and nothing that must stay secret or is of no use to
// the citizen (the digest, the one-time password).
func checkNotice(t *testing.T, text string, sig signedOnce) {
	t.Helper()
	for _, want := range []string{"Cl@ve Firma: el ", "se firmó 1 documento con su certificado", "a petición de " + sig.portal + ".",
		"Si no reconoce esta firma"} {
		if !strings.Contains(text, want) {
			t.Errorf("notice %q lacks %q", text, want)
		}
	}
	for _, secret := range []string{sig.otp, hex.EncodeToString(sig.digest), base64.StdEncoding.EncodeToString(sig.digest), "Firma-Demo-2026"} {
		if strings.Contains(text, secret) {
			t.Errorf("notice %q gives away %q", text, secret)
		}
	}
}

const noticeTo = "demo+10000002Q@example.es"

// After a signature the citizen gets an e-mail notice through the
// configured gateway: the outbox, read back through firmactl and the REST
// API, or a real SMTP relay (STARTTLS, AUTH with a password from a file),
// with or without the SMS notice beside it.
func TestSignatureNoticeByEmail(t *testing.T) {
	tests := []struct {
		name    string
		notify  string
		smtp    bool
		wantSMS bool
	}{
		{name: "outbox, email only", notify: "email"},
		{name: "smtp relay, email and sms", notify: "both", smtp: true, wantSMS: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := initState(t)
			s.firmactl(t, 0, "demo", "seed", "--state", "var")
			env := []string{"FIRMA_AUDIT_NOTIFY=" + tc.notify}
			var relay *smtptest.Server
			const relayPass = "relay-secret-pass-9c1e"
			if tc.smtp {
				relay = smtptest.New(t, smtptest.Options{Username: "firmad", Password: relayPass})
				passFile := filepath.Join(s.dir, "var", "smtp.pass")
				if err := os.WriteFile(passFile, []byte(relayPass+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				env = append(env, "FIRMA_AUDIT_MAIL_GATEWAY=smtp", "FIRMA_AUDIT_MAIL_SMTP_ADDR="+relay.Addr,
					`FIRMA_AUDIT_MAIL_FROM="Cl@ve Firma" <no-reply@firma.example.es>`, "FIRMA_AUDIT_MAIL_USERNAME=firmad",
					"FIRMA_AUDIT_MAIL_PASSWORD_FILE="+passFile, "FIRMA_AUDIT_MAIL_CA_FILE="+relay.CAFile)
			}
			d := s.start(t, env...)
			defer func() {
				if code := d.stop(t); code != 0 {
					t.Errorf("firmad exit %d:\n%s", code, d.stderr)
				}
				if tc.smtp && strings.Contains(d.stderr.String(), relayPass) {
					t.Error("firmad logged the relay password")
				}
			}()
			sig := signOnce(t, s, d)
			addr := "--addr=" + d.grpc

			var text string
			if tc.smtp {
				got := relay.Wait(t, 1, 30*time.Second)[0]
				if len(got.To) != 1 || got.To[0] != noticeTo || !got.TLS || got.User != "firmad" || got.From != "no-reply@firma.example.es" {
					t.Fatalf("envelope to %v, tls %t, user %q, from %q", got.To, got.TLS, got.User, got.From)
				}
				m, err := netmail.ReadMessage(bytes.NewReader(got.Data))
				if err != nil {
					t.Fatal(err)
				}
				if subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); subj != mail.DefaultNoticeSubject {
					t.Errorf("subject %q", subj)
				}
				if m.Header.Get("Auto-Submitted") != "auto-generated" || m.Header.Get("Message-Id") == "" || m.Header.Get("Date") == "" {
					t.Errorf("headers %v", m.Header)
				}
				b, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
				text = string(b)
				// With a real relay there is no outbox to read.
				if out := s.firmactl(t, 1, "mail", "outbox", addr); !strings.Contains(out, "FailedPrecondition") {
					t.Errorf("mail outbox with the smtp gateway:\n%s", out)
				}
			} else {
				deadline := time.Now().Add(30 * time.Second)
				var out string
				for {
					out = s.firmactl(t, 0, "mail", "outbox", "--to", noticeTo, "--full", addr)
					if strings.Contains(out, "con su certificado a petición de") || time.Now().After(deadline) {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				if !strings.Contains(out, "To: "+noticeTo) || !strings.Contains(out, "Subject: "+mail.DefaultNoticeSubject) {
					t.Fatalf("mail outbox:\n%s", out)
				}
				text = out[strings.Index(out, "Subject: "):]
				text = text[strings.Index(text, "\n\n")+2:]
				restOutbox(t, s, d, sig)
			}
			checkNotice(t, text, sig)

			// SMS notices only when asked for, and then beside the e-mail,
			// naming the portal as the e-mail does.
			smsNotice := func() bool {
				return strings.Contains(s.firmactl(t, 0, "sms", "outbox", "--to", "+34600000002", addr),
					"se firmó 1 documento con su certificado a petición de "+sig.portal+".")
			}
			if tc.wantSMS {
				deadline := time.Now().Add(30 * time.Second)
				for !smsNotice() && time.Now().Before(deadline) {
					time.Sleep(200 * time.Millisecond)
				}
				if !smsNotice() {
					t.Error("no SMS notice with audit.notify both")
				}
			} else {
				time.Sleep(3 * time.Second) // two notifier rounds
				if smsNotice() {
					t.Error("an SMS notice with audit.notify email")
				}
			}
		})
	}
}

// restOutbox reads the notice through GET /v1/mail/outbox, with and
// without the operator's token.
func restOutbox(t *testing.T, s *state, d *daemon, sig signedOnce) {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(s.dir, "var", "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + d.http + "/v1/mail/outbox?to=" + url.QueryEscape(noticeTo) + "&limit=5"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{{"operator", strings.TrimSpace(string(token)), http.StatusOK}, {"anonymous", "", http.StatusUnauthorized}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: GET /v1/mail/outbox: %d %s", tc.name, resp.StatusCode, b)
		}
		if tc.status != http.StatusOK {
			if resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: Content-Type %q", tc.name, resp.Header.Get("Content-Type"))
			}
			continue
		}
		var out struct {
			Messages []struct {
				To, Subject, Text string
			} `json:"messages"`
		}
		if err := json.Unmarshal(b, &out); err != nil || len(out.Messages) != 1 || out.Messages[0].To != noticeTo {
			t.Fatalf("%s: %s (%v)", tc.name, b, err)
		}
		checkNotice(t, out.Messages[0].Text, sig)
	}
}

// `firmactl mail test` sends one message through the relay that
// firmad.yaml (with FIRMA_AUDIT_MAIL_* overrides) names, and reports a
// refused password without repeating it.
func TestFirmactlMailTest(t *testing.T) {
	s := initState(t)
	const pass = "relay-secret-pass-77aa"
	relay := smtptest.New(t, smtptest.Options{Username: "firmad", Password: pass})
	passFile := filepath.Join(s.dir, "var", "smtp.pass")
	wrongFile := filepath.Join(s.dir, "var", "wrong.pass")
	os.WriteFile(passFile, []byte(pass+"\n"), 0o600)
	os.WriteFile(wrongFile, []byte("not-the-password\n"), 0o600)
	smtpEnv := []string{"FIRMA_AUDIT_MAIL_GATEWAY=smtp", "FIRMA_AUDIT_MAIL_SMTP_ADDR=" + relay.Addr, "FIRMA_AUDIT_MAIL_FROM=no-reply@firma.example.es",
		"FIRMA_AUDIT_MAIL_USERNAME=firmad", "FIRMA_AUDIT_MAIL_CA_FILE=" + relay.CAFile}
	tests := []struct {
		name   string
		env    []string
		code   int
		want   string
		secret string
		sent   int
	}{
		{"sent", append(smtpEnv, "FIRMA_AUDIT_MAIL_PASSWORD_FILE="+passFile), 0, "test message sent to o***@example.es", pass, 1},
		{"wrong password", append(smtpEnv, "FIRMA_AUDIT_MAIL_PASSWORD_FILE="+wrongFile), 1, "mail relay refused the credentials", "not-the-password", 1},
		{"outbox gateway", nil, 1, "no relay to test", "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(bin, "firmactl"), "mail", "test", "--state", "var", "--to", "ops@example.es")
			cmd.Dir = s.dir
			cmd.Env = firmadtest.CleanEnv(tc.env...)
			out, err := cmd.CombinedOutput()
			if code := exitCode(err); code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %d, want %d and %q:\n%s", code, tc.code, tc.want, out)
			}
			if tc.secret != "" && strings.Contains(string(out), tc.secret) {
				t.Errorf("output repeats the password:\n%s", out)
			}
			if got := len(relay.Messages()); got != tc.sent {
				t.Errorf("%d messages at the relay, want %d", got, tc.sent)
			}
		})
	}
	m := relay.Messages()[0]
	if len(m.To) != 1 || m.To[0] != "ops@example.es" || !m.TLS || m.User != "firmad" || !bytes.Contains(m.Data, []byte("Mensaje de prueba")) {
		t.Errorf("test message to %v, tls %t, user %q:\n%s", m.To, m.TLS, m.User, m.Data)
	}
}
