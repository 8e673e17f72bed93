package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/store/sqlite"
)

// TestPingWriteLocked holds the write lock from a second handle, as another
// process would: SELECT 1 still answers, the write check fails within its
// one-second wait, and passes again once the lock is gone. Cost: about 1 s.
func TestPingWriteLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "firma.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := db.PingWrite(ctx); err != nil {
		t.Fatalf("write check on a free database: %v", err)
	}
	tx, err := other.SQL().BeginTx(ctx, nil) // BEGIN IMMEDIATE: _txlock=immediate
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("ping with the database locked: %v (reads still work in WAL mode)", err)
	}
	if err := db.PingWrite(ctx); err == nil {
		t.Fatal("write check passed with another handle holding the write lock")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := db.PingWrite(ctx); err != nil {
		t.Fatalf("write check after the lock went: %v", err)
	}
}

// TestPingWriteDiskFull fills a small tmpfs holding the database: taking
// the write lock still works, the write check must fail all the same
// (ErrDiskFull), and pass once the space is back. It needs root to mount
// the tmpfs and says so when skipped.
func TestPingWriteDiskFull(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mounting a tmpfs failed (root is needed): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	db, err := sqlite.Open(ctx, filepath.Join(dir, "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingWrite(ctx); err != nil {
		t.Fatalf("write check with room: %v", err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := bytes.Repeat([]byte{1}, 64<<10); ; {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	if err := db.PingWrite(ctx); !errors.Is(err, sqlite.ErrDiskFull) {
		t.Fatalf("write check with the disk full: %v, want ErrDiskFull", err)
	}
	os.Remove(filler)
	if err := db.PingWrite(ctx); err != nil {
		t.Fatalf("write check once space is back: %v", err)
	}
}
