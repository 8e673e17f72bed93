package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/firma-cloud/firma/loadgen"
)

// benchPassword is the password of the load test's sandbox citizens.
const benchPassword = "Carga-Prueba-2026"

// errBenchFailed makes 'firmactl bench' exit 1 after a run with errors,
// lost or duplicated signatures, so that make targets fail on them.
var errBenchFailed = errors.New("the run had failed transactions, lost or duplicated signatures")

func init() {
	var b struct {
		nodes, keyFile, jsonOut, pngOut string
		count, workers, docs, citizens  int
		first                           int
		duration                        time.Duration
		enrol, verbose                  bool
	}
	register(&command{
		name:    "bench",
		summary: "drive whole signatures (create, approve with the SMS code, collect) over the public APIs of one or several nodes and measure them; loopback only",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&b.nodes, "nodes", "", "comma-separated HTTP base URLs of the nodes, e.g. http://127.0.0.1:8080,http://127.0.0.1:8081")
			fs.StringVar(&b.keyFile, "api-key-file", "", "file with the portal's API key (or env FIRMA_PORTAL_API_KEY); make the portal with --rate high enough")
			fs.IntVar(&b.count, "count", 0, "at most this many transactions (0: no bound but --duration)")
			fs.DurationVar(&b.duration, "duration", time.Minute, "start transactions for this long (0: no bound but --count)")
			fs.IntVar(&b.workers, "workers", 8, "transactions under way at once")
			fs.IntVar(&b.docs, "documents", 1, "documents (signatures) per transaction")
			fs.IntVar(&b.citizens, "citizens", 64, "sandbox citizens to sign as (at least --workers)")
			fs.IntVar(&b.first, "first-citizen", 0, "number of the first sandbox citizen (DNI 70000000+N)")
			fs.BoolVar(&b.enrol, "enrol", false, "first register the sandbox citizens (bulk CSV import) and set their passwords")
			fs.StringVar(&b.jsonOut, "json", "bench-load.json", "write the report as JSON here ('' for none)")
			fs.StringVar(&b.pngOut, "png", "bench-load.png", "plot throughput and latency over time here ('' for none)")
			fs.BoolVar(&b.verbose, "v", false, "log each failed transaction")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("bench takes no arguments")
			}
			var nodes []string
			for _, n := range strings.Split(b.nodes, ",") {
				if n = strings.TrimSpace(n); n != "" {
					nodes = append(nodes, n)
				}
			}
			if len(nodes) == 0 {
				return usageErr("give --nodes")
			}
			key := e.getenv("FIRMA_PORTAL_API_KEY")
			if b.keyFile != "" {
				k, err := os.ReadFile(b.keyFile)
				if err != nil {
					return fmt.Errorf("api key: %w", err)
				}
				key = strings.TrimSpace(string(k))
			}
			if key == "" {
				return usageErr("give --api-key-file or FIRMA_PORTAL_API_KEY")
			}
			token, err := e.conn.token()
			if err != nil {
				return err
			}
			log := slog.New(slog.DiscardHandler)
			if b.verbose {
				log = slog.New(slog.NewTextHandler(e.stderr, nil))
			}
			citizens := loadgen.SandboxCitizens(b.first, b.citizens, benchPassword)
			client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4 * max(b.workers, 1)}}
			if b.enrol {
				start := time.Now()
				if err := loadgen.Enrol(ctx, client, strings.TrimRight(nodes[0], "/"), token, citizens, 4); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "enrolled %d sandbox citizens in %.1f s\n", len(citizens), time.Since(start).Seconds())
			}
			rep, err := loadgen.Run(ctx, loadgen.Config{Nodes: nodes, APIKey: key, OperatorToken: token, Citizens: citizens,
				Count: b.count, Duration: b.duration, Workers: b.workers, Documents: b.docs, Client: client, Log: log})
			if err != nil {
				if errors.Is(err, loadgen.ErrConfig) || errors.Is(err, loadgen.ErrNotLoopback) {
					return usageErr("%v", err)
				}
				return err
			}
			if err := rep.WriteText(e.stdout); err != nil {
				return err
			}
			if b.jsonOut != "" {
				if err := writeFileWith(b.jsonOut, rep.WriteJSON); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "wrote %s\n", b.jsonOut)
			}
			if b.pngOut != "" {
				if err := writeFileWith(b.pngOut, rep.WritePNG); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "wrote %s\n", b.pngOut)
			}
			if !rep.OK() {
				return errBenchFailed
			}
			return nil
		},
	})
}

// writeFileWith creates path and fills it with write; a failed write
// leaves no partial file.
func writeFileWith(path string, write func(w io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
