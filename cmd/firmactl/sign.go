package main

import (
	"context"
	"crypto"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash.New
	_ "crypto/sha512" // registers SHA-384 and SHA-512
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/firma-cloud/firma/api/firmav1"
)

var schemeFlag = map[string]firmav1.SignatureScheme{
	"":         firmav1.SignatureScheme_SIGNATURE_SCHEME_UNSPECIFIED,
	"ecdsa":    firmav1.SignatureScheme_SIGNATURE_SCHEME_ECDSA,
	"pkcs1v15": firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1V15,
	"pss":      firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS,
}

var hashFlag = map[string]struct {
	h crypto.Hash
	p firmav1.HashAlgorithm
}{
	"sha256": {crypto.SHA256, firmav1.HashAlgorithm_HASH_ALGORITHM_SHA256},
	"sha384": {crypto.SHA384, firmav1.HashAlgorithm_HASH_ALGORITHM_SHA384},
	"sha512": {crypto.SHA512, firmav1.HashAlgorithm_HASH_ALGORITHM_SHA512},
}

func init() {
	var o struct{ key, digest, in, scheme, hash, out string }
	register(&command{
		name:    "sign",
		summary: "sign a digest, or a file's digest, with a key; writes the signature (DER for ECDSA)",
		remote:  true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.key, "key", "", "key ID (required)")
			fs.StringVar(&o.digest, "digest", "", "the digest to sign, in hex")
			fs.StringVar(&o.in, "in", "", "file to hash and sign (instead of --digest)")
			fs.StringVar(&o.scheme, "scheme", "", "ecdsa, pkcs1v15 or pss (default: ecdsa for EC keys, pkcs1v15 for RSA)")
			fs.StringVar(&o.hash, "hash", "sha256", "sha256, sha384 or sha512")
			fs.StringVar(&o.out, "out", "", "signature file to write (required)")
		},
		run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageErr("unexpected argument %q", args[0])
			}
			if o.key == "" || o.out == "" {
				return usageErr("--key and --out are required")
			}
			if (o.digest == "") == (o.in == "") {
				return usageErr("give exactly one of --digest and --in")
			}
			sc, ok := schemeFlag[o.scheme]
			if !ok {
				return usageErr("--scheme %q: want ecdsa, pkcs1v15 or pss", o.scheme)
			}
			h, ok := hashFlag[o.hash]
			if !ok {
				return usageErr("--hash %q: want sha256, sha384 or sha512", o.hash)
			}
			var digest []byte
			if o.digest != "" {
				d, err := hex.DecodeString(strings.TrimSpace(o.digest))
				if err != nil {
					return usageErr("--digest is not hex: %v", err)
				}
				if len(d) != h.h.Size() {
					return usageErr("--digest has %d bytes, a %s digest has %d", len(d), o.hash, h.h.Size())
				}
				digest = d
			} else {
				f, err := os.Open(o.in)
				if err != nil {
					return err
				}
				hh := h.h.New()
				_, err = io.Copy(hh, f)
				f.Close()
				if err != nil {
					return fmt.Errorf("read %s: %w", o.in, err)
				}
				digest = hh.Sum(nil)
			}
			conn, err := e.conn.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			cctx, cancel := e.conn.callCtx(ctx)
			defer cancel()
			resp, err := firmav1.NewSigningServiceClient(conn).SignDigests(cctx, &firmav1.SignDigestsRequest{
				KeyId: o.key, Scheme: sc, Hash: h.p, Digests: [][]byte{digest}})
			if err != nil {
				return err
			}
			if len(resp.GetSignatures()) != 1 {
				return fmt.Errorf("firmad returned %d signatures for 1 digest", len(resp.GetSignatures()))
			}
			if err := os.WriteFile(o.out, resp.GetSignatures()[0], 0o644); err != nil {
				return fmt.Errorf("write signature: %w", err)
			}
			fmt.Fprintf(e.stdout, "signed %s digest %x with key %s; signature written to %s\n", o.hash, digest, o.key, o.out)
			return nil
		},
	})
}
