package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/backend"
	"github.com/firma-cloud/firma/tsa"
)

// auditListFlag is a flag that may be given more than once.
type auditListFlag []string

func (l *auditListFlag) String() string { return strings.Join(*l, ",") }
func (l *auditListFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func init() {
	var ver struct {
		keys     auditListFlag
		keyFile  string
		trusted  auditListFlag
		tsaRoots string
		db       string
		issuance string
		signed   bool
		quiet    bool
	}
	register(&command{
		name:    "audit verify",
		args:    "EXPORT",
		summary: "check an audit export offline (or the database, --db): checkpoint signatures and every record; names the first bad one",
		flags: func(fs *flag.FlagSet) {
			ver.keys, ver.trusted = nil, nil
			fs.Var(&ver.keys, "key", "checkpoint verifier key (name+hash+base64), as 'audit checkpoint' prints it; repeatable (env FIRMA_AUDIT_KEY)")
			fs.StringVar(&ver.keyFile, "key-file", "", "file of verifier keys, one per line")
			fs.Var(&ver.trusted, "trusted", "a signed checkpoint kept elsewhere (file saved by 'audit checkpoint'); repeatable. Catches a log cut back together with its checkpoints")
			fs.StringVar(&ver.tsaRoots, "tsa-roots", "", "PEM roots of the TSA: also check every checkpoint's RFC 3161 timestamp")
			fs.StringVar(&ver.db, "db", "", "verify this database (SQLite file or postgres:// URL) directly instead of an export (also checks the query columns and the TSA's interval summaries against its issuance log)")
			fs.StringVar(&ver.issuance, "issuance-db", "", "with an EXPORT: check the built-in TSA's interval summaries against the issuance log in this database (SQLite file or postgres:// URL)")
			fs.BoolVar(&ver.signed, "signed", false, "with --db: also check that every signed document of a transaction has exactly one key.used record and every key activation is completed or resumed")
			fs.BoolVar(&ver.quiet, "q", false, "print nothing when the log verifies")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if (ver.db == "") != (len(args) == 1) || len(args) > 1 {
				return usageErr("want one EXPORT file (- for standard input), or --db")
			}
			if ver.issuance != "" && ver.db != "" {
				return usageErr("--issuance-db goes with an EXPORT; --db checks its own issuance log")
			}
			if ver.signed && ver.db == "" {
				return usageErr("--signed reads the transactions: it needs --db")
			}
			keys := append([]string(nil), ver.keys...)
			if k := e.getenv("FIRMA_AUDIT_KEY"); k != "" && len(keys) == 0 {
				keys = append(keys, k)
			}
			if ver.keyFile != "" {
				b, err := os.ReadFile(ver.keyFile)
				if err != nil {
					return fmt.Errorf("key file: %w", err)
				}
				for _, l := range strings.Split(string(b), "\n") {
					if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
						keys = append(keys, l)
					}
				}
			}
			if len(keys) == 0 && ver.db != "" && !strings.Contains(ver.db, "://") {
				// The key 'firmactl init' wrote beside the database, so
				// that 'audit verify --db var/firma.db' needs nothing else.
				if b, err := os.ReadFile(filepath.Join(filepath.Dir(ver.db), "verifier.key")); err == nil {
					if k := strings.TrimSpace(string(b)); k != "" {
						keys = append(keys, k)
					}
				}
			}
			if len(keys) == 0 {
				return usageErr("give the checkpoint verifier key with --key or --key-file (with --db, DIR/verifier.key beside the database is read if present)")
			}
			v, err := audit.NewNoteVerifiers(keys...)
			if err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			var trusted [][]byte
			for _, f := range ver.trusted {
				b, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("trusted checkpoint: %w", err)
				}
				trusted = append(trusted, b)
			}
			opt := audit.VerifyOptions{Keys: v, Trusted: trusted}
			if ver.tsaRoots != "" {
				b, err := os.ReadFile(ver.tsaRoots)
				if err != nil {
					return fmt.Errorf("tsa roots: %w", err)
				}
				roots := x509.NewCertPool()
				if !roots.AppendCertsFromPEM(b) {
					return usageErr("--tsa-roots %s holds no PEM certificate", ver.tsaRoots)
				}
				opt.CheckTimestamp = func(token []byte, h crypto.Hash, digest []byte) (time.Time, error) {
					t, err := tsa.VerifyToken(token, tsa.VerifyOptions{Roots: roots, Hash: h, Digest: digest})
					if err != nil {
						return time.Time{}, err
					}
					return t.Time, nil
				}
			}
			var rep *audit.Report
			if ver.db != "" {
				var signed *audit.SignedReport
				err = auditWithDB(ctx, ver.db, func(db store.Store) error {
					opt.Issuance = db
					if ver.signed {
						signed, err = audit.CheckSigned(ctx, db, opt)
						if signed != nil {
							rep = signed.Log
						}
						return err
					}
					rep, err = audit.VerifyStoreWith(ctx, db, opt)
					return err
				})
				if err == nil && signed != nil {
					if !ver.quiet || signed.Err() != nil {
						printAuditReport(e.stdout, rep)
						printSignedReport(e.stdout, signed)
					}
					return signed.Err()
				}
			} else {
				r, closeIn, oerr := auditOpenIn(args[0])
				if oerr != nil {
					return oerr
				}
				defer closeIn()
				if ver.issuance != "" {
					err = auditWithDB(ctx, ver.issuance, func(db store.Store) error {
						opt.Issuance = db
						rep, err = audit.VerifyExportContext(ctx, r, opt)
						return err
					})
				} else {
					rep, err = audit.VerifyExportContext(ctx, r, opt)
				}
			}
			if err != nil {
				return err
			}
			if !ver.quiet {
				printAuditReport(e.stdout, rep)
			}
			return nil
		},
	})

	var exp struct{ out, db string }
	register(&command{
		name:    "audit export",
		summary: "export the audit log as JSON lines (checkpoints and records), after firmad signs a fresh checkpoint",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&exp.out, "out", "-", "file to write (- for standard output)")
			fs.StringVar(&exp.db, "db", "", "read this database (SQLite file or postgres:// URL) directly instead of asking firmad (no new checkpoint)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			w, done, err := auditCreateOut(e, exp.out)
			if err != nil {
				return err
			}
			if exp.db != "" {
				err = auditWithDB(ctx, exp.db, func(db store.Store) error { return audit.ExportStore(ctx, db, w) })
			} else {
				err = auditExportRemote(ctx, e, w)
			}
			return done(err)
		},
	})

	var q struct {
		citizen, key, portal, from, to, db, page string
		events                                   auditListFlag
		limit                                    int
		json                                     bool
	}
	register(&command{
		name:    "audit query",
		summary: "list audit records by citizen, key, portal, event type and time range, one page at a time",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			q.events = nil
			fs.StringVar(&q.citizen, "citizen", "", "only records about this citizen")
			fs.StringVar(&q.key, "key", "", "only records about this key id")
			fs.StringVar(&q.portal, "portal", "", "only records about this portal")
			fs.Var(&q.events, "event", "only this event type (e.g. key.used, otp.failed); repeatable")
			fs.StringVar(&q.from, "from", "", "from this time (RFC 3339 or YYYY-MM-DD), inclusive")
			fs.StringVar(&q.to, "to", "", "until this time (RFC 3339 or YYYY-MM-DD), exclusive")
			fs.IntVar(&q.limit, "limit", 100, "page size, 1 to 1000")
			fs.StringVar(&q.page, "page", "", "page token printed at the end of the previous page")
			fs.BoolVar(&q.json, "json", false, "print each record as its canonical JSON")
			fs.StringVar(&q.db, "db", "", "read this database (SQLite file or postgres:// URL) directly instead of asking firmad")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			from, err := auditTimeFlag("from", q.from)
			if err != nil {
				return err
			}
			to, err := auditTimeFlag("to", q.to)
			if err != nil {
				return err
			}
			if q.limit < 1 || q.limit > audit.MaxPage {
				return usageErr("--limit must be 1 to %d", audit.MaxPage)
			}
			var recs []*audit.Record
			var next string
			if q.db != "" {
				f := audit.Filter{Citizen: q.citizen, KeyID: q.key, Portal: q.portal, From: from, To: to, Limit: q.limit}
				for _, ev := range q.events {
					f.Events = append(f.Events, audit.Event(ev))
				}
				if q.page != "" {
					if _, err := fmt.Sscan(q.page, &f.Cursor); err != nil {
						return usageErr("--page %q is not a page token", q.page)
					}
				}
				err = auditWithDB(ctx, q.db, func(db store.Store) error {
					p, err := audit.Query(ctx, db, f)
					if err != nil {
						return err
					}
					recs = p.Records
					if p.Next != 0 {
						next = fmt.Sprint(p.Next)
					}
					return nil
				})
			} else {
				req := &firmav1.QueryAuditRequest{Citizen: q.citizen, KeyId: q.key, Portal: q.portal, Events: q.events,
					From: auditPBTime(from), To: auditPBTime(to), PageToken: q.page, PageSize: int32(q.limit)}
				err = auditRemote(ctx, e, func(ctx context.Context, c firmav1.AuditServiceClient) error {
					resp, err := c.QueryAudit(ctx, req)
					if err != nil {
						return err
					}
					for _, r := range resp.GetRecords() {
						rec, err := audit.ParseRecord(r.GetLeaf())
						if err != nil {
							return fmt.Errorf("record %d from firmad: %w", r.GetSeq(), err)
						}
						recs = append(recs, rec)
					}
					next = resp.GetNextPageToken()
					return nil
				})
			}
			if err != nil {
				return err
			}
			return printAuditRecords(e.stdout, recs, next, q.json)
		},
	})

	var rep struct{ citizen, portal, from, to, db string }
	register(&command{
		name:    "audit report",
		summary: "summarise key use (signatures, failures, documents, first and last use) per citizen, portal and key",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&rep.citizen, "citizen", "", "report on this citizen only")
			fs.StringVar(&rep.portal, "portal", "", "report on this portal only")
			fs.StringVar(&rep.from, "from", "", "from this time (RFC 3339 or YYYY-MM-DD), inclusive")
			fs.StringVar(&rep.to, "to", "", "until this time (RFC 3339 or YYYY-MM-DD), exclusive")
			fs.StringVar(&rep.db, "db", "", "read this database (SQLite file or postgres:// URL) directly instead of asking firmad")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			from, err := auditTimeFlag("from", rep.from)
			if err != nil {
				return err
			}
			to, err := auditTimeFlag("to", rep.to)
			if err != nil {
				return err
			}
			var us []*audit.Usage
			if rep.db != "" {
				err = auditWithDB(ctx, rep.db, func(db store.Store) error {
					us, err = audit.KeyUsage(ctx, db, rep.citizen, rep.portal, from, to)
					return err
				})
			} else {
				err = auditRemote(ctx, e, func(ctx context.Context, c firmav1.AuditServiceClient) error {
					resp, err := c.KeyUsageReport(ctx, &firmav1.KeyUsageReportRequest{Citizen: rep.citizen, Portal: rep.portal, From: auditPBTime(from), To: auditPBTime(to)})
					if err != nil {
						return err
					}
					for _, u := range resp.GetUsage() {
						us = append(us, &audit.Usage{Citizen: u.GetCitizen(), Portal: u.GetPortal(), KeyID: u.GetKeyId(),
							Signatures: u.GetSignatures(), Failures: u.GetFailures(), Documents: u.GetDocuments(),
							First: u.GetFirst().AsTime(), Last: u.GetLast().AsTime()})
					}
					return nil
				})
			}
			if err != nil {
				return err
			}
			return printAuditUsage(e.stdout, us)
		},
	})

	var cp struct{ out string }
	register(&command{
		name:    "audit checkpoint",
		summary: "fetch the latest signed audit checkpoint (signing one if the log grew) to keep it outside the service",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&cp.out, "out", "", "write the signed checkpoint to this file, for 'audit verify --trusted'")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			return auditRemote(ctx, e, func(ctx context.Context, c firmav1.AuditServiceClient) error {
				resp, err := c.GetCheckpoint(ctx, &firmav1.GetCheckpointRequest{})
				if err != nil {
					return err
				}
				// Check what came back with the key it came with; the
				// auditor still compares that key with the published one.
				v, err := audit.NewNoteVerifiers(resp.GetVerifierKey())
				if err != nil {
					return fmt.Errorf("verifier key from firmad: %w", err)
				}
				chk, err := audit.OpenCheckpoint([]byte(resp.GetNote()), v)
				if err != nil {
					return fmt.Errorf("checkpoint from firmad: %w", err)
				}
				if cp.out != "" {
					if err := os.WriteFile(cp.out, []byte(resp.GetNote()), 0o644); err != nil {
						return fmt.Errorf("write checkpoint: %w", err)
					}
				}
				fmt.Fprintf(e.stdout, "checkpoint of %s: %d records, root %s\n", chk.Origin, chk.Size, chk.Root)
				fmt.Fprintf(e.stdout, "verifier key: %s\n", resp.GetVerifierKey())
				if len(resp.GetTimestamp()) > 0 {
					fmt.Fprintf(e.stdout, "RFC 3161 timestamp: %d bytes\n", len(resp.GetTimestamp()))
				}
				if cp.out != "" {
					fmt.Fprintf(e.stdout, "written to %s\n", cp.out)
				} else {
					fmt.Fprint(e.stdout, "\n", resp.GetNote())
				}
				return nil
			})
		},
	})
}

func auditOpenIn(name string) (io.Reader, func(), error) {
	if name == "-" {
		return bufio.NewReader(os.Stdin), func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("open export: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// auditCreateOut opens the output; done closes it and, on error, removes a
// partial file so nobody mistakes it for a whole export.
func auditCreateOut(e *env, name string) (io.Writer, func(error) error, error) {
	if name == "-" || name == "" {
		return e.stdout, func(err error) error { return err }, nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", name, err)
	}
	return f, func(err error) error {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(name)
			return err
		}
		fmt.Fprintf(e.stderr, "audit export written to %s\n", name)
		return nil
	}, nil
}

// auditWithDB opens the store --db names: a postgres:// URL (the password
// from PGPASSWORD or PGPASSFILE, never the command line) or a SQLite file,
// which must exist.
func auditWithDB(ctx context.Context, source string, fn func(store.Store) error) error {
	driver := backend.SQLite
	if strings.HasPrefix(source, "postgres://") || strings.HasPrefix(source, "postgresql://") {
		driver = backend.Postgres
		if config.DSNHasPassword(source) {
			return usageErr("--db: put the password in PGPASSWORD or PGPASSFILE, not on the command line")
		}
	} else if _, err := os.Stat(source); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	db, err := backend.Open(ctx, driver, source)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

func auditRemote(ctx context.Context, e *env, fn func(context.Context, firmav1.AuditServiceClient) error) error {
	conn, err := e.conn.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	cctx, cancel := e.conn.callCtx(ctx)
	defer cancel()
	return fn(cctx, firmav1.NewAuditServiceClient(conn))
}

func auditExportRemote(ctx context.Context, e *env, w io.Writer) error {
	conn, err := e.conn.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	// An export streams the whole log: no per-call deadline beyond ctx.
	stream, err := firmav1.NewAuditServiceClient(conn).ExportAudit(ctx, &firmav1.ExportAuditRequest{})
	if err != nil {
		return err
	}
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(c.GetData()); err != nil {
			return fmt.Errorf("write export: %w", err)
		}
	}
}

func auditTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageErr("--%s %q: want RFC 3339 (2026-11-25T09:00:00Z) or a date (2026-11-25)", name, v)
}

func auditPBTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func printAuditReport(w io.Writer, r *audit.Report) {
	fmt.Fprintf(w, "audit export verified: %d records of log %s\n", r.Records, r.Origin)
	fmt.Fprintf(w, "tree size %d, root %s\n", r.Size, r.Root)
	fmt.Fprintf(w, "%d checkpoints verified (%d trusted, %d with an RFC 3161 timestamp)\n", r.Checkpoints, r.Trusted, r.Timestamped)
	if !r.LastTimestamp.IsZero() {
		fmt.Fprintf(w, "timestamps verified; latest %s\n", r.LastTimestamp.UTC().Format(time.RFC3339))
	}
	if r.Unsigned > 0 {
		fmt.Fprintf(w, "note: %d newer records were not yet under a checkpoint and are not in this export\n", r.Unsigned)
	}
	if r.Activations > 0 || r.KeyChanges > 0 {
		fmt.Fprintf(w, "%d key activations (decisions to use a key) and %d key changes asked; %d without a result\n",
			r.Activations, r.KeyChanges, len(r.Unfinished))
	}
	for _, a := range r.Unfinished {
		fmt.Fprintf(w, "decided, not completed: record %d (%s), key %s, %s at %s: no result followed (a crash or fault between the decision and its result)\n",
			a.Index, a.Event, a.KeyID, a.ID, a.Time.UTC().Format(time.RFC3339))
		if a.IssuanceRows >= 0 {
			fmt.Fprintf(w, "  a TSA audit interval with no summary: the issuance log holds %d tokens issued under it\n", a.IssuanceRows)
		}
	}
	if r.Unannounced > 0 {
		fmt.Fprintf(w, "warning: %d results name a decision the log does not hold before them\n", r.Unannounced)
	}
	if r.TSASummaries > 0 {
		checked := "not checked against the issuance log (give --db or --issuance-db)"
		if r.TSAChecked == r.TSASummaries {
			checked = "each matches the issuance log (count, serial range, root)"
		}
		fmt.Fprintf(w, "%d TSA interval summaries, %d tokens: %s\n", r.TSASummaries, r.TSATokens, checked)
	}
}

func printSignedReport(w io.Writer, r *audit.SignedReport) {
	fmt.Fprintf(w, "%d signed documents checked against their key.used records; %d activations resumed after an interruption, %d signatures made again after one\n",
		r.Signed, r.Resumed, r.Resigned)
	if r.Discarded > 0 {
		fmt.Fprintf(w, "note: %d recorded signatures of documents not stored as signed (withheld or lost)\n", r.Discarded)
	}
	if r.Interrupted > 0 {
		fmt.Fprintf(w, "note: %d service-key activations without a result (nothing released)\n", r.Interrupted)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
}

func printAuditRecords(w io.Writer, recs []*audit.Record, next string, asJSON bool) error {
	if asJSON {
		for _, r := range recs {
			leaf, err := r.Leaf()
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\n", leaf)
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tEVENT\tOUTCOME\tACTOR\tCITIZEN\tPORTAL\tKEY\tDOCS")
		for _, r := range recs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s:%s\t%s\t%s\t%s\t%d\n", r.Seq, r.Time.Format(time.RFC3339), r.Event, r.Outcome,
				r.Actor.Role, r.Actor.ID, auditDash(r.Citizen), auditDash(r.Portal), auditDash(r.KeyID), len(r.Documents))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if next != "" {
		fmt.Fprintf(w, "# more: --page %s\n", next)
	}
	return nil
}

func printAuditUsage(w io.Writer, us []*audit.Usage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CITIZEN\tPORTAL\tKEY\tSIGNATURES\tFAILURES\tDOCUMENTS\tFIRST\tLAST")
	var sig, fail, docs int64
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", auditDash(u.Citizen), auditDash(u.Portal), auditDash(u.KeyID), u.Signatures, u.Failures,
			u.Documents, u.First.Format(time.RFC3339), u.Last.Format(time.RFC3339))
		sig, fail, docs = sig+u.Signatures, fail+u.Failures, docs+u.Documents
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%d\t%d\t\t\n", sig, fail, docs)
	return tw.Flush()
}

func auditDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
