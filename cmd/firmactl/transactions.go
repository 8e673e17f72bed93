package main

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	// Registers the transactions: section, so that firmad.yaml files that
	// set it load here too.
	_ "github.com/firma-cloud/firma/transaction"
)

// portalFlags say which portal a transactions command acts as.
type portalFlags struct {
	keyFile string
}

func (p *portalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.keyFile, "api-key-file", "", "file with the portal's API key (or env FIRMA_PORTAL_API_KEY)")
}

// txClient dials firmad and returns a context carrying the portal's key.
func (p *portalFlags) txClient(ctx context.Context, e *env) (firmav1.TransactionServiceClient, context.Context, func(), error) {
	key := e.getenv("FIRMA_PORTAL_API_KEY")
	if p.keyFile != "" {
		b, err := os.ReadFile(p.keyFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("api key: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return nil, nil, nil, fmt.Errorf("%w: give --api-key-file or FIRMA_PORTAL_API_KEY", errUsage)
	}
	conn, err := e.conn.dial()
	if err != nil {
		return nil, nil, nil, err
	}
	return firmav1.NewTransactionServiceClient(conn), metadata.AppendToOutgoingContext(ctx, api.PortalAPIKeyMetadata, key),
		func() { conn.Close() }, nil
}

var formatNames = map[string]firmav1.SignatureFormat{
	"": firmav1.SignatureFormat_SIGNATURE_FORMAT_UNSPECIFIED, "raw": firmav1.SignatureFormat_SIGNATURE_FORMAT_RAW,
	"cades": firmav1.SignatureFormat_SIGNATURE_FORMAT_CADES, "pades": firmav1.SignatureFormat_SIGNATURE_FORMAT_PADES,
}

// documentArg parses --doc FILE or --digest sha256:HEX:NAME.
func documentArg(spec string, isDigest bool, format string) (*firmav1.TransactionDocument, error) {
	f, ok := formatNames[format]
	if !ok {
		return nil, fmt.Errorf("%w: --format %q: want raw, cades or pades", errUsage, format)
	}
	if isDigest {
		parts := strings.SplitN(spec, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("%w: --digest %q: want HASH:HEX:NAME, e.g. sha256:9f86...:contrato.pdf", errUsage, spec)
		}
		d, err := hex.DecodeString(parts[1])
		if err != nil {
			return nil, fmt.Errorf("%w: --digest %q: the digest is not hex", errUsage, spec)
		}
		return &firmav1.TransactionDocument{Name: parts[2], Hash: parts[0], Digest: d, Format: f}, nil
	}
	b, err := os.ReadFile(spec)
	if err != nil {
		return nil, err
	}
	mt := mime.TypeByExtension(filepath.Ext(spec))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	return &firmav1.TransactionDocument{Name: filepath.Base(spec), MediaType: mt, Content: b, Format: f}, nil
}

func printState(w io.Writer, s *firmav1.TransactionState) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "transaction\t%s\n", s.GetTransactionId())
	fmt.Fprintf(tw, "citizen\t%s\n", s.GetSubjectId())
	fmt.Fprintf(tw, "state\t%s\n", s.GetState())
	if s.GetSummary() != "" {
		fmt.Fprintf(tw, "summary\t%s\n", s.GetSummary())
	}
	if s.GetErrorCode() != "" {
		fmt.Fprintf(tw, "error\t%s: %s\n", s.GetErrorCode(), s.GetErrorMessage())
	}
	fmt.Fprintf(tw, "expires\t%s\n", s.GetExpiresAt().AsTime().Format(time.RFC3339))
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tNAME\tFORMAT\tSTATUS\tERROR")
	for _, d := range s.GetDocuments() {
		f := strings.ToLower(strings.TrimPrefix(d.GetFormat().String(), "SIGNATURE_FORMAT_"))
		errText := ""
		if d.GetErrorCode() != "" {
			errText = d.GetErrorCode() + ": " + d.GetError()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.GetIndex(), d.GetName(), f, d.GetStatus(), errText)
	}
	tw.Flush()
}

func txRef(args []string) (*firmav1.TransactionRef, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("%w: give the transaction id", errUsage)
	}
	return &firmav1.TransactionRef{TransactionId: args[0]}, nil
}

func init() {
	var c struct {
		portal               portalFlags
		subject, ok, ko, lvl string
		format, idem         string
		docs, digests        repeated
		stop                 bool
	}
	register(&command{
		name:    "transactions create",
		summary: "ask a citizen to sign documents, as a portal (FIRe createBatch); prints the URL to send the citizen to",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			c.portal.register(fs)
			fs.StringVar(&c.subject, "subject", "", "citizen DNI/NIE (required)")
			fs.Var(&c.docs, "doc", "file to sign; repeat for a batch")
			fs.Var(&c.digests, "digest", "digest to sign instead of a file, HASH:HEX:NAME; repeatable")
			fs.StringVar(&c.format, "format", "", "raw, cades or pades (default: pades for PDFs, cades otherwise)")
			fs.StringVar(&c.ok, "ok-url", "", "where the citizen returns after signing (on the portal's allow-list)")
			fs.StringVar(&c.ko, "error-url", "", "where the citizen returns otherwise (on the allow-list)")
			fs.BoolVar(&c.stop, "stop-on-error", false, "stop at the first document that fails")
			fs.StringVar(&c.lvl, "level", "", "B-B, B-T, B-LT or B-LTA (default B-T when a TSA is configured)")
			fs.StringVar(&c.idem, "idempotency-key", "", "makes a retry return the first transaction")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			req := &firmav1.CreateBatchRequest{SubjectId: c.subject, OkUrl: c.ok, ErrorUrl: c.ko, StopOnError: c.stop, Level: c.lvl,
				IdempotencyKey: c.idem}
			for _, d := range c.docs {
				doc, err := documentArg(d, false, c.format)
				if err != nil {
					return err
				}
				req.Documents = append(req.Documents, doc)
			}
			for _, d := range c.digests {
				doc, err := documentArg(d, true, c.format)
				if err != nil {
					return err
				}
				req.Documents = append(req.Documents, doc)
			}
			client, pctx, done, err := c.portal.txClient(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			cctx, cancel := e.conn.callCtx(pctx)
			defer cancel()
			r, err := client.CreateBatch(cctx, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "transaction\t%s\nstate\t%s\nexpires\t%s\nsend the citizen to\t%s\n", r.GetTransactionId(), r.GetState(),
				r.GetExpiresAt().AsTime().Format(time.RFC3339), r.GetRedirectUrl())
			return nil
		},
	})
	var st portalFlags
	register(&command{
		name:    "transactions status",
		args:    "ID",
		summary: "show a transaction's state and each document's, as its portal (FIRe recoverBatchState)",
		remote:  true,
		flags:   st.register,
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			ref, err := txRef(args)
			if err != nil {
				return err
			}
			client, pctx, done, err := st.txClient(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			cctx, cancel := e.conn.callCtx(pctx)
			defer cancel()
			s, err := client.RecoverBatchState(cctx, ref)
			if err != nil {
				return err
			}
			printState(e.stdout, s)
			return nil
		},
	})
	var res struct {
		portal portalFlags
		out    string
	}
	register(&command{
		name:    "transactions results",
		args:    "ID",
		summary: "save each signed document and the signer chain, as the portal (FIRe recoverBatchResult)",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			res.portal.register(fs)
			fs.StringVar(&res.out, "out", ".", "folder to write the results to")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			ref, err := txRef(args)
			if err != nil {
				return err
			}
			client, pctx, done, err := res.portal.txClient(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			cctx, cancel := e.conn.callCtx(pctx)
			defer cancel()
			r, err := client.RecoverBatchResult(cctx, ref)
			if err != nil {
				return err
			}
			printState(e.stdout, r.GetTransaction())
			if err := os.MkdirAll(res.out, 0o700); err != nil {
				return err
			}
			ext := map[firmav1.SignatureFormat]string{firmav1.SignatureFormat_SIGNATURE_FORMAT_RAW: ".sig",
				firmav1.SignatureFormat_SIGNATURE_FORMAT_CADES: ".p7s", firmav1.SignatureFormat_SIGNATURE_FORMAT_PADES: ".signed.pdf"}
			for _, d := range r.GetDocuments() {
				if len(d.GetSignature()) == 0 {
					continue
				}
				name := fmt.Sprintf("%d-%s%s", d.GetDocument().GetIndex(), safeName(d.GetDocument().GetName()), ext[d.GetDocument().GetFormat()])
				p := filepath.Join(res.out, name)
				if err := os.WriteFile(p, d.GetSignature(), 0o600); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "wrote %s\n", p)
			}
			if len(r.GetCertificateChain()) > 0 {
				var pemOut []byte
				for _, c := range r.GetCertificateChain() {
					pemOut = append(pemOut, pemCert(c)...)
				}
				p := filepath.Join(res.out, "chain.pem")
				if err := os.WriteFile(p, pemOut, 0o600); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "wrote %s\n", p)
			}
			return nil
		},
	})
	var ls struct {
		portal portalFlags
		state  string
	}
	register(&command{
		name:    "transactions list",
		summary: "list the portal's transactions, as the portal",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			ls.portal.register(fs)
			fs.StringVar(&ls.state, "in-state", "", "only transactions in this state (created, otp_sent, done, failed, ...)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			client, pctx, done, err := ls.portal.txClient(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TRANSACTION	CITIZEN	STATE	SUMMARY	ERROR	CREATED")
			token := ""
			for {
				cctx, cancel := e.conn.callCtx(pctx)
				r, err := client.ListTransactions(cctx, &firmav1.ListTransactionsRequest{State: ls.state, PageToken: token, PageSize: 500})
				cancel()
				if err != nil {
					return err
				}
				for _, t := range r.GetTransactions() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.GetTransactionId(), t.GetSubjectId(), t.GetState(), t.GetSummary(),
						t.GetErrorCode(), t.GetCreatedAt().AsTime().Format(time.RFC3339))
				}
				if token = r.GetNextPageToken(); token == "" {
					break
				}
			}
			return tw.Flush()
		},
	})
	var cn portalFlags
	register(&command{
		name:    "transactions cancel",
		args:    "ID",
		summary: "cancel a transaction the citizen has not approved, as its portal",
		remote:  true,
		flags:   cn.register,
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			ref, err := txRef(args)
			if err != nil {
				return err
			}
			client, pctx, done, err := cn.txClient(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			cctx, cancel := e.conn.callCtx(pctx)
			defer cancel()
			s, err := client.CancelTransaction(cctx, ref)
			if err != nil {
				return err
			}
			printState(e.stdout, s)
			return nil
		},
	})
}

// safeName keeps a document name usable as a file name.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < 0x20 {
			return '_'
		}
		return r
	}, filepath.Base(s))
	if s == "." || s == ".." || s == "" {
		return "document"
	}
	return s
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
