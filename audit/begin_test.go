package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/audit"
)

// appendAsync appends rec in the background and reports the result.
func appendAsync(l *audit.Log, rec *audit.Record) <-chan error {
	done := make(chan error, 1)
	go func() { done <- l.Append(context.Background(), rec) }()
	return done
}

// A record appended while more operations are under way (Begin) than
// records wait is held so that theirs share its commit; the wait ends when
// they append, and at MaxWait for those that never do.
func TestBeginSharesCommit(t *testing.T) {
	db, _ := openDB(t)
	reg := prometheus.NewRegistry()
	l, err := audit.Open(context.Background(), db, audit.Options{Node: "n", MaxWait: time.Minute, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	ends := []func(){l.Begin(), l.Begin(), l.Begin()}
	ends[0]()
	ends[0]() // a second call does nothing
	first := appendAsync(l, sample(0))
	select {
	case err := <-first:
		t.Fatalf("committed while two operations were under way: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// The second record makes the batch as large as what is still under
	// way (one operation): it commits, with both records.
	ends[1]()
	second := appendAsync(l, sample(1))
	for _, c := range []<-chan error{first, second} {
		select {
		case err := <-c:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("append not committed")
		}
	}
	if n := histogramCount(t, reg, "firma_audit_batch_records"); n != 1 {
		t.Errorf("%d commits, want 1 for both records", n)
	}
	ends[2]()
	// Nothing under way: committed at once.
	if err := l.Append(context.Background(), sample(2)); err != nil {
		t.Fatal(err)
	}
	if l.Size() != 3 {
		t.Errorf("size %d, want 3", l.Size())
	}
}

// An operation that began and never ended holds a commit no longer than
// MaxWait; a negative MaxWait never holds one.
func TestBeginBoundedByMaxWait(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxWait  time.Duration
		atLeast  time.Duration
		moreThan bool
	}{
		{"held up to MaxWait", 300 * time.Millisecond, 300 * time.Millisecond, true},
		{"never held", -1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openDB(t)
			l, err := audit.Open(context.Background(), db, audit.Options{Node: "n", MaxWait: tc.maxWait})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			l.Begin()
			l.Begin() // two under way, never ended
			start := time.Now()
			select {
			case err := <-appendAsync(l, sample(0)):
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("append held beyond MaxWait")
			}
			if took := time.Since(start); tc.moreThan && took < tc.atLeast {
				t.Errorf("committed after %v, before MaxWait %v with operations under way", took, tc.atLeast)
			}
		})
	}
}
