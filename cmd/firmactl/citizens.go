package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/firma-cloud/firma/api/firmav1"
)

// importChunk is how much of the CSV file one ImportCitizens message holds.
const importChunk = 64 << 10

func registryClient(e *env) (firmav1.RegistryServiceClient, func(), error) {
	conn, err := e.conn.dial()
	if err != nil {
		return nil, nil, err
	}
	return firmav1.NewRegistryServiceClient(conn), func() { conn.Close() }, nil
}

// registryCall dials firmad and returns a registry client, the context for
// one call with the usual deadline, and the function that releases both.
func registryCall(ctx context.Context, e *env) (firmav1.RegistryServiceClient, context.Context, func(), error) {
	c, done, err := registryClient(e)
	if err != nil {
		return nil, nil, nil, err
	}
	cctx, cancel := e.conn.callCtx(ctx)
	return c, cctx, func() { cancel(); done() }, nil
}

func shortEnum(s fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), prefix))
}

func printCitizen(w io.Writer, c *firmav1.Citizen) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\n", c.GetId())
	fmt.Fprintf(tw, "name\t%s %s\n", c.GetGivenName(), c.GetSurnames())
	fmt.Fprintf(tw, "mobile\t%s\n", c.GetMobile())
	fmt.Fprintf(tw, "email\t%s\n", c.GetEmail())
	fmt.Fprintf(tw, "level\t%s\n", shortEnum(c.GetLevel(), "REGISTRATION_LEVEL_"))
	fmt.Fprintf(tw, "method\t%s\n", shortEnum(c.GetMethod(), "REGISTRATION_METHOD_"))
	fmt.Fprintf(tw, "status\t%s\n", shortEnum(c.GetStatus(), "CITIZEN_STATUS_"))
	fmt.Fprintf(tw, "registered\t%s\n", c.GetCreatedAt().AsTime().Format(time.RFC3339))
	fmt.Fprintf(tw, "level since\t%s\n", c.GetLevelAt().AsTime().Format(time.RFC3339))
	tw.Flush()
}

// printRegistration shows the one-time activation code and saves the PDF.
func printRegistration(e *env, r *firmav1.RegistrationResponse, pdfPath string) error {
	printCitizen(e.stdout, r.GetCitizen())
	if r.GetUpgraded() {
		fmt.Fprintln(e.stdout, "upgraded to the advanced level")
	}
	fmt.Fprintf(e.stdout, "activation code\t%s (single use, until %s; shown only now)\n", r.GetActivationCode(),
		r.GetActivationExpiresAt().AsTime().Format("2006-01-02"))
	if pdfPath != "" {
		if err := os.WriteFile(pdfPath, r.GetConfirmationPdf(), 0o600); err != nil {
			return fmt.Errorf("write confirmation: %w", err)
		}
		fmt.Fprintf(e.stdout, "confirmation PDF written to %s\n", pdfPath)
	}
	return nil
}

func init() {
	var reg struct {
		method, id, given, surnames, mobile, email, pdf string
	}
	register(&command{
		name:    "citizens register",
		summary: "register a citizen in person (registrar: advanced) or by video call (video agent, in service hours: basic)",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&reg.method, "method", "in_person", "in_person or video_call")
			fs.StringVar(&reg.id, "id", "", "DNI or NIE (required)")
			fs.StringVar(&reg.given, "given-name", "", "given name (required)")
			fs.StringVar(&reg.surnames, "surnames", "", "surnames (required)")
			fs.StringVar(&reg.mobile, "mobile", "", "mobile phone; Spanish without +34 (required)")
			fs.StringVar(&reg.email, "email", "", "e-mail address (required)")
			fs.StringVar(&reg.pdf, "pdf", "", "save the confirmation PDF (with the activation code) here")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			c, cctx, done, err := registryCall(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			req := &firmav1.RegisterPersonRequest{Id: reg.id, GivenName: reg.given, Surnames: reg.surnames, Mobile: reg.mobile, Email: reg.email}
			var resp *firmav1.RegistrationResponse
			switch reg.method {
			case "in_person":
				resp, err = c.RegisterInPerson(cctx, req)
			case "video_call":
				resp, err = c.RegisterVideoCall(cctx, req)
			default:
				return usageErr("--method %q: want in_person or video_call (the other methods are the citizen's own steps)", reg.method)
			}
			if err != nil {
				return err
			}
			return printRegistration(e, resp, reg.pdf)
		},
	})

	register(&command{
		name:    "citizens get",
		args:    "ID",
		summary: "show a citizen",
		remote:  true,
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageErr("want one DNI/NIE")
			}
			c, cctx, done, err := registryCall(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			ct, err := c.GetCitizen(cctx, &firmav1.GetCitizenRequest{Id: args[0]})
			if err != nil {
				return err
			}
			printCitizen(e.stdout, ct)
			return nil
		},
	})

	var list struct {
		level, status string
		page          int
	}
	register(&command{
		name:    "citizens list",
		summary: "list citizens by DNI/NIE",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&list.level, "level", "", "only basic or advanced")
			fs.StringVar(&list.status, "status", "", "only active, locked or removed")
			fs.IntVar(&list.page, "page-size", 500, "citizens fetched per call")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			req := &firmav1.ListCitizensRequest{PageSize: int32(list.page)}
			if list.level != "" {
				v, ok := firmav1.RegistrationLevel_value["REGISTRATION_LEVEL_"+strings.ToUpper(list.level)]
				if !ok {
					return usageErr("--level %q: want basic or advanced", list.level)
				}
				req.Level = firmav1.RegistrationLevel(v)
			}
			if list.status != "" {
				v, ok := firmav1.CitizenStatus_value["CITIZEN_STATUS_"+strings.ToUpper(list.status)]
				if !ok {
					return usageErr("--status %q: want active, locked or removed", list.status)
				}
				req.Status = firmav1.CitizenStatus(v)
			}
			c, done, err := registryClient(e)
			if err != nil {
				return err
			}
			defer done()
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tLEVEL\tMETHOD\tSTATUS\tMOBILE")
			for {
				cctx, cancel := e.conn.callCtx(ctx)
				resp, err := c.ListCitizens(cctx, req)
				cancel()
				if err != nil {
					return err
				}
				for _, ct := range resp.GetCitizens() {
					fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\n", ct.GetId(), ct.GetGivenName(), ct.GetSurnames(),
						shortEnum(ct.GetLevel(), "REGISTRATION_LEVEL_"), shortEnum(ct.GetMethod(), "REGISTRATION_METHOD_"),
						shortEnum(ct.GetStatus(), "CITIZEN_STATUS_"), ct.GetMobile())
				}
				if resp.GetNextPageToken() == "" {
					break
				}
				req.PageToken = resp.GetNextPageToken()
			}
			return tw.Flush()
		},
	})

	var up struct{ mobile, email, pdf string }
	register(&command{
		name:    "citizens upgrade",
		args:    "ID",
		summary: "raise a basic citizen to advanced after checking their ID in person (registrar)",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&up.mobile, "mobile", "", "new mobile phone (default: keep)")
			fs.StringVar(&up.email, "email", "", "new e-mail address (default: keep)")
			fs.StringVar(&up.pdf, "pdf", "", "save the confirmation PDF here")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageErr("want one DNI/NIE")
			}
			c, cctx, done, err := registryCall(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			ct, err := c.GetCitizen(cctx, &firmav1.GetCitizenRequest{Id: args[0]})
			if err != nil {
				return err
			}
			if ct.GetLevel() == firmav1.RegistrationLevel_REGISTRATION_LEVEL_ADVANCED {
				return fmt.Errorf("%s is already at the advanced level", ct.GetId())
			}
			req := &firmav1.RegisterPersonRequest{Id: ct.GetId(), GivenName: ct.GetGivenName(), Surnames: ct.GetSurnames(),
				Mobile: ct.GetMobile(), Email: ct.GetEmail()}
			if up.mobile != "" {
				req.Mobile = up.mobile
			}
			if up.email != "" {
				req.Email = up.email
			}
			resp, err := c.RegisterInPerson(cctx, req)
			if err != nil {
				return err
			}
			return printRegistration(e, resp, up.pdf)
		},
	})

	for _, op := range []struct{ name, summary string }{
		{"downgrade", "lower an advanced citizen to basic, revoking their certificates (registrar)"},
		{"remove", "end a citizen's registration, revoking their certificates (registrar)"},
	} {
		var reason string
		register(&command{
			name:    "citizens " + op.name,
			args:    "ID",
			summary: op.summary,
			remote:  true,
			flags: func(fs *flag.FlagSet) {
				fs.StringVar(&reason, "reason", "", "why, for the record (required)")
			},
			run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
				if len(args) != 1 || strings.TrimSpace(reason) == "" {
					return usageErr("want one DNI/NIE and --reason")
				}
				c, cctx, done, err := registryCall(ctx, e)
				if err != nil {
					return err
				}
				defer done()
				req := &firmav1.ChangeCitizenRequest{Id: args[0], Reason: reason}
				var ct *firmav1.Citizen
				if op.name == "downgrade" {
					ct, err = c.DowngradeCitizen(cctx, req)
				} else {
					ct, err = c.RemoveCitizen(cctx, req)
				}
				if err != nil {
					return err
				}
				printCitizen(e.stdout, ct)
				return nil
			},
		})
	}

	var act struct{ pdf string }
	register(&command{
		name:    "citizens activation",
		args:    "ID",
		summary: "issue a new activation code (forgotten or locked password; registrar)",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&act.pdf, "pdf", "", "save the confirmation PDF here")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageErr("want one DNI/NIE")
			}
			c, cctx, done, err := registryCall(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.ReissueActivation(cctx, &firmav1.GetCitizenRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return printRegistration(e, resp, act.pdf)
		},
	})

	var fiscal struct{ given, surnames, address string }
	register(&command{
		name:    "citizens fiscal",
		args:    "ID",
		summary: "record the name and fiscal address invitation letters go to (registrar)",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&fiscal.given, "given-name", "", "given name (required)")
			fs.StringVar(&fiscal.surnames, "surnames", "", "surnames (required)")
			fs.StringVar(&fiscal.address, "address", "", "postal address (required)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageErr("want one DNI/NIE")
			}
			c, cctx, done, err := registryCall(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			_, err = c.PutFiscalRecord(cctx, &firmav1.PutFiscalRecordRequest{Id: args[0], GivenName: fiscal.given,
				Surnames: fiscal.surnames, FiscalAddress: fiscal.address})
			if err == nil {
				fmt.Fprintf(e.stdout, "fiscal record of %s saved\n", strings.ToUpper(args[0]))
			}
			return err
		},
	})

	register(&command{
		name:    "citizens import",
		args:    "FILE.csv",
		summary: "bulk-register citizens from a CSV file (columns: id,given_name,surnames,mobile,email,method[,level,fiscal_address]); operators",
		remote:  true,
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageErr("want one CSV file")
			}
			return importCitizens(ctx, e, args[0])
		},
	})

	var outbox struct {
		to    string
		limit int
	}
	register(&command{
		name:    "sms outbox",
		summary: "read the SMS outbox (the sandbox SMS gateway), newest first; operators",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&outbox.to, "to", "", "only messages to this E.164 number")
			fs.IntVar(&outbox.limit, "limit", 20, "at most this many messages")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			c, cctx, done, err := registryCall(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.ListSMS(cctx, &firmav1.ListSMSRequest{To: outbox.to, Limit: int32(outbox.limit)})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SENT\tTO\tTEXT")
			for _, m := range resp.GetMessages() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", m.GetCreatedAt().AsTime().Format(time.RFC3339), m.GetTo(), m.GetText())
			}
			return tw.Flush()
		},
	})

	var letters struct {
		id    string
		limit int
	}
	register(&command{
		name:    "letters outbox",
		summary: "read the invitation-letter outbox, newest first; operators",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&letters.id, "id", "", "only letters to this DNI/NIE")
			fs.IntVar(&letters.limit, "limit", 10, "at most this many letters")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			c, cctx, done, err := registryCall(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.ListLetters(cctx, &firmav1.ListLettersRequest{Id: letters.id, Limit: int32(letters.limit)})
			if err != nil {
				return err
			}
			for _, l := range resp.GetLetters() {
				fmt.Fprintf(e.stdout, "--- letter %s to %s, %s\n%s\n", l.GetId(), l.GetCitizenId(), l.GetCreatedAt().AsTime().Format(time.RFC3339), l.GetBody())
			}
			return nil
		},
	})
}

// importCitizens streams the file to firmad with a progress bar on stderr
// and prints the rows that were skipped, by line.
func importCitizens(ctx context.Context, e *env, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	c, done, err := registryClient(e)
	if err != nil {
		return err
	}
	defer done()
	// No per-call deadline: a big file takes as long as it takes; Ctrl-C
	// still cancels.
	stream, err := c.ImportCitizens(ctx)
	if err != nil {
		return err
	}
	bar := progressbar.NewOptions64(fi.Size(),
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription("importing "+path),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }),
	)
	buf := make([]byte, importChunk)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if serr := stream.Send(&firmav1.ImportCitizensRequest{CsvChunk: buf[:n]}); serr != nil {
				if errors.Is(serr, io.EOF) {
					break // the server ended the call; CloseAndRecv has its error
				}
				return serr
			}
			bar.Add(n)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	bar.Finish()
	fmt.Fprintln(e.stderr, "waiting for firmad to commit the last rows...")
	rep, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	for _, b := range rep.GetBad() {
		fmt.Fprintf(e.stdout, "line %d: skipped: %s\n", b.GetLine(), b.GetError())
	}
	for _, x := range rep.GetExisting() {
		fmt.Fprintf(e.stdout, "line %d: kept as is: %s\n", x.GetLine(), x.GetError())
	}
	fmt.Fprintf(e.stdout, "%d rows: %d citizens registered, %d already registered, %d bad rows skipped\n",
		rep.GetRows(), rep.GetCreated(), len(rep.GetExisting()), len(rep.GetBad()))
	return nil
}
