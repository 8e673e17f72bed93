package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/verify"
)

// errNotValid is returned, after the report is printed, when the verdict
// is not valid, so the exit code says so.
var errNotValid = errors.New("signature not valid")

func init() {
	var o struct {
		detached, digest, hash, roots, tsaRoots string
		jsonOut, noRevocation                   bool
	}
	register(&command{
		name: "verify",
		args: "FILE",
		summary: "verify a signed PDF, a CAdES signature (with --detached CONTENT or --digest) an XML (XAdES) signature (with --detached CONTENT when detached) or an ASiC container; prints every check " +
			"and exits non-zero unless the verdict is valid. Asks firmad, or verifies here with --roots",
		remote: true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.detached, "detached", "", "the signed content of a detached CAdES or XAdES signature")
			fs.StringVar(&o.digest, "digest", "", "instead of --detached: the content's digest in hex")
			fs.StringVar(&o.hash, "hash", "sha256", "hash of --digest: sha256, sha384 or sha512")
			fs.StringVar(&o.roots, "roots", "", "PEM trust anchors: verify locally instead of asking firmad")
			fs.StringVar(&o.tsaRoots, "tsa-roots", "", "PEM trust anchors of TSAs for local verification (default: --roots)")
			fs.BoolVar(&o.noRevocation, "no-revocation", false, "local verification: do not fetch OCSP or CRLs (revocation is then indeterminate)")
			fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageErr("give exactly one FILE")
			}
			if o.detached != "" && o.digest != "" {
				return usageErr("give at most one of --detached and --digest")
			}
			sig, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			req := &firmav1.VerifyRequest{Signature: sig}
			switch {
			case o.detached != "":
				content, err := os.ReadFile(o.detached)
				if err != nil {
					return err
				}
				req.Signed = &firmav1.VerifyRequest_Content{Content: content}
			case o.digest != "":
				h, ok := hashFlag[o.hash]
				if !ok {
					return usageErr("--hash %q: want sha256, sha384 or sha512", o.hash)
				}
				d, err := hex.DecodeString(strings.TrimSpace(o.digest))
				if err != nil {
					return usageErr("--digest is not hex: %v", err)
				}
				req.Signed = &firmav1.VerifyRequest_Digest{Digest: d}
				req.DigestHash = h.p
			}
			var resp *firmav1.VerifyResponse
			if o.roots != "" {
				resp, err = verifyLocal(ctx, req, o.roots, o.tsaRoots, o.noRevocation)
			} else {
				resp, err = verifyRemote(ctx, e, req)
			}
			if err != nil {
				return err
			}
			if o.jsonOut {
				b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
				if err != nil {
					return err
				}
				// protojson varies its spacing on purpose; indent it stably.
				var out bytes.Buffer
				if err := json.Indent(&out, b, "", "  "); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, out.String())
			} else {
				printReport(e.stdout, args[0], resp)
			}
			if resp.GetVerdict() != firmav1.Verdict_VERDICT_VALID {
				return fmt.Errorf("%w: %s", errNotValid, verdictName(resp.GetVerdict()))
			}
			return nil
		},
	})
}

func verifyRemote(ctx context.Context, e *env, req *firmav1.VerifyRequest) (*firmav1.VerifyResponse, error) {
	conn, err := e.conn.dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cctx, cancel := e.conn.callCtx(ctx)
	defer cancel()
	return firmav1.NewVerifyServiceClient(conn).Verify(cctx, req)
}

// verifyLocal runs the same service in process, so the report is the one
// firmad would give with these roots.
func verifyLocal(ctx context.Context, req *firmav1.VerifyRequest, roots, tsaRoots string, noRevocation bool) (*firmav1.VerifyResponse, error) {
	rp, err := loadPool(roots)
	if err != nil {
		return nil, err
	}
	cfg := verify.Config{Roots: rp}
	if tsaRoots != "" {
		if cfg.TSARoots, err = loadPool(tsaRoots); err != nil {
			return nil, err
		}
	}
	if !noRevocation {
		cfg.Revocation = &verify.Online{}
	}
	v, err := verify.New(cfg)
	if err != nil {
		return nil, err
	}
	return api.NewVerifyService(v, nil).Verify(ctx, req)
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return p, nil
}

func verdictName(v firmav1.Verdict) string {
	return strings.ToUpper(strings.TrimPrefix(v.String(), "VERDICT_"))
}

func printReport(w io.Writer, file string, r *firmav1.VerifyResponse) {
	fmt.Fprintf(w, "%s: %s (%d signature(s))\n", file, verdictName(r.GetVerdict()), len(r.GetSignatures()))
	ts := func(t *timestamppb.Timestamp) string {
		if t == nil {
			return "-"
		}
		return t.AsTime().UTC().Format(time.RFC3339)
	}
	for i, s := range r.GetSignatures() {
		fmt.Fprintf(w, "\nsignature %d: %s", i+1, verdictName(s.GetVerdict()))
		fmt.Fprintf(w, " (%s", strings.TrimSpace(s.GetFormat()+" "+s.GetLevel()))
		if s.GetField() != "" {
			fmt.Fprintf(w, ", field %q", s.GetField())
		}
		fmt.Fprintln(w, ")")
		row := func(k, v string) {
			if v != "" && v != "-" {
				fmt.Fprintf(w, "  %-16s %s\n", k+":", v)
			}
		}
		row("signer", s.GetSigner())
		row("issuer", s.GetIssuer())
		row("serial", s.GetSignerSerial())
		row("digest", s.GetDigestAlgorithm())
		if n := s.GetCountersignatureOf(); n > 0 {
			row("countersigns", fmt.Sprintf("signature %d", n))
		}
		if p := s.GetPolicy(); p != nil {
			row("policy", strings.TrimSpace(p.GetOid()+" "+p.GetName()+" "+p.GetUri()))
		}
		if s.GetSigningTime() != nil {
			row("signing time", ts(s.GetSigningTime())+" (claimed by the signer)")
		}
		if s.GetTimestampTime() != nil {
			row("timestamp", ts(s.GetTimestampTime())+" by "+s.GetTsa())
		}
		row("validated at", ts(s.GetValidationTime()))
		if s.CoversWholeDocument != nil {
			row("covers", map[bool]string{true: "the whole document", false: "an earlier revision; the document was extended after signing"}[s.GetCoversWholeDocument()])
		}
		for _, c := range s.GetChecks() {
			st := strings.ToLower(strings.TrimPrefix(c.GetStatus().String(), "CHECK_STATUS_"))
			fmt.Fprintf(w, "  [%-13s] %-19s %s\n", st, c.GetName(), c.GetReason())
		}
	}
}
