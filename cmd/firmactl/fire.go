package main

import (
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/fire"
	"github.com/firma-cloud/firma/store"
)

// FIRe applications are registered on the store directly, like 'demo
// seed': a FIRe application is a portal already registered through
// firmad, plus the appid its FIRe client sends and the digests of the
// client certificates it authenticates with.

var fireAppIDRe = regexp.MustCompile(`^[0-9A-Za-z_.-]{1,64}$`)

// fireFlags are the flags of portals fire-register and fire-rotate.
type fireFlags struct {
	state   string
	appID   string
	certs   repeated // PEM files: their SHA-256 is registered
	digests repeated // sha1:/sha256:/sha512: hex, as FIRe's database holds them
	remove  repeated
}

func (f *fireFlags) register(fs *flag.FlagSet, rotate bool) {
	fs.StringVar(&f.state, "state", "var", "state folder made by 'firmactl init' (firmad.yaml, the store)")
	fs.Var(&f.certs, "cert", "a client certificate (PEM file) the application authenticates with; repeatable")
	fs.Var(&f.digests, "digest", "a certificate digest as sha1:HEX, sha256:HEX or sha512:HEX; repeatable")
	if rotate {
		fs.Var(&f.remove, "remove", "a digest to stop accepting (sha256:HEX ...); repeatable")
	} else {
		fs.StringVar(&f.appID, "appid", "", "the appid the application's FIRe client sends (required)")
	}
}

// newDigests reads the certificates and digests given.
func (f *fireFlags) newDigests() ([]string, error) {
	var out []string
	for _, file := range f.certs {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: no PEM certificate", file)
		}
		d, _ := fire.Digest("sha256", blk.Bytes)
		out = append(out, d)
	}
	for _, s := range f.digests {
		d, err := fire.ParseDigest(s)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		out = append(out, d)
	}
	return out, nil
}

func fireStore(ctx context.Context, e *env, state string) (store.Store, error) {
	cfg, err := config.LoadPartial(filepath.Join(state, "firmad.yaml"), e.getenv, nil)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, e, cfg)
}

func printFireApp(e *env, a *store.FireApp) {
	fmt.Fprintf(e.stdout, "appid\t%s\nportal\t%s\n", a.AppID, a.PortalID)
	for _, d := range a.CertDigests {
		fmt.Fprintf(e.stdout, "certificate\t%s\n", d)
	}
}

func init() {
	var reg fireFlags
	register(&command{
		name:    "portals fire-register",
		args:    "PORTAL_ID",
		summary: "let a portal's FIRe client in: its appid and client-certificate digests (on the store; firmad may run)",
		flags:   func(fs *flag.FlagSet) { reg.register(fs, false) },
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			id, err := oneID(args)
			if err != nil {
				return err
			}
			if !fireAppIDRe.MatchString(reg.appID) {
				return usageErr("--appid is required: 1 to 64 of 0-9, A-Z, a-z, _, . and -")
			}
			digests, err := reg.newDigests()
			if err != nil {
				return err
			}
			if len(digests) == 0 {
				return usageErr("give at least one --cert or --digest")
			}
			db, err := fireStore(ctx, e, reg.state)
			if err != nil {
				return err
			}
			defer db.Close()
			if _, err := db.Portal(ctx, id); err != nil {
				return fmt.Errorf("portal %s: %w", id, err)
			}
			now := time.Now().UTC()
			a := &store.FireApp{AppID: reg.appID, PortalID: id, CertDigests: slices.Compact(slices.Sorted(slices.Values(digests))), CreatedAt: now, UpdatedAt: now}
			if old, err := db.FireApp(ctx, reg.appID); err == nil {
				if old.PortalID != id {
					return fmt.Errorf("appid %s belongs to portal %s", reg.appID, old.PortalID)
				}
				a.CreatedAt = old.CreatedAt
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err := db.PutFireApp(ctx, a); errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("portal %s already has another appid: rotate that one's certificates instead", id)
			} else if err != nil {
				return err
			}
			printFireApp(e, a)
			return nil
		},
	})
	var rot fireFlags
	register(&command{
		name:    "portals fire-rotate",
		args:    "APPID",
		summary: "add (--cert, --digest) and drop (--remove) a FIRe application's certificates",
		flags:   func(fs *flag.FlagSet) { rot.register(fs, true) },
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			appID, err := oneID(args)
			if err != nil {
				return err
			}
			add, err := rot.newDigests()
			if err != nil {
				return err
			}
			var drop []string
			for _, s := range rot.remove {
				d, err := fire.ParseDigest(s)
				if err != nil {
					return usageErr("%v", err)
				}
				drop = append(drop, d)
			}
			if len(add) == 0 && len(drop) == 0 {
				return usageErr("give --cert, --digest or --remove")
			}
			db, err := fireStore(ctx, e, rot.state)
			if err != nil {
				return err
			}
			defer db.Close()
			a, err := db.FireApp(ctx, appID)
			if err != nil {
				return fmt.Errorf("appid %s: %w", appID, err)
			}
			for _, d := range drop {
				if !slices.Contains(a.CertDigests, d) {
					return fmt.Errorf("appid %s has no certificate %s", appID, d)
				}
			}
			digests := slices.DeleteFunc(append(a.CertDigests, add...), func(d string) bool { return slices.Contains(drop, d) })
			if len(digests) == 0 {
				return errors.New("that would leave the application no certificate: register the new one first")
			}
			a.CertDigests, a.UpdatedAt = slices.Compact(slices.Sorted(slices.Values(digests))), time.Now().UTC()
			if err := db.PutFireApp(ctx, a); err != nil {
				return err
			}
			printFireApp(e, a)
			return nil
		},
	})
	var showState string
	register(&command{
		name:    "portals fire-show",
		args:    "APPID",
		summary: "show a FIRe application's portal and certificate digests",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&showState, "state", "var", "state folder made by 'firmactl init'")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			appID, err := oneID(args)
			if err != nil {
				return err
			}
			db, err := fireStore(ctx, e, showState)
			if err != nil {
				return err
			}
			defer db.Close()
			a, err := db.FireApp(ctx, appID)
			if err != nil {
				return fmt.Errorf("appid %s: %w", appID, err)
			}
			printFireApp(e, a)
			return nil
		},
	})
}
