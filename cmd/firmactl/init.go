package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
)

func init() {
	var o initOpts
	register(&command{
		name:    "init",
		summary: "create local state: SoftHSM2 token, PIN, operator token, firmad.yaml, key-encryption key, root and issuing CAs (idempotent)",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.state, "state", "var", "state folder to create or reuse")
			fs.StringVar(&o.module, "module", "", "PKCS#11 module (default: SoftHSM2)")
			fs.StringVar(&o.label, "token-label", "firma", "token label")
			fs.StringVar(&o.grpc, "listen-grpc", "", "gRPC address for the new config (default 127.0.0.1:7700)")
			fs.StringVar(&o.http, "listen-http", "", "HTTP address for the new config (default 127.0.0.1:7780)")
			fs.StringVar(&o.keyMode, "key-mode", "token", "key mode for the new config: token or wrapped")
			fs.StringVar(&o.caBaseURL, "ca-base-url", "", "public URL of firmad's HTTP listener for the new config's ca.base_url "+
				"(CRL, OCSP and CA certificate URLs in certificates; default http://<listen-http>)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("init takes no arguments")
			}
			return runInit(ctx, e, o)
		},
	})
}

type initOpts struct {
	state, module, label, grpc, http, keyMode, caBaseURL string
}

// runInit makes what firmad needs on a dev machine, reusing anything that
// is already there, so running it twice changes nothing.
func runInit(ctx context.Context, e *env, o initOpts) error {
	if o.keyMode != "token" && o.keyMode != "wrapped" {
		return usageErr("--key-mode %q: want token or wrapped", o.keyMode)
	}
	if err := os.MkdirAll(o.state, 0o700); err != nil {
		return fmt.Errorf("create state folder: %w", err)
	}
	cfgPath := filepath.Join(o.state, "firmad.yaml")
	cfg := config.Default()
	existing := false
	if err := cfg.LoadFilePartial(cfgPath); err == nil {
		existing = true
		fmt.Fprintf(e.stdout, "reusing %s\n", cfgPath)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	} else {
		fillNewConfig(cfg, o)
	}

	pinFile := cfg.HSM.PINFile
	if pinFile == "" {
		pinFile = filepath.Join(o.state, "hsm.pin")
	}
	pin, created, err := secretFile(pinFile, e.getenv(config.EnvPIN), randomPIN)
	if err != nil {
		return fmt.Errorf("hsm PIN: %w", err)
	}
	if created {
		fmt.Fprintf(e.stdout, "wrote HSM user PIN to %s\n", pinFile)
	}

	if cfg.HSM.IsSoftHSM2() && cfg.HSM.SoftHSM2Conf != "" {
		if err := softHSMToken(e, cfg, o.state, pin); err != nil {
			return err
		}
	}

	tokenFile := filepath.Join(o.state, "operator.token")
	token, created, err := secretFile(tokenFile, "", randomToken)
	if err != nil {
		return fmt.Errorf("operator token: %w", err)
	}
	if created {
		fmt.Fprintf(e.stdout, "wrote operator bearer token to %s\n", tokenFile)
	}
	sum := api.TokenSHA256(token)
	known := false
	for _, op := range cfg.Auth.Operators {
		if strings.EqualFold(strings.ReplaceAll(op.TokenSHA256, ":", ""), sum) {
			known = true
		}
	}
	if !known {
		if existing {
			return fmt.Errorf("%s has no operator for the token in %s: add {name: ..., token_sha256: %s} to auth.operators", cfgPath, tokenFile, sum)
		}
		cfg.Auth.Operators = append(cfg.Auth.Operators, config.Operator{Name: "local-operator", TokenSHA256: sum})
	}

	// Check the whole configuration as firmad will before writing it.
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s: %w", cfgPath, err)
	}
	if !existing {
		if err := writeConfig(cfgPath, cfg); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s\n", cfgPath)
	}

	// Make the key-encryption key so that wrapped keys work from the
	// first call.
	cfg.HSM.PIN = config.Secret(pin)
	if cfg.HSM.SoftHSM2Conf != "" {
		os.Setenv("SOFTHSM2_CONF", cfg.HSM.SoftHSM2Conf)
	}
	db, err := openStore(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// Every key made from here on is on the audit log (openAudit).
	l, closeLog, err := openAudit(ctx, cfg, db)
	if err != nil {
		return err
	}
	defer closeLog()
	ks, err := keystore.Open(ctx, keystore.Config{Module: cfg.HSM.Module, TokenLabel: cfg.HSM.TokenLabel,
		PIN: cfg.HSM.PIN.Reveal(), Sessions: 1, KEKLabel: cfg.HSM.KEKLabel}, db, nil)
	if err != nil {
		return fmt.Errorf("open token: %w", err)
	}
	defer ks.Close()
	found, err := ks.HasKEK(ctx)
	if err != nil {
		return fmt.Errorf("key-encryption key: %w", err)
	}
	if found {
		err = ks.InitKEK(ctx) // loads it; nothing to record
	} else {
		err = changeKEK(ctx, l, "kek:"+cfg.HSM.KEKLabel+"@"+cfg.HSM.TokenLabel,
			map[string]string{"purpose": "kek", "label": cfg.HSM.KEKLabel, "token_label": cfg.HSM.TokenLabel},
			ks.InitKEK)
	}
	if err != nil {
		return fmt.Errorf("key-encryption key: %w", err)
	}
	fmt.Fprintf(e.stdout, "token %q ready (module %s), key-encryption key %q present\n", cfg.HSM.TokenLabel, cfg.HSM.Module, cfg.HSM.KEKLabel)
	if err := initCA(ctx, e, cfg, db, ks, l, o.state); err != nil {
		return err
	}
	if err := initVerifierKey(ctx, e, cfg, ks, l, o.state); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "start the service with: firmad -config %s\n", cfgPath)
	return nil
}

func fillNewConfig(cfg *config.Config, o initOpts) {
	if o.grpc != "" {
		cfg.Listen.GRPC = o.grpc
	}
	if o.http != "" {
		cfg.Listen.HTTP = o.http
	}
	if o.module != "" {
		cfg.HSM.Module = o.module
	}
	cfg.HSM.TokenLabel = o.label
	cfg.HSM.KeyMode = o.keyMode
	cfg.HSM.PINFile = filepath.Join(o.state, "hsm.pin")
	if cfg.HSM.IsSoftHSM2() {
		cfg.HSM.SoftHSM2Conf = filepath.Join(o.state, "softhsm", "softhsm2.conf")
	}
	cfg.Store.Path = filepath.Join(o.state, "firma.db")
	cfg.Log.Format = "text"
	if c := config.SectionOf[ca.Config](cfg, ca.SectionName); c != nil && o.caBaseURL != "" {
		c.BaseURL = o.caBaseURL
	}
}

// softHSMToken makes the SoftHSM2 token store under STATE/softhsm and
// initialises the token unless it exists. The SO PIN is kept beside the
// user PIN so the token can be administered later.
func softHSMToken(e *env, cfg *config.Config, state, pin string) error {
	conf := cfg.HSM.SoftHSM2Conf
	dir, err := filepath.Abs(filepath.Join(filepath.Dir(conf), "tokens"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create token folder: %w", err)
	}
	if _, err := os.Stat(conf); errors.Is(err, os.ErrNotExist) {
		body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", dir)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", conf, err)
		}
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		return errors.New("softhsm2-util not found: apt-get install -y softhsm2")
	}
	util := func(args ...string) (string, error) {
		cmd := exec.Command("softhsm2-util", args...)
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := util("--show-slots")
	if err != nil {
		return fmt.Errorf("softhsm2-util --show-slots: %w: %s", err, strings.TrimSpace(out))
	}
	if hasTokenLabel(out, cfg.HSM.TokenLabel) {
		fmt.Fprintf(e.stdout, "reusing SoftHSM2 token %q in %s\n", cfg.HSM.TokenLabel, dir)
		return nil
	}
	soPin, _, err := secretFile(filepath.Join(state, "hsm.so-pin"), "", randomPIN)
	if err != nil {
		return fmt.Errorf("hsm SO PIN: %w", err)
	}
	// softhsm2-util takes PINs only as arguments or from a terminal; its
	// output never repeats them.
	if out, err := util("--init-token", "--free", "--label", cfg.HSM.TokenLabel, "--pin", pin, "--so-pin", soPin); err != nil {
		return fmt.Errorf("softhsm2-util --init-token: %w: %s", err, strings.TrimSpace(out))
	}
	fmt.Fprintf(e.stdout, "created SoftHSM2 token %q in %s\n", cfg.HSM.TokenLabel, dir)
	return nil
}

// hasTokenLabel reports whether softhsm2-util --show-slots lists a token
// with exactly this label.
func hasTokenLabel(showSlots, label string) bool {
	for _, line := range strings.Split(showSlots, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && strings.TrimSpace(k) == "Label" && strings.TrimSpace(v) == label {
			return true
		}
	}
	return false
}

// randomPIN is 32 hex digits: 128 bits within the printable set every
// token accepts.
func randomPIN() (string, error) {
	r := make([]byte, 16)
	if _, err := rand.Read(r); err != nil {
		return "", err
	}
	return hex.EncodeToString(r), nil
}

// randomToken is a 256-bit bearer token.
func randomToken() (string, error) {
	r := make([]byte, 32)
	if _, err := rand.Read(r); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(r), nil
}

// secretFile returns the secret in path, creating the file (mode 0600)
// with given, or with gen's secret if given is empty. The bool says
// whether the file was created.
func secretFile(path, given string, gen func() (string, error)) (string, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", false, fmt.Errorf("%s is empty", path)
		}
		return s, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	s := given
	if s == "" {
		if s, err = gen(); err != nil {
			return "", false, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Close(); err != nil {
		return "", false, err
	}
	return s, true, nil
}

func writeConfig(path string, cfg *config.Config) error {
	out := *cfg
	// Left out, hsm.sessions follows the CPUs of the machine firmad runs on.
	out.HSM.Sessions = 0
	b, err := yaml.Marshal(&out)
	if err != nil {
		return fmt.Errorf("marshal config: %w", err)
	}
	head := "# firmad configuration written by 'firmactl init'. The HSM PIN is in hsm.pin_file,\n" +
		"# never here; operators are listed by the SHA-256 of their bearer token.\n"
	if err := os.WriteFile(path, append([]byte(head), b...), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// auditKeyOwner owns the audit log's checkpoint key, as in firmad
// (cmd/firmad/audit.go), which signs with the oldest live ECDSA P-256 key
// of this owner and makes one on first start if there is none.
const auditKeyOwner = "system:audit"

// initVerifierKey makes the checkpoint key now rather than at firmad's
// first start, so that the verifier key auditors pin exists before the
// service runs and can be handed to them out of band, and writes it to
// STATE/verifier.key (public; 0644).
func initVerifierKey(ctx context.Context, e *env, cfg *config.Config, ks *keystore.HSM, l *audit.Log, state string) error {
	keys, err := ks.Keys(ctx, auditKeyOwner, "", 100)
	if err != nil {
		return fmt.Errorf("audit checkpoint key: %w", err)
	}
	var k *keystore.Key
	for _, c := range keys {
		if c.DestroyedAt.IsZero() && c.Type == keystore.ECP256 && (k == nil || c.CreatedAt.Before(k.CreatedAt)) {
			k = c
		}
	}
	if k == nil {
		id, err := audit.ChangeKey(ctx, l, audit.KeyChange{Actor: offlineActor(),
			Details: map[string]string{"purpose": "audit-checkpoint", "type": string(keystore.ECP256), "mode": string(keystore.ModeToken)}},
			func(ctx context.Context) (string, error) {
				nk, err := ks.GenerateMode(ctx, auditKeyOwner, keystore.ECP256, keystore.ModeToken)
				if err != nil {
					return "", err
				}
				k = nk
				return nk.ID, nil
			})
		if err != nil {
			return fmt.Errorf("audit checkpoint key: %w", err)
		}
		fmt.Fprintf(e.stdout, "audit checkpoint key %s made in the HSM\n", id)
	}
	signer, err := ks.Signer(ctx, k.ID)
	if err != nil {
		return fmt.Errorf("audit checkpoint key: %w", err)
	}
	vkey, err := audit.NoteVerifierKey(auditSettings(cfg).Origin, signer.Public())
	if err != nil {
		return err
	}
	path := filepath.Join(state, "verifier.key")
	if err := os.WriteFile(path, []byte(vkey+"\n"), 0o644); err != nil {
		return fmt.Errorf("write verifier key: %w", err)
	}
	fmt.Fprintf(e.stdout, "wrote the audit checkpoint verifier key to %s\n", path)
	return nil
}

// stateVerifierKey runs initVerifierKey on the state's token and store
// (the store from the environment too), for 'ca init'.
func stateVerifierKey(ctx context.Context, e *env, state string) error {
	cfg, err := config.LoadPartial(filepath.Join(state, "firmad.yaml"), e.getenv, nil)
	if err != nil {
		return err
	}
	if cfg.HSM.SoftHSM2Conf != "" {
		os.Setenv("SOFTHSM2_CONF", cfg.HSM.SoftHSM2Conf)
	}
	db, err := openStore(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	l, closeLog, err := openAudit(ctx, cfg, db)
	if err != nil {
		return err
	}
	defer closeLog()
	ks, err := keystore.Open(ctx, keystore.Config{Module: cfg.HSM.Module, TokenLabel: cfg.HSM.TokenLabel,
		PIN: cfg.HSM.PIN.Reveal(), Sessions: 1, KEKLabel: cfg.HSM.KEKLabel}, db, nil)
	if err != nil {
		return fmt.Errorf("open token: %w", err)
	}
	defer ks.Close()
	return initVerifierKey(ctx, e, cfg, ks, l, state)
}

// auditSettings is the audit section of cfg, or its defaults.
func auditSettings(cfg *config.Config) audit.Config {
	if c := config.SectionOf[audit.Config](cfg, audit.SectionName); c != nil {
		return *c
	}
	return audit.DefaultConfig()
}
