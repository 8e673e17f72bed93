package transaction_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/transaction"
)

// receiver is a portal's callback endpoint: it checks every notice's HMAC
// the way a portal would, and fails the first few on purpose.
type receiver struct {
	mu      sync.Mutex
	key     []byte
	failN   int
	calls   int
	notices []transaction.Notice
	bad     []string
	got     chan struct{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls <= r.failN {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := transaction.VerifyCallback(r.key, req.Header.Get(transaction.HeaderTimestamp), req.Header.Get(transaction.HeaderSignature),
		body, time.Now(), 5*time.Minute); err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var n transaction.Notice
	if err := json.Unmarshal(body, &n); err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.notices = append(r.notices, n)
	w.WriteHeader(http.StatusNoContent)
	select {
	case r.got <- struct{}{}:
	default:
	}
}

func TestCallbackSignedAndRetried(t *testing.T) {
	e := newEnv(t, func(o *transaction.Options) { o.Clock = nil })
	rcv := &receiver{failN: 2, got: make(chan struct{}, 1)}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	created, err := e.portals.Create(e.ctx, portal.Spec{Name: "Portal con aviso", RedirectURLs: []string{okURL, errURL}, IssueAPIKey: true,
		CallbackURL: srv.URL + "/firma/aviso"})
	if err != nil {
		t.Fatal(err)
	}
	if rcv.key, err = hex.DecodeString(created.CallbackKey); err != nil || len(rcv.key) != 32 {
		t.Fatalf("callback key %q: %v", created.CallbackKey, err)
	}
	citizen := e.advanced(12345678)
	c := e.create(created.Portal, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- e.svc.Run(ctx) }()

	sess, code := e.login(c.ID, citizen)
	if _, err := e.approve(c.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rcv.got:
	case <-time.After(20 * time.Second):
		t.Fatal("no valid callback within 20 s")
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Fatalf("callbacks that did not verify: %v", rcv.bad)
	}
	if rcv.calls != 3 || len(rcv.notices) != 1 {
		t.Fatalf("%d calls, %d notices: want 2 failures then 1 delivery", rcv.calls, len(rcv.notices))
	}
	n := rcv.notices[0]
	if n.ID != c.ID || n.AppID != created.Portal.ID || n.State != transaction.StateDone || n.Summary != transaction.SummaryAllSigned {
		t.Fatalf("notice %+v", n)
	}
	// A notice signed with another key or altered does not verify.
	body, _ := json.Marshal(n)
	now := time.Now()
	sig := transaction.SignCallback(rcv.key, now, body)
	ts := jsonNumber(now.Unix())
	if err := transaction.VerifyCallback(rcv.key, ts, sig, body, now, time.Minute); err != nil {
		t.Fatalf("own signature: %v", err)
	}
	if err := transaction.VerifyCallback([]byte("another key of thirty-two bytes!"), ts, sig, body, now, time.Minute); err == nil {
		t.Error("a notice verified under another key")
	}
	if err := transaction.VerifyCallback(rcv.key, ts, sig, append(body, ' '), now, time.Minute); err == nil {
		t.Error("an altered notice verified")
	}
	if err := transaction.VerifyCallback(rcv.key, ts, sig, body, now.Add(10*time.Minute), time.Minute); err == nil {
		t.Error("a stale notice verified")
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestSMSFailureSendsNoCode drives the http gateway against a provider
// that is down: the citizen is told, and no code counts as sent.
func TestSMSFailureSendsNoCode(t *testing.T) {
	var mu sync.Mutex
	status := http.StatusServiceUnavailable
	calls := 0
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		w.WriteHeader(status)
	}))
	defer provider.Close()
	gw, err := sms.NewHTTP(sms.HTTPOptions{URL: provider.URL, Backoff: time.Millisecond, Retries: 2, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *transaction.Options) { o.SMS = gw })
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	c := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	sess, err := e.svc.Authenticate(e.ctx, c.ID, citizen, password)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.SendOTP(e.ctx, c.ID, sess.Token)
	wantCode(t, err, transaction.CodeSMSFailed)
	if calls != 3 {
		t.Errorf("%d provider calls, want 3", calls)
	}
	v, err := e.svc.View(e.ctx, c.ID)
	if err != nil || v.State != transaction.StateAuthenticated || v.OTP != nil {
		t.Fatalf("after a failed send: %v state %s otp %+v", err, v.State, v.OTP)
	}
	// Once the provider is back, the first send is still a first send,
	// with every resend left.
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	st, err := e.svc.SendOTP(e.ctx, c.ID, sess.Token)
	if err != nil || st.ResendsLeft != 3 {
		t.Fatalf("send after recovery: %v %+v", err, st)
	}
}
