package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/config"
)

// connFlags say how to reach firmad. Defaults come from the state folder
// that `firmactl init` made, so that nothing is needed on a dev machine.
type connFlags struct {
	state     string
	addr      string
	tokenFile string
	ca        string
	cert, key string
	timeout   time.Duration
	getenv    func(string) string
}

func (c *connFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	c.getenv = getenv
	fs.StringVar(&c.state, "state", envOr(getenv, "FIRMA_STATE", "var"), "state folder made by 'firmactl init' (env FIRMA_STATE)")
	fs.StringVar(&c.addr, "addr", getenv("FIRMA_ADDR"), "firmad gRPC address (env FIRMA_ADDR; default: listen.grpc of STATE/firmad.yaml)")
	fs.StringVar(&c.tokenFile, "token-file", getenv("FIRMA_TOKEN_FILE"), "file with the operator bearer token (env FIRMA_TOKEN_FILE, or the token itself in FIRMA_TOKEN; default STATE/operator.token)")
	fs.StringVar(&c.ca, "ca", getenv("FIRMA_CA"), "PEM CA to verify firmad's TLS certificate; empty means plaintext, loopback only (env FIRMA_CA)")
	fs.StringVar(&c.cert, "cert", getenv("FIRMA_CLIENT_CERT"), "client certificate for mTLS (env FIRMA_CLIENT_CERT)")
	fs.StringVar(&c.key, "key-file", getenv("FIRMA_CLIENT_KEY"), "client certificate's private key (env FIRMA_CLIENT_KEY)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "deadline of each call")
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// dial connects to firmad with the operator's credentials.
func (c *connFlags) dial() (*grpc.ClientConn, error) {
	addr := c.addr
	if addr == "" {
		cfg := config.Default()
		if err := cfg.LoadFilePartial(filepath.Join(c.state, "firmad.yaml")); err == nil {
			addr = cfg.Listen.GRPC
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		} else {
			addr = cfg.Listen.GRPC
		}
	}
	token, err := c.token()
	if err != nil {
		return nil, err
	}
	var opts []grpc.DialOption
	if c.ca == "" && c.cert == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", addr, err)
		}
		if !config.IsLoopback(host) {
			return nil, fmt.Errorf("address %q is not loopback: give --ca to use TLS", addr)
		}
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.ca != "" {
			b, err := os.ReadFile(c.ca)
			if err != nil {
				return nil, fmt.Errorf("read CA: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("CA file %s holds no PEM certificate", c.ca)
			}
		}
		if c.cert != "" {
			kp, err := tls.LoadX509KeyPair(c.cert, c.key)
			if err != nil {
				return nil, fmt.Errorf("load client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{kp}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(api.BearerCredentials{Token: token, Insecure: c.ca == "" && c.cert == ""}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return conn, nil
}

// token returns the bearer token from FIRMA_TOKEN or the token file; "" if
// neither is there and a client certificate is given instead.
func (c *connFlags) token() (string, error) {
	if t := c.getenv("FIRMA_TOKEN"); t != "" {
		return t, nil
	}
	f := c.tokenFile
	if f == "" {
		f = filepath.Join(c.state, "operator.token")
	}
	b, err := os.ReadFile(f)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && c.cert != "" {
			return "", nil
		}
		return "", fmt.Errorf("operator token: %w (run 'firmactl init' or set FIRMA_TOKEN)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// callCtx bounds one call by --timeout.
func (c *connFlags) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// describe renders an error for the terminal: a gRPC status shows its
// message, code and reason, and which field was wrong.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	var b strings.Builder
	b.WriteString(st.Message())
	fmt.Fprintf(&b, " (%s", st.Code())
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			fmt.Fprintf(&b, ", %s", d.Reason)
		case *errdetails.RetryInfo:
			fmt.Fprintf(&b, ", retry after %s", d.RetryDelay.AsDuration())
		}
	}
	b.WriteString(")")
	return b.String()
}
