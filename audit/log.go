package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/firma-cloud/firma/store"
)

// Options configure a Log.
type Options struct {
	// Node names this firmad instance in records; default the host name.
	Node string
	// Origin is the first line of checkpoints, naming the log, e.g.
	// "firma.example/audit". Required to sign checkpoints.
	Origin string
	// Signer signs checkpoints (NewNoteSigner over the HSM audit key); nil
	// means this node does not sign them.
	Signer note.Signer
	// Timestamper, if set, timestamps each checkpoint with RFC 3161.
	Timestamper Timestamper
	// PseudonymKey keys Pseudonym for Log.Pseudonym.
	PseudonymKey []byte
	// MaxBatch is the most records one transaction commits; default 512.
	MaxBatch int
	// Linger is how long the committer waits for more records once it has
	// some, when fewer than MaxBatch are queued. Default 0: records that
	// arrive while a commit runs already form the next batch, so waiting
	// only adds latency.
	Linger time.Duration
	// Queue is how many records may wait for commit before Append blocks;
	// default 8192.
	Queue int
	// Flush makes every commit reach stable storage before Append returns,
	// so records survive a power cut, not only a crash of the process
	// (which they always survive). It costs an fsync per batch: see
	// BenchmarkAppend and bench.BenchmarkAudit.
	Flush bool
	// CommitTimeout bounds one batch commit; default 30s.
	CommitTimeout time.Duration
	Registerer    prometheus.Registerer
	Logger        *slog.Logger
	Now           func() time.Time
}

// Log is the append-only audit log.
type Log struct {
	st  store.AuditStore
	opt Options
	m   *metrics
	log *slog.Logger

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	queue  chan *pending
	done   chan struct{}

	sizeMu sync.RWMutex
	size   int64 // committed records; only the committer writes it

	// edge caches the latest stored hash at each tree level: exactly the
	// hashes tlog.StoredHashes reads to append the next record, so appends
	// need no store reads.
	edge map[int]edgeHash

	cpMu sync.Mutex // one checkpoint signing at a time
	// selfSize is the log size right after the last checkpoint, when the
	// only record added meanwhile was the timestamp's own: an audited TSA
	// records its key use, and signing again for that alone would make a
	// quiet log grow by a record and a checkpoint every interval.
	selfSize int64
}

type edgeHash struct {
	index int64
	hash  tlog.Hash
}

type pending struct {
	rec   *Record
	count counted
	body  []byte
	seq   int64
	err   chan error
	start time.Time
}

// Open starts the log on st: it reads the committed size and starts the
// group committer. Close stops it.
func Open(ctx context.Context, st store.AuditStore, opt Options) (*Log, error) {
	if opt.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			h = "firmad"
		}
		opt.Node = h
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 512
	}
	if opt.Queue <= 0 {
		opt.Queue = 8192
	}
	if opt.CommitTimeout <= 0 {
		opt.CommitTimeout = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Signer != nil && opt.Origin == "" {
		return nil, fmt.Errorf("open audit log: %w: a checkpoint signer needs an origin", ErrInvalid)
	}
	l := &Log{
		st:    st,
		opt:   opt,
		m:     newMetrics(opt.Registerer),
		log:   opt.Logger.With("component", "audit"),
		queue: make(chan *pending, opt.Queue),
		done:  make(chan struct{}),
		edge:  map[int]edgeHash{},
	}
	size, err := st.AuditSize(ctx)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	l.size = size
	l.m.size.Set(float64(size))
	go l.commitLoop()
	return l, nil
}

// Close commits what is queued and stops the committer. Appends after
// Close fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	return nil
}

// Size returns the number of committed records.
func (l *Log) Size() int64 {
	l.sizeMu.RLock()
	defer l.sizeMu.RUnlock()
	return l.size
}

// Node returns the node name records get by default.
func (l *Log) Node() string { return l.opt.Node }

// Pseudonym returns Pseudonym under the configured key.
func (l *Log) Pseudonym(kind Kind, value string) string {
	return Pseudonym(l.opt.PseudonymKey, kind, value)
}

// Append validates rec, appends it and returns once it is durably
// committed, setting rec.Seq (and rec.Time and rec.Node if they were
// empty). Emails and phone numbers in the free text of Reason and document
// names are redacted (Redact); anywhere else they make Append fail with
// ErrPersonalData. Any error means the record is not known to be in the
// log and the audited operation must be refused.
func (l *Log) Append(ctx context.Context, rec *Record) error {
	start := time.Now()
	if rec.Time.IsZero() {
		rec.Time = l.opt.Now()
	}
	rec.Time = rec.Time.UTC().Round(0)
	if rec.Node == "" {
		rec.Node = l.opt.Node
	}
	rec.Reason = Redact(rec.Reason)
	if len(rec.Documents) > 0 {
		docs := make([]Document, len(rec.Documents))
		for i, d := range rec.Documents {
			d.Name = Redact(d.Name)
			docs[i] = d
		}
		rec.Documents = docs
	}
	if err := rec.Validate(); err != nil {
		return fmt.Errorf("audit %s: %w", rec.Event, err)
	}
	r := *rec
	body, err := r.encode()
	if err != nil {
		return fmt.Errorf("audit %s: %w", rec.Event, err)
	}
	p := &pending{rec: &r, count: countedOf(&r), body: body, err: make(chan error, 1), start: start}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return fmt.Errorf("audit %s: %w", rec.Event, ErrClosed)
	}
	l.m.backlog.Inc()
	select {
	case l.queue <- p:
	case <-ctx.Done():
		l.mu.RUnlock()
		l.m.backlog.Dec()
		return fmt.Errorf("audit %s: %w: %w", rec.Event, ErrUnavailable, ctx.Err())
	}
	l.mu.RUnlock()
	select {
	case err := <-p.err:
		if err != nil {
			return fmt.Errorf("audit %s: %w", rec.Event, err)
		}
		rec.Seq = p.seq
		l.m.append.Observe(time.Since(start).Seconds())
		return nil
	case <-ctx.Done():
		// The record may still be committed; the caller refuses the
		// operation anyway, and a record of an operation that then did not
		// happen is the safe side to err on.
		return fmt.Errorf("audit %s: %w: %w", rec.Event, ErrUnavailable, ctx.Err())
	}
}

func (l *Log) commitLoop() {
	defer close(l.done)
	batch := make([]*pending, 0, l.opt.MaxBatch)
	for {
		p, ok := <-l.queue
		if !ok {
			return
		}
		var open bool
		batch, open = l.fill(append(batch[:0], p))
		l.commit(batch)
		if !open {
			// Close was called: whatever fill did not take is still queued.
			for p := range l.queue {
				l.commit([]*pending{p})
			}
			return
		}
	}
}

// fill adds queued records to batch, up to MaxBatch, waiting up to Linger
// for more. It reports false if the queue was closed.
func (l *Log) fill(batch []*pending) ([]*pending, bool) {
	var timer <-chan time.Time
	if l.opt.Linger > 0 {
		t := time.NewTimer(l.opt.Linger)
		defer t.Stop()
		timer = t.C
	}
	for len(batch) < l.opt.MaxBatch {
		select {
		case p, ok := <-l.queue:
			if !ok {
				return batch, false
			}
			batch = append(batch, p)
			continue
		default:
		}
		if timer == nil {
			return batch, true
		}
		select {
		case p, ok := <-l.queue:
			if !ok {
				return batch, false
			}
			batch = append(batch, p)
		case <-timer:
			return batch, true
		}
	}
	return batch, true
}

// maxConflicts bounds how often a batch is placed again after other
// writers: beyond it the store is more likely broken than busy.
// A writer that is descheduled while another streams commits (a loaded
// machine, the race detector) can lose a dozen races in a row, so the
// bound is generous and the backoff stops growing at 32 ms.
const maxConflicts = 32

// commit appends one batch in one transaction and answers every waiter.
func (l *Log) commit(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opt.CommitTimeout)
	defer cancel()
	start := time.Now()
	err := l.appendBatch(ctx, batch)
	for try := 0; errors.Is(err, store.ErrConflict) && try < maxConflicts; try++ {
		// Another writer (a second node on a shared database) appended
		// first: take the log's real size and place the batch after it.
		l.log.Info("audit log moved under us, retrying batch", "err", err)
		// Back off for a random, growing while: retrying at once loses
		// every race against a node that is streaming commits.
		select {
		case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) << min(try, 5)))):
		case <-ctx.Done():
			err = ctx.Err()
			continue
		}
		if err = l.reload(ctx); err == nil {
			err = l.appendBatch(ctx, batch)
		}
	}
	l.m.commit.Observe(time.Since(start).Seconds())
	l.m.backlog.Sub(float64(len(batch)))
	if err != nil {
		l.log.Error("audit commit failed: refusing the audited operations", "records", len(batch), "err", err)
		l.m.failures.Add(float64(len(batch)))
		for _, p := range batch {
			p.err <- fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return
	}
	l.m.batch.Observe(float64(len(batch)))
	for _, p := range batch {
		l.m.observe(p.count)
		p.err <- nil
	}
}

func (l *Log) reload(ctx context.Context) error {
	size, err := l.st.AuditSize(ctx)
	if err != nil {
		return err
	}
	l.sizeMu.Lock()
	l.size = size
	l.sizeMu.Unlock()
	clear(l.edge)
	return nil
}

func (l *Log) appendBatch(ctx context.Context, batch []*pending) error {
	n := l.Size()
	recs := make([]*store.AuditRecord, len(batch))
	var hashes []store.AuditHash
	fresh := map[int64]tlog.Hash{}
	read := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		var missing []int64
		for i, x := range idx {
			if h, ok := fresh[x]; ok {
				out[i] = h
				continue
			}
			level, _ := tlog.SplitStoredHashIndex(x)
			if e, ok := l.edge[level]; ok && e.index == x {
				out[i] = e.hash
				continue
			}
			missing = append(missing, x)
		}
		if len(missing) == 0 {
			return out, nil
		}
		got, err := l.st.AuditHashes(ctx, missing)
		if err != nil {
			return nil, err
		}
		m := make(map[int64]tlog.Hash, len(missing))
		for i, x := range missing {
			m[x] = got[i]
		}
		for i, x := range idx {
			if h, ok := m[x]; ok {
				out[i] = h
			}
		}
		return out, nil
	})
	for i, p := range batch {
		seq := n + int64(i)
		data := withSeq(p.body, seq)
		hs, err := tlog.StoredHashes(seq, data, read)
		if err != nil {
			return fmt.Errorf("hash record %d: %w", seq, err)
		}
		base := tlog.StoredHashCount(seq)
		for j, h := range hs {
			idx := base + int64(j)
			fresh[idx] = h
			hashes = append(hashes, store.AuditHash{Index: idx, Hash: h})
		}
		p.seq = seq
		r := p.rec
		recs[i] = &store.AuditRecord{
			Index: seq, Time: r.Time, Event: string(r.Event), Outcome: string(r.Outcome),
			ActorRole: r.Actor.Role, ActorID: r.Actor.ID, Citizen: r.Citizen, Portal: r.Portal,
			KeyID: r.KeyID, RequestID: r.RequestID, Documents: len(r.Documents), Data: data,
		}
	}
	if err := l.st.AppendAudit(ctx, recs, hashes, l.opt.Flush); err != nil {
		return err
	}
	for _, h := range hashes {
		level, _ := tlog.SplitStoredHashIndex(h.Index)
		l.edge[level] = edgeHash{index: h.Index, hash: h.Hash}
	}
	l.sizeMu.Lock()
	l.size = n + int64(len(batch))
	l.sizeMu.Unlock()
	l.m.size.Set(float64(n + int64(len(batch))))
	return nil
}

// hashReader reads committed tree hashes from the store, for proofs and
// tree hashes.
func (l *Log) hashReader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		got, err := l.st.AuditHashes(ctx, idx)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(got))
		for i, h := range got {
			out[i] = h
		}
		return out, nil
	})
}
