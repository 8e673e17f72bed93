package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	htmlpkg "html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// ErrNotLoopback is returned for a node that is not on a loopback address.
var ErrNotLoopback = errors.New("node is not on a loopback address")

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("bad load configuration")

// Citizen is a sandbox citizen the load signs as.
type Citizen struct {
	ID       string
	Mobile   string
	Password string
}

// Config is one load run.
type Config struct {
	Nodes         []string // base URLs of the nodes' HTTP listeners, e.g. http://127.0.0.1:8080
	APIKey        string   // the portal's API key
	OperatorToken string   // reads the SMS outbox
	Citizens      []Citizen
	// Count bounds the transactions started; Duration bounds the time
	// they may start in. At least one must be set; the run ends at the
	// first bound reached.
	Count    int
	Duration time.Duration
	// Workers is how many transactions are under way at once; each has a
	// share of the citizens of its own, so codes never cross.
	Workers   int
	Documents int    // documents per transaction; 0 means 1
	OKURL     string // the portal's redirects; defaults are example URLs
	ErrorURL  string
	Client    *http.Client // nil: a client with a 60 s timeout
	Log       *slog.Logger
}

// Transaction is the outcome of one transaction of the run.
type Transaction struct {
	ID         string        `json:"id,omitempty"`
	Citizen    string        `json:"citizen"`
	Start      time.Time     `json:"start"`
	Create     time.Duration `json:"create_ns"`
	Approve    time.Duration `json:"approve_ns"` // sign-in, code, approval
	Collect    time.Duration `json:"collect_ns"`
	Total      time.Duration `json:"total_ns"`
	Nodes      [3]int        `json:"nodes"` // create, approve, collect
	Signatures int           `json:"signatures"`
	Step       string        `json:"step,omitempty"` // where it failed
	Err        string        `json:"error,omitempty"`
}

func (c *Config) check() error {
	if len(c.Nodes) == 0 {
		return fmt.Errorf("%w: no node", ErrConfig)
	}
	for i, n := range c.Nodes {
		u, err := url.Parse(n)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: node %q: want http://host:port", ErrConfig, n)
		}
		if err := loopback(u.Hostname()); err != nil {
			return fmt.Errorf("node %q: %w", n, err)
		}
		c.Nodes[i] = strings.TrimRight(n, "/")
	}
	if c.APIKey == "" {
		return fmt.Errorf("%w: no portal API key", ErrConfig)
	}
	if c.OperatorToken == "" {
		return fmt.Errorf("%w: no operator token (the SMS outbox needs it)", ErrConfig)
	}
	if c.Count <= 0 && c.Duration <= 0 {
		return fmt.Errorf("%w: set a count or a duration", ErrConfig)
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if len(c.Citizens) < c.Workers {
		return fmt.Errorf("%w: %d citizens for %d workers: each worker needs one of its own", ErrConfig, len(c.Citizens), c.Workers)
	}
	if c.Documents <= 0 {
		c.Documents = 1
	}
	if c.OKURL == "" {
		c.OKURL = "https://portal.example.es/ok"
	}
	if c.ErrorURL == "" {
		c.ErrorURL = "https://portal.example.es/error"
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4 * c.Workers}}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

func loopbackURL(n string) error {
	u, err := url.Parse(n)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: node %q: want http://host:port", ErrConfig, n)
	}
	return loopback(u.Hostname())
}

// loopback accepts localhost and loopback IP addresses only.
func loopback(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %s", ErrNotLoopback, host)
	}
	return nil
}

// Run drives the load and returns its report. Errors of single
// transactions are counted in the report; an error is returned only when
// the run could not be made at all.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, cfg.Duration)
		defer c2()
	}
	col := newCollector()
	var (
		mu      sync.Mutex
		started int
		wg      sync.WaitGroup
	)
	// take reserves the next transaction number, or false once the count
	// is reached.
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if cfg.Count > 0 && started >= cfg.Count {
			return 0, false
		}
		started++
		return started - 1, true
	}
	begin := time.Now()
	for w := range cfg.Workers {
		var mine []Citizen
		for i := w; i < len(cfg.Citizens); i += cfg.Workers {
			mine = append(mine, cfg.Citizens[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				if ctx.Err() != nil {
					return
				}
				n, ok := take()
				if !ok {
					return
				}
				// A transaction started keeps going after the duration
				// ends: only starting stops, so none is cut in half.
				tx := cfg.one(context.WithoutCancel(ctx), n, mine[k%len(mine)], col)
				col.add(tx)
				if tx.Err != "" {
					cfg.Log.Warn("transaction failed", "n", n, "step", tx.Step, "err", tx.Err)
				}
			}
		}()
	}
	wg.Wait()
	return col.report(begin, time.Now(), cfg), nil
}

// one runs transaction n for citizen c. Its steps go to three different
// nodes when there are three.
func (cfg *Config) one(ctx context.Context, n int, c Citizen, col *collector) Transaction {
	nn := len(cfg.Nodes)
	tx := Transaction{Citizen: c.ID, Start: time.Now(), Nodes: [3]int{n % nn, (n + 1) % nn, (n + 2) % nn}}
	fail := func(step string, err error) Transaction {
		tx.Step, tx.Err = step, err.Error()
		tx.Total = time.Since(tx.Start)
		return tx
	}
	docs := make([][]byte, cfg.Documents)
	digests := make([][]byte, cfg.Documents)
	for i := range docs {
		docs[i] = make([]byte, 64)
		rand.Read(docs[i])
		s := sha256.Sum256(docs[i])
		digests[i] = s[:]
	}
	t0 := time.Now()
	id, err := cfg.create(ctx, cfg.Nodes[tx.Nodes[0]], c.ID, digests)
	if err != nil {
		return fail("create", err)
	}
	tx.ID = id
	tx.Create = time.Since(t0)
	t0 = time.Now()
	if err := cfg.approve(ctx, cfg.Nodes[tx.Nodes[1]], cfg.Nodes[tx.Nodes[2]], id, c); err != nil {
		return fail("approve", fmt.Errorf("%w%s", err, cfg.why(ctx, cfg.Nodes[tx.Nodes[0]], id)))
	}
	tx.Approve = time.Since(t0)
	t0 = time.Now()
	res, err := cfg.result(ctx, cfg.Nodes[tx.Nodes[2]], id)
	if err != nil {
		return fail("collect", err)
	}
	tx.Collect = time.Since(t0)
	if err := col.check(id, res, digests); err != nil {
		return fail("verify", err)
	}
	tx.Signatures = len(res.Documents)
	tx.Total = time.Since(tx.Start)
	return tx
}

// problem is an RFC 9457 error body, or the JSON error of the portal API.
type problem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Error  string `json:"error"`
}

// do sends req and decodes a JSON answer of the wanted status into out.
func (cfg *Config) do(req *http.Request, want int, out any) error {
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		var p problem
		json.Unmarshal(b, &p)
		msg := strings.TrimSpace(strings.Join([]string{p.Code, p.Title, p.Detail, p.Error}, " "))
		if msg == "" {
			msg = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

func (cfg *Config) create(ctx context.Context, node, citizen string, digests [][]byte) (string, error) {
	type doc struct {
		Name   string `json:"name"`
		Digest []byte `json:"digest"`
		Hash   string `json:"hash"`
		Format string `json:"format"`
	}
	docs := make([]doc, len(digests))
	for i, d := range digests {
		docs[i] = doc{Name: fmt.Sprintf("documento-%d.bin", i+1), Digest: d, Hash: "sha256", Format: "raw"}
	}
	body, _ := json.Marshal(map[string]any{"subject_id": citizen, "ok_url": cfg.OKURL, "error_url": cfg.ErrorURL, "documents": docs})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, node+"/api/v1/transactions", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", cfg.APIKey)
	var out struct {
		ID string `json:"transaction_id"`
	}
	if err := cfg.do(req, http.StatusCreated, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("create: no transaction_id in the answer")
	}
	return out.ID, nil
}

var (
	csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	codeRe = regexp.MustCompile(`Cl@ve Firma: (\d{6}) `)
	// pageErrRe is the error the approval page shows, if any.
	pageErrRe = regexp.MustCompile(`id="page-error">([^<]*)<`)
)

// pageError returns the error shown on an approval page as an error.
func pageError(html string) error {
	if m := pageErrRe.FindStringSubmatch(html); m != nil {
		return fmt.Errorf("approval page: %s", strings.TrimSpace(m[1]))
	}
	return nil
}

// approve walks the approval page on node as a browser does: open it,
// sign in (which sends the code), read the code from the outbox through
// outboxNode, and approve.
func (cfg *Config) approve(ctx context.Context, node, outboxNode, id string, c Citizen) error {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: cfg.Client.Timeout, Transport: cfg.Client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := func(method, path string, form url.Values) (int, string, string, error) {
		var rd io.Reader
		if form != nil {
			rd = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, node+path, rd)
		if err != nil {
			return 0, "", "", err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", node)
		}
		resp, err := browser.Do(req)
		if err != nil {
			return 0, "", "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Location"), err
	}
	csrf := func(html string) (string, error) {
		m := csrfRe.FindStringSubmatch(html)
		if m == nil {
			return "", errors.New("approval page without a form token")
		}
		return m[1], nil
	}
	path := "/sign/" + id
	code, html, _, err := page(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d", path, code)
	}
	tok, err := csrf(html)
	if err != nil {
		return err
	}
	sent := time.Now().Add(-time.Second)
	code, _, loc, err := page(http.MethodPost, path+"/login", url.Values{"csrf": {tok}, "citizen": {c.ID}, "password": {c.Password}})
	if err != nil {
		return err
	}
	if code != http.StatusSeeOther {
		return fmt.Errorf("sign-in: %d", code)
	}
	if loc == "" {
		loc = path
	}
	if u, err := url.Parse(loc); err == nil && u.IsAbs() {
		loc = u.RequestURI()
	}
	if _, html, _, err = page(http.MethodGet, loc, nil); err != nil {
		return err
	}
	if err := pageError(html); err != nil {
		return err
	}
	if tok, err = csrf(html); err != nil {
		return err
	}
	otp, err := cfg.code(ctx, outboxNode, c.Mobile, sent)
	if err != nil {
		return err
	}
	code, html, loc, err = page(http.MethodPost, path+"/approve", url.Values{"csrf": {tok}, "otp": {otp}})
	if err != nil {
		return err
	}
	if err := pageError(html); err != nil {
		return err
	}
	// The page signs off the request: it sends the browser to a progress
	// page that refreshes itself until signing ends, then to a
	// confirmation that refreshes on to the portal. Followed here every 50 ms rather than every refresh's 2 s,
	// so that the approval time measures the signing, not the refresh.
	for code == http.StatusSeeOther && strings.HasPrefix(loc, "/sign/") {
		code, html, loc, err = page(http.MethodGet, loc, nil)
		for err == nil && code == http.StatusOK {
			m := refreshRe.FindStringSubmatch(html)
			if m == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			target := htmlpkg.UnescapeString(m[1])
			if !strings.HasPrefix(target, "/") {
				// The confirmation page's refresh to the portal: where a
				// browser would go next, as a redirect would say it.
				code, html, loc = http.StatusSeeOther, "", target
				break
			}
			code, html, loc, err = page(http.MethodGet, target, nil)
		}
		if err != nil {
			return err
		}
		if err := pageError(html); err != nil {
			return err
		}
	}
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, cfg.OKURL) {
		return fmt.Errorf("approve: %d, redirected to %q", code, loc)
	}
	return nil
}

// refreshRe finds the progress page's meta refresh and its target.
var refreshRe = regexp.MustCompile(`http-equiv="refresh" content="\d+;url=([^"]+)"`)

// code reads the newest code sent to mobile since the sign-in; it retries
// briefly in case the message is stored late. Only one transaction per
// citizen is under way at a time (Run gives each worker its own citizens),
// so the newest code is this transaction's.
func (cfg *Config) code(ctx context.Context, node, mobile string, since time.Time) (string, error) {
	for try := 0; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			node+"/v1/registry/sms-outbox?to="+url.QueryEscape(mobile)+"&limit=20", nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+cfg.OperatorToken)
		var out struct {
			Messages []struct {
				Text      string    `json:"text"`
				CreatedAt time.Time `json:"created_at"`
			} `json:"messages"`
		}
		if err := cfg.do(req, http.StatusOK, &out); err != nil {
			return "", fmt.Errorf("outbox: %w", err)
		}
		// Newest first; notices of signatures made (audit.notify: sms)
		// go to the same number, so the newest code is looked for.
		for _, msg := range out.Messages {
			if msg.CreatedAt.Before(since) {
				break
			}
			if m := codeRe.FindStringSubmatch(msg.Text); m != nil {
				return m[1], nil
			}
		}
		if try == 20 {
			return "", fmt.Errorf("outbox: no new code for %s", maskMobile(mobile))
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func maskMobile(m string) string {
	if len(m) <= 3 {
		return "***"
	}
	return strings.Repeat("*", len(m)-3) + m[len(m)-3:]
}

// result is the portal's view of a finished transaction.
type result struct {
	State     string   `json:"state"`
	Chain     [][]byte `json:"certificate_chain"`
	Documents []struct {
		Signature []byte `json:"signature"`
	} `json:"documents"`
}

func (cfg *Config) result(ctx context.Context, node, id string) (*result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, node+"/api/v1/transactions/"+id+"/result", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", cfg.APIKey)
	var res result
	if err := cfg.do(req, http.StatusOK, &res); err != nil {
		return nil, err
	}
	if res.State != "done" {
		return nil, fmt.Errorf("result: state %q, want done", res.State)
	}
	return &res, nil
}

// why asks the portal API why transaction id did not end well, for the
// report: its state and error, and the first document error.
func (cfg *Config) why(ctx context.Context, node, id string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, node+"/api/v1/transactions/"+id, nil)
	if err != nil {
		return ""
	}
	req.Header.Set("X-API-Key", cfg.APIKey)
	var st struct {
		State     string `json:"state"`
		Code      string `json:"error_code"`
		Message   string `json:"error_message"`
		Documents []struct {
			Code  string `json:"error_code"`
			Error string `json:"error"`
		} `json:"documents"`
	}
	if err := cfg.do(req, http.StatusOK, &st); err != nil {
		return ""
	}
	out := fmt.Sprintf(" (state %s", st.State)
	if st.Code != "" || st.Message != "" {
		out += fmt.Sprintf(": %s %s", st.Code, st.Message)
	}
	for i, d := range st.Documents {
		if d.Code != "" || d.Error != "" {
			out += fmt.Sprintf("; document %d: %s %s", i, d.Code, d.Error)
			break
		}
	}
	return out + ")"
}
