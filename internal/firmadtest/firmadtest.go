// Package firmadtest runs the built firmad and firmactl binaries for the
// tests and benchmarks that drive the service as an operator would
// (cmd/firmad, cluster, bench): it builds them, picks free ports, clears
// the environment of settings the test did not give, and starts firmad,
// waiting for the addresses it listens on.
package firmadtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Build builds firmad and firmactl into dir.
func Build(dir string) error {
	for _, b := range []string{"firmad", "firmactl"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b), "github.com/firma-cloud/firma/cmd/"+b).CombinedOutput()
		if err != nil {
			return fmt.Errorf("build %s: %w\n%s", b, err, out)
		}
	}
	return nil
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// CleanEnv returns this process's environment without FIRMA_* and
// SOFTHSM2_CONF, so that firmad and firmactl see only the settings of the
// state they run on, and extra.
func CleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FIRMA_") || strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// Process is a firmad that Start started.
type Process struct {
	Cmd        *exec.Cmd
	GRPC, HTTP string     // the addresses it listens on
	Done       chan error // receives Wait's result once it has exited
}

var listenRe = regexp.MustCompile(`firmad: (grpc|http) listening on (?:https?://)?(\S+)`)

// Start starts cmd, a firmad with its directory, environment and standard
// error set, and waits up to timeout for the gRPC and HTTP addresses it
// prints. If firmad exits first or stays silent, it is killed and the
// error says which (the reason is in what it wrote to standard error).
func Start(cmd *exec.Cmd, timeout time.Duration) (*Process, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, Done: make(chan error, 1)}
	addrs := make(chan [2]string, 2)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRe.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- [2]string{m[1], m[2]}
			}
		}
		io.Copy(io.Discard, stdout)
		p.Done <- cmd.Wait()
	}()
	deadline := time.After(timeout)
	for p.GRPC == "" || p.HTTP == "" {
		select {
		case a := <-addrs:
			if a[0] == "grpc" {
				p.GRPC = a[1]
			} else {
				p.HTTP = a[1]
			}
		case err := <-p.Done:
			return nil, fmt.Errorf("firmad exited at start-up: %v", err)
		case <-deadline:
			cmd.Process.Kill()
			<-p.Done
			return nil, fmt.Errorf("firmad did not print its addresses within %v", timeout)
		}
	}
	return p, nil
}
