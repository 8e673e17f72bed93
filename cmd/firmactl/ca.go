package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/store"
)

// caSettings is the CA configuration firmad uses too: the ca section of
// firmad.yaml, with base_url defaulting to firmad's HTTP listener. Both
// must agree, since the URLs go into certificates.
func caSettings(e *env, cfg *config.Config) (ca.Config, error) {
	return ca.FromConfig(cfg)
}

// initCA sets up the root and issuing CAs on the token (keeping any that
// exist) and writes their certificates to STATE/ca/, every key made and
// used recorded on the audit log l. 'firmactl init' calls it after the
// key-encryption key; 'firmactl ca init' runs it alone.
func initCA(ctx context.Context, e *env, cfg *config.Config, db store.Store, ks *keystore.HSM, l *audit.Log, state string) error {
	settings, err := caSettings(e, cfg)
	if err != nil {
		return err
	}
	// The URLs go into every certificate: a listener on port 0 (tests)
	// has no address relying parties could use.
	if u, err := url.Parse(settings.BaseURL); err == nil && u.Port() == "0" {
		return fmt.Errorf("ca.base_url %s has port 0: set ca.base_url in %s (or pass --ca-base-url to 'firmactl init')",
			settings.BaseURL, filepath.Join(state, "firmad.yaml"))
	}
	settings.Audit = l
	a, err := ca.New(settings, ks, db, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	return setUpCA(ca.WithActor(ctx, offlineActor()), e, a, state)
}

func setUpCA(ctx context.Context, e *env, a *ca.Authority, state string) error {
	res, err := a.Init(ctx)
	if err != nil {
		return fmt.Errorf("certificate authority: %w", err)
	}
	if len(res.Created) == 0 {
		fmt.Fprintln(e.stdout, "certificate authority already set up; kept as is")
	} else {
		fmt.Fprintf(e.stdout, "certificate authority: created %s\n", strings.Join(res.Created, ", "))
	}
	return writeChain(e, filepath.Join(state, "ca"), res.Root, res.Issuing)
}

func writeChain(e *env, dir string, root, issuing *x509.Certificate) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, c := range []struct {
		name string
		cert *x509.Certificate
	}{{"root.pem", root}, {"issuing.pem", issuing}} {
		if c.cert == nil {
			continue
		}
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		sum := sha256.Sum256(c.cert.Raw)
		fmt.Fprintf(e.stdout, "  %-12s %s\n  %-12s SHA-256 %s\n  %-12s written to %s\n", strings.TrimSuffix(c.name, ".pem"), c.cert.Subject,
			"", strings.ToUpper(hex.EncodeToString(sum[:])), "", p)
	}
	return nil
}

// localCA opens the store, audit log, token and CA of STATE/firmad.yaml,
// for the CA set-up commands that act on the HSM directly rather than
// through firmad: the CA records every key it makes or uses on the log
// (use the ctx of localCA's callers through ca.WithActor(offlineActor())).
func localCA(ctx context.Context, e *env, state string) (*ca.Authority, *config.Config, func(), error) {
	cfg, err := config.LoadPartial(filepath.Join(state, "firmad.yaml"), e.getenv, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if cfg.HSM.SoftHSM2Conf != "" {
		os.Setenv("SOFTHSM2_CONF", cfg.HSM.SoftHSM2Conf)
	}
	db, err := openStore(ctx, e, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	l, closeLog, err := openAudit(ctx, cfg, db)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	ks, err := keystore.Open(ctx, keystore.Config{Module: cfg.HSM.Module, TokenLabel: cfg.HSM.TokenLabel,
		PIN: cfg.HSM.PIN.Reveal(), Sessions: 1, KEKLabel: cfg.HSM.KEKLabel, Mode: keystore.Mode(cfg.HSM.KeyMode)}, db, nil)
	if err != nil {
		closeLog()
		db.Close()
		return nil, nil, nil, fmt.Errorf("open token: %w", err)
	}
	closeAll := func() { ks.Close(); closeLog(); db.Close() }
	settings, err := caSettings(e, cfg)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	settings.Audit = l
	a, err := ca.New(settings, ks, db, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return a, cfg, closeAll, nil
}

// readCert reads one certificate, PEM or DER, from path ("-" for stdin).
func readCert(path string) ([]byte, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block is %q, want CERTIFICATE", path, blk.Type)
		}
		return blk.Bytes, nil
	}
	return b, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644)
}

func init() {
	var state string
	stateFlag := func(fs *flag.FlagSet) {
		fs.StringVar(&state, "state", "var", "state folder made by 'firmactl init'")
	}
	register(&command{
		name:    "ca init",
		summary: "create the root and issuing CAs with keys in the HSM (idempotent; 'firmactl init' does it too)",
		flags:   stateFlag,
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("ca init takes no arguments")
			}
			a, _, done, err := localCA(ctx, e, state)
			if err != nil {
				return err
			}
			if err := setUpCA(ca.WithActor(ctx, offlineActor()), e, a, state); err != nil {
				done()
				return err
			}
			done()
			// The store may be another than init's (PostgreSQL from the
			// environment, docs/scale.md): its checkpoint key too.
			return stateVerifierKey(ctx, e, state)
		},
	})

	var csrOut string
	register(&command{
		name:    "ca issuing-csr",
		summary: "external CA: make the issuing CA key in the HSM and write a CSR for the outside root to sign",
		flags: func(fs *flag.FlagSet) {
			stateFlag(fs)
			fs.StringVar(&csrOut, "out", "issuing.csr", "file to write the PEM CSR to")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			a, _, done, err := localCA(ctx, e, state)
			if err != nil {
				return err
			}
			defer done()
			ctx = ca.WithActor(ctx, offlineActor())
			der, key, err := a.IssuingCSR(ctx)
			if err != nil {
				return err
			}
			if err := writePEM(csrOut, "CERTIFICATE REQUEST", der); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "issuing CA key %s (%s) made in the HSM\nCSR written to %s: have the outside root sign it as a CA\n"+
				"(basicConstraints CA:true, keyUsage keyCertSign+cRLSign), then run 'firmactl ca import-issuing'\n", key.ID, key.Type, csrOut)
			return nil
		},
	})

	var imp struct{ cert, root string }
	register(&command{
		name:    "ca import-issuing",
		summary: "external CA: adopt the issuing CA certificate an outside root issued for the HSM key",
		flags: func(fs *flag.FlagSet) {
			stateFlag(fs)
			fs.StringVar(&imp.cert, "cert", "", "issuing CA certificate, PEM or DER (required)")
			fs.StringVar(&imp.root, "root", "", "the outside root that signed it, PEM or DER (recommended: published and checked)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 || imp.cert == "" {
				return usageErr("--cert is required")
			}
			certDER, err := readCert(imp.cert)
			if err != nil {
				return err
			}
			var rootDER []byte
			if imp.root != "" {
				if rootDER, err = readCert(imp.root); err != nil {
					return err
				}
			}
			a, _, done, err := localCA(ctx, e, state)
			if err != nil {
				return err
			}
			defer done()
			ctx = ca.WithActor(ctx, offlineActor())
			cert, err := a.ImportIssuing(ctx, certDER, rootDER)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "issuing CA %s imported\n", cert.Subject)
			return writeChain(e, filepath.Join(state, "ca"), a.Root(), a.Issuing())
		},
	})

	var chainOut string
	register(&command{
		name:    "ca chain",
		summary: "print (or write) the issuing and root CA certificates as PEM",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&chainOut, "out", "", "write the PEM chain to this file instead of stdout")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			return withCerts(ctx, e, func(ctx context.Context, c firmav1.CertificateServiceClient) error {
				resp, err := c.GetCAChain(ctx, &firmav1.GetCAChainRequest{})
				if err != nil {
					return err
				}
				if chainOut != "" {
					return os.WriteFile(chainOut, []byte(resp.GetPem()), 0o644)
				}
				fmt.Fprint(e.stdout, resp.GetPem())
				return nil
			})
		},
	})

	var list struct {
		citizen, status string
		page            int
	}
	register(&command{
		name:    "certs list",
		summary: "list citizen certificates, all or one citizen's",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&list.citizen, "citizen", "", "only this citizen's (DNI/NIE)")
			fs.StringVar(&list.status, "status", "", "only pending, valid, revoked or expired ones")
			fs.IntVar(&list.page, "page-size", 500, "certificates fetched per call")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			st, ok := certStatusFlag[list.status]
			if !ok {
				return usageErr("--status %q: want pending, valid, revoked or expired", list.status)
			}
			return withCerts(ctx, e, func(ctx context.Context, c firmav1.CertificateServiceClient) error {
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tCITIZEN\tSTATUS\tSERIAL\tNOT AFTER\tREASON")
				token := ""
				for {
					resp, err := c.ListCertificates(ctx, &firmav1.ListCertificatesRequest{CitizenId: list.citizen, Status: st,
						PageSize: int32(list.page), PageToken: token})
					if err != nil {
						return err
					}
					for _, x := range resp.GetCertificates() {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.GetId(), x.GetCitizenId(), certStatusName(x.GetStatus()), dash(x.GetSerial()),
							dash(tsString(x.GetNotAfter().AsTime(), x.GetNotAfter() != nil)), reasonName(x))
					}
					if token = resp.GetNextPageToken(); token == "" {
						break
					}
				}
				return tw.Flush()
			})
		},
	})

	var out string
	outFlag := func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "also write the PEM certificate (or CSR) to this file")
	}
	oneCitizen := func(name, summary string, call func(context.Context, firmav1.CertificateServiceClient, string) (*firmav1.Certificate, error)) {
		register(&command{
			name:    name,
			args:    "DNI",
			summary: summary,
			remote:  true,
			flags:   outFlag,
			run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
				if len(args) != 1 {
					return usageErr("give one DNI/NIE")
				}
				return withCerts(ctx, e, func(ctx context.Context, c firmav1.CertificateServiceClient) error {
					x, err := call(ctx, c, args[0])
					if err != nil {
						return err
					}
					return printCert(e, x, out)
				})
			},
		})
	}
	oneCitizen("certs issue", "issue a signing certificate (new HSM key) to an advanced citizen who has none",
		func(ctx context.Context, c firmav1.CertificateServiceClient, id string) (*firmav1.Certificate, error) {
			r, err := c.IssueCertificate(ctx, &firmav1.IssueCertificateRequest{CitizenId: id})
			return r.GetCertificate(), err
		})
	oneCitizen("certs renew", "give a citizen a new key and certificate; the old one is revoked (superseded) and its key destroyed",
		func(ctx context.Context, c firmav1.CertificateServiceClient, id string) (*firmav1.Certificate, error) {
			r, err := c.RenewCertificate(ctx, &firmav1.RenewCertificateRequest{CitizenId: id})
			return r.GetCertificate(), err
		})
	oneCitizen("certs csr", "external CA: the citizen's certificate request (made with a new HSM key if none is pending)",
		func(ctx context.Context, c firmav1.CertificateServiceClient, id string) (*firmav1.Certificate, error) {
			r, err := c.CreateCSR(ctx, &firmav1.CreateCSRRequest{CitizenId: id})
			return r.GetCertificate(), err
		})

	register(&command{
		name:    "certs show",
		args:    "ID|SERIAL",
		summary: "show one certificate",
		remote:  true,
		flags:   outFlag,
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageErr("give one certificate ID or serial")
			}
			return withCerts(ctx, e, func(ctx context.Context, c firmav1.CertificateServiceClient) error {
				r, err := c.GetCertificate(ctx, &firmav1.GetCertificateRequest{Id: args[0]})
				if err != nil {
					return err
				}
				return printCert(e, r.GetCertificate(), out)
			})
		},
	})

	var rev struct{ reason, citizen string }
	register(&command{
		name:    "certs revoke",
		args:    "[ID|SERIAL]",
		summary: "revoke a certificate (or all of --citizen's) with an RFC 5280 reason; destroys the private key in the HSM",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&rev.reason, "reason", "unspecified", "unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation or privilegeWithdrawn")
			fs.StringVar(&rev.citizen, "citizen", "", "revoke every live certificate of this DNI/NIE instead")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if (len(args) == 1) == (rev.citizen != "") || len(args) > 1 {
				return usageErr("give one certificate ID or serial, or --citizen")
			}
			r, err := ca.ParseReason(rev.reason)
			if err != nil {
				return usageErr("--reason: %v", err)
			}
			reason := firmav1.RevocationReason(r)
			return withCerts(ctx, e, func(ctx context.Context, c firmav1.CertificateServiceClient) error {
				if rev.citizen != "" {
					resp, err := c.RevokeCitizenCertificates(ctx, &firmav1.RevokeCitizenCertificatesRequest{CitizenId: rev.citizen, Reason: reason})
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "%d certificate(s) of %s revoked\n", len(resp.GetCertificates()), rev.citizen)
					for _, x := range resp.GetCertificates() {
						fmt.Fprintf(e.stdout, "  %s serial %s\n", x.GetId(), dash(x.GetSerial()))
					}
					return nil
				}
				resp, err := c.RevokeCertificate(ctx, &firmav1.RevokeCertificateRequest{Id: args[0], Reason: reason})
				if err != nil {
					return err
				}
				x := resp.GetCertificate()
				fmt.Fprintf(e.stdout, "certificate %s (serial %s) of %s revoked: %s; its private key is destroyed\n",
					x.GetId(), dash(x.GetSerial()), x.GetCitizenId(), reasonName(x))
				return nil
			})
		},
	})

	register(&command{
		name:    "certs import",
		args:    "FILE",
		summary: "external CA: import the certificate an outside CA issued for a pending CSR (PEM or DER; - for stdin)",
		remote:  true,
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageErr("give the certificate file")
			}
			der, err := readCert(args[0])
			if err != nil {
				return err
			}
			return withCerts(ctx, e, func(ctx context.Context, c firmav1.CertificateServiceClient) error {
				r, err := c.ImportCertificate(ctx, &firmav1.ImportCertificateRequest{Der: der})
				if err != nil {
					return err
				}
				return printCert(e, r.GetCertificate(), "")
			})
		},
	})
}

func withCerts(ctx context.Context, e *env, fn func(context.Context, firmav1.CertificateServiceClient) error) error {
	conn, err := e.conn.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	cctx, cancel := e.conn.callCtx(ctx)
	defer cancel()
	return fn(cctx, firmav1.NewCertificateServiceClient(conn))
}

var certStatusFlag = map[string]firmav1.CertificateStatus{
	"":        firmav1.CertificateStatus_CERTIFICATE_STATUS_UNSPECIFIED,
	"pending": firmav1.CertificateStatus_CERTIFICATE_STATUS_PENDING,
	"valid":   firmav1.CertificateStatus_CERTIFICATE_STATUS_VALID,
	"revoked": firmav1.CertificateStatus_CERTIFICATE_STATUS_REVOKED,
	"expired": firmav1.CertificateStatus_CERTIFICATE_STATUS_EXPIRED,
}

func certStatusName(s firmav1.CertificateStatus) string {
	for k, v := range certStatusFlag {
		if v == s && k != "" {
			return k
		}
	}
	return "?"
}

func reasonName(x *firmav1.Certificate) string {
	if x.GetStatus() != firmav1.CertificateStatus_CERTIFICATE_STATUS_REVOKED {
		return "-"
	}
	return ca.Reason(x.GetRevocationReason()).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tsString(t interface{ Format(string) string }, ok bool) string {
	if !ok {
		return ""
	}
	return t.Format("2006-01-02 15:04:05Z07:00")
}

func printCert(e *env, x *firmav1.Certificate, out string) error {
	if x == nil {
		return errors.New("no certificate in the answer")
	}
	fmt.Fprintf(e.stdout, "certificate %s\n", x.GetId())
	fmt.Fprintf(e.stdout, "  citizen   %s\n  status    %s\n  key       %s\n", x.GetCitizenId(), certStatusName(x.GetStatus()), x.GetKeyId())
	if x.GetSerial() != "" {
		fmt.Fprintf(e.stdout, "  serial    %s\n  subject   %s\n  valid     %s to %s\n", x.GetSerial(), x.GetSubject(),
			tsString(x.GetNotBefore().AsTime(), true), tsString(x.GetNotAfter().AsTime(), true))
	}
	if x.GetStatus() == firmav1.CertificateStatus_CERTIFICATE_STATUS_REVOKED {
		fmt.Fprintf(e.stdout, "  revoked   %s (%s)\n", tsString(x.GetRevokeTime().AsTime(), true), reasonName(x))
		if x.GetSupersededBy() != "" {
			fmt.Fprintf(e.stdout, "  replaced  by %s\n", x.GetSupersededBy())
		}
	}
	body := x.GetPem()
	if body == "" {
		body = x.GetCsrPem()
	}
	if out != "" && body != "" {
		if err := os.WriteFile(out, []byte(body), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "written to %s\n", out)
	}
	fmt.Fprint(e.stdout, body)
	return nil
}
