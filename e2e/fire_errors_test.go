package e2e_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/store"
)

// TestFIReErrors produces each FIRe error that can arise here with its
// code and HTTP status, and checks that a refused request stores nothing
// and never answers 500 for bad input. No browser: the errors after an
// approval (49, 54, 503 after delivery) are in TestFIReClientsInBrowser.
func TestFIReErrors(t *testing.T) {
	s := stack.New(t, stack.Options{})
	e := newFire(t, s)
	citizen := s.Advanced(78901234, "Pablo", "Serrano Vidal")
	weak := s.Advanced(78901235, "Marta", "Básica Ruiz")
	c, err := s.DB.Citizen(s.Ctx, weak)
	if err != nil {
		t.Fatal(err)
	}
	c.Level = "basic"
	if err := s.DB.UpdateCitizen(s.Ctx, c); err != nil {
		t.Fatal(err)
	}
	locked := s.Advanced(78901236, "Luis", "Bloqueado Pardo")
	if c, err = s.DB.Citizen(s.Ctx, locked); err != nil {
		t.Fatal(err)
	}
	c.Status = registry.StatusLocked
	if err := s.DB.UpdateCitizen(s.Ctx, c); err != nil {
		t.Fatal(err)
	}
	revoked := s.Advanced(78901237, "Rosa", "Revocada Gil")
	crt, err := s.CA.Issue(s.Ctx, revoked)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CA.Revoke(s.Ctx, crt.ID, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}

	app := "appid=" + e.appID
	config := javaProps(map[string]string{"redirectOkUrl": e.okURL, "redirectErrorUrl": e.errURL})
	dat := b64([]byte("documento"))
	sign := func(subject, format, props, data string) string {
		return "op=1&" + app + "&subjectid=" + subject + "&cop=sign&algorithm=SHA256withRSA&format=" + format + "&properties=" + props +
			"&dat=" + data + "&config=" + config
	}
	// A live single transaction and a batch for the transaction errors.
	var one, batch string
	for _, x := range []struct {
		body string
		id   *string
	}{{sign(citizen, "CAdES", "", dat), &one}, {"op=5&" + app + "&subjectid=" + citizen + "&cop=sign&algorithm=SHA256withRSA&format=CAdES&config=" + config, &batch}} {
		a := e.post(e.client, x.body)
		i := strings.Index(string(a.body), `"transactionid":"`)
		if a.status != 200 || i < 0 {
			t.Fatalf("setting up: %v", a)
		}
		*x.id = strings.SplitN(string(a.body)[i+17:], `"`, 2)[0]
	}
	add := func(docID string) string {
		return "op=6&" + app + "&subjectid=" + citizen + "&transactionid=" + batch + "&docid=" + docID + "&dat=" + b64([]byte("doc "+docID)) + "&config="
	}
	for i := range 10 {
		if a := e.post(e.client, add("d"+string(rune('0'+i)))); a.status != 200 || string(a.body) != "true" {
			t.Fatalf("add %d: %v", i, a)
		}
	}
	count := func() int {
		ts, err := s.DB.Transactions(s.Ctx, store.TransactionFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}
	before := count()
	big := b64(make([]byte, 70<<10)) // over the test's 64 KiB max_param_bytes

	for _, tc := range []struct {
		name         string
		client       string // "", "other", "none"
		body         string
		status, code int
		want         string // in the message
	}{
		{"missing appid", "", "op=1&subjectid=" + citizen, 400, 2, ""},
		{"unknown app", "", "op=1&appid=NOPE", 401, 502, ""},
		{"wrong certificate", "other", sign(citizen, "CAdES", "", dat), 401, 502, ""},
		{"no certificate", "none", sign(citizen, "CAdES", "", dat), 400, 6, ""},
		{"missing op", "", app, 400, 3, ""},
		{"unknown op", "", "op=4&" + app, 400, 5, ""},
		{"missing subjectid", "", "op=1&" + app + "&cop=sign", 400, 8, ""},
		{"missing algorithm", "", "op=1&" + app + "&subjectid=" + citizen, 400, 9, ""},
		{"missing config", "", "op=1&" + app + "&subjectid=" + citizen + "&cop=sign&algorithm=SHA256withRSA&format=CAdES&dat=" + dat, 400, 15, ""},
		{"config without redirect", "", "op=1&" + app + "&subjectid=" + citizen + "&cop=sign&algorithm=SHA256withRSA&format=CAdES&dat=" + dat +
			"&config=" + javaProps(map[string]string{"appName": "x"}), 400, 17, ""},
		{"redirect not registered", "", "op=1&" + app + "&subjectid=" + citizen + "&cop=sign&algorithm=SHA256withRSA&format=CAdES&dat=" + dat +
			"&config=" + javaProps(map[string]string{"redirectOkUrl": "https://elsewhere.example/ok"}), 400, 16, "elsewhere"},
		{"broken base64", "", sign(citizen, "CAdES", "", "!!!not*base64"), 400, 13, ""},
		{"broken properties", "", sign(citizen, "CAdES", "%%%", dat), 400, 20, ""},
		{"broken properties text", "", sign(citizen, "CAdES", b64([]byte(`mode=\uZZZZ`)), dat), 400, 20, ""},
		{"oversized dat", "", sign(citizen, "CAdES", "", big), 400, 1, ""},
		{"oversized request", "", sign(citizen, "CAdES", "", dat) + "&x=" + big + big, 400, 1, ""},
		{"unknown format", "", sign(citizen, "CAdES-XL", "", dat), 400, 20, "CAdES-XL"},
		{"unsupported format", "", sign(citizen, "XAdES-ASiC-S-tri", "", dat), 400, 20, "XAdES-ASiC-S-tri"},
		{"FacturaE of a non-invoice", "", sign(citizen, "FacturaE", "", dat), 400, 13, ""},
		{"unsupported cop", "", strings.Replace(sign(citizen, "PAdES", "", dat), "cop=sign", "cop=countersign", 1), 400, 20, "countersign"},
		{"cosign of data that is no signature", "", strings.Replace(sign(citizen, "CAdES", "", dat), "cop=sign", "cop=cosign", 1), 400, 20, "cosign"},
		{"unsupported algorithm", "", strings.Replace(sign(citizen, "CAdES", "", dat), "SHA256withRSA", "SHA1withRSA", 1), 400, 20, "SHA1withRSA"},
		{"unknown CAdES mode", "", sign(citizen, "CAdES", javaProps(map[string]string{"mode": "embedded"}), dat), 400, 20, "embedded"},
		{"unknown signature policy", "", sign(citizen, "PAdES", javaProps(map[string]string{"expPolicy": "FirmaOtra"}), dat), 400, 20, "expPolicy"},
		{"visible signature", "", sign(citizen, "PAdES", javaProps(map[string]string{"signaturePositionOnPageLowerLeftX": "10"}), dat), 400, 20, "signaturePositionOnPageLowerLeftX"},
		{"unknown property", "", sign(citizen, "CAdES", javaProps(map[string]string{"contentTypeOid": "1.2.3"}), dat), 400, 20, "contentTypeOid"},
		{"CAdES-ES long-term form", "", "op=5&" + app + "&subjectid=" + citizen + "&cop=sign&algorithm=SHA256withRSA&format=CAdES&upgrade=ES-A&config=" + config, 400, 20, "ES-A"},
		{"PAdES of a non-PDF", "", sign(citizen, "PAdES", "", dat), 400, 13, ""},
		{"unknown citizen", "", sign("99999999R", "CAdES", "", dat), 400, 21, ""},
		{"weak registration", "", sign(weak, "CAdES", "", dat), 500, 24, ""},
		{"blocked (locked) registration", "", sign(locked, "CAdES", "", dat), 500, 38, ""},
		{"blocked certificate", "", sign(revoked, "CAdES", "", dat), 500, 38, ""},
		{"missing transactionid", "", "op=2&" + app + "&subjectid=" + citizen, 400, 18, ""},
		{"bad transaction", "", "op=2&" + app + "&subjectid=" + citizen + "&transactionid=nope", 403, 503, ""},
		{"another citizen's transaction", "", "op=2&" + app + "&subjectid=" + weak + "&transactionid=" + one, 403, 503, ""},
		{"no subjectid (old FireApi)", "", "op=2&" + app + "&transactionid=" + one, 403, 503, ""},
		{"batch as a single signature", "", "op=2&" + app + "&subjectid=" + citizen + "&transactionid=" + batch, 403, 503, ""},
		{"not signed yet", "", "op=2&" + app + "&subjectid=" + citizen + "&transactionid=" + one, 400, 27, ""},
		{"batch over the limit", "", add("d10"), 400, 43, ""},
		{"duplicate document id", "", add("d3"), 400, 42, "d3"},
		{"bad document id", "", add("a/b"), 400, 56, ""},
		{"missing document id", "", "op=6&" + app + "&subjectid=" + citizen + "&transactionid=" + batch + "&dat=" + dat, 400, 48, ""},
		{"batch not signed", "", "op=8&" + app + "&subjectid=" + citizen + "&transactionid=" + batch, 500, 49, ""},
		{"batch document before op 8", "", "op=10&" + app + "&subjectid=" + citizen + "&transactionid=" + batch + "&docid=zz", 500, 49, ""},
		{"grace id missing", "", "op=70&" + app, 400, 34, ""},
		{"no grace period", "", "op=71&" + app + "&docid=ASYNC-77&partial=true", 403, 503, "ASYNC-77"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := map[string]*http.Client{"": e.client, "other": e.other, "none": e.none}[tc.client]
			a := e.post(c, tc.body)
			wantError(t, a, tc.status, tc.code)
			if !strings.Contains(string(a.body), tc.want) {
				t.Errorf("message %s does not name %q", a.body, tc.want)
			}
		})
	}
	if after := count(); after != before {
		t.Errorf("%d transactions stored by refused requests", after-before)
	}

	// A batch that ends unsigned: op 8 says why (the portal cancelled: 507).
	a0 := e.post(e.client, "op=5&"+app+"&subjectid="+citizen+"&cop=sign&algorithm=SHA256withRSA&format=CAdES&config="+config)
	i := strings.Index(string(a0.body), `"transactionid":"`)
	if i < 0 {
		t.Fatalf("op 5: %v", a0)
	}
	b2 := strings.SplitN(string(a0.body)[i+17:], `"`, 2)[0]
	if a := e.post(e.client, "op=6&"+app+"&subjectid="+citizen+"&transactionid="+b2+"&docid=x&dat="+dat); a.status != 200 {
		t.Fatalf("op 6: %v", a)
	}
	if a := e.post(e.client, "op=7&"+app+"&subjectid="+citizen+"&transactionid="+b2+"&stoponerror=true"); a.status != 200 {
		t.Fatalf("op 7: %v", a)
	}
	fa, err := s.DB.FireApp(s.Ctx, e.appID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tx.Cancel(s.Ctx, fa.PortalID, b2); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.post(e.client, "op=8&"+app+"&subjectid="+citizen+"&transactionid="+b2), 400, 507)

	// Expired: past its life the FIRe transaction is unknown (503).
	e.now, e.clock = time.Now().Add(time.Hour), true
	wantError(t, e.post(e.client, "op=2&"+app+"&subjectid="+citizen+"&transactionid="+one), 403, 503)
	a := e.post(e.client, "op=99&"+app+"&subjectid="+citizen+"&transactionid="+one)
	if a.status != 200 || !strings.Contains(string(a.body), `"ercod":503`) {
		t.Fatalf("op 99 of an expired transaction: %v", a)
	}
}
