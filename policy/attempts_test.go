package policy_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/policy"
)

func TestAttemptRulesDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   policy.AttemptRules
		want policy.AttemptRules
	}{
		{"zero", policy.AttemptRules{}, policy.AttemptRules{MaxFailures: 3, Window: 15 * time.Minute, Lockout: 15 * time.Minute}},
		{"negative", policy.AttemptRules{MaxFailures: -1, Window: -time.Second, Lockout: -time.Second}, policy.DefaultAttemptRules()},
		{"set", policy.AttemptRules{MaxFailures: 5, Window: time.Hour, Lockout: time.Minute}, policy.AttemptRules{MaxFailures: 5, Window: time.Hour, Lockout: time.Minute}},
	} {
		if got := tc.in.WithDefaults(); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestAttemptRulesFail walks a counter through sequences of wrong codes
// and pauses, checking what each one does.
func TestAttemptRulesFail(t *testing.T) {
	r := policy.AttemptRules{MaxFailures: 3, Window: 10 * time.Minute, Lockout: 20 * time.Minute}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	type step struct {
		after    time.Duration // since t0
		failures int           // counted after the step
		left     int
		locked   bool // this step locked
		refused  bool // refused as locked, not counted
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"three in a row lock", []step{{0, 1, 2, false, false}, {time.Minute, 2, 1, false, false}, {2 * time.Minute, 3, 0, true, false}}},
		{"locked refuses without counting", []step{{0, 1, 2, false, false}, {0, 2, 1, false, false}, {0, 3, 0, true, false},
			{19 * time.Minute, 3, 0, false, true}}},
		{"a lockout that ended gives a new budget", []step{{0, 1, 2, false, false}, {0, 2, 1, false, false}, {0, 3, 0, true, false},
			{20 * time.Minute, 1, 2, false, false}}},
		{"the window rolls from the last failure", []step{{0, 1, 2, false, false}, {9 * time.Minute, 2, 1, false, false},
			{18 * time.Minute, 3, 0, true, false}}},
		{"a quiet window forgets", []step{{0, 1, 2, false, false}, {time.Minute, 2, 1, false, false},
			{11 * time.Minute, 1, 2, false, false}}},
		{"exactly one window later forgets", []step{{0, 1, 2, false, false}, {10 * time.Minute, 1, 2, false, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st policy.AttemptState
			for i, s := range tc.steps {
				now := t0.Add(s.after)
				next, f, ref := r.Fail(st, now)
				if (ref != nil) != s.refused {
					t.Fatalf("step %d: refusal %v, want refused=%t", i, ref, s.refused)
				}
				if f.Failures != s.failures || f.Left != s.left || f.Locked != s.locked {
					t.Fatalf("step %d: %+v, want failures %d left %d locked %t", i, f, s.failures, s.left, s.locked)
				}
				if s.locked && !f.LockedUntil.Equal(now.Add(r.Lockout)) {
					t.Fatalf("step %d: locked until %s, want %s", i, f.LockedUntil, now.Add(r.Lockout))
				}
				if ref != nil && (ref.Rule != policy.RuleAttemptsLocked || ref.Until.IsZero() || !errors.Is(ref, policy.ErrRefused)) {
					t.Fatalf("step %d: refusal %+v", i, ref)
				}
				st = next
			}
		})
	}
}

func TestAttemptRulesCheck(t *testing.T) {
	r := policy.DefaultAttemptRules()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	locked := policy.AttemptState{Failures: 3, LastFailure: t0, LockedUntil: t0.Add(r.Lockout)}
	for _, tc := range []struct {
		name   string
		st     policy.AttemptState
		now    time.Time
		refuse bool
		left   int
	}{
		{"nothing counted", policy.AttemptState{}, t0, false, 3},
		{"two failures", policy.AttemptState{Failures: 2, LastFailure: t0}, t0.Add(time.Minute), false, 1},
		{"two failures, window passed", policy.AttemptState{Failures: 2, LastFailure: t0}, t0.Add(r.Window), false, 3},
		{"locked", locked, t0.Add(time.Minute), true, 0},
		{"locked, last second", locked, t0.Add(r.Lockout - time.Nanosecond), true, 0},
		{"lockout over", locked, t0.Add(r.Lockout), false, 3},
	} {
		ref := r.Check(tc.st, tc.now)
		if (ref != nil) != tc.refuse {
			t.Errorf("%s: refusal %v, want %t", tc.name, ref, tc.refuse)
		}
		if ref != nil {
			// The reason tells people until when, in UTC.
			if want := locked.LockedUntil.UTC().Format("15:04:05"); !strings.Contains(ref.Reason, want) || !ref.Until.Equal(locked.LockedUntil) {
				t.Errorf("%s: reason %q, until %s; want %s", tc.name, ref.Reason, ref.Until, want)
			}
		}
		if got := r.Left(tc.st, tc.now); got != tc.left {
			t.Errorf("%s: left %d, want %d", tc.name, got, tc.left)
		}
	}
}

// memStore is an AttemptStore in memory, one mutex for atomicity; the
// database ones are checked by store/storetest.
type memStore struct {
	mu sync.Mutex
	m  map[string]policy.AttemptState
}

func (s *memStore) Attempts(_ context.Context, scope string) (int, time.Time, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[scope]
	return st.Failures, st.LastFailure, st.LockedUntil, nil
}

func (s *memStore) UpdateAttempts(_ context.Context, scope string, fn func(int, time.Time, time.Time) (int, time.Time, time.Time)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[scope]
	st.Failures, st.LastFailure, st.LockedUntil = fn(st.Failures, st.LastFailure, st.LockedUntil)
	s.m[scope] = st
	return nil
}

func (s *memStore) ResetAttempts(_ context.Context, scope string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, scope)
	return nil
}

func TestAttempts(t *testing.T) {
	ctx := context.Background()
	a := policy.NewAttempts(&memStore{m: map[string]policy.AttemptState{}}, policy.AttemptRules{})
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	alice, bob := policy.OTPScope("12345678Z"), policy.OTPScope("87654321X")
	if alice == policy.RegistrationScope("12345678Z") {
		t.Fatal("the registration scope is the signing channel's")
	}
	for i := 1; i <= 2; i++ {
		f, err := a.Fail(ctx, alice, now)
		if err != nil || f.Failures != i || f.Locked {
			t.Fatalf("failure %d: %+v %v", i, f, err)
		}
	}
	// A right code forgets them.
	if err := a.Succeed(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if left, err := a.Left(ctx, alice, now); err != nil || left != 3 {
		t.Fatalf("after success: %d left, %v", left, err)
	}
	for i := 1; i <= 3; i++ {
		f, err := a.Fail(ctx, alice, now)
		if err != nil || f.Locked != (i == 3) {
			t.Fatalf("failure %d: %+v %v", i, f, err)
		}
	}
	if err := a.Check(ctx, alice, now.Add(time.Minute)); err == nil {
		t.Fatal("a locked scope passed Check")
	} else if r, ok := policy.IsLocked(err); !ok || !r.Until.Equal(now.Add(15*time.Minute)) {
		t.Fatalf("Check: %v", err)
	}
	if _, err := a.Fail(ctx, alice, now.Add(time.Minute)); err == nil {
		t.Fatal("a failure on a locked scope was counted")
	}
	if err := a.Check(ctx, bob, now); err != nil {
		t.Fatalf("another citizen's scope: %v", err)
	}
	if err := a.Check(ctx, alice, now.Add(15*time.Minute)); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
}

// TestAttemptsConcurrent fails one scope from many goroutines: exactly
// MaxFailures are counted, the rest refused.
func TestAttemptsConcurrent(t *testing.T) {
	a := policy.NewAttempts(&memStore{m: map[string]policy.AttemptState{}}, policy.AttemptRules{MaxFailures: 4})
	now := time.Now()
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		counted, refused int
		locks            int
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := a.Fail(context.Background(), "otp:x", now)
			mu.Lock()
			defer mu.Unlock()
			if _, ok := policy.IsLocked(err); ok {
				refused++
			} else if err == nil {
				counted++
				if f.Locked {
					locks++
				}
			} else {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if counted != 4 || refused != 28 || locks != 1 {
		t.Fatalf("counted %d, refused %d, locked %d times; want 4, 28, 1", counted, refused, locks)
	}
}

// TestAttemptsVerify: right, wrong and locked, in sequence.
func TestAttemptsVerify(t *testing.T) {
	ctx := context.Background()
	a := policy.NewAttempts(&memStore{m: map[string]policy.AttemptState{}}, policy.AttemptRules{})
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	right, wrong := func() bool { return true }, func() bool { return false }
	for i, s := range []struct {
		match  func() bool
		err    error // nil, ErrWrongCode or ErrRefused
		left   int
		locked bool
	}{
		{wrong, policy.ErrWrongCode, 2, false},
		{right, nil, 0, false}, // resets
		{wrong, policy.ErrWrongCode, 2, false},
		{wrong, policy.ErrWrongCode, 1, false},
		{wrong, policy.ErrWrongCode, 0, true},
		{right, policy.ErrRefused, 0, false}, // not even compared
	} {
		f, err := a.Verify(ctx, "otp:x", now, s.match)
		if !errors.Is(err, s.err) && !(s.err == nil && err == nil) {
			t.Fatalf("step %d: %v, want %v", i, err, s.err)
		}
		if f.Left != s.left || f.Locked != s.locked {
			t.Fatalf("step %d: %+v", i, f)
		}
	}
}

// TestAttemptsVerifyConcurrent: a burst of wrong guesses at once is
// compared at most MaxFailures times; the rest are refused unchecked, so
// a right guess among them cannot slip in after the budget is spent.
func TestAttemptsVerifyConcurrent(t *testing.T) {
	a := policy.NewAttempts(&memStore{m: map[string]policy.AttemptState{}}, policy.AttemptRules{MaxFailures: 3})
	now := time.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		compares int
		wrongs   int
	)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Verify(context.Background(), "otp:y", now, func() bool {
				mu.Lock()
				compares++
				mu.Unlock()
				return false
			})
			if errors.Is(err, policy.ErrWrongCode) {
				mu.Lock()
				wrongs++
				mu.Unlock()
			} else if _, ok := policy.IsLocked(err); !ok {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if compares != 3 || wrongs != 3 {
		t.Fatalf("%d compares, %d wrong answers; want 3 and 3", compares, wrongs)
	}
}

// TestAttemptRulesDelay walks the password rules: each wrong secret past
// DelayAfter makes the next check wait, twice as long each time up to
// MaxDelay; a secret inside the delay is refused uncounted; the lock at
// MaxFailures lifts by itself.
func TestAttemptRulesDelay(t *testing.T) {
	r := policy.AttemptRules{MaxFailures: 6, Window: time.Hour, Lockout: 15 * time.Minute, Delay: time.Second, MaxDelay: 3 * time.Second, DelayAfter: 1}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var st policy.AttemptState
	now := t0
	for i, step := range []struct {
		wait     time.Duration // before this try
		refused  string        // rule of the refusal, "" if counted
		failures int
	}{
		{0, "", 1},
		{0, "", 2}, // the first is not delayed
		{0, policy.RuleAttemptsDelayed, 2},
		{999 * time.Millisecond, policy.RuleAttemptsDelayed, 2},
		{time.Millisecond, "", 3},                    // 1 s after the second
		{time.Second, policy.RuleAttemptsDelayed, 3}, // 2 s after the third
		{time.Second, "", 4},
		{3 * time.Second, "", 5}, // capped at 3 s, not 4
		{3 * time.Second, "", 6}, // locks
		{3 * time.Second, policy.RuleAttemptsLocked, 6},
	} {
		now = now.Add(step.wait)
		if c := r.Check(st, now); (c != nil) != (step.refused != "") || (c != nil && c.Rule != step.refused) {
			t.Fatalf("step %d: Check %+v, want refusal %q", i, c, step.refused)
		}
		next, _, refusal := r.Fail(st, now)
		switch {
		case step.refused == "" && refusal != nil, step.refused != "" && (refusal == nil || refusal.Rule != step.refused):
			t.Fatalf("step %d: Fail refused %+v, want %q", i, refusal, step.refused)
		case next.Failures != step.failures:
			t.Fatalf("step %d: %d failures, want %d", i, next.Failures, step.failures)
		}
		if refusal != nil && !refusal.Until.After(now) {
			t.Errorf("step %d: refusal until %v, not after now", i, refusal.Until)
		}
		st = next
	}
	if _, locked := r.Locked(st, now.Add(15*time.Minute)); locked {
		t.Fatal("the lock did not lift by itself")
	}
	if c := r.Check(st, now.Add(15*time.Minute)); c != nil {
		t.Fatalf("after the lockout: %+v", c)
	}
	// The SMS-code rules have no delay.
	otp := policy.DefaultAttemptRules()
	st2, _, _ := otp.Fail(policy.AttemptState{}, t0)
	if c := otp.Check(st2, t0); c != nil {
		t.Fatalf("OTP rules delayed: %+v", c)
	}
}
