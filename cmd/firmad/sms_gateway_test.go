package main

import (
	"net/http"
	"strings"
	"testing"
)

// With the http SMS gateway configured, firmad makes it once and shares it
// between transactions, the CSC API and the audit log's notices: it
// starts, is ready, and exports the gateway's metrics.
func TestHTTPSMSGatewayShared(t *testing.T) {
	s := initState(t)
	d := s.start(t, "FIRMA_TRANSACTIONS_SMS_GATEWAY=http", "FIRMA_TRANSACTIONS_SMS_URL=http://127.0.0.1:9/sms", "FIRMA_AUDIT_NOTIFY=sms")
	if code, body := get(t, "http://"+d.http+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %s\n%s", code, body, d.stderr)
	}
	if code, body := get(t, "http://"+d.http+"/metrics"); code != http.StatusOK || !strings.Contains(body, "firma_sms_http_attempts_total") &&
		!strings.Contains(body, "# HELP firma_sms_http") {
		t.Fatalf("/metrics lacks the http gateway's metrics: %d", code)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}
}
