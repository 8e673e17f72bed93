package sqlite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/firma-cloud/firma/store"
)

// ErrJournalHeld is returned when another handle or process appends to the
// audit log: through its journal, or straight into the tables while a
// journal would be taken.
var ErrJournalHeld = errors.New("audit log has another appender")

// Journal tuning. A variable so that tests can move records sooner.
var (
	// journalMoveAt is how many records wait before the mover is woken;
	// below it they move every journalMoveEvery.
	journalMoveAt = 256
	// journalMoveEvery bounds how long a record stays only in the journal
	// while the log is quiet.
	journalMoveEvery = 20 * time.Millisecond
	// journalMaxPending is how many records may wait to move before
	// appends fail: moves that succeed but cannot keep up must not hold
	// records in memory without bound.
	journalMaxPending = 1 << 16
	// journalSegment is the size at which appends start a new segment
	// file: a segment is deleted once all its records are in the tables.
	journalSegment int64 = 8 << 20
)

// journal is the audit log's write-ahead file: an append is one write of
// one frame (and an fsync with flush), and a mover copies the frames into
// the tables in bulk. Each commit into SQLite costs some 25-40 µs of CPU
// whatever its size (locks, WAL frames, B-tree pages); one write costs a
// few, so a busy service no longer pays a SQLite commit per signature
// (issue 6: audit on at 0.9x of off).
//
// The journal is made of segment files beside the database,
// "<db>-audit-<first index>.journal". A frame is a 4-byte length, the
// CRC-32C of the payload and the payload: the records and hashes of one
// AppendAudit. On start a crashed process's frames that are not yet in the
// tables are moved in; a torn frame at the very end was never
// acknowledged and is cut off; anything else that does not decode stops
// the start.
type journal struct {
	db *DB // segments are named after its file

	mu       sync.Mutex
	f        *os.File // the segment appends go to
	fSize    int64
	closed   []segment // full segments, oldest first, deleted once moved
	base     int64     // records below base are in the tables
	pending  []*store.AuditRecord
	hashes   []store.AuditHash
	hashNext int64 // one past the largest hash index stored or waiting
	flushTo  int64 // records below flushTo were appended with flush
	broken   error // a write that could not be undone: appends fail
	moveErr  error // the last move's error, nil once one succeeds
	movingMu sync.Mutex

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

type segment struct {
	path string
	end  int64 // one past its last record
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// JournalAudit makes this handle the audit log's only appender and sends
// its appends through a journal file, moved into the tables in bulk (see
// journal). It first moves in what a crashed process left in the journal,
// so call it before reading the log's size. Reads through this handle see
// every appended record; other handles and processes see the tables, up to
// journalMoveEvery behind, and cannot append (ErrJournalHeld) until Close.
func (s *DB) JournalAudit(ctx context.Context) error {
	if s.journal != nil {
		return nil
	}
	if err := s.lockAudit(true); err != nil {
		return err
	}
	j := &journal{db: s, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := j.recover(ctx); err != nil {
		s.unlockAudit()
		return fmt.Errorf("audit journal: %w", err)
	}
	s.journal = j
	go j.run()
	return nil
}

// lockAudit takes the audit lock file beside the database: exclusive for
// a journal, shared for appends straight into the tables, so that the two
// never run at once on one database (flock: per open file, so two handles
// in one process exclude each other too).
func (s *DB) lockAudit(exclusive bool) error {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.lock != nil && (s.lockEx || !exclusive) {
		return nil
	}
	f := s.lock
	if f == nil {
		var err error
		if f, err = os.OpenFile(s.path+"-audit.lock", os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			return fmt.Errorf("audit lock: %w", err)
		}
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		if s.lock == nil {
			f.Close()
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("audit lock %s: %w", f.Name(), ErrJournalHeld)
		}
		return fmt.Errorf("audit lock: %w", err)
	}
	s.lock, s.lockEx = f, exclusive
	return nil
}

// unlockAudit lets go of the audit lock, if this handle holds it.
func (s *DB) unlockAudit() {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock, s.lockEx = nil, false
	}
}

func (j *journal) segmentPath(first int64) string {
	return fmt.Sprintf("%s-audit-%020d.journal", j.db.path, first)
}

// segments lists the journal's segment files by first index.
func (j *journal) segments() ([]string, error) {
	dir, base := filepath.Split(j.db.path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	prefix := base + "-audit-"
	for _, e := range entries {
		num, prefixed := strings.CutPrefix(e.Name(), prefix)
		num, suffixed := strings.CutSuffix(num, ".journal")
		if _, err := strconv.ParseInt(num, 10, 64); prefixed && suffixed && err == nil {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out) // fixed-width numbers
	return out, nil
}

// recover moves into the tables the frames a previous appender left, then
// deletes its segments and starts a new one.
func (j *journal) recover(ctx context.Context) error {
	size, err := j.db.tableSize(ctx)
	if err != nil {
		return err
	}
	j.base = size
	if err := j.db.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_hashes").Scan(&j.hashNext); err != nil {
		return err
	}
	paths, err := j.segments()
	if err != nil {
		return err
	}
	for i, p := range paths {
		if err := j.replay(p, i == len(paths)-1); err != nil {
			return err
		}
	}
	j.flushTo = j.base + int64(len(j.pending)) // move them for good before the segments go
	if err := j.move(ctx); err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return j.open(j.base)
}

// replay reads one segment's frames into pending, skipping those already
// in the tables.
func (j *journal) replay(path string, last bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for off := 0; off < len(data); {
		recs, hashes, n, err := decodeFrame(data[off:])
		if err != nil {
			if last && (errors.Is(err, io.ErrUnexpectedEOF) || off+n == len(data)) {
				// A write cut short by the crash: never acknowledged.
				return os.Truncate(path, int64(off))
			}
			return fmt.Errorf("%s at byte %d: %w", filepath.Base(path), off, err)
		}
		off += n
		next := j.base + int64(len(j.pending))
		switch first := recs[0].Index; {
		case first+int64(len(recs)) <= j.base:
			continue // moved before the crash
		case first != next:
			return fmt.Errorf("%s at byte %d: records from %d do not continue the log at %d", filepath.Base(path), off-n, first, next)
		}
		hashNext, err := j.hashesFrom(hashes)
		if err != nil {
			return fmt.Errorf("%s at byte %d: %w", filepath.Base(path), off-n, err)
		}
		j.hashNext = hashNext
		j.pending = append(j.pending, recs...)
		j.hashes = append(j.hashes, hashes...)
	}
	return nil
}

// hashesFrom refuses hashes at an index already stored or waiting, as the
// tables' key would at the move, and returns hashNext past them.
func (j *journal) hashesFrom(hashes []store.AuditHash) (int64, error) {
	next := j.hashNext
	for _, h := range hashes {
		if h.Index < next {
			return 0, fmt.Errorf("audit hash %d stored twice: %w", h.Index, store.ErrConflict)
		}
		next = h.Index + 1
	}
	return next, nil
}

// open starts a new segment for records from first on.
func (j *journal) open(first int64) error {
	f, err := os.OpenFile(j.segmentPath(first), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// The new name must survive a power cut before records do.
	if err := syncDir(filepath.Dir(j.db.path)); err != nil {
		f.Close()
		return err
	}
	j.f, j.fSize = f, 0
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// append writes one frame and queues its records for the mover.
func (j *journal) append(recs []*store.AuditRecord, hashes []store.AuditHash, flush bool) error {
	frame := encodeFrame(recs, hashes)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.broken != nil {
		return fmt.Errorf("append audit: journal: %w", j.broken)
	}
	if j.f == nil {
		return fmt.Errorf("append audit: journal closed")
	}
	if next := j.base + int64(len(j.pending)); recs[0].Index != next {
		return fmt.Errorf("append audit at %d, log size %d: %w", recs[0].Index, next, store.ErrConflict)
	}
	// Fail closed as the tables do: while they refuse records (a broken
	// or full database), so are appends, though the journal could take
	// them; the mover retries every journalMoveEvery.
	if j.moveErr != nil {
		return fmt.Errorf("append audit: the tables refuse records: %w", j.moveErr)
	}
	if len(j.pending) >= journalMaxPending {
		return fmt.Errorf("append audit: %d records wait to move into the tables", len(j.pending))
	}
	hashNext, err := j.hashesFrom(hashes)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	_, err = j.f.Write(frame)
	if err == nil && flush {
		err = j.f.Sync()
	}
	if err != nil {
		// Undo the frame, or a restart would replay a record whose
		// append failed and whose index the next record takes.
		if terr := j.f.Truncate(j.fSize); terr != nil {
			j.broken = fmt.Errorf("cannot undo a failed write: %w", terr)
		}
		return fmt.Errorf("append audit: journal: %w", err)
	}
	j.fSize += int64(len(frame))
	j.hashNext = hashNext
	j.pending = append(j.pending, recs...)
	j.hashes = append(j.hashes, hashes...)
	end := j.base + int64(len(j.pending))
	if flush {
		j.flushTo = end
	}
	if len(j.pending) >= journalMoveAt {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
	if j.fSize >= journalSegment {
		if err := j.rotate(end); err != nil {
			// The frame is written and kept: the next append retries.
			j.broken = fmt.Errorf("start a segment: %w", err)
		}
	}
	return nil
}

// rotate closes the segment and starts the next at index end.
func (j *journal) rotate(end int64) error {
	old := j.f
	if err := old.Close(); err != nil {
		return err
	}
	j.closed = append(j.closed, segment{path: old.Name(), end: end})
	j.f = nil
	return j.open(end)
}

func (j *journal) run() {
	defer close(j.done)
	t := time.NewTicker(journalMoveEvery)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-j.kick:
		case <-t.C:
		}
		// Errors stay in moveErr, refusing appends until a move succeeds;
		// reads return them.
		_ = j.move(context.Background())
	}
}

// move copies every waiting record into the tables in one transaction and
// deletes the segments it emptied.
func (j *journal) move(ctx context.Context) error {
	j.movingMu.Lock()
	defer j.movingMu.Unlock()
	j.mu.Lock()
	recs, hashes, flush := j.pending, j.hashes, j.flushTo > j.base
	j.mu.Unlock()
	if len(recs) == 0 {
		return nil
	}
	err := j.db.appendTables(ctx, recs, hashes, flush)
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil { // not a reader giving up
			j.moveErr = err
		}
		return fmt.Errorf("move audit journal: %w", err)
	}
	j.moveErr = nil
	j.pending = append([]*store.AuditRecord(nil), j.pending[len(recs):]...)
	j.hashes = append([]store.AuditHash(nil), j.hashes[len(hashes):]...)
	j.base += int64(len(recs))
	for len(j.closed) > 0 && j.closed[0].end <= j.base {
		if err := os.Remove(j.closed[0].path); err != nil {
			return fmt.Errorf("move audit journal: %w", err)
		}
		j.closed = j.closed[1:]
	}
	return nil
}

// AuditJournalWaiting returns how many audit records are in the journal
// and not yet in the tables; 0 without a journal.
func (s *DB) AuditJournalWaiting() int {
	j := s.journal
	if j == nil {
		return 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending)
}

// size returns the log size, the records waiting to move included, or
// the error of the last move while moves fail: readiness checks read the
// size, so a journal that cannot empty shows there.
func (j *journal) size() (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.moveErr != nil {
		return 0, fmt.Errorf("audit size: the tables refuse records: %w", j.moveErr)
	}
	return j.base + int64(len(j.pending)), nil
}

// close moves what waits and deletes the journal; if the move fails the
// segments stay for the next start.
func (j *journal) close() error {
	close(j.stop)
	<-j.done
	err := j.move(context.Background())
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		if cerr := j.f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			j.closed = append(j.closed, segment{path: j.f.Name(), end: j.base})
		}
		j.f = nil
	}
	if err == nil && len(j.pending) > 0 {
		err = fmt.Errorf("%d records appended while closing", len(j.pending))
	}
	if err != nil {
		return fmt.Errorf("close audit journal: %w", err)
	}
	for _, s := range j.closed {
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("close audit journal: %w", err)
		}
	}
	j.closed = nil
	return nil
}

// Frames. Written by hand: a dozen fields of known types, and neither
// encoding/gob (a type description per stream, reflection) nor protobuf
// (generated code for a private file format) earns its place here.

const frameHeader = 8 // length, CRC-32C

func encodeFrame(recs []*store.AuditRecord, hashes []store.AuditHash) []byte {
	b := make([]byte, frameHeader, frameHeader+len(recs)*512+len(hashes)*40)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for _, r := range recs {
		b = binary.AppendVarint(b, r.Index)
		b = binary.AppendVarint(b, r.Time.UnixNano())
		for _, s := range []string{r.Event, r.Outcome, r.ActorRole, r.ActorID, r.Citizen, r.Portal, r.KeyID, r.RequestID} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		b = binary.AppendUvarint(b, uint64(r.Documents))
		b = binary.AppendUvarint(b, uint64(len(r.Data)))
		b = append(b, r.Data...)
	}
	b = binary.AppendUvarint(b, uint64(len(hashes)))
	for _, h := range hashes {
		b = binary.AppendVarint(b, h.Index)
		b = append(b, h.Hash[:]...)
	}
	binary.LittleEndian.PutUint32(b[0:], uint32(len(b)-frameHeader))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[frameHeader:], crcTable))
	return b
}

var errFrame = errors.New("bad journal frame")

// decodeFrame decodes the frame at the start of b and returns its length.
// A frame running past b's end is io.ErrUnexpectedEOF; one that fails its
// checksum or does not decode is errFrame, with n its claimed length.
func decodeFrame(b []byte) (recs []*store.AuditRecord, hashes []store.AuditHash, n int, err error) {
	if len(b) < frameHeader {
		return nil, nil, 0, io.ErrUnexpectedEOF
	}
	size := int(binary.LittleEndian.Uint32(b))
	if size > len(b)-frameHeader {
		return nil, nil, 0, io.ErrUnexpectedEOF
	}
	n = frameHeader + size
	body := b[frameHeader:n]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, nil, n, fmt.Errorf("%w: checksum", errFrame)
	}
	r := bytes.NewReader(body)
	var bad bool
	uvar := func() uint64 {
		v, err := binary.ReadUvarint(r)
		bad = bad || err != nil
		return v
	}
	svar := func() int64 {
		v, err := binary.ReadVarint(r)
		bad = bad || err != nil
		return v
	}
	raw := func(n uint64) []byte {
		if n > uint64(r.Len()) {
			bad = true
			return nil
		}
		p := make([]byte, n)
		io.ReadFull(r, p)
		return p
	}
	count := uvar()
	if count == 0 || count > uint64(len(body)) {
		return nil, nil, n, fmt.Errorf("%w: %d records", errFrame, count)
	}
	for i := uint64(0); i < count && !bad; i++ {
		rec := &store.AuditRecord{Index: svar(), Time: time.Unix(0, svar()).UTC()}
		for _, s := range []*string{&rec.Event, &rec.Outcome, &rec.ActorRole, &rec.ActorID, &rec.Citizen, &rec.Portal, &rec.KeyID, &rec.RequestID} {
			*s = string(raw(uvar()))
		}
		rec.Documents = int(uvar())
		rec.Data = raw(uvar())
		if !bad && len(recs) > 0 && rec.Index != recs[len(recs)-1].Index+1 {
			bad = true
		}
		recs = append(recs, rec)
	}
	hcount := uvar()
	for i := uint64(0); i < hcount && !bad; i++ {
		h := store.AuditHash{Index: svar()}
		copy(h.Hash[:], raw(32))
		hashes = append(hashes, h)
	}
	if bad || r.Len() != 0 {
		return nil, nil, n, fmt.Errorf("%w: does not decode", errFrame)
	}
	return recs, hashes, n, nil
}
