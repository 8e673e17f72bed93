package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/store/sqlite"
)

// A backup is a folder holding everything in the state folder 'firmactl
// init' made — the configuration, the SoftHSM2 token directory and its
// softhsm2.conf, the user and SO PINs, the operator token, the audit
// pseudonym key, the OTP key, the verifier key, the CA certificates — and
// a consistent copy of the SQLite database taken with VACUUM INTO (a read
// transaction, so firmad may keep running), never a file copy of a live
// database. The database is copied first and the token after it: a key
// made in between is then in the token and unknown to the database
// (harmless), never known to the database and missing from the token.
// MANIFEST lists the SHA-256 of every file, and restore checks them.

const (
	manifestName = "MANIFEST"
	// manifestState names the absolute state folder the backup was taken
	// from, so restore can move softhsm2.conf's token directory with it.
	manifestState = "# state "
)

func init() {
	var b struct{ state, out string }
	register(&command{
		name:    "backup",
		summary: "copy the state folder to a new folder: the SQLite database by an online snapshot (VACUUM INTO), the rest by file, with a MANIFEST of SHA-256s",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&b.state, "state", "var", "state folder made by 'firmactl init'")
			fs.StringVar(&b.out, "out", "", "new folder to write the backup to (required; must not exist)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 || b.out == "" {
				return usageErr("give --out DIR and no arguments")
			}
			return runBackup(ctx, e, b.state, b.out)
		},
	})
	var r struct{ state, from string }
	register(&command{
		name:    "restore",
		summary: "make a state folder from a backup, checking every file against its MANIFEST; the state folder must not exist",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&r.state, "state", "var", "state folder to create")
			fs.StringVar(&r.from, "from", "", "backup folder written by 'firmactl backup' (required)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 || r.from == "" {
				return usageErr("give --from DIR and no arguments")
			}
			return runRestore(e, r.from, r.state)
		},
	})
}

func runBackup(ctx context.Context, e *env, state, out string) error {
	cfg := config.Default()
	if err := cfg.LoadFilePartial(filepath.Join(state, "firmad.yaml")); err != nil {
		return fmt.Errorf("state %s: %w", state, err)
	}
	if cfg.Store.Driver == config.DriverPostgres {
		return errors.New("the store is PostgreSQL: back it up with pg_dump (docs/operations.md); this command copies SQLite states")
	}
	absState, err := filepath.Abs(state)
	if err != nil {
		return err
	}
	dbPath, err := filepath.Abs(cfg.Store.Path)
	if err != nil {
		return err
	}
	dbRel, err := filepath.Rel(absState, dbPath)
	if err != nil || strings.HasPrefix(dbRel, "..") {
		return fmt.Errorf("store.path %s is outside the state folder %s", cfg.Store.Path, state)
	}
	if absOut, err := filepath.Abs(out); err != nil {
		return err
	} else if r, err := filepath.Rel(absState, absOut); err == nil && !strings.HasPrefix(r, "..") {
		return usageErr("--out %s is inside the state folder: the backup would copy itself", out)
	}
	if err := os.Mkdir(out, 0o700); err != nil {
		return fmt.Errorf("backup folder: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(out)
		}
	}()

	// The database first (see above).
	db, err := sqlite.Open(ctx, cfg.Store.Path)
	if err != nil {
		return fmt.Errorf("open %s: %w", cfg.Store.Path, err)
	}
	if auditSettings(cfg).Journal {
		// A stopped firmad may have left acknowledged audit records in
		// the journal: moved into the tables now so the snapshot holds
		// them. A running one holds the journal and moves them itself
		// within milliseconds; the snapshot has what the tables had.
		if err := db.JournalAudit(ctx); errors.Is(err, sqlite.ErrJournalHeld) {
			fmt.Fprintln(e.stdout, "firmad is running: the snapshot holds the audit records its journal had moved into the tables")
		} else if err != nil {
			db.Close()
			return fmt.Errorf("audit journal: %w", err)
		}
	}
	dst := filepath.Join(out, dbRel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		db.Close()
		return err
	}
	_, err = db.SQL().ExecContext(ctx, "VACUUM INTO ?", dst)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot of %s: %w", cfg.Store.Path, err)
	}
	if err := os.Chmod(dst, 0o600); err != nil {
		return err
	}
	dbBase := filepath.Base(dbPath)
	sums := map[string]string{}
	if sums[filepath.ToSlash(dbRel)], err = fileSHA256(dst); err != nil {
		return err
	}

	err = filepath.WalkDir(absState, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(absState, p)
		if rel == "." {
			return nil
		}
		name := d.Name()
		// The live database and everything SQLite and the audit journal
		// keep beside it are in the snapshot; lock files are not state.
		if (filepath.Dir(p) == filepath.Dir(dbPath) && (name == dbBase || strings.HasPrefix(name, dbBase+"-"))) ||
			strings.HasSuffix(name, ".lock") {
			return nil
		}
		target := filepath.Join(out, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode().IsRegular():
			if err := copyFile(p, target, info.Mode().Perm()); err != nil {
				return err
			}
			sums[filepath.ToSlash(rel)], err = fileSHA256(target)
			return err
		default:
			fmt.Fprintf(e.stderr, "skipped %s: not a regular file\n", p)
			return nil
		}
	})
	if err != nil {
		return fmt.Errorf("copy state: %w", err)
	}
	if err := writeManifest(filepath.Join(out, manifestName), absState, sums); err != nil {
		return err
	}
	for _, f := range outsideState(cfg, absState) {
		fmt.Fprintf(e.stdout, "not in the backup, outside %s: %s (back it up too)\n", state, f)
	}
	done = true
	fmt.Fprintf(e.stdout, "backed up %s to %s: %d files, database by online snapshot\n", state, out, len(sums))
	return nil
}

// outsideState lists the files the configuration names outside the state
// folder, which a copy of the folder does not hold.
func outsideState(cfg *config.Config, absState string) []string {
	var files []string
	add := func(f string) {
		if f == "" {
			return
		}
		a, err := filepath.Abs(f)
		if err != nil {
			return
		}
		if r, err := filepath.Rel(absState, a); err != nil || strings.HasPrefix(r, "..") {
			files = append(files, f)
		}
	}
	add(cfg.HSM.PINFile)
	add(cfg.HSM.SoftHSM2Conf)
	add(cfg.TLS.Cert)
	add(cfg.TLS.Key)
	add(cfg.TLS.ClientCA)
	add(auditSettings(cfg).PseudonymKeyFile)
	if cfg.HSM.SoftHSM2Conf != "" {
		add(softHSMTokenDir(cfg.HSM.SoftHSM2Conf))
	}
	return files
}

// softHSMTokenDir reads directories.tokendir from a softhsm2.conf.
func softHSMTokenDir(conf string) string {
	f, err := os.Open(conf)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "directories.tokendir" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func runRestore(e *env, from, state string) error {
	origin, sums, err := readManifest(filepath.Join(from, manifestName))
	if err != nil {
		return err
	}
	if _, err := os.Lstat(state); err == nil {
		return fmt.Errorf("%s exists: restore makes a new state folder (move the old one away first)", state)
	}
	// Every file is checked before anything is written.
	names := make([]string, 0, len(sums))
	for rel, want := range sums {
		got, err := fileSHA256(filepath.Join(from, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if got != want {
			return fmt.Errorf("backup: %s does not match its MANIFEST SHA-256", rel)
		}
		names = append(names, rel)
	}
	sort.Strings(names)
	absState, err := filepath.Abs(state)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	for _, rel := range names {
		src := filepath.Join(from, filepath.FromSlash(rel))
		dst := filepath.Join(state, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		if err := copyFile(src, dst, fi.Mode().Perm()); err != nil {
			return err
		}
	}
	// softhsm2.conf names its token directory by absolute path: moved
	// with the state when it was inside it.
	if conf := filepath.Join(state, "softhsm", "softhsm2.conf"); origin != "" && origin != absState {
		if b, err := os.ReadFile(conf); err == nil {
			moved := strings.ReplaceAll(string(b), "= "+origin+string(filepath.Separator), "= "+absState+string(filepath.Separator))
			if err := os.WriteFile(conf, []byte(moved), 0o600); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(e.stdout, "restored %d files to %s; start firmad, then check: firmactl audit verify --db %s --signed\n",
		len(names), state, filepath.Join(state, "firma.db"))
	return nil
}

func writeManifest(path, absState string, sums map[string]string) error {
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# firmactl backup: SHA-256 and path of every file, as sha256sum prints them\n")
	b.WriteString(manifestState + absState + "\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func readManifest(path string) (origin string, sums map[string]string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("backup: %w", err)
	}
	sums = map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(line, manifestState); ok {
			origin = s
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, rel, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || rel == "" || strings.Contains(rel, "..") || filepath.IsAbs(rel) {
			return "", nil, fmt.Errorf("backup: bad MANIFEST line %q", line)
		}
		sums[rel] = sum
	}
	if len(sums) == 0 {
		return "", nil, errors.New("backup: MANIFEST lists no files")
	}
	return origin, sums, nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
