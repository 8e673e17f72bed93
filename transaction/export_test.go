package transaction

import "context"

// Scan runs one resume scan, as Run does every second.
func (s *Service) Scan(ctx context.Context) error { return s.scan(ctx) }

// Draining reports whether Stop was called.
func (s *Service) Draining() bool { return s.w.draining.Load() }

// HSMBackoff is hsmBackoff.
var HSMBackoff = hsmBackoff
