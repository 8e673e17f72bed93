package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPIN is the environment variable that carries the HSM user PIN.
const EnvPIN = "FIRMA_HSM_PIN"

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "FIRMA_"

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Config is everything firmad is configured with.
type Config struct {
	Listen Listen `yaml:"listen"`
	TLS    TLS    `yaml:"tls"`
	HSM    HSM    `yaml:"hsm"`
	Store  Store  `yaml:"store"`
	Auth   Auth   `yaml:"auth"`
	Log    Log    `yaml:"log"`

	// ext holds the sections features registered (RegisterSection).
	ext map[string]any
}

// Listen holds the addresses firmad serves on.
type Listen struct {
	GRPC string `yaml:"grpc"`
	HTTP string `yaml:"http"` // /healthz, /readyz, /metrics
	// ShutdownTimeout bounds how long in-flight calls may drain after
	// SIGTERM before they are cut off.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// GRPCMaxMessageBytes bounds one gRPC request: a CreateBatch carries
	// whole documents, so it must hold a portal's largest batch.
	GRPCMaxMessageBytes int `yaml:"grpc_max_message_bytes"`
}

// DefaultGRPCMaxMessageBytes holds a batch at the portals' default limits
// (50 documents of 8 MiB, portal.DefaultMaxDocuments and
// portal.DefaultMaxDocBytes) with room for the rest of the request.
const DefaultGRPCMaxMessageBytes = 50*8<<20 + 1<<20

// TLS configures the server certificate and, for mTLS operators, the CA
// that client certificates must chain to. Empty Cert and Key mean plaintext,
// which is allowed only on loopback addresses.
type TLS struct {
	Cert     string `yaml:"cert,omitempty"`
	Key      string `yaml:"key,omitempty"`
	ClientCA string `yaml:"client_ca,omitempty"`
}

// Enabled reports whether the listeners serve TLS.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" }

// HSM says which PKCS#11 token holds the keys and how to use it.
type HSM struct {
	Module         string        `yaml:"module"`             // path of the PKCS#11 library
	TokenLabel     string        `yaml:"token_label"`        // CKA_LABEL of the token
	URI            string        `yaml:"uri,omitempty"`      // RFC 7512 pkcs11: URI, instead of module + token_label
	PINFile        string        `yaml:"pin_file,omitempty"` // file holding the user PIN
	Sessions       int           `yaml:"sessions,omitempty"`
	AcquireTimeout time.Duration `yaml:"acquire_timeout"`
	KeyMode        string        `yaml:"key_mode"` // token | wrapped
	CacheSize      int           `yaml:"cache_size"`
	KEKLabel       string        `yaml:"kek_label"`
	VerifyECDSA    bool          `yaml:"verify_ecdsa"`
	// SoftHSM2Conf, if set, is exported as SOFTHSM2_CONF before the module
	// is loaded, so that a local SoftHSM2 token store needs no environment.
	SoftHSM2Conf string `yaml:"softhsm2_conf,omitempty"`

	// PIN is resolved by Load from FIRMA_HSM_PIN or the PIN file; it has no
	// YAML key so that it can never be read from the config file.
	PIN Secret `yaml:"-"`
}

// Store selects the persistence backend: one SQLite file, or a PostgreSQL
// database that several firmad nodes share.
type Store struct {
	Driver string `yaml:"driver"`         // sqlite | postgres
	Path   string `yaml:"path,omitempty"` // sqlite: the database file
	// DSN is the PostgreSQL connection string (libpq key=value or
	// postgres:// URL; pgxpool settings such as pool_max_conns allowed).
	// In the file it must not hold a password: give the whole DSN in
	// FIRMA_STORE_DSN or in DSNFile, or the password in a PGPASSFILE.
	DSN     Secret `yaml:"dsn,omitempty"`
	DSNFile string `yaml:"dsn_file,omitempty"` // file holding the DSN, read at start
	// AttemptSweepInterval is how often firmad deletes the attempt
	// counters (wrong codes and passwords, /me sign-outs) that count
	// nothing any more.
	AttemptSweepInterval time.Duration `yaml:"attempt_sweep_interval"`
}

// Auth lists the operators allowed to call the service.
type Auth struct {
	Operators []Operator `yaml:"operators"`
}

// Operator is one authenticated caller: by bearer token, by mTLS client
// certificate, or both. Only SHA-256 digests are configured, never the token.
type Operator struct {
	Name        string `yaml:"name"`
	TokenSHA256 string `yaml:"token_sha256,omitempty"` // hex SHA-256 of the bearer token
	CertSHA256  string `yaml:"cert_sha256,omitempty"`  // hex SHA-256 of the client certificate (DER); colons allowed
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | text
}

// Secret is a string that never prints, logs or marshals its value.
type Secret string

const redacted = "[REDACTED]"

var (
	_ fmt.Stringer   = Secret("")
	_ slog.LogValuer = Secret("")
	_ yaml.Marshaler = Secret("")
	_ json.Marshaler = Secret("")
	_ error          = (*FieldError)(nil)
	_ yaml.Marshaler = Config{}
)

// String hides the value.
func (Secret) String() string { return redacted }

// GoString hides the value from %#v.
func (Secret) GoString() string { return redacted }

// LogValue hides the value from log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalYAML hides the value from YAML output.
func (Secret) MarshalYAML() (any, error) { return redacted, nil }

// MarshalJSON hides the value from encoding/json (slog's JSON handler).
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText hides the value from every text encoder.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the secret itself, for the one call that needs it.
func (s Secret) Reveal() string { return string(s) }

// Default returns the embedded defaults: loopback listeners, a SQLite file
// and a SoftHSM2 token under ./var, as `make run` uses them.
func Default() *Config {
	return &Config{
		ext: defaultSections(),
		Listen: Listen{GRPC: "127.0.0.1:7700", HTTP: "127.0.0.1:7780", ShutdownTimeout: 30 * time.Second,
			GRPCMaxMessageBytes: DefaultGRPCMaxMessageBytes},
		HSM: HSM{
			Module:     SoftHSM2Module(),
			TokenLabel: "firma",
			// Two per core, as keystore.DefaultSessions: one session per core
			// can wait on the token while another is being prepared.
			Sessions:       2 * runtime.GOMAXPROCS(0),
			AcquireTimeout: 5 * time.Second,
			KeyMode:        "token",
			CacheSize:      10000,
			KEKLabel:       "firma-kek",
		},
		Store: Store{Driver: "sqlite", Path: "var/firma.db", AttemptSweepInterval: 10 * time.Minute},
		Log:   Log{Level: "info", Format: "json"},
	}
}

// SoftHSM2Module returns the path of the installed SoftHSM2 module, or the
// Debian path if none is installed so that the error names a useful file.
func SoftHSM2Module() string {
	for _, m := range softHSM2Paths {
		if _, err := os.Stat(m); err == nil {
			return m
		}
	}
	return softHSM2Paths[0]
}

var softHSM2Paths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// IsSoftHSM2 reports whether the configured module is SoftHSM2.
func (h HSM) IsSoftHSM2() bool { return strings.Contains(h.Module, "softhsm2") }

// Load builds the configuration: defaults, then the YAML file at path (if
// path is not empty), then FIRMA_* variables from getenv, then the flags in
// fs that were set on the command line (see RegisterFlags). It resolves a
// pkcs11: URI, reads the PIN and validates the result.
func Load(path string, getenv func(string) string, fs *flag.FlagSet) (*Config, error) {
	c := Default()
	if path != "" {
		if err := c.LoadFile(path); err != nil {
			return nil, err
		}
	}
	return c.finish(getenv, fs)
}

// finish applies the environment and the flags over what is loaded,
// resolves a pkcs11: URI, validates and reads the PIN.
func (c *Config) finish(getenv func(string) string, fs *flag.FlagSet) (*Config, error) {
	if err := c.ApplyEnv(getenv); err != nil {
		return nil, err
	}
	if fs != nil {
		if err := c.ApplyFlags(fs); err != nil {
			return nil, err
		}
	}
	if err := c.ResolveURI(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := c.ReadPIN(getenv); err != nil {
		return nil, err
	}
	if err := c.Store.ReadDSN(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadFile reads the YAML file at path over c. Unknown keys are errors.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := c.Decode(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Decode reads YAML from r over c. Unknown keys are errors, and a PIN in
// the document is refused with an error that does not repeat it.
func (c *Config) Decode(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := refusePIN(&doc); err != nil {
		return err
	}
	if err := refuseStorePassword(&doc); err != nil {
		return err
	}
	if c.ext == nil {
		c.ext = defaultSections()
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c.decodeTarget()); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrInvalid, readable(err))
	}
	return nil
}

// LoadFilePartial reads the YAML file at path like LoadFile, but skips
// top-level sections that no feature linked into this program registered.
// It is for tools that link only some features (firmactl reading
// firmad.yaml); firmad itself uses LoadFile, which refuses them.
func (c *Config) LoadFilePartial(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config %s: %w: %w", path, ErrInvalid, err)
	}
	if c.ext == nil {
		c.ext = defaultSections()
	}
	if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
		known := map[string]bool{}
		for _, f := range reflect.VisibleFields(reflect.TypeOf(Config{})) {
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			known[tag] = true
		}
		for name := range c.ext {
			known[name] = true
		}
		root := doc.Content[0]
		kept := root.Content[:0:0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if known[root.Content[i].Value] {
				kept = append(kept, root.Content[i], root.Content[i+1])
			}
		}
		root.Content = kept
		if b, err = yaml.Marshal(&doc); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := c.Decode(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

var unknownFieldRe = regexp.MustCompile(`field (\S+) not found in type .*$`)

// readable rewrites the strict decoder's "field x not found in type
// struct {...}", which would show the run-time type decodeTarget makes,
// as "unknown key x".
func readable(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = unknownFieldRe.ReplaceAllString(m, "unknown key $1")
	}
	return &yaml.TypeError{Errors: msgs}
}

// refusePIN fails if the document has an hsm.pin (or similar) key. It is
// checked before decoding so that the strict decoder's "field not found"
// error, which is correct but unhelpful, is never what the operator sees.
func refusePIN(doc *yaml.Node) error {
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	hsm := mapValue(root, "hsm")
	if hsm == nil {
		return nil
	}
	for _, k := range []string{"pin", "user_pin", "pin_value"} {
		if mapValue(hsm, k) != nil {
			return &FieldError{Field: "hsm." + k, Msg: "the PIN must not be in the config file; set " + EnvPIN + " or hsm.pin_file"}
		}
	}
	return nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// Field is one scalar setting that env variables and flags can override.
type Field struct {
	Key  string // YAML path, e.g. "hsm.token_label"
	Env  string // e.g. "FIRMA_HSM_TOKEN_LABEL"
	Flag string // e.g. "hsm-token-label"
	Kind string // string | int | bool | duration
}

// Fields lists every scalar setting, in struct order. Lists (auth.operators)
// can only be set in the file.
func Fields() []Field {
	var out []Field
	walkAll(Default(), func(key string, v reflect.Value) {
		out = append(out, Field{
			Key:  key,
			Env:  EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key)),
			Flag: strings.NewReplacer(".", "-", "_", "-").Replace(key),
			Kind: kindOf(v),
		})
	})
	return out
}

// walkAll walks the built-in settings and then every registered section.
func walkAll(c *Config, fn func(key string, v reflect.Value)) {
	walk(reflect.ValueOf(c).Elem(), "", fn)
	for _, s := range sections {
		if v, ok := c.ext[s.name]; ok {
			walk(reflect.ValueOf(v).Elem(), s.name, fn)
		}
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

func kindOf(v reflect.Value) string {
	if v.Type() == durationType {
		return "duration"
	}
	switch v.Kind() {
	case reflect.Int:
		return "int"
	case reflect.Bool:
		return "bool"
	}
	return "string"
}

// walk calls fn for every settable scalar field under v with its dotted
// YAML key.
func walk(v reflect.Value, prefix string, fn func(key string, v reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		fv := v.Field(i)
		switch {
		case fv.Kind() == reflect.Struct:
			walk(fv, key, fn)
		case fv.Type() == durationType, fv.Kind() == reflect.String, fv.Kind() == reflect.Int, fv.Kind() == reflect.Bool:
			fn(key, fv)
		}
	}
}

// set parses s into the field with the given key.
func (c *Config) set(key, s string) error {
	var err error
	found := false
	if c.ext == nil {
		c.ext = defaultSections()
	}
	walkAll(c, func(k string, v reflect.Value) {
		if k != key {
			return
		}
		found = true
		switch kindOf(v) {
		case "duration":
			var d time.Duration
			if d, err = time.ParseDuration(s); err == nil {
				v.SetInt(int64(d))
			}
		case "int":
			var n int
			if n, err = strconv.Atoi(s); err == nil {
				v.SetInt(int64(n))
			}
		case "bool":
			var b bool
			if b, err = strconv.ParseBool(s); err == nil {
				v.SetBool(b)
			}
		default:
			v.SetString(s)
		}
	})
	if !found {
		return fmt.Errorf("unknown setting %q", key)
	}
	if err != nil {
		return &FieldError{Field: key, Msg: "cannot parse " + strconv.Quote(s) + ": want a " + kindName(key)}
	}
	return nil
}

func kindName(key string) string {
	for _, f := range Fields() {
		if f.Key == key {
			switch f.Kind {
			case "duration":
				return "duration such as 5s"
			case "int":
				return "whole number"
			case "bool":
				return "boolean (true or false)"
			}
		}
	}
	return "string"
}

// ApplyEnv overrides settings from FIRMA_* variables that are set and not
// empty. A nil getenv means os.Getenv.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	var errs []error
	for _, f := range Fields() {
		if v := getenv(f.Env); v != "" {
			if err := c.set(f.Key, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.Env, err))
			}
		}
	}
	return errors.Join(errs...)
}

// flagValue records a flag's text; ApplyFlags parses it once the file and
// the environment are loaded, so that flags win over both.
type flagValue struct{ s string }

var _ flag.Value = (*flagValue)(nil)

func (f *flagValue) String() string     { return f.s }
func (f *flagValue) Set(s string) error { f.s = s; return nil }

// RegisterFlags adds one flag per setting to fs, e.g. -hsm-token-label.
func RegisterFlags(fs *flag.FlagSet) {
	for _, f := range Fields() {
		fs.Var(&flagValue{}, f.Flag, "override "+f.Key+" ("+f.Kind+", env "+f.Env+")")
	}
}

// ApplyFlags overrides settings from the flags of fs that were set.
func (c *Config) ApplyFlags(fs *flag.FlagSet) error {
	byFlag := map[string]string{}
	for _, f := range Fields() {
		byFlag[f.Flag] = f.Key
	}
	var errs []error
	fs.Visit(func(fl *flag.Flag) {
		key, ok := byFlag[fl.Name]
		if !ok {
			return
		}
		if err := c.set(key, fl.Value.String()); err != nil {
			errs = append(errs, fmt.Errorf("-%s: %w", fl.Name, err))
		}
	})
	return errors.Join(errs...)
}

// ResolveURI fills hsm.module and hsm.token_label from hsm.uri. A URI value
// that contradicts an explicitly different setting is an error.
func (c *Config) ResolveURI() error {
	if c.HSM.URI == "" {
		return nil
	}
	u, err := ParsePKCS11URI(c.HSM.URI)
	if err != nil {
		return &FieldError{Field: "hsm.uri", Msg: err.Error()}
	}
	if u.Token == "" {
		return &FieldError{Field: "hsm.uri", Msg: "has no token= attribute"}
	}
	if u.Serial != "" || u.SlotID != "" {
		// The keystore finds its token by label alone; a selector it would
		// silently ignore could make it use another token than intended.
		return &FieldError{Field: "hsm.uri", Msg: "serial= and slot-id= are not supported: the token is found by its label (token=)"}
	}
	c.HSM.TokenLabel = u.Token
	if u.ModulePath != "" {
		c.HSM.Module = u.ModulePath
	}
	pf, err := u.PINFile()
	if err != nil {
		return &FieldError{Field: "hsm.uri", Msg: err.Error()}
	}
	if pf != "" {
		if c.HSM.PINFile != "" && c.HSM.PINFile != pf {
			return &FieldError{Field: "hsm.pin_file", Msg: "conflicts with pin-source of hsm.uri"}
		}
		c.HSM.PINFile = pf
	}
	return nil
}

// ReadPIN sets hsm.PIN from FIRMA_HSM_PIN or, failing that, hsm.pin_file.
// Surrounding white space (a trailing newline) is dropped.
func (c *Config) ReadPIN(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	if p := getenv(EnvPIN); p != "" {
		c.HSM.PIN = Secret(p)
		return nil
	}
	if c.HSM.PINFile == "" {
		return &FieldError{Field: "hsm.pin_file", Msg: "no PIN: set " + EnvPIN + " or hsm.pin_file"}
	}
	b, err := os.ReadFile(c.HSM.PINFile)
	if err != nil {
		// The error names the file, never its contents.
		return &FieldError{Field: "hsm.pin_file", Msg: err.Error()}
	}
	p := strings.TrimSpace(string(b))
	if p == "" {
		return &FieldError{Field: "hsm.pin_file", Msg: c.HSM.PINFile + " is empty"}
	}
	c.HSM.PIN = Secret(p)
	return nil
}

// FieldError is a validation error about one setting.
type FieldError struct {
	Field string
	Msg   string
}

// Error is "field: problem".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes every FieldError match ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Validate checks every setting and returns all problems at once, each a
// *FieldError naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}

	tls := c.TLS.Enabled()
	for _, l := range []struct{ field, addr string }{{"listen.grpc", c.Listen.GRPC}, {"listen.http", c.Listen.HTTP}} {
		if l.addr == "" {
			bad(l.field, "must be set (host:port)")
			continue
		}
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			bad(l.field, "%q is not host:port", l.addr)
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad(l.field, "port %q is not a number from 0 to 65535", port)
			continue
		}
		if !tls && !IsLoopback(host) {
			bad(l.field, "%q is not a loopback address: plaintext is only allowed on loopback; set tls.cert and tls.key", l.addr)
		}
	}
	if c.Listen.ShutdownTimeout <= 0 {
		bad("listen.shutdown_timeout", "must be > 0")
	}
	if c.Listen.GRPCMaxMessageBytes < 4<<20 || c.Listen.GRPCMaxMessageBytes > 2<<30-1 {
		bad("listen.grpc_max_message_bytes", "must be from 4194304 (4 MiB, gRPC's default) to 2147483647")
	}
	if c.Listen.GRPC != "" && c.Listen.GRPC == c.Listen.HTTP && !strings.HasSuffix(c.Listen.GRPC, ":0") {
		bad("listen.http", "must differ from listen.grpc")
	}

	switch {
	case c.TLS.Cert != "" && c.TLS.Key == "":
		bad("tls.key", "must be set when tls.cert is")
	case c.TLS.Key != "" && c.TLS.Cert == "":
		bad("tls.cert", "must be set when tls.key is")
	}
	if c.TLS.ClientCA != "" && !tls {
		bad("tls.client_ca", "needs tls.cert and tls.key")
	}
	for _, f := range []struct{ field, path string }{{"tls.cert", c.TLS.Cert}, {"tls.key", c.TLS.Key}, {"tls.client_ca", c.TLS.ClientCA}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				bad(f.field, "%v", err)
			}
		}
	}

	h := c.HSM
	if h.Module == "" {
		bad("hsm.module", "must be set (path of the PKCS#11 library), or give hsm.uri with module-path")
	}
	if h.TokenLabel == "" {
		bad("hsm.token_label", "must be set, or give hsm.uri with token=")
	}
	if h.Sessions <= 0 {
		bad("hsm.sessions", "must be > 0")
	}
	if h.AcquireTimeout <= 0 {
		bad("hsm.acquire_timeout", "must be > 0")
	}
	if h.KeyMode != "token" && h.KeyMode != "wrapped" {
		bad("hsm.key_mode", "%q: must be token or wrapped", h.KeyMode)
	}
	if h.CacheSize == 0 || h.CacheSize < -1 {
		bad("hsm.cache_size", "must be > 0, or -1 for no cache (an unwrap for every signature)")
	}
	if h.KEKLabel == "" {
		bad("hsm.kek_label", "must be set")
	}

	c.Store.validate(bad)

	if len(c.Auth.Operators) == 0 {
		bad("auth.operators", "at least one operator is required: signing is never anonymous")
	}
	names := map[string]bool{}
	for i := range c.Auth.Operators {
		op := &c.Auth.Operators[i]
		f := fmt.Sprintf("auth.operators[%d]", i)
		if op.Name == "" {
			bad(f+".name", "must be set")
		} else if names[op.Name] {
			bad(f+".name", "%q is used twice", op.Name)
		}
		names[op.Name] = true
		if op.TokenSHA256 == "" && op.CertSHA256 == "" {
			bad(f, "needs token_sha256 or cert_sha256")
		}
		if op.TokenSHA256 != "" {
			if n, err := normHex(op.TokenSHA256); err != nil {
				bad(f+".token_sha256", "%v", err)
			} else {
				op.TokenSHA256 = n
			}
		}
		if op.CertSHA256 != "" {
			if n, err := normHex(op.CertSHA256); err != nil {
				bad(f+".cert_sha256", "%v", err)
			} else {
				op.CertSHA256 = n
			}
			if !tls {
				bad(f+".cert_sha256", "client certificates need tls.cert, tls.key and tls.client_ca")
			} else if c.TLS.ClientCA == "" {
				bad(f+".cert_sha256", "client certificates need tls.client_ca")
			}
		}
	}

	if _, err := ParseLevel(c.Log.Level); err != nil {
		bad("log.level", "%v", err)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format", "%q: must be json or text", c.Log.Format)
	}
	errs = append(errs, c.validateSections()...)
	return errors.Join(errs...)
}

// normHex checks a hex SHA-256 (colons allowed, as openssl prints it) and
// returns it in lower case without colons.
func normHex(s string) (string, error) {
	s = strings.ToLower(strings.ReplaceAll(s, ":", ""))
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return "", errors.New("must be 64 hex digits (a SHA-256)")
	}
	return s, nil
}

// IsLoopback reports whether host is a loopback name or address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseLevel parses a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: must be debug, info, warn or error", s)
	}
	return l, nil
}

// Logger returns a slog.Logger writing to w as the config says.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	lvl, _ := ParseLevel(c.Log.Level)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
