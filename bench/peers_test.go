package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/firma-cloud/firma/internal/firmadtest"
)

// peerClients are the concurrent clients each TSA is measured at.
var peerClients = []int{1, 4, 16}

// BenchmarkPeers measures firmad's built-in TSA against sigstore's
// timestamp-authority (cmd/timestamp-server, pinned in bench/peers/go.mod,
// in-memory ECDSA P-256 signer, chain included) on loopback, with the same
// load generator and the same SHA-256 certReq query, at 1, 4 and 16
// clients: Peers/tsa/firma-cN and Peers/tsa/sigstore-cN in replies/s and
// p99-ms, which bench/report turns into firma/sigstore ratios. One reply
// of each is checked with openssl ts -verify first, so that both do the
// whole job. Run by make bench-peers (which builds sigstore's server and
// sets FIRMA_PEERS_SIGSTORE to it), not by make bench: about 45 s a run
// (two servers started, 6 x PEERS_SECONDS of load).
func BenchmarkPeers(b *testing.B) {
	bin := os.Getenv("FIRMA_PEERS_SIGSTORE")
	if bin == "" {
		b.Skip("FIRMA_PEERS_SIGSTORE (sigstore's timestamp-server binary) not set: run make bench-peers")
	}
	dur := 5 * time.Second
	if s := os.Getenv("FIRMA_PEERS_SECONDS"); s != "" {
		d, err := time.ParseDuration(s + "s")
		if err != nil {
			b.Fatalf("FIRMA_PEERS_SECONDS: %v", err)
		}
		dur = d
	}
	dir := b.TempDir()
	query, err := (&timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: benchDigest, Certificates: true,
		Nonce: big.NewInt(0x5eed)}).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	qf := filepath.Join(dir, "q.tsq")
	if err := os.WriteFile(qf, query, 0o600); err != nil {
		b.Fatal(err)
	}
	peers := []*peerTSA{startFirmaTSA(b, dir), startSigstoreTSA(b, dir, bin)}
	for _, p := range peers {
		p.verify(b, dir, qf, query)
	}
	type result struct{ rate, p99 float64 }
	results := map[string]result{}
	for i, c := range peerClients {
		order := peers
		if i%2 == 1 { // alternate who goes first, so that drifting load weighs on both
			order = []*peerTSA{peers[1], peers[0]}
		}
		for _, p := range order {
			rate, p99, err := p.load(query, c, dur)
			if err != nil {
				b.Fatalf("%s at %d clients: %v", p.name, c, err)
			}
			results[fmt.Sprintf("tsa/%s-c%d", p.name, c)] = result{rate, p99}
		}
	}
	for _, c := range peerClients {
		for _, p := range peers {
			name := fmt.Sprintf("tsa/%s-c%d", p.name, c)
			r := results[name]
			b.Run(name, func(b *testing.B) {
				b.ReportMetric(r.rate, "replies/s")
				b.ReportMetric(r.p99, "p99-ms")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// peerTSA is one TSA under test: where to post queries and how to check
// its replies with openssl.
type peerTSA struct {
	name      string
	url       string // POST application/timestamp-query here
	root      string // PEM file of the trust anchor
	untrusted string // PEM file of the rest of the chain
}

// verify posts the query once and checks the reply with openssl ts
// -verify against the peer's root.
func (p *peerTSA) verify(b *testing.B, dir, qf string, query []byte) {
	b.Helper()
	resp, err := http.Post(p.url, "application/timestamp-query", bytes.NewReader(query))
	if err != nil {
		b.Fatalf("%s: %v", p.name, err)
	}
	reply, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode/100 != 2 {
		b.Fatalf("%s: HTTP %d: %v: %s", p.name, resp.StatusCode, err, reply)
	}
	rf := filepath.Join(dir, p.name+".tsr")
	if err := os.WriteFile(rf, reply, 0o600); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("openssl", "ts", "-verify", "-queryfile", qf, "-in", rf, "-CAfile", p.root,
		"-untrusted", p.untrusted).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification: OK") {
		b.Fatalf("%s: openssl ts -verify: %v\n%s", p.name, err, out)
	}
	// Both must carry their chain, so that both do the same work.
	out, err = exec.Command("openssl", "ts", "-reply", "-in", rf, "-token_out", "-out", rf+".tst").CombinedOutput()
	if err != nil {
		b.Fatalf("%s: openssl ts -reply -token_out: %v\n%s", p.name, err, out)
	}
	out, err = exec.Command("openssl", "pkcs7", "-inform", "DER", "-in", rf+".tst", "-print_certs").CombinedOutput()
	if n := strings.Count(string(out), "-----BEGIN CERTIFICATE-----"); err != nil || n < 2 {
		b.Fatalf("%s: reply carries %d certificates, want the TSA's and its chain: %v\n%s", p.name, n, err, out)
	}
}

// load posts query from clients goroutines for dur (after a second of
// warm-up, not counted) and returns replies/s and the 99th percentile
// latency in ms. Every reply must be HTTP 2xx.
func (p *peerTSA) load(query []byte, clients int, dur time.Duration) (float64, float64, error) {
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	post := func() error {
		resp, err := hc.Post(p.url, "application/timestamp-query", bytes.NewReader(query))
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode/100 != 2 {
			err = fmt.Errorf("HTTP %s", resp.Status)
		}
		return err
	}
	warm := time.Now().Add(time.Second)
	end := warm.Add(dur)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			for {
				start := time.Now()
				if !start.Before(end) {
					break
				}
				err := post()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if start.After(warm) {
					mine = append(mine, time.Since(start))
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, 0, firstErr
	}
	if len(latencies) == 0 {
		return 0, 0, fmt.Errorf("no reply within %v", dur)
	}
	slices.Sort(latencies)
	p99 := latencies[(len(latencies)*99)/100]
	return float64(len(latencies)) / dur.Seconds(), float64(p99.Microseconds()) / 1000, nil
}

// startFirmaTSA makes a state with firmactl init and starts firmad on it,
// its TSA rate limit out of the way (sigstore's server has none).
func startFirmaTSA(b *testing.B, dir string) *peerTSA {
	b.Helper()
	bin := b.TempDir()
	if err := firmadtest.Build(bin); err != nil {
		b.Fatal(err)
	}
	httpAddr := firmadtest.FreeAddr(b)
	mk := exec.Command(filepath.Join(bin, "firmactl"), "init", "--state", "var", "--listen-grpc", "127.0.0.1:0",
		"--listen-http", httpAddr, "--ca-base-url", "http://"+httpAddr)
	mk.Dir = dir
	mk.Env = firmadtest.CleanEnv()
	if out, err := mk.CombinedOutput(); err != nil {
		b.Fatalf("firmactl init: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "firmad.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "firmad"), "-config", filepath.Join("var", "firmad.yaml"))
	cmd.Dir = dir
	cmd.Env = firmadtest.CleanEnv("FIRMA_LIMITS_TSA_PER_MINUTE=100000000", "FIRMA_LIMITS_TSA_BURST=1000000")
	cmd.Stderr = logf
	p, err := firmadtest.Start(cmd, 2*time.Minute)
	if err != nil {
		log, _ := os.ReadFile(logf.Name())
		b.Fatalf("%v\n%s", err, log)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.Done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-p.Done
		}
	})
	base := "http://" + p.HTTP
	chain := fetch(b, base+"/tsa/certs")
	untrusted := filepath.Join(dir, "firma-chain.pem")
	if err := os.WriteFile(untrusted, chain, 0o600); err != nil {
		b.Fatal(err)
	}
	return &peerTSA{name: "firma", url: base + "/tsa", root: filepath.Join(dir, "var", "ca", "root.pem"), untrusted: untrusted}
}

// startSigstoreTSA starts sigstore's timestamp-server with its in-memory
// ECDSA P-256 signer, replies carrying the whole chain, and NTP
// monitoring off (the machine may not reach NTP servers).
func startSigstoreTSA(b *testing.B, dir, bin string) *peerTSA {
	b.Helper()
	addr := firmadtest.FreeAddr(b)
	host, port, _ := strings.Cut(addr, ":")
	logf, err := os.Create(filepath.Join(dir, "sigstore.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--host", host, "--port", port, "--timestamp-signer", "memory",
		"--include-chain-in-response", "--disable-ntp-monitoring", "--log-type", "prod")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			b.Fatalf("sigstore timestamp-server did not answer /ping within a minute: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	chain := fetch(b, base+"/api/v1/timestamp/certchain")
	var certs []*x509.Certificate
	for rest := chain; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			b.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		b.Fatalf("sigstore certificate chain has %d certificates", len(certs))
	}
	root := filepath.Join(dir, "sigstore-root.pem")
	untrusted := filepath.Join(dir, "sigstore-chain.pem")
	if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[len(certs)-1].Raw}), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(untrusted, chain, 0o600); err != nil {
		b.Fatal(err)
	}
	return &peerTSA{name: "sigstore", url: base + "/api/v1/timestamp", root: root, untrusted: untrusted}
}

func fetch(b *testing.B, url string) []byte {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: HTTP %d: %v", url, resp.StatusCode, err)
	}
	return body
}
