package keystore_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
)

// oneByOne is a key store without batch inserts.
type oneByOne struct{ store.KeyRecordStore }

func TestGenerateWrappedBatch(t *testing.T) {
	ctx := context.Background()
	ks, _ := open(t, keystore.ModeWrapped, nil)
	owners := make([]string, 64)
	for i := range owners {
		owners[i] = fmt.Sprintf("BULK%05d", i)
	}
	keys, err := ks.GenerateWrappedBatch(ctx, owners, keystore.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(owners) {
		t.Fatalf("%d keys for %d owners", len(keys), len(owners))
	}
	seen := map[string]bool{}
	msg := []byte("bulk enrolment")
	d := digestOf(crypto.SHA256, msg)
	for i, k := range keys {
		if k.Owner != owners[i] || k.Mode != keystore.ModeWrapped || seen[k.ID] {
			t.Fatalf("key %d: %+v", i, k)
		}
		seen[k.ID] = true
		stored, err := ks.Keys(ctx, owners[i], "", 10)
		if err != nil || len(stored) != 1 || stored[0].ID != k.ID {
			t.Fatalf("stored keys of %s: %v %v", owners[i], stored, err)
		}
		sg, err := ks.Signer(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		sigs, err := sg.SignDigests(ctx, keystore.ECDSA, crypto.SHA256, [][]byte{d})
		if err != nil {
			t.Fatal(err)
		}
		// openssl on a few, Go on every one.
		if i%16 == 0 {
			if err := opensslVerify(t, stored[0].Public, keystore.ECDSA, crypto.SHA256, msg, sigs[0]); err != nil {
				t.Fatal(err)
			}
		} else if !goVerify(stored[0].Public, keystore.ECDSA, crypto.SHA256, d, sigs[0]) {
			t.Fatalf("signature of key %d does not verify", i)
		}
	}
}

func TestGenerateWrappedBatchRefusals(t *testing.T) {
	ctx := context.Background()
	ks, tok := open(t, keystore.ModeWrapped, nil)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "plain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	plain, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN,
		Mode: keystore.ModeWrapped}, oneByOne{st}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	tests := []struct {
		name   string
		ks     *keystore.HSM
		owners []string
		typ    keystore.Type
		want   error
	}{
		{"empty owner", ks, []string{"A", ""}, keystore.ECP256, keystore.ErrOwner},
		{"unknown type", ks, []string{"A"}, keystore.Type("dsa-1024"), keystore.ErrUnsupported},
		{"store without batches", plain, []string{"A"}, keystore.ECP256, keystore.ErrBatchStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := tt.ks.GenerateWrappedBatch(ctx, tt.owners, tt.typ)
			if !errors.Is(err, tt.want) || keys != nil {
				t.Fatalf("got %v %v, want %v", keys, err, tt.want)
			}
			if got, _ := ks.Keys(ctx, "A", "", 10); len(got) != 0 {
				t.Fatalf("a refused batch stored %d keys", len(got))
			}
		})
	}
}

// A conflict in the store aborts the whole batch: all or nothing.
func TestCreateKeysAllOrNothing(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k := func(id string) *store.Key {
		return &store.Key{ID: id, Owner: "X", Type: "ec-p256", Mode: "wrapped", PublicKey: []byte{1}, Wrapped: []byte{2}}
	}
	if err := st.CreateKeys(ctx, []*store.Key{k("01"), k("02"), k("01")}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate in a batch: %v, want ErrConflict", err)
	}
	if _, err := st.Key(ctx, "02"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed batch left key 02 behind: %v", err)
	}
	if err := st.CreateKeys(ctx, []*store.Key{k("01"), k("02")}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Keys(ctx, "X", "", 10); err != nil || len(got) != 2 {
		t.Fatalf("keys after a good batch: %d %v", len(got), err)
	}
}
