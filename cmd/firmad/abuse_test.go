package main

import (
	"bytes"
	"crypto"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
)

// abuseCeilingMiB is the resident memory firmad must stay under while
// flooded (README, "Limits"): the default limits hold 64 MiB of verify
// bodies and two 64 MiB argon2id checks at once, over a serving firmad's
// ~100 MiB.
const abuseCeilingMiB = 512

// TestAbuse floods one real firmad, with its default limits, at once with
// 32 concurrent 60 MiB /v1/verify bodies (each from its own loopback
// address, so the global bound is what holds them), a storm of 200
// /me/login sign-ins (20 addresses, 10 each: within the per-client rate,
// so the argon2id gate is what holds them) and a /tsa flood from one
// address. firmad's peak RSS (VmHWM) must stay under abuseCeilingMiB,
// /healthz must keep answering, every refusal must carry Retry-After,
// and the flood may add audit records only for the stamps its rate
// allows. Cost: one firmactl init and one firmad; about 15 s on 2 cores,
// most of it the argon2id checks and the 1.9 GiB pushed over loopback.
func TestAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a real firmad")
	}
	s := initState(t)
	d := s.start(t)
	base := "http://" + d.http
	pid := d.cmd.Process.Pid

	var healthOK, healthBad atomic.Int64
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		c := &http.Client{Timeout: 2 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			resp, err := c.Get(base + "/healthz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err == nil && resp.StatusCode == http.StatusOK {
				healthOK.Add(1)
			} else {
				healthBad.Add(1)
			}
		}
	}()

	t.Run("flood", func(t *testing.T) {
		t.Run("verify", func(t *testing.T) { t.Parallel(); floodVerify(t, base) })
		t.Run("logins", func(t *testing.T) { t.Parallel(); stormLogins(t, base) })
		t.Run("tsa", func(t *testing.T) { t.Parallel(); floodTSA(t, base) })
	})
	close(stop)
	<-polled

	hwm, rss := procMemKiB(t, pid, "VmHWM"), procMemKiB(t, pid, "VmRSS")
	t.Logf("firmad peak RSS (VmHWM) %d MiB, RSS now %d MiB; /healthz answered %d times, failed %d", hwm>>10, rss>>10, healthOK.Load(), healthBad.Load())
	if hwm>>10 >= abuseCeilingMiB {
		t.Errorf("firmad peaked at %d MiB RSS, over the %d MiB ceiling", hwm>>10, abuseCeilingMiB)
	}
	if healthBad.Load() > 0 || healthOK.Load() == 0 {
		t.Errorf("/healthz: %d answers, %d failures while flooded", healthOK.Load(), healthBad.Load())
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after the flood: %d", code)
	}
	if _, body := get(t, base+"/metrics"); !regexp.MustCompile(`(?m)^firma_limit_refusals_total\{limit="tsa_rate"\} [1-9]`).MatchString(body) {
		t.Error("/metrics does not count the refused stamps")
	}
	// Nothing lost to the flood: the log verifies, with every TSA token it
	// granted in an interval summary that matches the issuance log.
	s.checkSigned(t, d)
}

// procMemKiB reads a VmXXX line of /proc/<pid>/status.
func procMemKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc/%d/status", field, pid)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip, so that each looks like another client to the limits.
// Bodies wait for 100 Continue: a request firmad refuses before reading
// is answered without the body being sent.
func clientFrom(ip string, jar http.CookieJar) *http.Client {
	dial := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Jar: jar, Timeout: 2 * time.Minute,
		Transport: &http.Transport{DialContext: dial.DialContext, ExpectContinueTimeout: time.Minute}}
}

// filler produces n bytes of x without holding them.
type filler struct{ n int64 }

func (f *filler) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), f.n))
	for i := range k {
		p[i] = 'x'
	}
	f.n -= int64(k)
	return k, nil
}

// retryAfterOK checks a refusal says when to come back.
func retryAfterOK(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("%s: %d without a Retry-After (%q)", what, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func floodVerify(t *testing.T, base string) {
	const clients, size = 32, 60 << 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/verify", &filler{n: size})
			req.ContentLength = size
			req.Header.Set("Content-Type", "application/pdf")
			// Half wait for 100 Continue, half send at once, as a flood
			// would: firmad must not read (and hold) what it has no room for.
			if i%2 == 0 {
				req.Header.Set("Expect", "100-continue")
			}
			resp, err := clientFrom(fmt.Sprintf("127.0.2.%d", i+1), nil).Do(req)
			if err != nil {
				t.Logf("verify %d (expect %v): %v", i, i%2 == 0, err)
				mu.Lock()
				counts[-1]++
				mu.Unlock()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			counts[resp.StatusCode]++
			mu.Unlock()
			switch resp.StatusCode {
			case http.StatusOK, http.StatusBadRequest: // read and judged
			case http.StatusServiceUnavailable, http.StatusTooManyRequests:
				retryAfterOK(t, "verify", resp)
			default:
				t.Errorf("verify %d: status %d", i, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	t.Logf("32 × 60 MiB verify: statuses %v", counts)
	if counts[-1] > 0 {
		t.Errorf("%d verify requests got no answer", counts[-1])
	}
	if counts[http.StatusOK]+counts[http.StatusBadRequest] == 0 {
		t.Error("no verify body was read at all")
	}
}

// validDNI is a well-formed DNI of no registered citizen: sign-ins with
// it still cost an argon2id check, as a wrong password does.
func validDNI(n int) string {
	n = 10_000_000 + n
	return fmt.Sprintf("%08d%c", n, "TRWAGMYFPDXBNJZSQVHLCKE"[n%23])
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func stormLogins(t *testing.T, base string) {
	const addrs, each = 20, 10
	jar, _ := cookiejar.New(nil)
	code, page := 0, ""
	{
		resp, err := clientFrom("127.0.3.1", jar).Get(base + "/me")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code, page = resp.StatusCode, string(b)
	}
	m := csrfRe.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("GET /me: %d, no csrf token", code)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for a := range addrs {
		c := clientFrom(fmt.Sprintf("127.0.3.%d", a+1), jar)
		for i := range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				form := url.Values{"csrf": {m[1]}, "citizen": {validDNI(a*each + i)}, "password": {"Wrong-Password-1"}}
				req, _ := http.NewRequest(http.MethodPost, base+"/me/login", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", base)
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("login: %v", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				counts[resp.StatusCode]++
				mu.Unlock()
				switch resp.StatusCode {
				case http.StatusUnauthorized: // the check ran: wrong DNI or password
				case http.StatusServiceUnavailable, http.StatusTooManyRequests:
					retryAfterOK(t, "login", resp)
				default:
					t.Errorf("login: status %d", resp.StatusCode)
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("200 sign-ins: statuses %v", counts)
	if counts[http.StatusUnauthorized] == 0 {
		t.Error("no sign-in was checked at all")
	}
}

var auditSizeRe = regexp.MustCompile(`(?m)^firma_audit_tree_size_records (\S+)`)

// auditAppended reads how many records firmad's audit log holds.
func auditAppended(t *testing.T, base string) int {
	t.Helper()
	_, body := get(t, base+"/metrics")
	m := auditSizeRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no firma_audit_tree_size_records in /metrics")
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func floodTSA(t *testing.T, base string) {
	q, err := timestamp.CreateRequest(strings.NewReader("acta 2026/0042"), &timestamp.RequestOptions{Hash: crypto.SHA256, Certificates: true})
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(c *http.Client) *http.Response {
		resp, err := c.Post(base+"/tsa", "application/timestamp-query", bytes.NewReader(q))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// What one stamp adds to the audit log, from an address of its own.
	before := auditAppended(t, base)
	if resp := stamp(clientFrom("127.0.4.1", nil)); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /tsa: %d", resp.StatusCode)
	}
	per := auditAppended(t, base) - before

	// The default limit: 50 at once, then 10 a second.
	const flood, burst, perSecond = 300, 50, 10
	c := clientFrom("127.0.4.2", nil)
	before = auditAppended(t, base)
	start := time.Now()
	counts := map[int]int{}
	for range flood {
		resp := stamp(c)
		counts[resp.StatusCode]++
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			retryAfterOK(t, "tsa", resp)
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("tsa 429 is %s", ct)
			}
		default:
			t.Fatalf("POST /tsa: %d", resp.StatusCode)
		}
	}
	elapsed := time.Since(start)
	added := auditAppended(t, base) - before
	allowed := burst + int(elapsed.Seconds()*perSecond) + 1
	t.Logf("tsa flood of %d in %v: statuses %v; %d audit records (the first stamp alone added %d: it opens an audit interval, or finds one open)", flood, elapsed.Round(time.Millisecond), counts, added, per)
	// Only a flood sent faster than the rate refills must be refused:
	// on a machine so slow it was not, there is nothing to see.
	if counts[http.StatusTooManyRequests] == 0 && elapsed < time.Duration(flood-burst)*time.Second/perSecond {
		t.Errorf("%d stamps in %v from one client, none refused", flood, elapsed)
	}
	if counts[http.StatusOK] > allowed {
		t.Errorf("%d stamps granted, the rate allows %d", counts[http.StatusOK], allowed)
	}
	// The built-in TSA records its key use per audit interval
	// (tsa.audit_interval, 1m by default): a key.activated opening it and a
	// summary closing it, however many stamps it issued.
	if intervals := int(elapsed/time.Minute) + 2; added > 2*intervals {
		t.Errorf("the flood added %d audit records for %d stamps, want at most %d (two per audit interval)", added, counts[http.StatusOK], 2*intervals)
	}
}
