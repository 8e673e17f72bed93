package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
)

// demoPassword is every sandbox citizen's Cl@ve Permanente password. It is
// printed on purpose: the sandbox exists so integrators can log in.
const demoPassword = "Firma-Demo-2026"

// demoCitizen is one sandbox citizen and the state a portal must handle.
type demoCitizen struct {
	id, given, surnames, mobile string
	state                       string
	basic, cert, locked, revoke bool
}

var demoCitizens = []demoCitizen{
	{id: "10000001S", given: "Ana", surnames: "Avanzada Con Certificado", mobile: "+34600000001",
		state: "advanced, with a certificate", cert: true},
	{id: "10000002Q", given: "Bruno", surnames: "Avanzado Sin Certificado", mobile: "+34600000002",
		state: "advanced, no certificate yet (issued on first use)"},
	{id: "10000003V", given: "Carmen", surnames: "Básica Por Carta", mobile: "+34600000003",
		state: "basic (invitation letter): may not sign", basic: true},
	{id: "10000004H", given: "David", surnames: "Bloqueado Contraseña", mobile: "+34600000004",
		state: "advanced, password locked (new activation code needed)", locked: true},
	{id: "10000005L", given: "Elena", surnames: "Certificado Revocado", mobile: "+34600000005",
		state: "advanced, certificate revoked (keyCompromise)", cert: true, revoke: true},
}

var demoCSV = regexp.MustCompile(`\(CSV\): ([0-9A-Z]{16})`)

func init() {
	var state string
	register(&command{
		name:    "demo seed",
		summary: "create sandbox citizens in every state a portal must handle and print their DNIs and passwords (idempotent)",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&state, "state", "var", "state folder made by 'firmactl init'")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("demo seed takes no arguments")
			}
			return demoSeed(ctx, e, state)
		},
	})
}

// demoSeed works on the store and token directly, like 'ca init', so that
// 'make run' can seed before firmad starts.
func demoSeed(ctx context.Context, e *env, state string) error {
	authority, cfg, done, err := localCA(ctx, e, state)
	if err != nil {
		return err
	}
	defer done()
	ctx = ca.WithActor(ctx, offlineActor())
	db, err := openStore(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	outbox, err := sms.NewOutbox(db, sms.OutboxOptions{})
	if err != nil {
		return err
	}
	// The registry section firmad reads: the same lockout and Argon2 costs.
	rc := registry.DefaultConfig()
	if c := config.SectionOf[registry.Config](cfg, registry.SectionName); c != nil {
		rc = *c
	}
	opt, err := rc.Options()
	if err != nil {
		return err
	}
	opt.SMS, opt.Revoker = outbox, ca.CitizenRevoker{CA: authority}
	reg, err := registry.New(db, opt)
	if err != nil {
		return err
	}
	authority.SetCitizens(reg)
	haveCA := true
	if err := authority.Load(ctx); err != nil {
		if !errors.Is(err, ca.ErrNotInitialised) {
			return err
		}
		haveCA = false
		fmt.Fprintln(e.stderr, "warning: certificate authority not set up ('firmactl ca init'): sandbox certificates are skipped")
	}

	seeder := registry.Staff{Name: "demo-seed", Role: policy.Administrator}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DNI\tNAME\tMOBILE\tPASSWORD\tCERTIFICATE\tSTATE")
	for _, d := range demoCitizens {
		cert, err := seedOne(ctx, reg, db, authority, haveCA, seeder, d)
		if err != nil {
			return fmt.Errorf("seed %s: %w", d.id, err)
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\n", d.id, d.given, d.surnames, d.mobile, demoPassword, cert, d.state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "\nSMS codes of the sandbox go to the outbox: 'firmactl sms outbox'.")
	return nil
}

// seedOne brings one sandbox citizen to its state, unless it exists.
func seedOne(ctx context.Context, reg *registry.Service, db store.Store, authority *ca.Authority, haveCA bool,
	seeder registry.Staff, d demoCitizen) (string, error) {
	if _, err := db.Citizen(ctx, d.id); err == nil {
		// Seeded before: kept as is, but a certificate the CA could not
		// issue then (not set up yet) is issued now.
		return seedCert(ctx, authority, haveCA, d)
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	p := registry.Person{ID: d.id, GivenName: d.given, Surnames: d.surnames, Mobile: d.mobile, Email: "demo+" + d.id + "@example.es"}
	var conf *registry.Confirmation
	var err error
	if d.basic {
		if err := reg.PutFiscalRecord(ctx, d.id, d.given, d.surnames, "Calle del Sandbox 1, 28001 Madrid"); err != nil {
			return "", err
		}
		if _, err := reg.RequestLetter(ctx, d.id); err != nil {
			return "", err
		}
		letters, err := reg.Letters(ctx, d.id, 1)
		if err != nil || len(letters) == 0 {
			return "", fmt.Errorf("letter not in outbox: %v", err)
		}
		m := demoCSV.FindStringSubmatch(letters[0].Body)
		if m == nil {
			return "", errors.New("no CSV in the letter")
		}
		conf, err = reg.RedeemLetter(ctx, registry.Redemption{ID: d.id, CSV: m[1], Mobile: p.Mobile, Email: p.Email, AcceptConditions: true})
		if err != nil {
			return "", err
		}
	} else if conf, err = reg.RegisterInPerson(ctx, seeder, p); err != nil {
		return "", err
	}
	if err := reg.SetPassword(ctx, d.id, conf.ActivationCode, demoPassword); err != nil {
		return "", err
	}
	if d.locked {
		// Wrong passwords no longer lock for good (they slow down and
		// lock a while), so the sandbox's locked citizen is locked the
		// way only staff or earlier versions could: in the store.
		if _, err := db.CredentialFailed(ctx, d.id, 1, time.Now()); err != nil {
			return "", err
		}
		c, err := db.Citizen(ctx, d.id)
		if err != nil {
			return "", err
		}
		c.Status = registry.StatusLocked
		if err := db.UpdateCitizen(ctx, c); err != nil {
			return "", err
		}
	}
	return seedCert(ctx, authority, haveCA, d)
}

// seedCert issues (and for the revoked case revokes) the sandbox
// certificate of a citizen who has none yet.
func seedCert(ctx context.Context, authority *ca.Authority, haveCA bool, d demoCitizen) (string, error) {
	if !d.cert || !haveCA {
		return certID(ctx, authority, haveCA, d.id), nil
	}
	if cs, err := authority.Certificates(ctx, ca.ListOptions{Citizen: d.id}); err != nil {
		return "", err
	} else if len(cs) > 0 {
		return certID(ctx, authority, haveCA, d.id), nil
	}
	c, err := authority.Issue(ctx, d.id)
	if err != nil {
		return "", err
	}
	if d.revoke {
		if _, err := authority.Revoke(ctx, c.ID, ca.ReasonKeyCompromise); err != nil {
			return "", err
		}
	}
	return certID(ctx, authority, haveCA, d.id), nil
}

// certID names the citizen's certificate as every other command does
// (its crt- ID, which firmactl ca and /v1/certificates take), with its
// status.
func certID(ctx context.Context, authority *ca.Authority, haveCA bool, id string) string {
	if !haveCA {
		return "-"
	}
	cs, err := authority.Certificates(ctx, ca.ListOptions{Citizen: id})
	if err != nil || len(cs) == 0 {
		return "-"
	}
	return cs[0].ID + " (" + cs[0].Status + ")"
}
