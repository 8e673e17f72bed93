package registry

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/store"
)

// ImportColumns are the columns of a bulk-import CSV file, in any order,
// named on its first line. level and fiscal_address are optional; level,
// when given, must be the one method grants.
var ImportColumns = []string{"id", "given_name", "surnames", "mobile", "email", "method", "level", "fiscal_address"}

// ErrHeader is wrapped when the CSV file's header line is unusable: the
// whole import is refused, since no row can be read without it.
var ErrHeader = errors.New("bad CSV header line")

// RowError is a bad row of a bulk import.
type RowError struct {
	Line int // 1-based line in the file
	Err  error
}

func (e RowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// ImportReport is the outcome of a bulk import.
type ImportReport struct {
	Rows     int // data rows read
	Created  int
	Existing []RowError // already registered: left untouched
	Bad      []RowError // invalid: skipped
}

// ImportOptions configures Import.
type ImportOptions struct {
	BatchSize int // rows per transaction; 0: 1000
	// Progress is called after each batch with the data rows done so far.
	Progress func(done int)
}

// Import registers citizens from a CSV file (an existing registry being
// migrated), committing them in batches. Bad rows are reported by line
// and skipped; good ones are kept. Imported citizens get no activation
// code: a registrar reissues one when they first come.
func (r *Service) Import(ctx context.Context, in io.Reader, opt ImportOptions) (*ImportReport, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 1000
	}
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("import: %w: %w", ErrHeader, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range ImportColumns {
			known = known || c == h
		}
		if !known {
			return nil, fmt.Errorf("import: %w: unknown column %q (known: %s)", ErrHeader, h, strings.Join(ImportColumns, ", "))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("import: %w: column %q twice", ErrHeader, h)
		}
		col[h] = i
	}
	for _, c := range []string{"id", "given_name", "surnames", "mobile", "email", "method"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("import: %w: missing column %q", ErrHeader, c)
		}
	}

	rep := &ImportReport{}
	seen := map[string]int{} // id -> line, to catch duplicates inside the file
	var (
		batch   []*store.Citizen
		records []*store.FiscalRecord
		lines   []int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		created, err := r.st.ImportCitizens(ctx, batch, records)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		n := 0
		for i, ok := range created {
			if ok {
				n++
			} else {
				rep.Existing = append(rep.Existing, RowError{Line: lines[i], Err: fmt.Errorf("%s is already registered", batch[i].ID)})
			}
		}
		rep.Created += n
		r.m.imported.WithLabelValues("created").Add(float64(n))
		batch, records, lines = batch[:0], records[:0], lines[:0]
		if opt.Progress != nil {
			opt.Progress(rep.Rows)
		}
		return nil
	}
	now := r.now().UTC()
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			rep.Rows++
			rep.Bad = append(rep.Bad, RowError{Line: pe.StartLine, Err: pe.Err})
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("import: %w", err)
		}
		// Only valid after a successful Read: it panics on a failed one.
		line, _ := cr.FieldPos(0)
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Rows++
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		c, fr, err := importRow(get, now)
		if err == nil {
			if first, dup := seen[c.ID]; dup {
				err = fmt.Errorf("id: %s repeats line %d", c.ID, first)
			}
		}
		if err != nil {
			rep.Bad = append(rep.Bad, RowError{Line: line, Err: err})
			continue
		}
		seen[c.ID] = line
		batch, lines = append(batch, c), append(lines, line)
		if fr != nil {
			records = append(records, fr)
		}
		if len(batch) >= opt.BatchSize {
			if err := flush(); err != nil {
				return rep, err
			}
		}
	}
	if err := flush(); err != nil {
		return rep, err
	}
	if opt.Progress != nil {
		opt.Progress(rep.Rows)
	}
	r.m.imported.WithLabelValues("existing").Add(float64(len(rep.Existing)))
	r.m.imported.WithLabelValues("bad").Add(float64(len(rep.Bad)))
	r.log.InfoContext(ctx, "citizens imported", "rows", rep.Rows, "created", rep.Created, "existing", len(rep.Existing), "bad", len(rep.Bad))
	return rep, nil
}

func importRow(get func(string) string, now time.Time) (*store.Citizen, *store.FiscalRecord, error) {
	p, err := Person{ID: get("id"), GivenName: get("given_name"), Surnames: get("surnames"),
		Mobile: get("mobile"), Email: get("email")}.normalize()
	if err != nil {
		return nil, nil, err
	}
	m, err := policy.ParseMethod(get("method"))
	if err != nil {
		return nil, nil, fieldErr("method", "%v", err)
	}
	level := m.Grants()
	if l := get("level"); l != "" && l != string(level) {
		return nil, nil, fieldErr("level", "%q does not match method %s, which gives %s", l, m, level)
	}
	c := &store.Citizen{ID: p.ID, GivenName: p.GivenName, Surnames: p.Surnames, Mobile: p.Mobile, Email: p.Email,
		Level: string(level), Method: string(m), Status: StatusActive, CreatedAt: now, UpdatedAt: now, LevelAt: now}
	var fr *store.FiscalRecord
	if addr := get("fiscal_address"); addr != "" {
		if fr, err = normalizeFiscal(p.ID, p.GivenName, p.Surnames, addr); err != nil {
			return nil, nil, err
		}
		fr.UpdatedAt = now
	}
	return c, fr, nil
}
