package tsa

import (
	"context"
	"fmt"
	"math/big"
	"sync"

	"github.com/firma-cloud/firma/store"
)

// SerialSource hands out token serial numbers: unique for the TSA, ever.
type SerialSource interface {
	Next(ctx context.Context) (*big.Int, error)
}

// Sequence is a SerialSource backed by a store sequence. With a block of 1
// every number is committed to the database before it is used, so serials
// increase across every node sharing the database. A larger block reserves
// that many numbers per database write: each node's serials still increase
// and are never reused (a restart skips the rest of its block), but tokens
// from different nodes interleave out of order.
type Sequence struct {
	st    store.TSAStore
	name  string
	block int64

	mu        sync.Mutex
	next, end int64 // numbers next..end-1 are reserved and unused
}

var _ SerialSource = (*Sequence)(nil)

// NewSequence returns a SerialSource drawing from the named store sequence,
// block numbers per database write (values below 1 mean 1).
func NewSequence(st store.TSAStore, name string, block int) *Sequence {
	if block < 1 {
		block = 1
	}
	return &Sequence{st: st, name: name, block: int64(block)}
}

// Next returns the next serial number.
func (s *Sequence) Next(ctx context.Context) (*big.Int, error) {
	if s.block == 1 {
		// Nothing is held in memory, so concurrent requests need not
		// queue behind one another's database write.
		n, err := s.st.AllocTSASerials(ctx, s.name, 1)
		if err != nil {
			return nil, fmt.Errorf("tsa serial: %w", err)
		}
		return big.NewInt(n), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == s.end {
		first, err := s.st.AllocTSASerials(ctx, s.name, s.block)
		if err != nil {
			return nil, fmt.Errorf("tsa serial: %w", err)
		}
		s.next, s.end = first, first+s.block
	}
	n := s.next
	s.next++
	return big.NewInt(n), nil
}
