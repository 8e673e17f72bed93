package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/firma-cloud/firma/api/firmav1"
)

func init() {
	var gen struct{ user, typ, mode, out string }
	register(&command{
		name:    "keys generate",
		summary: "generate a key pair in the HSM for a user; prints its id and PEM public key",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&gen.user, "user", "", "owner of the key: the user's DNI/NIE (required)")
			fs.StringVar(&gen.typ, "type", "ec-p256", "ec-p256, ec-p384, rsa-2048 or rsa-3072")
			fs.StringVar(&gen.mode, "mode", "", "token or wrapped (default: firmad's hsm.key_mode)")
			fs.StringVar(&gen.out, "out", "", "also write the PEM public key to this file")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			if gen.user == "" {
				return usageErr("--user is required")
			}
			t, ok := keyTypeFlag[gen.typ]
			if !ok {
				return usageErr("--type %q: want ec-p256, ec-p384, rsa-2048 or rsa-3072", gen.typ)
			}
			m, ok := keyModeFlag[gen.mode]
			if !ok {
				return usageErr("--mode %q: want token or wrapped", gen.mode)
			}
			conn, err := e.conn.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			cctx, cancel := e.conn.callCtx(ctx)
			defer cancel()
			resp, err := firmav1.NewKeyServiceClient(conn).GenerateKey(cctx, &firmav1.GenerateKeyRequest{Owner: gen.user, Type: t, Mode: m})
			if err != nil {
				return err
			}
			k := resp.GetKey()
			fmt.Fprintf(e.stdout, "key %s\n", k.GetId())
			fmt.Fprintf(e.stdout, "owner %s, type %s, mode %s\n", k.GetOwner(), typeName(k.GetType()), modeName(k.GetMode()))
			if gen.out != "" {
				if err := os.WriteFile(gen.out, []byte(k.GetPublicKeyPem()), 0o644); err != nil {
					return fmt.Errorf("write public key: %w", err)
				}
				fmt.Fprintf(e.stdout, "public key written to %s\n", gen.out)
			}
			fmt.Fprint(e.stdout, k.GetPublicKeyPem())
			return nil
		},
	})

	var list struct {
		user string
		page int
	}
	register(&command{
		name:    "keys list",
		summary: "list keys, all or one user's",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&list.user, "user", "", "only this user's keys")
			fs.IntVar(&list.page, "page-size", 500, "keys fetched per call")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			conn, err := e.conn.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			c := firmav1.NewKeyServiceClient(conn)
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tOWNER\tTYPE\tMODE\tCREATED\tSTATE")
			token := ""
			for {
				cctx, cancel := e.conn.callCtx(ctx)
				resp, err := c.ListKeys(cctx, &firmav1.ListKeysRequest{Owner: list.user, PageSize: int32(list.page), PageToken: token})
				cancel()
				if err != nil {
					return err
				}
				for _, k := range resp.GetKeys() {
					state := "live"
					if k.GetDestroyTime() != nil {
						state = "destroyed " + k.GetDestroyTime().AsTime().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.GetId(), k.GetOwner(), typeName(k.GetType()), modeName(k.GetMode()),
						k.GetCreateTime().AsTime().Format(time.RFC3339), state)
				}
				if token = resp.GetNextPageToken(); token == "" {
					break
				}
			}
			return tw.Flush()
		},
	})

	var pub struct{ out string }
	register(&command{
		name:    "keys pubkey",
		args:    "ID",
		summary: "print or save a key's PEM public key",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&pub.out, "out", "", "write the PEM public key to this file instead of printing it")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageErr("want exactly one key ID")
			}
			conn, err := e.conn.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			cctx, cancel := e.conn.callCtx(ctx)
			defer cancel()
			resp, err := firmav1.NewKeyServiceClient(conn).GetPublicKey(cctx, &firmav1.GetPublicKeyRequest{KeyId: args[0]})
			if err != nil {
				return err
			}
			if pub.out == "" {
				fmt.Fprint(e.stdout, resp.GetKey().GetPublicKeyPem())
				return nil
			}
			if err := os.WriteFile(pub.out, []byte(resp.GetKey().GetPublicKeyPem()), 0o644); err != nil {
				return fmt.Errorf("write public key: %w", err)
			}
			return nil
		},
	})

	register(&command{
		name:    "keys destroy",
		args:    "ID",
		summary: "destroy a key's private half in the HSM (irreversible)",
		remote:  true,
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageErr("want exactly one key ID")
			}
			conn, err := e.conn.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			cctx, cancel := e.conn.callCtx(ctx)
			defer cancel()
			resp, err := firmav1.NewKeyServiceClient(conn).DestroyKey(cctx, &firmav1.DestroyKeyRequest{KeyId: args[0]})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "key %s destroyed at %s\n", resp.GetKey().GetId(), resp.GetKey().GetDestroyTime().AsTime().Format(time.RFC3339))
			return nil
		},
	})
}

var keyTypeFlag = map[string]firmav1.KeyType{
	"ec-p256":  firmav1.KeyType_KEY_TYPE_EC_P256,
	"ec-p384":  firmav1.KeyType_KEY_TYPE_EC_P384,
	"rsa-2048": firmav1.KeyType_KEY_TYPE_RSA_2048,
	"rsa-3072": firmav1.KeyType_KEY_TYPE_RSA_3072,
}

var keyModeFlag = map[string]firmav1.KeyMode{
	"":        firmav1.KeyMode_KEY_MODE_UNSPECIFIED,
	"token":   firmav1.KeyMode_KEY_MODE_TOKEN,
	"wrapped": firmav1.KeyMode_KEY_MODE_WRAPPED,
}

func typeName(t firmav1.KeyType) string {
	for n, v := range keyTypeFlag {
		if v == t {
			return n
		}
	}
	return t.String()
}

func modeName(m firmav1.KeyMode) string {
	return strings.ToLower(strings.TrimPrefix(m.String(), "KEY_MODE_"))
}
