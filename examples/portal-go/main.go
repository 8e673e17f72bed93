// Command portal-go is a portal asking firma for a signature, in the few
// lines a portal needs and with nothing but the standard library: it
// creates a transaction over the REST API (/api/v1), tells where to send
// the citizen, waits for firmad's signed callback and checks its HMAC as
// the OpenAPI document (/openapi.json, "Callbacks") describes, then
// collects the signed documents and has firmad verify each one
// (POST /v1/verify).
//
//	go run ./examples/portal-go -base http://127.0.0.1:7780 \
//	    -api-key-file portal.key -callback-key-file callback.key \
//	    -listen 127.0.0.1:7790 -subject 10000001S -doc doc.txt -out results/
//
// The portal must have been registered with its callback URL
// (firmactl portals create --callback-url http://127.0.0.1:7790/callback)
// and the OK and error URLs it passes here among its redirect URLs.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "portal-go:", err)
		os.Exit(1)
	}
}

type options struct {
	base, apiKeyFile, callbackKeyFile, listen, subject, doc, out, okURL, errorURL string
	wait                                                                          time.Duration
}

func run() error {
	var o options
	flag.StringVar(&o.base, "base", "http://127.0.0.1:7780", "firmad's HTTP address")
	flag.StringVar(&o.apiKeyFile, "api-key-file", "portal.key", "file holding the portal's API key")
	flag.StringVar(&o.callbackKeyFile, "callback-key-file", "callback.key", "file holding the portal's callback key (hex)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:7790", "where to receive the callback (the portal's callback URL is http://LISTEN/callback)")
	flag.StringVar(&o.subject, "subject", "10000001S", "the citizen's DNI/NIE")
	flag.StringVar(&o.doc, "doc", "doc.txt", "the document to sign")
	flag.StringVar(&o.out, "out", "results", "folder for the signed documents")
	flag.StringVar(&o.okURL, "ok-url", "", "where the citizen goes after approving (default: firmad's sandbox page)")
	flag.StringVar(&o.errorURL, "error-url", "", "where the citizen goes after refusing (default: firmad's sandbox page)")
	flag.DurationVar(&o.wait, "wait", 10*time.Minute, "how long to wait for the citizen")
	flag.Parse()
	if o.okURL == "" {
		o.okURL = o.base + "/sandbox/return?result=ok"
	}
	if o.errorURL == "" {
		o.errorURL = o.base + "/sandbox/return?result=error"
	}
	apiKey, err := readSecret(o.apiKeyFile)
	if err != nil {
		return err
	}
	hexKey, err := readSecret(o.callbackKeyFile)
	if err != nil {
		return err
	}
	// The callback key is printed in hex: the HMAC key is the bytes it
	// encodes.
	callbackKey, err := hex.DecodeString(hexKey)
	if err != nil {
		return fmt.Errorf("%s: the callback key is not hex: %w", o.callbackKeyFile, err)
	}
	content, err := os.ReadFile(o.doc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.wait)
	defer cancel()
	c := &client{base: strings.TrimRight(o.base, "/"), apiKey: apiKey}

	// Listen before creating: the callback may come as soon as the
	// citizen approves.
	notices, stop, err := receiveCallbacks(o.listen, callbackKey)
	if err != nil {
		return err
	}
	defer stop()

	// 1. Create the transaction (byte fields are standard base64, which
	// encoding/json gives []byte).
	var created struct {
		ID          string `json:"transaction_id"`
		RedirectURL string `json:"redirect_url"`
	}
	err = c.do(ctx, http.MethodPost, "/api/v1/transactions", map[string]any{
		"subject_id": o.subject, "ok_url": o.okURL, "error_url": o.errorURL,
		"documents": []map[string]any{{"name": filepath.Base(o.doc), "media_type": "text/plain", "content": content}},
	}, http.StatusCreated, &created)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	// 2. Send the citizen to the approval page.
	fmt.Printf("transaction %s\nsend the citizen to %s\n", created.ID, created.RedirectURL)

	// 3. Wait for the signed notice that it ended.
	var n notice
	for n.ID != created.ID {
		select {
		case n = <-notices:
		case <-ctx.Done():
			return fmt.Errorf("no callback for %s: %w", created.ID, ctx.Err())
		}
	}
	fmt.Printf("callback: transaction %s %s (signature verified)\n", n.ID, n.State)
	if n.State != "done" {
		return fmt.Errorf("transaction %s ended %s %s", n.ID, n.State, n.ErrorCode)
	}

	// 4. Collect the results and have each signature verified.
	var res struct {
		State     string `json:"state"`
		Documents []struct {
			Name      string `json:"name"`
			Status    string `json:"status"`
			Format    string `json:"format"`
			Signature []byte `json:"signature"`
		} `json:"documents"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/transactions/"+created.ID+"/result", nil, http.StatusOK, &res); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	for i, d := range res.Documents {
		if d.Status != "signed" {
			return fmt.Errorf("document %d (%s) is %s", i, d.Name, d.Status)
		}
		var v struct {
			Verdict string `json:"verdict"`
		}
		if err := c.do(ctx, http.MethodPost, "/v1/verify", map[string]any{"signature": d.Signature, "content": content}, http.StatusOK, &v); err != nil {
			return fmt.Errorf("verify %s: %w", d.Name, err)
		}
		if v.Verdict != "VERDICT_VALID" {
			return fmt.Errorf("verify %s: %s", d.Name, v.Verdict)
		}
		path := filepath.Join(o.out, fmt.Sprintf("%d-%s.%s.sig", i, d.Name, d.Format))
		if err := os.WriteFile(path, d.Signature, 0o644); err != nil {
			return err
		}
		fmt.Printf("document %d %s: %s signature, %s, saved in %s\n", i, d.Name, d.Format, v.Verdict, path)
	}
	return nil
}

// notice is the callback's body (the OpenAPI document's Notice).
type notice struct {
	ID        string `json:"id"`
	AppID     string `json:"app_id"`
	State     string `json:"state"`
	Summary   string `json:"summary"`
	ErrorCode string `json:"error_code"`
}

// callbackTolerance is how far the callback's timestamp may be from this
// clock: a notice replayed later is refused.
const callbackTolerance = 5 * time.Minute

// receiveCallbacks serves POST /callback on addr and passes on each notice
// whose signature checks.
func receiveCallbacks(addr string, key []byte) (<-chan notice, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan notice, 8)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /callback", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable", http.StatusBadRequest)
			return
		}
		if err := verifyCallback(key, r.Header.Get("Firma-Timestamp"), r.Header.Get("Firma-Signature"), body, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, "portal-go: callback refused:", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var n notice
		if err := json.Unmarshal(body, &n); err != nil {
			http.Error(w, "bad notice", http.StatusBadRequest)
			return
		}
		select {
		case ch <- n:
		default: // a repeat of a notice already taken
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return ch, func() { srv.Close() }, nil
}

// verifyCallback checks Firma-Signature: "v1=" and the hex HMAC-SHA256,
// keyed with the callback key, of the timestamp, "." and the body,
// compared in constant time; and the timestamp within the tolerance.
func verifyCallback(key []byte, timestamp, signature string, body []byte, now time.Time) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("no valid Firma-Timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > callbackTolerance || d < -callbackTolerance {
		return fmt.Errorf("Firma-Timestamp is %s away", d)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	want := "v1=" + hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(signature), []byte(want)) {
		return errors.New("Firma-Signature does not match")
	}
	return nil
}

type client struct {
	base, apiKey string
	http         http.Client
}

// do sends in as JSON and decodes the answer into out, or returns the
// problem document's code and detail.
func (c *client) do(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", c.apiKey)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		var p struct{ Code, Detail string }
		json.Unmarshal(b, &p)
		return fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, p.Code, p.Detail)
	}
	return json.Unmarshal(b, out)
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
