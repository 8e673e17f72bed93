package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store/sqlite"
)

// TestDiskFull puts firmad's SQLite store on a small tmpfs, signs a batch,
// then fills the file system: the portal's requests fail with a problem
// document (never a 500), /readyz fails naming the store, and nothing
// stored is corrupted (PRAGMA integrity_check); once space returns,
// /readyz passes, a batch signs again and the audit log verifies and
// accounts for every signature. It needs root to mount the tmpfs and is
// skipped, saying so, without. Cost: a firmad start and a few seconds.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite")
	}
	s := newFaultState(t)
	disk := filepath.Join(s.dir, "disk")
	if err := os.Mkdir(disk, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("disk full needs a small file system: mounting a tmpfs failed (root is needed): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", disk).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", disk, err, out)
		}
	})
	// firmactl init and demo seed left the database whole (no WAL): move
	// it onto the tmpfs.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(filepath.Join(s.dir, "var", "firma.db"+suffix))
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(disk, "firma.db"+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dbPath := filepath.Join(disk, "firma.db")
	s.patchConfig(t, [2]string{"    path: var/firma.db\n", "    path: " + dbPath + "\n"})

	d := s.run(t)
	s.createPortal(t, d)
	ready(t, d, http.StatusOK, 20*time.Second)
	docs := batch("before", 10)
	id := s.create(t, d, docs, "")
	if code, _, err := s.signIn(t, d, id).approve("http://" + d.http); err != nil || code != http.StatusSeeOther {
		t.Fatalf("approve: %d %v", code, err)
	}
	if st, _ := s.waitFinal(t, d, id, 30*time.Second); st != "done" {
		t.Fatalf("batch before the disk filled ended %s", st)
	}

	filler := filepath.Join(disk, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{0xa5}, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	f.Close()

	// Writes until one fails: the WAL may still have room for a few.
	body := func(i int) string {
		return fmt.Sprintf(`{"subject_id":"%s","ok_url":"%s","error_url":"%s","documents":[{"name":"a.txt","media_type":"text/plain","content":"%s","format":"cades"}]}`,
			faultCitizen, faultOK, faultKO, "ZnVsbA==")
	}
	failed := false
	for i := 0; i < 200 && !failed; i++ {
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.http+"/api/v1/transactions", strings.NewReader(body(i)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", s.apiKey)
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			t.Fatalf("create with the disk full: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			problemShaped(t, "create with the disk full", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			t.Logf("create %d with the disk full: %d %s", i, resp.StatusCode, b)
			failed = true
		}
	}
	if !failed {
		t.Fatal("200 transactions created with the disk full")
	}
	if body := ready(t, d, http.StatusServiceUnavailable, 20*time.Second); !strings.Contains(body, `"store":"fail"`) {
		t.Fatalf("/readyz with the disk full names no failed store check: %s", body)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if body := ready(t, d, http.StatusOK, 20*time.Second); !strings.Contains(body, `"store":"ok"`) {
		t.Fatalf("/readyz once space returned: %s", body)
	}
	docs = batch("after", 10)
	id = s.create(t, d, docs, "")
	if code, _, err := s.signIn(t, d, id).approve("http://" + d.http); err != nil || code != http.StatusSeeOther {
		t.Fatalf("approve once space returned: %d %v", code, err)
	}
	if st, _ := s.waitFinal(t, d, id, 30*time.Second); st != "done" {
		t.Fatalf("batch once space returned ended %s\n%s", st, d.stderr)
	}
	checkSigned(t, s.result(t, d, id), docs, 2)
	key := s.verifierKey(t, d)
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d\n%s", code, d.stderr)
	}
	db, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	var integrity string
	if err := db.SQL().QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q %v", integrity, err)
	}
	db.Close()
	s.checkAuditAt(t, key, dbPath)
}
