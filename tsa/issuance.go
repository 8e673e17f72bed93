package tsa

import (
	"context"
	"errors"
	"sync"

	"github.com/firma-cloud/firma/store"
)

// maxIssuanceBatch bounds the rows of one commit, so that a burst does
// not hold the database's write lock for long.
const maxIssuanceBatch = 256

// issuanceLog stores issuance rows with group commit: a token's row
// that arrives while a commit is under way waits for the next one,
// which takes every row that arrived meanwhile. Under load one commit
// serves many tokens, so the TSA scales with its clients instead of
// queueing them behind the store's one writer; alone, a row is
// committed at once, as before. Without a batch store it stores rows
// one by one.
type issuanceLog struct {
	st    store.TSAIssuanceStore
	batch store.TSAIssuanceBatchStore // nil: one row per commit

	mu      sync.Mutex
	leading bool // a caller is committing; others queue in pending
	pending []*pendingRow
}

type pendingRow struct {
	row  *store.TSAIssuance
	done chan error
}

func newIssuanceLog(st store.TSAIssuanceStore) *issuanceLog {
	l := &issuanceLog{st: st}
	l.batch, _ = st.(store.TSAIssuanceBatchStore)
	return l
}

// errLead tells a queued caller that the lead is its: the previous
// leader committed one batch and went back to its own request.
var errLead = errors.New("tsa issuance: lead the next commit")

// add stores r; it returns once r is committed, or with the error that
// kept it out of the log. ctx should not be cancelled with the request:
// a row stored must be counted in its interval's summary.
func (l *issuanceLog) add(ctx context.Context, r *store.TSAIssuance) error {
	if l.batch == nil {
		return l.st.AddTSAIssuance(ctx, r)
	}
	p := &pendingRow{row: r, done: make(chan error, 1)}
	l.mu.Lock()
	l.pending = append(l.pending, p)
	if l.leading {
		l.mu.Unlock()
		if err := <-p.done; err != errLead {
			return err
		}
		l.mu.Lock() // handed the lead: p is first in pending
	} else {
		l.leading = true
	}
	// A leader commits one batch, its own row in it, and hands the lead
	// to the first row that arrived meanwhile, so that no caller's reply
	// waits for other callers' commits.
	n := min(len(l.pending), maxIssuanceBatch)
	rows := l.pending[:n:n]
	l.pending = l.pending[n:]
	l.mu.Unlock()
	l.commit(ctx, rows)
	l.mu.Lock()
	if len(l.pending) > 0 {
		l.pending[0].done <- errLead
	} else {
		l.pending, l.leading = nil, false
	}
	l.mu.Unlock()
	return <-p.done
}

// commit stores rows in one transaction and tells each its result. A
// failed batch is tried again row by row, so that one bad row (a serial
// conflict) fails only its own token.
func (l *issuanceLog) commit(ctx context.Context, rows []*pendingRow) {
	if len(rows) == 1 {
		rows[0].done <- l.st.AddTSAIssuance(ctx, rows[0].row)
		return
	}
	rs := make([]*store.TSAIssuance, len(rows))
	for i, p := range rows {
		rs[i] = p.row
	}
	if err := l.batch.AddTSAIssuances(ctx, rs); err == nil {
		for _, p := range rows {
			p.done <- nil
		}
		return
	}
	for _, p := range rows {
		p.done <- l.st.AddTSAIssuance(ctx, p.row)
	}
}
