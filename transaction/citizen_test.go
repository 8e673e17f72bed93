package transaction_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/transaction"
)

func TestCreateRefusesCitizensWhoCannotSign(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	doc := transaction.DocumentInput{Name: "a.txt", Content: []byte("a")}
	req := func(c string) transaction.CreateRequest {
		return transaction.CreateRequest{CitizenID: c, Documents: []transaction.DocumentInput{doc}, OKURL: okURL, ErrorURL: errURL}
	}

	// A certificate revoked for key compromise is not replaced silently.
	compromised := e.advanced(11111111)
	cert, err := e.ca.EnsureCertificate(e.ctx, compromised)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ca.Revoke(e.ctx, cert.ID, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Create(e.ctx, p, req(compromised))
	wantCode(t, err, transaction.CodeCertificateBlocked)

	// A certificate superseded or revoked for another reason is replaced
	// on first use, as for a citizen who never had one.
	renewed := e.advanced(22222222)
	cert, err = e.ca.EnsureCertificate(e.ctx, renewed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ca.Revoke(e.ctx, cert.ID, ca.ReasonAffiliationChanged); err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.Create(e.ctx, p, req(renewed))
	if err != nil {
		t.Fatalf("citizen with a revoked (not compromised) certificate: %v", err)
	}
	s, err := e.svc.Authenticate(e.ctx, c.ID, renewed, password)
	if err != nil || s.View.Certificate == nil || !s.View.Certificate.WillIssue {
		t.Fatalf("view after sign-in: %v %+v", err, s)
	}

	// Wrong passwords typed by anyone lock nothing for good: the portal
	// may still ask the citizen.
	guessed := e.advanced(44444444)
	for range 5 {
		e.reg.Authenticate(e.ctx, guessed, "Wrong-Password-1")
	}
	if _, err := e.svc.Create(e.ctx, p, req(guessed)); err != nil {
		t.Fatalf("after wrong passwords: %v", err)
	}

	// A Cl@ve Permanente password locked by staff (or by the permanent
	// lock of earlier versions).
	locked := e.advanced(33333333)
	lc, err := e.db.Citizen(e.ctx, locked)
	if err != nil {
		t.Fatal(err)
	}
	lc.Status = registry.StatusLocked
	if err := e.db.UpdateCitizen(e.ctx, lc); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Create(e.ctx, p, req(locked))
	wantCode(t, err, transaction.CodeCredentialLocked)
	if !strings.Contains(err.Error(), "activation code") {
		t.Errorf("locked: %q does not say how to unlock", err)
	}
}

func TestNoCertificateWithoutCA(t *testing.T) {
	e := newEnv(t, nil)
	citizen := e.advanced(12345678)
	p := e.portal("Portal", nil)
	// The same store without an initialised CA: no certificate can be had.
	noCA, err := ca.New(ca.Config{BaseURL: "http://127.0.0.1:1"}, e.ks, freshCAStore(t, e), e.reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := transaction.New(transaction.Options{Store: e.db, Portals: e.portals, Citizens: e.reg, Certificates: noCA,
		Signing: e.signing, SMS: outboxOf(t, e), OTPKey: e.otpKey, BaseURL: "https://firma.example.es"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: "a", Content: []byte("a")}}})
	wantCode(t, err, transaction.CodeNoCertificate)
}

// TestConcurrentApprovalSignsOnce sends the right code from many requests
// at once, as a double-clicked form or a replay would: exactly one
// approves, and every document is signed once.
func TestConcurrentApprovalSignsOnce(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	docs, _ := threeDocs(t)
	c := e.create(p, citizen, docs...)
	sess, code := e.login(c.ID, citizen)
	const n = 8
	var wg sync.WaitGroup
	codes := make([]transaction.Code, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.approve(c.ID, sess, code)
			codes[i] = transaction.CodeOf(err)
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case "":
			ok++
		case transaction.CodeAlreadyUsed:
		default:
			t.Errorf("concurrent approval: %s", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d approvals succeeded, want exactly 1 (%v)", ok, codes)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil || r.Transaction.State != transaction.StateDone {
		t.Fatalf("results: %v", err)
	}
	for _, d := range r.Documents {
		if d.Status != transaction.DocSigned {
			t.Errorf("document %d: %s", d.Index, d.Status)
		}
	}
}
