package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/sms"
)

// provider is a local SMS provider whose answers the test scripts.
type provider struct {
	mu       sync.Mutex
	answers  []int // status per request; the last repeats
	delay    time.Duration
	requests []map[string]string
	headers  []http.Header
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m map[string]string
	json.Unmarshal(body, &m)
	p.mu.Lock()
	p.requests = append(p.requests, m)
	p.headers = append(p.headers, r.Header.Clone())
	n := len(p.requests)
	status := p.answers[min(n, len(p.answers))-1]
	delay := p.delay
	p.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		status = http.StatusBadRequest
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
}

func (p *provider) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.requests)
}

const (
	to   = "+34612345678"
	text = "Cl@ve Firma: 123456 para firmar 1 documento"
)

func TestHTTPGateway(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answers  []int
		delay    time.Duration
		wantErr  bool
		requests int
	}{
		{"accepted", []int{202}, 0, false, 1},
		{"retried until accepted", []int{503, 500, 200}, 0, false, 3},
		{"throttled then accepted", []int{429, 200}, 0, false, 2},
		{"failing after every retry", []int{502}, 0, true, 4},
		{"refused without retry", []int{400}, 0, true, 1},
		{"unauthorised without retry", []int{401}, 0, true, 1},
		{"timing out", []int{200}, 300 * time.Millisecond, true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &provider{answers: tc.answers, delay: tc.delay}
			srv := httptest.NewServer(p)
			defer srv.Close()
			g, err := sms.NewHTTP(sms.HTTPOptions{URL: srv.URL + "/v1/messages", AuthHeader: "Authorization", AuthValue: "Bearer s3cret",
				From: "ClaveFirma", Timeout: 100 * time.Millisecond, Backoff: 10 * time.Millisecond, Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			err = g.Send(context.Background(), to, text)
			if (err != nil) != tc.wantErr {
				t.Fatalf("send: %v, want error %t", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, sms.ErrGateway) {
					t.Errorf("error %v is not ErrGateway", err)
				}
				for _, secret := range []string{"123456", "s3cret", to} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q gives away %q", err, secret)
					}
				}
			}
			if got := p.count(); got != tc.requests {
				t.Fatalf("%d requests, want %d", got, tc.requests)
			}
			ref := p.requests[0]["reference"]
			for i, r := range p.requests {
				if r["to"] != to || r["text"] != text || r["from"] != "ClaveFirma" || r["reference"] != ref || ref == "" {
					t.Errorf("request %d: %v", i, r)
				}
				if h := p.headers[i].Get("Authorization"); h != "Bearer s3cret" {
					t.Errorf("request %d: Authorization %q", i, h)
				}
			}
		})
	}
}

func TestHTTPGatewayRefusesBadInput(t *testing.T) {
	p := &provider{answers: []int{200}}
	srv := httptest.NewServer(p)
	defer srv.Close()
	g, err := sms.NewHTTP(sms.HTTPOptions{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Send(context.Background(), "612345678", text); !errors.Is(err, sms.ErrRecipient) {
		t.Errorf("national number: %v, want ErrRecipient", err)
	}
	if err := g.Send(context.Background(), to, ""); !errors.Is(err, sms.ErrText) {
		t.Errorf("empty text: %v, want ErrText", err)
	}
	if p.count() != 0 {
		t.Errorf("bad input reached the provider")
	}
	for _, bad := range []sms.HTTPOptions{{URL: "not a url"}, {URL: "ftp://x/"}, {URL: srv.URL, AuthHeader: "Authorization"}} {
		if _, err := sms.NewHTTP(bad); err == nil {
			t.Errorf("NewHTTP(%+v) accepted", bad)
		}
	}
}

func TestHTTPGatewayStopsWithContext(t *testing.T) {
	p := &provider{answers: []int{503}}
	srv := httptest.NewServer(p)
	defer srv.Close()
	g, err := sms.NewHTTP(sms.HTTPOptions{URL: srv.URL, Backoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = g.Send(ctx, to, text)
	if !errors.Is(err, sms.ErrGateway) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send with a short deadline: %v", err)
	}
	if p.count() != 1 {
		t.Fatalf("%d requests, want 1 before the deadline", p.count())
	}
}
