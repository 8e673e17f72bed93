package e2e_test

import (
	"context"
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/verify/testpki"
)

// heldTSA is a real TSA (testpki) that answers only once released: a
// slow TSA holding the signing worker on the batch's CAdES B-T document.
type heldTSA struct {
	next    *testpki.Timestamper
	release chan struct{}
}

func (h *heldTSA) Timestamp(ctx context.Context, hash crypto.Hash, digest []byte) ([]byte, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.next.Timestamp(ctx, hash, digest)
}

var _ signer.Timestamper = (*heldTSA)(nil)

// TestBrowserProgressPage: after the right code, Chromium shows the
// progress page (without JavaScript: a meta refresh under the strict
// CSP) while the worker waits on a slow TSA, with the two raw signatures
// already stored (2 of 3); the tab is closed and signing goes on; the
// citizen comes back to the page, which goes on to the portal once
// signing ends, and the portal collects every signature. Cost: one
// browser, one batch of 3, about 3 s of refreshes.
func TestBrowserProgressPage(t *testing.T) {
	tok := softhsmtest.New(t) // before testpki loads SoftHSM2
	tsa := &heldTSA{next: testpki.New(t).Timestamper(t), release: make(chan struct{})}
	s := stack.New(t, stack.Options{Token: tok, Transaction: func(o *transaction.Options) { o.Timestamper = tsa }})
	citizen := s.Advanced(45678901, "Ana", "López Gil")
	p := newPortal(t, s, citizen)
	ctx := browser(t)

	id := signIn(t, ctx, p)
	code, _ := s.LastOTP(citizen)
	do(t, ctx, "approve",
		chromedp.SendKeys(chromedp.CSS("#otp"), code),
		chromedp.Click(chromedp.CSS("#approve")),
		chromedp.WaitVisible(chromedp.CSS("#progress")))
	// The raw documents are stored before the CAdES one waits on the TSA;
	// the page shows it within a refresh or two.
	deadline := time.Now().Add(time.Minute)
	// In the browser's language: Spanish or English.
	for text := ""; !strings.HasPrefix(text, "2 de 3 documentos") && !strings.HasPrefix(text, "2 of 3 documents"); {
		if time.Now().After(deadline) {
			t.Fatalf("the progress page still says %q", text)
		}
		time.Sleep(100 * time.Millisecond)
		// Read by script, errors ignored: the refresh may replace the
		// page under the read.
		text, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("progress-text") || {}).textContent || ""`))
	}
	// One read of the whole page, so that a refresh cannot split it.
	var page struct {
		Value, Max, Forms int
	}
	for {
		var err error
		page, err = chromedp.Run(ctx, chromedp.Evaluate[struct{ Value, Max, Forms int }](
			`(() => { const p = document.getElementById("progress"); return p ? {Value: p.value, Max: p.max, Forms: document.forms.length} : null })()`))
		if err == nil && page.Max > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress element: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if page.Value != 2 || page.Max != 3 || page.Forms != 0 {
		t.Errorf("progress page: %+v, want 2 of 3 and no form", page)
	}
	screenshot(t, ctx, "progress-desktop")

	// The tab goes: signing goes on.
	do(t, ctx, "close the tab", chromedp.Navigate("about:blank"))
	close(tsa.release)
	if v := s.WaitEnded(id); v.State != transaction.StateDone || v.Summary != transaction.SummaryAllSigned {
		t.Fatalf("signing with the tab closed ended %s %s: %s", v.State, v.Summary, v.ErrorMessage)
	}

	// Back on the waited-on page: on to the portal, which collects.
	do(t, ctx, "come back", chromedp.Navigate(p.firmad+"/sign/"+id+"?n=wait"), chromedp.WaitVisible(chromedp.CSS("#done")))
	if loc, want := get(t, ctx, "location", chromedp.Location()), p.url+"/ok?transaction_id="+id; loc != want {
		t.Fatalf("browser landed on %s, want %s", loc, want)
	}
	p.mu.Lock()
	res := p.results[id]
	p.mu.Unlock()
	if res == nil || res.State != transaction.StateDone || len(res.Documents) != len(documents) {
		t.Fatalf("the portal's result: %+v", res)
	}
	for _, d := range res.Documents {
		if d.Status != transaction.DocSigned || len(d.Signature) == 0 {
			t.Fatalf("document %d: %s", d.Index, d.Status)
		}
	}
}
