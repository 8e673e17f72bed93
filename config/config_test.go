package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const helloSHA = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" // SHA-256("hello")

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// valid returns a configuration that passes Validate.
func valid() *Config {
	c := Default()
	c.HSM.Module = "/usr/lib/softhsm/libsofthsm2.so"
	c.Auth.Operators = []Operator{{Name: "ops", TokenSHA256: helloSHA}}
	return c
}

func TestLoadGoodFile(t *testing.T) {
	c, err := Load("testdata/good.yaml", envMap(nil), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen.grpc", c.Listen.GRPC, "127.0.0.1:9443"},
		{"listen.http", c.Listen.HTTP, "[::1]:9080"},
		{"listen.shutdown_timeout", c.Listen.ShutdownTimeout, 10 * time.Second},
		{"hsm.token_label", c.HSM.TokenLabel, "firma-prod"},
		{"hsm.sessions", c.HSM.Sessions, 8},
		{"hsm.acquire_timeout", c.HSM.AcquireTimeout, 2 * time.Second},
		{"hsm.key_mode", c.HSM.KeyMode, "wrapped"},
		{"hsm.cache_size", c.HSM.CacheSize, 500},
		{"hsm.kek_label", c.HSM.KEKLabel, "kek-1"},
		{"hsm.verify_ecdsa", c.HSM.VerifyECDSA, true},
		{"store.path", c.Store.Path, "/var/lib/firma/firma.db"},
		{"auth.operators[0].token_sha256 (normalised)", c.Auth.Operators[0].TokenSHA256, helloSHA},
		{"log.level", c.Log.Level, "debug"},
		{"pin from file, trimmed", c.HSM.PIN.Reveal(), "s3cret-pin"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestValidateNamesField(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(c *Config)
		field string
		text  string
	}{
		{"sessions zero", func(c *Config) { c.HSM.Sessions = 0 }, "hsm.sessions", "must be > 0"},
		{"sessions negative", func(c *Config) { c.HSM.Sessions = -3 }, "hsm.sessions", "must be > 0"},
		{"acquire timeout", func(c *Config) { c.HSM.AcquireTimeout = 0 }, "hsm.acquire_timeout", "must be > 0"},
		{"key mode", func(c *Config) { c.HSM.KeyMode = "cloud" }, "hsm.key_mode", "token or wrapped"},
		{"cache size", func(c *Config) { c.HSM.CacheSize = 0 }, "hsm.cache_size", "must be > 0"},
		{"cache size below -1", func(c *Config) { c.HSM.CacheSize = -2 }, "hsm.cache_size", "or -1 for no cache"},
		{"kek label", func(c *Config) { c.HSM.KEKLabel = "" }, "hsm.kek_label", "must be set"},
		{"no module", func(c *Config) { c.HSM.Module = "" }, "hsm.module", "must be set"},
		{"no token", func(c *Config) { c.HSM.TokenLabel = "" }, "hsm.token_label", "must be set"},
		{"store driver", func(c *Config) { c.Store.Driver = "mysql" }, "store.driver", "must be sqlite"},
		{"store path", func(c *Config) { c.Store.Path = "" }, "store.path", "must be set"},
		{"grpc not host:port", func(c *Config) { c.Listen.GRPC = "localhost" }, "listen.grpc", "not host:port"},
		{"grpc bad port", func(c *Config) { c.Listen.GRPC = "127.0.0.1:99999" }, "listen.grpc", "0 to 65535"},
		{"grpc plaintext public", func(c *Config) { c.Listen.GRPC = "0.0.0.0:7700" }, "listen.grpc", "not a loopback"},
		{"http plaintext all interfaces", func(c *Config) { c.Listen.HTTP = ":7780" }, "listen.http", "not a loopback"},
		{"same address", func(c *Config) { c.Listen.HTTP = c.Listen.GRPC }, "listen.http", "must differ"},
		{"shutdown timeout", func(c *Config) { c.Listen.ShutdownTimeout = -time.Second }, "listen.shutdown_timeout", "must be > 0"},
		{"cert without key", func(c *Config) { c.TLS.Cert = "testdata/pin.txt" }, "tls.key", "must be set"},
		{"key without cert", func(c *Config) { c.TLS.Key = "testdata/pin.txt" }, "tls.cert", "must be set"},
		{"client ca alone", func(c *Config) { c.TLS.ClientCA = "testdata/pin.txt" }, "tls.client_ca", "needs tls.cert"},
		{"cert missing file", func(c *Config) { c.TLS.Cert, c.TLS.Key = "testdata/nope.pem", "testdata/pin.txt" }, "tls.cert", "no such file"},
		{"no operators", func(c *Config) { c.Auth.Operators = nil }, "auth.operators", "at least one operator"},
		{"operator no name", func(c *Config) { c.Auth.Operators[0].Name = "" }, "auth.operators[0].name", "must be set"},
		{"operator twice", func(c *Config) { c.Auth.Operators = append(c.Auth.Operators, c.Auth.Operators[0]) }, "auth.operators[1].name", "used twice"},
		{"operator no credential", func(c *Config) { c.Auth.Operators[0].TokenSHA256 = "" }, "auth.operators[0]", "needs token_sha256 or cert_sha256"},
		{"token hash short", func(c *Config) { c.Auth.Operators[0].TokenSHA256 = "abcd" }, "auth.operators[0].token_sha256", "64 hex digits"},
		{"token hash not hex", func(c *Config) { c.Auth.Operators[0].TokenSHA256 = strings.Repeat("zz", 32) }, "auth.operators[0].token_sha256", "64 hex digits"},
		{"cert hash without tls", func(c *Config) { c.Auth.Operators[0].CertSHA256 = helloSHA }, "auth.operators[0].cert_sha256", "need tls.cert"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, "log.level", "debug, info, warn or error"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format", "json or text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			if err := c.Validate(); err != nil {
				t.Fatalf("base config invalid: %v", err)
			}
			tt.edit(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			want := tt.field + ": "
			var found bool
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, want) && strings.Contains(line, tt.text) {
					found = true
				}
			}
			if !found {
				t.Errorf("error %q has no line %q...%q", err, want, tt.text)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v holds no *FieldError", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := valid()
	c.HSM.Sessions = 0
	c.Log.Format = "xml"
	c.Store.Path = ""
	err := c.Validate()
	for _, f := range []string{"hsm.sessions", "log.format", "store.path"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("error %v does not name %s", err, f)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		"FIRMA_HSM_MODULE":          "/opt/hsm/libx.so",
		"FIRMA_HSM_TOKEN_LABEL":     "from-env",
		"FIRMA_STORE_PATH":          "/data/f.db",
		"FIRMA_LISTEN_GRPC":         "127.0.0.1:1234",
		"FIRMA_LISTEN_HTTP":         "localhost:1235",
		"FIRMA_HSM_SESSIONS":        "17",
		"FIRMA_HSM_ACQUIRE_TIMEOUT": "750ms",
		"FIRMA_HSM_VERIFY_ECDSA":    "true",
		"FIRMA_HSM_KEY_MODE":        "wrapped",
		"FIRMA_LOG_LEVEL":           "warn",
		"FIRMA_HSM_PIN":             "env-pin",
	}
	c, err := Load("testdata/good.yaml", envMap(env), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"module", c.HSM.Module, "/opt/hsm/libx.so"},
		{"token", c.HSM.TokenLabel, "from-env"},
		{"store", c.Store.Path, "/data/f.db"},
		{"grpc", c.Listen.GRPC, "127.0.0.1:1234"},
		{"http", c.Listen.HTTP, "localhost:1235"},
		{"sessions", c.HSM.Sessions, 17},
		{"timeout", c.HSM.AcquireTimeout, 750 * time.Millisecond},
		{"verify", c.HSM.VerifyECDSA, true},
		{"mode", c.HSM.KeyMode, "wrapped"},
		{"level", c.Log.Level, "warn"},
		{"env PIN wins over pin_file", c.HSM.PIN.Reveal(), "env-pin"},
		{"untouched field keeps file value", c.HSM.KEKLabel, "kek-1"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestEnvBadValueNamesVariableAndField(t *testing.T) {
	tests := []struct{ env, val, field string }{
		{"FIRMA_HSM_SESSIONS", "many", "hsm.sessions"},
		{"FIRMA_HSM_ACQUIRE_TIMEOUT", "5", "hsm.acquire_timeout"},
		{"FIRMA_HSM_VERIFY_ECDSA", "perhaps", "hsm.verify_ecdsa"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := Load("testdata/good.yaml", envMap(map[string]string{tt.env: tt.val}), nil)
			if err == nil || !strings.Contains(err.Error(), tt.env) || !strings.Contains(err.Error(), tt.field+":") {
				t.Fatalf("error %v should name %s and %s", err, tt.env, tt.field)
			}
		})
	}
}

func TestFlagsOverrideEnvAndFile(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"-hsm-token-label", "from-flag", "-hsm-sessions=3", "-listen-grpc", "127.0.0.1:4000"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load("testdata/good.yaml", envMap(map[string]string{"FIRMA_HSM_TOKEN_LABEL": "from-env", "FIRMA_HSM_SESSIONS": "9"}), fs)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.HSM.TokenLabel != "from-flag" || c.HSM.Sessions != 3 || c.Listen.GRPC != "127.0.0.1:4000" {
		t.Errorf("got token %q sessions %d grpc %q; flags should win", c.HSM.TokenLabel, c.HSM.Sessions, c.Listen.GRPC)
	}
	if c.HSM.KEKLabel != "kek-1" {
		t.Errorf("flag parsing changed an unset field: kek_label = %q", c.HSM.KEKLabel)
	}
}

func TestFieldsCoverEveryScalar(t *testing.T) {
	byKey := map[string]Field{}
	for _, f := range Fields() {
		byKey[f.Key] = f
	}
	for _, key := range []string{"listen.grpc", "listen.http", "listen.shutdown_timeout", "tls.cert", "tls.key", "tls.client_ca",
		"hsm.module", "hsm.token_label", "hsm.uri", "hsm.pin_file", "hsm.sessions", "hsm.acquire_timeout", "hsm.key_mode",
		"hsm.cache_size", "hsm.kek_label", "hsm.verify_ecdsa", "hsm.softhsm2_conf", "store.driver", "store.path", "log.level", "log.format"} {
		f, ok := byKey[key]
		if !ok {
			t.Errorf("no override for %s", key)
			continue
		}
		wantEnv := "FIRMA_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		if f.Env != wantEnv {
			t.Errorf("%s: env %s, want %s", key, f.Env, wantEnv)
		}
	}
	if _, ok := byKey["hsm.pin"]; ok {
		t.Error("the PIN must not be a config field")
	}
}

func TestPINNeverFromConfigFile(t *testing.T) {
	const pin = "123456-do-not-echo"
	_, err := Load("testdata/pin-in-file.yaml", envMap(nil), nil)
	if err == nil {
		t.Fatal("a PIN in the config file was accepted")
	}
	if !strings.Contains(err.Error(), "hsm.pin:") || !strings.Contains(err.Error(), EnvPIN) {
		t.Errorf("error %q should name hsm.pin and point to %s", err, EnvPIN)
	}
	if strings.Contains(err.Error(), pin) {
		t.Errorf("error %q repeats the PIN", err)
	}
	// A pin-value in a pkcs11 URI is a PIN in the config file too.
	c := valid()
	c.HSM.URI = "pkcs11:token=firma?pin-value=" + pin
	err = c.ResolveURI()
	if err == nil || strings.Contains(err.Error(), pin) || !strings.Contains(err.Error(), "hsm.uri:") {
		t.Errorf("URI with pin-value: error %v (want hsm.uri error without the PIN)", err)
	}
}

func TestPINSources(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		pinFile string
		want    string
		field   string
	}{
		{"env", map[string]string{EnvPIN: "1111"}, "", "1111", ""},
		{"env beats file", map[string]string{EnvPIN: "2222"}, "testdata/pin.txt", "2222", ""},
		{"file", nil, "testdata/pin.txt", "s3cret-pin", ""},
		{"none", nil, "", "", "hsm.pin_file"},
		{"missing file", nil, "testdata/nope", "", "hsm.pin_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			c.HSM.PINFile = tt.pinFile
			err := c.ReadPIN(envMap(tt.env))
			if tt.field != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.field+":") {
					t.Fatalf("error %v should name %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HSM.PIN.Reveal() != tt.want {
				t.Errorf("PIN %q, want %q", c.HSM.PIN.Reveal(), tt.want)
			}
		})
	}
}

func TestPINNeverPrinted(t *testing.T) {
	const pin = "very-secret-4711"
	c := valid()
	c.HSM.PIN = Secret(pin)
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("config", "cfg", c, "hsm", c.HSM, "pin", c.HSM.PIN)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("config", "cfg", c, "pin", c.HSM.PIN)
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s pin": fmt.Sprintf("%s", c.HSM.PIN), "%q pin": fmt.Sprintf("%q", c.HSM.PIN),
		"slog": logBuf.String(), "yaml": string(y),
	}
	for how, out := range outputs {
		if strings.Contains(out, pin) {
			t.Errorf("%s output holds the PIN: %s", how, out)
		}
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	_, err := Load("testdata/unknown-field.yaml", envMap(nil), nil)
	if err == nil || !strings.Contains(err.Error(), "line 3: unknown key htp") || strings.Contains(err.Error(), "struct {") {
		t.Fatalf("error %v should say line 3: unknown key htp", err)
	}
	_, err = Load("testdata/unknown-section.yaml", envMap(nil), nil)
	if err == nil || !strings.Contains(err.Error(), "unknown key someday") {
		t.Fatalf("error %v should name the unknown section", err)
	}
}

func TestLoadFilePartialSkipsUnknownSections(t *testing.T) {
	c := Default()
	if err := c.LoadFilePartial("testdata/unknown-section.yaml"); err != nil {
		t.Fatal(err)
	}
	if c.Listen.GRPC != "127.0.0.1:9443" || c.HSM.TokenLabel != "t" || c.Auth.Operators[0].Name != "ops" {
		t.Fatalf("known settings lost: %+v", c)
	}
	// Known sections stay strict.
	if err := Default().LoadFilePartial("testdata/unknown-field.yaml"); err == nil || !strings.Contains(err.Error(), "unknown key htp") {
		t.Fatalf("error %v should name htp", err)
	}
}

func TestURIConfig(t *testing.T) {
	c, err := Load("testdata/uri.yaml", envMap(nil), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.HSM.Module != "/opt/hsm/lib x.so" || c.HSM.TokenLabel != "my token" || c.HSM.PINFile != "testdata/pin.txt" || c.HSM.PIN.Reveal() != "s3cret-pin" {
		t.Errorf("got module %q token %q pin_file %q", c.HSM.Module, c.HSM.TokenLabel, c.HSM.PINFile)
	}
}

func TestURIRefusesSelectorsItCannotHonour(t *testing.T) {
	for _, uri := range []string{"pkcs11:token=a;serial=1234", "pkcs11:token=a;slot-id=3", "pkcs11:serial=1234"} {
		c := valid()
		c.HSM.URI = uri
		if err := c.ResolveURI(); err == nil || !strings.HasPrefix(err.Error(), "hsm.uri:") {
			t.Errorf("%s: error %v, want an hsm.uri error", uri, err)
		}
	}
}

func TestTLSConfig(t *testing.T) {
	c, err := Load("testdata/tls.yaml", envMap(nil), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !c.TLS.Enabled() {
		t.Error("TLS not enabled")
	}
	if c.Auth.Operators[0].CertSHA256 != helloSHA {
		t.Errorf("fingerprint not normalised: %q", c.Auth.Operators[0].CertSHA256)
	}
}

func TestParsePKCS11URI(t *testing.T) {
	tests := []struct {
		uri                         string
		token, module, pinFile, err string
	}{
		{uri: "pkcs11:token=firma", token: "firma"},
		{uri: "pkcs11:token=firma?module-path=/usr/lib/softhsm/libsofthsm2.so", token: "firma", module: "/usr/lib/softhsm/libsofthsm2.so"},
		{uri: "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=1;token=a%3Bb?pin-source=file:/run/pin&module-path=/m.so",
			token: "a;b", module: "/m.so", pinFile: "/run/pin"},
		{uri: "pkcs11:token=x?pin-source=file:///etc/firma/pin", token: "x", pinFile: "/etc/firma/pin"},
		{uri: "pkcs11:token=x?pin-source=/etc/pin", token: "x", pinFile: "/etc/pin"},
		{uri: "pkcs11:TOKEN=upper", token: "upper"},
		{uri: "pkcs11:token=x;x-vendor=1", token: "x"},
		{uri: "pkcs11:token=x?pin-source=https://pins.example/1", err: "only file:"},
		{uri: "pkcs11:token=x?pin-source=file:", err: "no path"},
		{uri: "token=firma", err: "must start with"},
		{uri: "pkcs11:tokn=firma", err: "unknown attribute \"tokn\""},
		{uri: "pkcs11:token", err: "has no value"},
		{uri: "pkcs11:token=a;token=b", err: "given twice"},
		{uri: "pkcs11:token=%zz", err: "token"},
		{uri: "pkcs11:token=a?pin-value=%zz9999", err: "pin-value"},
		{uri: "pkcs11:token=a?pin-value=1234", err: "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			u, err := ParsePKCS11URI(tt.uri)
			var pf string
			if err == nil {
				pf, err = u.PINFile()
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				if !errors.Is(err, ErrURI) {
					t.Errorf("error %v does not wrap ErrURI", err)
				}
				if strings.Contains(err.Error(), "9999") || strings.Contains(err.Error(), "1234") {
					t.Errorf("error %q repeats the PIN", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Token != tt.token || u.ModulePath != tt.module || pf != tt.pinFile {
				t.Errorf("got token %q module %q pin file %q", u.Token, u.ModulePath, pf)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "127.8.9.1": true, "::1": true, "localhost": true,
		"LocalHost": true, "0.0.0.0": false, "": false, "10.0.0.1": false, "example.org": false, "::": false} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
}

func FuzzParsePKCS11URI(f *testing.F) {
	for _, s := range []string{"pkcs11:token=a", "pkcs11:token=a;serial=b?module-path=/x&pin-source=file:/p", "pkcs11:?", "pkcs11:%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParsePKCS11URI(s)
		if err != nil {
			return
		}
		if u.Path == nil || u.Query == nil {
			t.Fatal("nil maps on success")
		}
		_, _ = u.PINFile()
	})
}

// hsm.cache_size -1 turns the live-key cache off (keystore.Config.CacheSize
// < 0): every wrapped-mode signature unwraps, as the scale curve measures.
func TestCacheSizeOff(t *testing.T) {
	c := valid()
	c.HSM.CacheSize = -1
	if err := c.Validate(); err != nil {
		t.Errorf("cache_size -1: %v", err)
	}
}
