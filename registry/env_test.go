package registry_test

import (
	"context"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
)

// clock is a settable time source for service-hours and expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var madrid = func() *time.Location {
	l, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		panic(err)
	}
	return l
}()

// wednesday10 is inside video-call hours.
var wednesday10 = time.Date(2026, 11, 25, 10, 0, 0, 0, madrid)

// revocations records what the registry reports to the CA.
type revocations struct {
	mu    sync.Mutex
	calls []string
}

func (r *revocations) RevokeCitizen(ctx context.Context, id, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, id+":"+reason)
	return nil
}

type env struct {
	reg    *registry.Service
	audit  *audit.Log
	db     *sqlite.DB
	clock  *clock
	outbox *sms.Outbox
	rev    *revocations
}

var (
	registrar  = registry.Staff{Name: "ana.registrar", Role: policy.Registrar}
	videoAgent = registry.Staff{Name: "luis.video", Role: policy.VideoAgent}
)

func newEnv(t testing.TB, mod func(*registry.Options)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir()+"/firma.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, clock: &clock{t: wednesday10}, rev: &revocations{}}
	e.outbox, err = sms.NewOutbox(db, sms.OutboxOptions{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// The real audit log on the same store: its checks on records (no
	// personal data, a citizen on citizen events) run in every test.
	e.audit, err = audit.Open(ctx, db, audit.Options{Node: "test", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.audit.Close() })
	opt := registry.Options{SMS: e.outbox, Clock: e.clock.Now, Revoker: e.rev, Audit: e.audit,
		// Cheap parameters: the tests check behaviour, not cost.
		Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1}}
	if mod != nil {
		mod(&opt)
	}
	e.reg, err = registry.New(db, opt)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func person(id string) registry.Person {
	return registry.Person{ID: id, GivenName: "José", Surnames: "Núñez García", Mobile: "612 345 678", Email: "jose@example.es"}
}

var smsCode = regexp.MustCompile(`code is ([0-9A-Z]{4})\.`)

// lastSMSCode reads the code from the newest message in the outbox.
func (e *env) lastSMSCode(t *testing.T, to string) string {
	t.Helper()
	msgs, err := e.outbox.Messages(context.Background(), to, 1)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("no SMS to %s in outbox: %v", to, err)
	}
	m := smsCode.FindStringSubmatch(msgs[0].Text)
	if m == nil {
		t.Fatalf("no code in SMS %q", msgs[0].Text)
	}
	return m[1]
}

var letterCSV = regexp.MustCompile(`\(CSV\): ([0-9A-Z]{16})\n`)

func (e *env) lastLetterCSV(t *testing.T, id string) string {
	t.Helper()
	ls, err := e.reg.Letters(context.Background(), id, 1)
	if err != nil || len(ls) == 0 {
		t.Fatalf("no letter for %s in outbox: %v", id, err)
	}
	m := letterCSV.FindStringSubmatch(ls[0].Body)
	if m == nil {
		t.Fatalf("no CSV in letter %q", ls[0].Body)
	}
	return m[1]
}

func (e *env) citizen(t *testing.T, id string) *store.Citizen {
	t.Helper()
	c, err := e.db.Citizen(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not installed (apt-get install -y poppler-utils openssl): %v", name, err)
	}
}

func registryQuery() store.CitizenQuery { return store.CitizenQuery{Limit: 10} }
