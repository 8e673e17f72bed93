package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/firma-cloud/firma/api/firmav1"
)

// repeated is a flag that may be given many times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

func portalClient(e *env) (firmav1.PortalServiceClient, func(), error) {
	conn, err := e.conn.dial()
	if err != nil {
		return nil, nil, err
	}
	return firmav1.NewPortalServiceClient(conn), func() { conn.Close() }, nil
}

func printPortal(w io.Writer, p *firmav1.Portal) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id (app_id)\t%s\n", p.GetId())
	fmt.Fprintf(tw, "name\t%s\n", p.GetName())
	fmt.Fprintf(tw, "status\t%s\n", p.GetStatus())
	for i, u := range p.GetRedirectUrls() {
		label := ""
		if i == 0 {
			label = "redirect urls"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, u)
	}
	fmt.Fprintf(tw, "api key\t%t\n", p.GetHasApiKey())
	if p.GetCertSha256() != "" {
		fmt.Fprintf(tw, "client cert sha256\t%s\n", p.GetCertSha256())
	}
	fmt.Fprintf(tw, "limits\t%s documents, %s bytes each, %s transactions/min\n", orDefault(int64(p.GetMaxDocuments())),
		orDefault(p.GetMaxDocumentBytes()), orDefault(int64(p.GetRatePerMinute())))
	if p.GetCallbackUrl() != "" {
		fmt.Fprintf(tw, "callback url\t%s\n", p.GetCallbackUrl())
	}
	fmt.Fprintf(tw, "created\t%s\n", p.GetCreatedAt().AsTime().Format(time.RFC3339))
	tw.Flush()
}

func orDefault(n int64) string {
	if n == 0 {
		return "default"
	}
	return fmt.Sprint(n)
}

// portalSpecFlags are the flags of portals create and update.
type portalSpecFlags struct {
	name, cert, callback string
	redirects            repeated
	apiKey               bool
	maxDocs, rate        int
	maxBytes             int64
}

func (p *portalSpecFlags) register(fs *flag.FlagSet, create bool) {
	fs.StringVar(&p.name, "name", "", "portal name shown to citizens (required)")
	fs.Var(&p.redirects, "redirect", "URL the portal may send citizens back to; repeat for each (exact match)")
	fs.StringVar(&p.cert, "cert-sha256", "", "hex SHA-256 of the portal's mTLS client certificate (DER)")
	if create {
		fs.BoolVar(&p.apiKey, "api-key", true, "issue an API key (shown once)")
	}
	fs.IntVar(&p.maxDocs, "max-documents", 0, "documents per transaction (0: default 50)")
	fs.Int64Var(&p.maxBytes, "max-document-bytes", 0, "bytes per document (0: default 8 MiB)")
	fs.IntVar(&p.rate, "rate", 0, "transactions per minute (0: default 120)")
	fs.StringVar(&p.callback, "callback-url", "", "URL to POST signed completion notices to")
}

func (p *portalSpecFlags) spec() *firmav1.PortalSpec {
	return &firmav1.PortalSpec{Name: p.name, RedirectUrls: p.redirects, CertSha256: p.cert, ApiKey: p.apiKey,
		MaxDocuments: int32(p.maxDocs), MaxDocumentBytes: p.maxBytes, RatePerMinute: int32(p.rate), CallbackUrl: p.callback}
}

func oneID(args []string) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("%w: give the portal id", errUsage)
	}
	return args[0], nil
}

// showKey prints a key shown once, or writes it to out (a new 0600 file)
// so that it never passes through the terminal.
func showKey(e *env, what, key, out, hint string) error {
	if key == "" {
		return nil
	}
	if hint != "" {
		hint = "; " + hint
	}
	if out == "" {
		fmt.Fprintf(e.stdout, "%s\t%s (shown only now%s)\n", what, key, hint)
		return nil
	}
	if err := writeNewSecret(out, key); err != nil {
		return fmt.Errorf("%s not saved, rotate it: %w", what, err)
	}
	fmt.Fprintf(e.stdout, "%s\twritten to %s (mode 0600%s)\n", what, out, hint)
	return nil
}

// freshFiles refuses output files that exist, before a key is made.
func freshFiles(paths ...string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s exists: not overwritten", errUsage, p)
		}
	}
	return nil
}

func init() {
	var create portalSpecFlags
	var createOut struct{ api, callback string }
	register(&command{
		name:    "portals create",
		summary: "register a portal; prints its app id, API key and callback key (shown once)",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			create.register(fs, true)
			fs.StringVar(&createOut.api, "out", "", "write the API key to this new file (mode 0600, never overwritten) instead of printing it")
			fs.StringVar(&createOut.callback, "callback-key-out", "", "write the callback key to this new file (mode 0600) instead of printing it")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if create.name == "" || len(create.redirects) == 0 {
				return fmt.Errorf("%w: --name and at least one --redirect are required", errUsage)
			}
			// Checked before the portal is made: its keys are shown once.
			if err := freshFiles(createOut.api, createOut.callback); err != nil {
				return err
			}
			c, done, err := portalClient(e)
			if err != nil {
				return err
			}
			defer done()
			cctx, cancel := e.conn.callCtx(ctx)
			defer cancel()
			r, err := c.CreatePortal(cctx, &firmav1.CreatePortalRequest{Spec: create.spec()})
			if err != nil {
				return err
			}
			printPortal(e.stdout, r.GetPortal())
			if err := showKey(e, "api key", r.GetApiKey(), createOut.api, "send it as X-API-Key"); err != nil {
				return err
			}
			return showKey(e, "callback key", r.GetCallbackKey(), createOut.callback, "hex HMAC-SHA256 key")
		},
	})
	var update portalSpecFlags
	register(&command{
		name:    "portals update",
		args:    "ID",
		summary: "replace a portal's name, redirect URLs, certificate, limits and callback URL (keys stay)",
		remote:  true,
		flags:   func(fs *flag.FlagSet) { update.register(fs, false) },
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			id, err := oneID(args)
			if err != nil {
				return err
			}
			c, done, err := portalClient(e)
			if err != nil {
				return err
			}
			defer done()
			cctx, cancel := e.conn.callCtx(ctx)
			defer cancel()
			r, err := c.UpdatePortal(cctx, &firmav1.UpdatePortalRequest{Id: id, Spec: update.spec()})
			if err != nil {
				return err
			}
			printPortal(e.stdout, r.GetPortal())
			if r.GetCallbackKey() != "" {
				fmt.Fprintf(e.stdout, "callback key\t%s (hex HMAC-SHA256 key; shown only now)\n", r.GetCallbackKey())
			}
			return nil
		},
	})
	register(&command{
		name:    "portals list",
		summary: "list registered portals",
		remote:  true,
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			c, done, err := portalClient(e)
			if err != nil {
				return err
			}
			defer done()
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "APP ID\tNAME\tSTATUS\tAPI KEY\tMTLS\tCALLBACK")
			token := ""
			for {
				cctx, cancel := e.conn.callCtx(ctx)
				r, err := c.ListPortals(cctx, &firmav1.ListPortalsRequest{PageToken: token, PageSize: 500})
				cancel()
				if err != nil {
					return err
				}
				for _, p := range r.GetPortals() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\t%s\n", p.GetId(), p.GetName(), p.GetStatus(), p.GetHasApiKey(),
						p.GetCertSha256() != "", p.GetCallbackUrl())
				}
				if token = r.GetNextPageToken(); token == "" {
					break
				}
			}
			return tw.Flush()
		},
	})
	register(&command{
		name:    "portals show",
		args:    "ID",
		summary: "show one portal",
		remote:  true,
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			id, err := oneID(args)
			if err != nil {
				return err
			}
			c, done, err := portalClient(e)
			if err != nil {
				return err
			}
			defer done()
			cctx, cancel := e.conn.callCtx(ctx)
			defer cancel()
			p, err := c.GetPortal(cctx, &firmav1.GetPortalRequest{Id: id})
			if err != nil {
				return err
			}
			printPortal(e.stdout, p)
			return nil
		},
	})
	for _, k := range []struct{ name, summary, what string }{
		{"portals rotate-key", "issue a new API key (the old one stops at once; shown once)", "api key"},
		{"portals rotate-callback-key", "issue a new callback HMAC key (shown once)", "callback key"},
	} {
		var rotOut string
		register(&command{
			name:    k.name,
			args:    "ID",
			summary: k.summary,
			remote:  true,
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&rotOut, "out", "", "write the new key to this new file (mode 0600, never overwritten) instead of printing it")
			},
			run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
				id, err := oneID(args)
				if err != nil {
					return err
				}
				if err := freshFiles(rotOut); err != nil {
					return err
				}
				c, done, err := portalClient(e)
				if err != nil {
					return err
				}
				defer done()
				cctx, cancel := e.conn.callCtx(ctx)
				defer cancel()
				var r *firmav1.RotatePortalKeyResponse
				if k.what == "api key" {
					r, err = c.RotatePortalAPIKey(cctx, &firmav1.GetPortalRequest{Id: id})
				} else {
					r, err = c.RotatePortalCallbackKey(cctx, &firmav1.GetPortalRequest{Id: id})
				}
				if err != nil {
					return err
				}
				return showKey(e, k.what, r.GetKey(), rotOut, "")
			},
		})
	}
	for _, s := range []struct{ name, status string }{{"portals disable", "disabled"}, {"portals enable", "active"}} {
		register(&command{
			name:    s.name,
			args:    "ID",
			summary: "set a portal " + s.status,
			remote:  true,
			run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
				id, err := oneID(args)
				if err != nil {
					return err
				}
				c, done, err := portalClient(e)
				if err != nil {
					return err
				}
				defer done()
				cctx, cancel := e.conn.callCtx(ctx)
				defer cancel()
				p, err := c.SetPortalStatus(cctx, &firmav1.SetPortalStatusRequest{Id: id, Status: s.status})
				if err != nil {
					return err
				}
				printPortal(e.stdout, p)
				return nil
			},
		})
	}
}
