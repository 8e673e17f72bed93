package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/firma-cloud/firma/api/firmav1"
)

func init() {
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
