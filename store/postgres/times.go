package postgres

import "time"

// Times are stored as Unix nanoseconds, NULL for the zero time, exactly as
// the SQLite store keeps them, so records round-trip identically.

// nanos returns t as Unix nanoseconds, nil (NULL) for the zero time.
func nanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

// fromNanos is the inverse of nanos.
func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// nullString stores "" as NULL.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
