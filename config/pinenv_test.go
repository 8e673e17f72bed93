package config

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestTakePINFromEnv checks that the PIN leaves the environment, that a
// child process does not inherit it, and that the returned getenv still
// serves it and every other variable.
func TestTakePINFromEnv(t *testing.T) {
	const pin = "0000test-pin0000"
	t.Setenv(EnvPIN, pin)
	t.Setenv("FIRMA_LOG_LEVEL", "debug")

	getenv := TakePINFromEnv()

	if v, ok := os.LookupEnv(EnvPIN); ok {
		t.Fatalf("%s still in the environment: %q", EnvPIN, v)
	}
	for _, kv := range os.Environ() {
		if strings.Contains(kv, pin) {
			t.Fatalf("os.Environ still holds the PIN: %s", kv)
		}
	}
	out, err := exec.Command("env").Output()
	if err != nil {
		t.Fatalf("run env: %v", err)
	}
	if strings.Contains(string(out), pin) || strings.Contains(string(out), EnvPIN+"=") {
		t.Fatalf("a child process inherited %s", EnvPIN)
	}
	if got := getenv(EnvPIN); got != pin {
		t.Fatalf("getenv(%s) = %q, want the PIN", EnvPIN, got)
	}
	if got := getenv("FIRMA_LOG_LEVEL"); got != "debug" {
		t.Fatalf("getenv(FIRMA_LOG_LEVEL) = %q, want debug", got)
	}
	c := Default()
	if err := c.ReadPIN(getenv); err != nil || string(c.HSM.PIN) != pin {
		t.Fatalf("ReadPIN through the returned getenv: %v", err)
	}
}

// TestTakePINFromEnvUnset checks that without the variable nothing
// changes: the returned getenv reads the environment.
func TestTakePINFromEnvUnset(t *testing.T) {
	t.Setenv(EnvPIN, "")
	os.Unsetenv(EnvPIN)
	t.Setenv("FIRMA_LOG_LEVEL", "warn")
	getenv := TakePINFromEnv()
	if got := getenv(EnvPIN); got != "" {
		t.Fatalf("getenv(%s) = %q with the variable unset", EnvPIN, got)
	}
	if got := getenv("FIRMA_LOG_LEVEL"); got != "warn" {
		t.Fatalf("getenv(FIRMA_LOG_LEVEL) = %q, want warn", got)
	}
}
