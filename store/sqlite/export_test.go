package sqlite

import "time"

// Crash drops the handle as a killed process would: its journal segments
// stay as they are on disk and nothing more moves into the tables.
func (s *DB) Crash() {
	if j := s.journal; j != nil {
		close(j.stop)
		<-j.done
		j.mu.Lock()
		j.f.Close()
		j.f = nil
		j.mu.Unlock()
		s.journal = nil
	}
	s.audit.close()
	s.db.Close()
	if s.lock != nil {
		s.lock.Close()
	}
}

// SetJournal sets the journal's tuning until the returned function runs.
func SetJournal(moveAt int, every time.Duration, segment int64) (restore func()) {
	a, e, g := journalMoveAt, journalMoveEvery, journalSegment
	journalMoveAt, journalMoveEvery, journalSegment = moveAt, every, segment
	return func() { journalMoveAt, journalMoveEvery, journalSegment = a, e, g }
}
