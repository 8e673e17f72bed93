package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/store/backend"
)

// setupStore opens the store store.driver names (one SQLite file, or the
// PostgreSQL database several nodes share) and applies pending migrations.
func (a *app) setupStore(ctx context.Context) error {
	st, err := backend.Open(ctx, a.cfg.Store.Driver, a.cfg.Store.Source())
	if err != nil {
		return err
	}
	a.store = st
	a.onClose("store", st.Close)
	// Readiness proves writes work (a locked SQLite file or a read-only
	// PostgreSQL still answers SELECT 1); a store without the check is
	// pinged.
	check := st.Ping
	if w, ok := st.(interface{ PingWrite(context.Context) error }); ok {
		check = w.PingWrite
	}
	a.ready("store", check)
	return nil
}

// setupKeystore loads the PKCS#11 module and logs in to the token. A wrong
// PIN or a missing module fails here, before anything listens.
func (a *app) setupKeystore(ctx context.Context) error {
	h := a.cfg.HSM
	if h.SoftHSM2Conf != "" {
		// The module reads it when it is loaded, which is just below.
		if err := os.Setenv("SOFTHSM2_CONF", h.SoftHSM2Conf); err != nil {
			return fmt.Errorf("set SOFTHSM2_CONF: %w", err)
		}
	}
	ks, err := keystore.Open(ctx, keystore.Config{
		Module:         h.Module,
		TokenLabel:     h.TokenLabel,
		PIN:            h.PIN.Reveal(),
		Sessions:       h.Sessions,
		AcquireTimeout: h.AcquireTimeout,
		Mode:           keystore.Mode(h.KeyMode),
		CacheSize:      h.CacheSize,
		KEKLabel:       h.KEKLabel,
		Registerer:     a.reg,
	}, a.store, a.log.With("part", "keystore"))
	if err != nil {
		return err
	}
	a.ks = ks
	a.onClose("keystore", ks.Close)
	a.ready("hsm", ks.Ping)
	return nil
}

// setupSigner builds the signing core over the keystore.
func (a *app) setupSigner(ctx context.Context) error {
	a.core = signer.New(a.ks, signer.Config{
		VerifyECDSA: a.cfg.HSM.VerifyECDSA,
		Registerer:  a.reg,
		Log:         a.log.With("part", "signer"),
	})
	return nil
}

// setupSigning builds the one signing service every way to a key goes
// through: the operator RPC, transactions, CSC and the built-in TSA.
// Citizens are read from the store, as the CSC API always did; the
// registry is set up later and reads the same records.
func (a *app) setupSigning(ctx context.Context) error {
	if a.audit == nil {
		return errors.New("signing needs the audit log: the audit step must run first")
	}
	sg, err := signing.New(signing.Options{Keys: a.ks, Core: a.core, CA: a.ca, Citizens: a.store, Auditor: a.audit,
		Log: a.log.With("part", "signing")})
	if err != nil {
		return err
	}
	a.signing = sg
	if a.builtin != nil {
		a.builtin.sg.Store(sg)
	}
	return nil
}

// setupKeysAPI registers KeyService and SigningService.
func (a *app) setupKeysAPI(ctx context.Context) error {
	return api.Register(a.grpc, a.ks, a.signing, a.log.With("part", "api"))
}
