package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/firma-cloud/firma/config"
)

// command is one subcommand, e.g. "keys generate".
type command struct {
	name    string // words, e.g. "keys generate"
	args    string // positional arguments for the usage line, e.g. "ID"
	summary string
	// flags adds the command's flags; conn flags are added for every command
	// that talks to firmad (remote true).
	flags  func(fs *flag.FlagSet)
	remote bool
	run    func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error
}

var commands = map[string]*command{}

// register adds a subcommand; call it from an init function.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("firmactl: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// env is what a command runs with: output streams, the environment and
// the connection settings shared by every remote command.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	conn           connFlags
}

// errUsage marks an error in how the command was called (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// init reads FIRMA_HSM_PIN and runs softhsm2-util: the PIN leaves the
	// environment first (see config.TakePINFromEnv).
	code := run(ctx, os.Args[1:], config.TakePINFromEnv(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	c, rest := lookup(args)
	if c == nil {
		fmt.Fprintf(stderr, "firmactl: unknown command %q\n\n", strings.Join(args[:min(2, len(args))], " "))
		usage(stderr)
		return 2
	}
	fs := flag.NewFlagSet("firmactl "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: firmactl %s [flags] %s\n\n%s\n\nflags:\n", c.name, c.args, c.summary)
		fs.PrintDefaults()
	}
	if c.flags != nil {
		c.flags(fs)
	}
	if c.remote {
		e.conn.register(fs, getenv)
	}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := c.run(ctx, e, fs, pos); err != nil {
		fmt.Fprintf(stderr, "firmactl %s: %s\n", c.name, describe(err))
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// lookup finds the longest command name that args start with.
func lookup(args []string) (*command, []string) {
	if len(args) >= 2 {
		if c, ok := commands[args[0]+" "+args[1]]; ok {
			return c, args[2:]
		}
	}
	if c, ok := commands[args[0]]; ok {
		return c, args[1:]
	}
	return nil, nil
}

// parseInterspersed parses flags given before, between or after positional
// arguments (`keys pubkey ID --out F`), which flag.Parse alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: firmactl COMMAND [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-28s %s\n", strings.TrimSpace(n+" "+c.args), c.summary)
	}
	fmt.Fprintln(w, "\nRun 'firmactl COMMAND -h' for a command's flags.")
}

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}
