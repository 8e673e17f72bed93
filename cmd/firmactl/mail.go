package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/mail"
)

// testText is the body of `mail test`: it says what it is, so a
// recipient who did not expect it knows to ignore it.
const testText = "Mensaje de prueba de Cl@ve Firma: la pasarela de correo de los avisos de firma funciona.\n" +
	"No responda a este mensaje.\n"

func init() {
	var test struct {
		state, to string
	}
	register(&command{
		name:    "mail test",
		summary: "send a test e-mail through the SMTP relay of STATE/firmad.yaml (audit.mail, FIRMA_AUDIT_MAIL_* overrides) to check its settings",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&test.state, "state", "var", "state folder made by 'firmactl init'")
			fs.StringVar(&test.to, "to", "", "address to send the test message to (required)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			if test.to == "" {
				return usageErr("--to is required")
			}
			if err := mail.Check(test.to, "s", "t"); err != nil {
				return usageErr("--to: want a bare address such as ops@example.es")
			}
			cfg, err := config.LoadPartial(filepath.Join(test.state, "firmad.yaml"), e.getenv, nil)
			if err != nil {
				return err
			}
			a := audit.DefaultConfig()
			if c := config.SectionOf[audit.Config](cfg, audit.SectionName); c != nil {
				a = *c
			}
			if a.Mail.Gateway != "smtp" {
				return fmt.Errorf("audit.mail.gateway is %q: messages stay in the outbox ('firmactl mail outbox'), there is no relay to test", a.Mail.Gateway)
			}
			opt, err := a.Mail.SMTPOptions()
			if err != nil {
				return err
			}
			g, err := mail.NewSMTP(opt)
			if err != nil {
				return err
			}
			if err := g.Send(ctx, test.to, a.Mail.Subject+" (prueba)", testText); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "test message sent to %s through %s (tls %s)\n", mail.Mask(test.to), a.Mail.SMTPAddr, a.Mail.TLS)
			return nil
		},
	})

	var outbox struct {
		to    string
		limit int
		full  bool
	}
	register(&command{
		name:    "mail outbox",
		summary: "read the mail outbox (the sandbox mail gateway of signature notices), newest first; operators",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&outbox.to, "to", "", "only messages to this e-mail address")
			fs.IntVar(&outbox.limit, "limit", 20, "at most this many messages (1 to 1000)")
			fs.BoolVar(&outbox.full, "full", false, "print each whole message instead of a table")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			if outbox.limit < 1 || outbox.limit > 1000 {
				return usageErr("--limit %d: want 1 to 1000", outbox.limit)
			}
			conn, err := e.conn.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			cctx, cancel := e.conn.callCtx(ctx)
			defer cancel()
			resp, err := firmav1.NewMailServiceClient(conn).ListEmails(cctx, &firmav1.ListEmailsRequest{To: outbox.to, Limit: int32(outbox.limit)})
			if err != nil {
				return err
			}
			if outbox.full {
				for i, m := range resp.GetMessages() {
					if i > 0 {
						fmt.Fprintln(e.stdout)
					}
					fmt.Fprintf(e.stdout, "Id: %s\nDate: %s\nTo: %s\nSubject: %s\n\n%s\n", m.GetId(),
						m.GetCreatedAt().AsTime().Format(time.RFC3339), m.GetTo(), m.GetSubject(), m.GetText())
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SENT\tTO\tSUBJECT\tTEXT")
			for _, m := range resp.GetMessages() {
				// One line per message: a notice's text may hold line breaks.
				text := strings.Join(strings.Fields(m.GetText()), " ")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.GetCreatedAt().AsTime().Format(time.RFC3339), m.GetTo(), m.GetSubject(), text)
			}
			return tw.Flush()
		},
	})
}
