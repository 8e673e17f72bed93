package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Missing is the message tests fail with when PostgreSQL is not installed.
const Missing = "PostgreSQL server binaries not found (looked for /usr/lib/postgresql/*/bin/postgres and initdb on PATH): " +
	"`make test` installs them (Debian package postgresql)"

const dirPrefix = "firma-pgtest-"

type server struct {
	dir   string
	port  int
	cmd   *exec.Cmd
	admin *pgx.Conn
	done  chan struct{} // closed when the server process exits
}

var (
	mu     sync.Mutex
	srv    *server
	srvErr error
	nextDB int
)

// New returns the connection string of a new empty database on this test
// binary's server, starting the server on first use. The database is
// dropped when the test ends. New fails the test if PostgreSQL is missing
// or will not start: a store test never passes by skipping.
func New(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if srv == nil && srvErr == nil {
		srv, srvErr = start()
	}
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
	s := srv
	nextDB++
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), nextDB)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+name+" STRATEGY = FILE_COPY"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if srv != s {
			return // Cleanup already stopped the server
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE: a pool the test leaked must not keep the database.
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return s.dsn(name)
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", s.port, db)
}

// Cleanup stops the server and removes its directory. Call it from
// TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if srv == nil {
		return
	}
	srv.stop()
	srv = nil
}

func (s *server) stop() {
	if s.admin != nil {
		s.admin.Close(context.Background())
	}
	if s.cmd != nil && s.cmd.Process != nil {
		// SIGINT is the fast shutdown: open sessions are cut, no checkpoint
		// waits for them.
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// installRoot is where Debian installs server versions side by side.
var installRoot = "/usr/lib/postgresql"

// binDir finds the directory of the newest installed server version.
func binDir() (string, error) {
	matches, _ := filepath.Glob(filepath.Join(installRoot, "*", "bin", "postgres"))
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	for _, m := range matches {
		d := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	return "", errors.New(Missing)
}

func version(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// runAs returns the credentials the server runs with: the postgres user's
// when we are root, since postgres refuses to run as root; nil otherwise.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run the server as (%v): `make test` installs the postgresql package, which creates it", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	base := os.TempDir()
	if cred != nil {
		// The server user must reach the directory: a TMPDIR under
		// /root would not let it.
		base = "/tmp"
	}
	removeStale(base)
	dir, err := os.MkdirTemp(base, dirPrefix)
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, tail(out))
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if cred != nil {
		os.Chown(logPath, int(cred.Uid), int(cred.Gid))
	}
	// Durability is off: the data dies with the test. max_connections
	// covers parallel tests each with a pool, plus two-node tests.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300",
		"-c", "shared_buffers=32MB", "-c", "log_min_messages=warning", "-c", "log_min_error_statement=panic")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Dir = dir
	// The server must not outlive the test binary. The parent-death signal
	// is tied to the thread that forks, so that thread stays locked to the
	// goroutine that waits for the server, for as long as it runs.
	// SIGQUIT is postgres's immediate shutdown.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	s.done = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := s.cmd.Start()
		started <- err
		if err == nil {
			s.cmd.Wait()
		}
		close(s.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.admin, err = pgx.Connect(ctx, s.dsn("postgres"))
		cancel()
		if err == nil {
			break
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres exited: %s", tail(out))
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres did not accept connections within a minute: %v: %s", err, tail(out))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ok = true
	return s, nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeStale deletes the directories of servers whose test binary has
// exited without calling Cleanup (killed, or a panic); the parent-death
// signal has stopped those servers already.
func removeStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

func tail(b []byte) string {
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
