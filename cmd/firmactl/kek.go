package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
)

// kekFlags name the state's token and, for 'kek clone', a target token on
// the same PKCS#11 module.
type kekFlags struct {
	state, label, soPinFile string
	toLabel, toPinFile      string
}

func (k *kekFlags) source(fs *flag.FlagSet) {
	fs.StringVar(&k.state, "state", "var", "state folder made by 'firmactl init': its token is the source")
	fs.StringVar(&k.label, "label", "", "label of the key-encryption key (default hsm.kek_label)")
}

func (k *kekFlags) target(fs *flag.FlagSet) {
	fs.StringVar(&k.toLabel, "to-token", "", "label of the target token, on the same PKCS#11 module")
	fs.StringVar(&k.toPinFile, "to-pin-file", "", "file with the target token's user PIN")
}

func (k *kekFlags) so(fs *flag.FlagSet) {
	fs.StringVar(&k.soPinFile, "so-pin-file", "", "file with the source token's security officer PIN (default STATE/hsm.so-pin)")
}

// open reads the state's configuration and returns the source token and
// the KEK label.
func (k *kekFlags) open(e *env, needSO bool) (keystore.TokenRef, string, error) {
	cfg, err := config.LoadPartial(filepath.Join(k.state, "firmad.yaml"), e.getenv, nil)
	if err != nil {
		return keystore.TokenRef{}, "", err
	}
	if cfg.HSM.SoftHSM2Conf != "" {
		os.Setenv("SOFTHSM2_CONF", cfg.HSM.SoftHSM2Conf)
	}
	src := keystore.TokenRef{Module: cfg.HSM.Module, Label: cfg.HSM.TokenLabel, PIN: cfg.HSM.PIN.Reveal()}
	if needSO {
		f := k.soPinFile
		if f == "" {
			f = filepath.Join(k.state, "hsm.so-pin")
		}
		if src.SOPIN, err = readSecret(f); err != nil {
			return src, "", fmt.Errorf("security officer PIN: %w", err)
		}
	}
	label := k.label
	if label == "" {
		label = cfg.HSM.KEKLabel
	}
	return src, label, nil
}

// audited opens the state's store and audit log (openAudit) for a
// command that makes a key; done closes both.
func (k *kekFlags) audited(ctx context.Context, e *env) (l *audit.Log, done func(), err error) {
	cfg, err := config.LoadPartial(filepath.Join(k.state, "firmad.yaml"), e.getenv, nil)
	if err != nil {
		return nil, nil, err
	}
	db, err := openStore(ctx, e, cfg)
	if err != nil {
		return nil, nil, err
	}
	l, closeLog, err := openAudit(ctx, cfg, db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return l, func() { closeLog(); db.Close() }, nil
}

// changeKEK makes a key-encryption key or transport key under
// audit.ChangeKey, keyID naming it in the records (there is no keystore
// ID: "kek:LABEL@TOKEN").
func changeKEK(ctx context.Context, l *audit.Log, keyID string, details map[string]string, do func(ctx context.Context) error) error {
	_, err := audit.ChangeKey(ctx, l, audit.KeyChange{Actor: offlineActor(), Details: details}, func(ctx context.Context) (string, error) {
		if err := do(ctx); err != nil {
			return "", err
		}
		return keyID, nil
	})
	return err
}

func (k *kekFlags) dst(src keystore.TokenRef) (keystore.TokenRef, error) {
	if k.toLabel == "" || k.toPinFile == "" {
		return keystore.TokenRef{}, usageErr("give --to-token and --to-pin-file")
	}
	pin, err := readSecret(k.toPinFile)
	if err != nil {
		return keystore.TokenRef{}, fmt.Errorf("target PIN: %w", err)
	}
	return keystore.TokenRef{Module: src.Module, Label: k.toLabel, PIN: pin}, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", errors.New(path + " is empty")
	}
	return s, nil
}

func init() {
	var k kekFlags
	register(&command{
		name:    "kek init",
		summary: "make the cluster's key-encryption key on the state's token, clonable only under a key the SO trusts; prints its check value",
		flags:   func(fs *flag.FlagSet) { k.source(fs) },
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			src, label, err := k.open(e, false)
			if err != nil {
				return err
			}
			// Opened first: with the log unavailable, nothing is made.
			l, done, err := k.audited(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			var (
				kcv  []byte
				made bool
			)
			found, err := keystore.HasKEK(ctx, src, label)
			if err != nil {
				return err
			}
			if found {
				// Nothing changes: read its check value, record nothing.
				if kcv, _, err = keystore.InitClonableKEK(ctx, src, label); err != nil {
					return err
				}
			} else if err := changeKEK(ctx, l, "kek:"+label+"@"+src.Label,
				map[string]string{"purpose": "kek", "label": label, "token_label": src.Label, "clonable": "true"},
				func(ctx context.Context) error {
					if kcv, made, err = keystore.InitClonableKEK(ctx, src, label); err == nil && !made {
						return errKeyExists
					}
					return err
				}); err != nil {
				return err
			}
			verb := "found"
			if made {
				verb = "made"
			}
			fmt.Fprintf(e.stdout, "%s key-encryption key %q on token %q\ncheck value %s\n", verb, label, src.Label, hex.EncodeToString(kcv))
			return nil
		},
	})
	var c kekFlags
	register(&command{
		name:    "kek clone",
		summary: "copy the key-encryption key to another token under an RSA-OAEP transport key (both tokens reachable from here)",
		flags:   func(fs *flag.FlagSet) { c.source(fs); c.target(fs); c.so(fs) },
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			src, label, err := c.open(e, true)
			if err != nil {
				return err
			}
			dst, err := c.dst(src)
			if err != nil {
				return err
			}
			l, done, err := c.audited(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			var kcv []byte
			if err := changeKEK(ctx, l, "kek:"+label+"@"+dst.Label,
				map[string]string{"purpose": "kek", "label": label, "token_label": dst.Label, "cloned_from": src.Label},
				func(ctx context.Context) (err error) {
					kcv, err = keystore.CloneKEK(ctx, src, dst, label)
					return err
				}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "cloned key-encryption key %q from token %q to %q\ncheck value %s (the same on both)\n",
				label, src.Label, dst.Label, hex.EncodeToString(kcv))
			return nil
		},
	})
	var tk kekFlags
	var tkOut string
	register(&command{
		name:    "kek transport-key",
		summary: "step 1 of a clone between hosts, on the new node: make the transport key pair on the state's token and write its public key",
		flags: func(fs *flag.FlagSet) {
			tk.source(fs)
			fs.StringVar(&tkOut, "out", "kek-transport.pem", "where to write the transport public key")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			dst, _, err := tk.open(e, false)
			if err != nil {
				return err
			}
			l, done, err := tk.audited(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			var pub *rsa.PublicKey
			if err := changeKEK(ctx, l, "kek-transport@"+dst.Label,
				map[string]string{"purpose": "kek-transport", "token_label": dst.Label, "replaces": "any earlier transport key"},
				func(ctx context.Context) (err error) {
					pub, err = keystore.NewTransportKey(ctx, dst)
					return err
				}); err != nil {
				return err
			}
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				return err
			}
			if err := os.WriteFile(tkOut, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s: take it to the source host for 'firmactl kek export'\n", tkOut)
			return nil
		},
	})
	var ex kekFlags
	var exIn, exOut string
	register(&command{
		name:    "kek export",
		summary: "step 2 of a clone between hosts, on a node that has the key: wrap the state's key-encryption key under the transport public key",
		flags: func(fs *flag.FlagSet) {
			ex.source(fs)
			ex.so(fs)
			fs.StringVar(&exIn, "transport", "kek-transport.pem", "transport public key from 'firmactl kek transport-key'")
			fs.StringVar(&exOut, "out", "kek.wrapped", "where to write the wrapped key-encryption key")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			src, label, err := ex.open(e, true)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(exIn)
			if err != nil {
				return err
			}
			blk, _ := pem.Decode(b)
			if blk == nil || blk.Type != "PUBLIC KEY" {
				return fmt.Errorf("%s: not a PEM public key", exIn)
			}
			pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return fmt.Errorf("%s: %w", exIn, err)
			}
			rpub, ok := pub.(*rsa.PublicKey)
			if !ok {
				return fmt.Errorf("%s: not an RSA key", exIn)
			}
			blob, kcv, err := keystore.ExportKEK(ctx, src, label, rpub)
			if err != nil {
				return err
			}
			if err := os.WriteFile(exOut, blob, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s\ncheck value %s (give it to 'firmactl kek import --check-value')\n", exOut, hex.EncodeToString(kcv))
			return nil
		},
	})
	var im kekFlags
	var imIn, imKCV string
	register(&command{
		name:    "kek import",
		summary: "step 3 of a clone between hosts, on the new node: unwrap the key-encryption key on the state's token and check it",
		flags: func(fs *flag.FlagSet) {
			im.source(fs)
			fs.StringVar(&imIn, "in", "kek.wrapped", "wrapped key-encryption key from 'firmactl kek export'")
			fs.StringVar(&imKCV, "check-value", "", "check value printed by 'firmactl kek export' (hex)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			kcv, err := hex.DecodeString(imKCV)
			if err != nil || len(kcv) == 0 {
				return usageErr("give --check-value as printed by 'firmactl kek export'")
			}
			dst, label, err := im.open(e, false)
			if err != nil {
				return err
			}
			blob, err := os.ReadFile(imIn)
			if err != nil {
				return err
			}
			l, done, err := im.audited(ctx, e)
			if err != nil {
				return err
			}
			defer done()
			if err := changeKEK(ctx, l, "kek:"+label+"@"+dst.Label,
				map[string]string{"purpose": "kek", "label": label, "token_label": dst.Label, "imported": "true",
					"transport_key": "destroyed by the import"},
				func(ctx context.Context) error { return keystore.ImportKEK(ctx, dst, label, blob, kcv) }); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "imported key-encryption key %q on token %q; check value %s matches\n", label, dst.Label, imKCV)
			return nil
		},
	})
}
