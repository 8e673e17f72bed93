package loadgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"gonum.org/v1/gonum/stat"
)

// Latency are percentiles of one step, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Point is one second of the run.
type Point struct {
	Second       int     `json:"second"`
	Transactions int     `json:"transactions"` // finished in that second
	Signatures   int     `json:"signatures"`
	Errors       int     `json:"errors"`
	P50          float64 `json:"p50_ms"`
	P95          float64 `json:"p95_ms"`
}

// Report is the outcome of a run.
type Report struct {
	Nodes        []string           `json:"nodes"`
	Workers      int                `json:"workers"`
	Documents    int                `json:"documents_per_transaction"`
	Start        time.Time          `json:"start"`
	Seconds      float64            `json:"seconds"`
	Transactions int                `json:"transactions"` // completed and verified
	Failed       int                `json:"failed"`
	Signatures   int                `json:"signatures"`
	TxPerSecond  float64            `json:"transactions_per_second"`
	SigPerSecond float64            `json:"signatures_per_second"`
	Latency      map[string]Latency `json:"latency"` // total, create, approve, collect
	Errors       map[string]int     `json:"errors"`  // failed transactions by step
	// Duplicates counts signatures or transactions collected twice; Lost
	// counts documents of approved transactions without a signature.
	Duplicates int           `json:"duplicates"`
	Lost       int           `json:"lost"`
	Series     []Point       `json:"series"`
	FailedTx   []Transaction `json:"failed_transactions,omitempty"` // the first 100
	all        []Transaction
}

// collector gathers transactions and checks their signatures.
type collector struct {
	mu         sync.Mutex
	txs        []Transaction
	sigs       map[[32]byte]string // signature hash -> transaction
	ids        map[string]bool
	duplicates int
	lost       int
}

func newCollector() *collector {
	return &collector{sigs: map[[32]byte]string{}, ids: map[string]bool{}}
}

func (c *collector) add(tx Transaction) {
	c.mu.Lock()
	c.txs = append(c.txs, tx)
	c.mu.Unlock()
}

// check verifies every signature of transaction id against the signing
// certificate and the digest it is for, and that no signature or
// transaction was seen before.
func (c *collector) check(id string, res *result, digests [][]byte) error {
	if len(res.Chain) == 0 {
		return errors.New("result without a certificate chain")
	}
	cert, err := x509.ParseCertificate(res.Chain[0])
	if err != nil {
		return fmt.Errorf("signing certificate: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids[id] {
		c.duplicates++
		return fmt.Errorf("transaction %s collected twice", id)
	}
	c.ids[id] = true
	if len(res.Documents) != len(digests) {
		c.lost += max(0, len(digests)-len(res.Documents))
		return fmt.Errorf("%d signatures for %d documents", len(res.Documents), len(digests))
	}
	for i, d := range res.Documents {
		if len(d.Signature) == 0 {
			c.lost++
			return fmt.Errorf("document %d: no signature", i)
		}
		if !verify(cert.PublicKey, digests[i], d.Signature) {
			return fmt.Errorf("document %d: signature does not verify under the signing certificate", i)
		}
		h := sha256.Sum256(d.Signature)
		if other, ok := c.sigs[h]; ok {
			c.duplicates++
			return fmt.Errorf("document %d: signature already returned for transaction %s", i, other)
		}
		c.sigs[h] = id
	}
	return nil
}

// verify checks a raw signature over a SHA-256 digest.
func verify(pub any, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil ||
			rsa.VerifyPSS(k, crypto.SHA256, digest, sig, nil) == nil
	}
	return false
}

func (c *collector) report(begin, end time.Time, cfg Config) *Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Report{Nodes: cfg.Nodes, Workers: cfg.Workers, Documents: cfg.Documents, Start: begin.UTC(),
		Seconds: end.Sub(begin).Seconds(), Latency: map[string]Latency{}, Errors: map[string]int{},
		Duplicates: c.duplicates, Lost: c.lost, all: c.txs}
	steps := map[string][]float64{}
	bySecond := map[int][]float64{}
	points := map[int]*Point{}
	pt := func(s int) *Point {
		if points[s] == nil {
			points[s] = &Point{Second: s}
		}
		return points[s]
	}
	for _, tx := range c.txs {
		s := int(tx.Start.Add(tx.Total).Sub(begin).Seconds())
		if tx.Err != "" {
			r.Failed++
			r.Errors[tx.Step]++
			pt(s).Errors++
			if len(r.FailedTx) < 100 {
				r.FailedTx = append(r.FailedTx, tx)
			}
			continue
		}
		r.Transactions++
		r.Signatures += tx.Signatures
		p := pt(s)
		p.Transactions++
		p.Signatures += tx.Signatures
		bySecond[s] = append(bySecond[s], ms(tx.Total))
		steps["total"] = append(steps["total"], ms(tx.Total))
		steps["create"] = append(steps["create"], ms(tx.Create))
		steps["approve"] = append(steps["approve"], ms(tx.Approve))
		steps["collect"] = append(steps["collect"], ms(tx.Collect))
	}
	for name, v := range steps {
		r.Latency[name] = latency(v)
	}
	last := int(r.Seconds)
	for s := 0; s <= last; s++ {
		p := pt(s)
		if v := bySecond[s]; len(v) > 0 {
			l := latency(v)
			p.P50, p.P95 = l.P50, l.P95
		}
		r.Series = append(r.Series, *p)
	}
	if r.Seconds > 0 {
		r.TxPerSecond = float64(r.Transactions) / r.Seconds
		r.SigPerSecond = float64(r.Signatures) / r.Seconds
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// latency takes percentiles of v (sorted in place).
func latency(v []float64) Latency {
	if len(v) == 0 {
		return Latency{}
	}
	sort.Float64s(v)
	return Latency{P50: stat.Quantile(0.50, stat.Empirical, v, nil), P95: stat.Quantile(0.95, stat.Empirical, v, nil),
		P99: stat.Quantile(0.99, stat.Empirical, v, nil), Max: v[len(v)-1]}
}

// OK reports whether the run had no error, no loss and no duplicate.
func (r *Report) OK() bool {
	return r.Failed == 0 && r.Duplicates == 0 && r.Lost == 0 && r.Transactions > 0
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText prints the summary a person reads.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "nodes\t%v\n", r.Nodes)
	fmt.Fprintf(tw, "duration\t%.1f s (%d workers, %d document(s) per transaction)\n", r.Seconds, r.Workers, r.Documents)
	fmt.Fprintf(tw, "transactions\t%d done, %d failed\n", r.Transactions, r.Failed)
	fmt.Fprintf(tw, "signatures\t%d (all verified; %d lost, %d duplicated)\n", r.Signatures, r.Lost, r.Duplicates)
	fmt.Fprintf(tw, "throughput\t%.2f transactions/s, %.2f signatures/s\n", r.TxPerSecond, r.SigPerSecond)
	fmt.Fprintln(tw, "latency (ms)\tp50\tp95\tp99\tmax")
	for _, s := range []string{"total", "create", "approve", "collect"} {
		l := r.Latency[s]
		fmt.Fprintf(tw, "  %s\t%.1f\t%.1f\t%.1f\t%.1f\n", s, l.P50, l.P95, l.P99, l.Max)
	}
	if len(r.Errors) > 0 {
		steps := make([]string, 0, len(r.Errors))
		for s := range r.Errors {
			steps = append(steps, s)
		}
		sort.Strings(steps)
		for _, s := range steps {
			fmt.Fprintf(tw, "errors at %s\t%d\n", s, r.Errors[s])
		}
		for i, tx := range r.FailedTx {
			if i == 5 {
				break
			}
			fmt.Fprintf(tw, "  e.g.\t%s: %s\n", tx.Step, tx.Err)
		}
	}
	return tw.Flush()
}
