package api

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/keystore"
)

// Page sizes of ListKeys.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
	maxOwnerLen     = 128
	maxKeyIDLen     = 128
)

// KeyService implements firmav1.KeyServiceServer on a keystore.
type KeyService struct {
	firmav1.UnimplementedKeyServiceServer
	ks  *keystore.HSM
	log *slog.Logger
}

var _ firmav1.KeyServiceServer = (*KeyService)(nil)

// NewKeyService returns the key service over ks.
func NewKeyService(ks *keystore.HSM, log *slog.Logger) *KeyService {
	return &KeyService{ks: ks, log: log}
}

var keyTypes = map[firmav1.KeyType]keystore.Type{
	firmav1.KeyType_KEY_TYPE_UNSPECIFIED: keystore.ECP256,
	firmav1.KeyType_KEY_TYPE_EC_P256:     keystore.ECP256,
	firmav1.KeyType_KEY_TYPE_EC_P384:     keystore.ECP384,
	firmav1.KeyType_KEY_TYPE_RSA_2048:    keystore.RSA2048,
	firmav1.KeyType_KEY_TYPE_RSA_3072:    keystore.RSA3072,
}

// KeyTypeProto returns the wire enum of a key type.
func KeyTypeProto(t keystore.Type) firmav1.KeyType {
	switch t {
	case keystore.ECP256:
		return firmav1.KeyType_KEY_TYPE_EC_P256
	case keystore.ECP384:
		return firmav1.KeyType_KEY_TYPE_EC_P384
	case keystore.RSA2048:
		return firmav1.KeyType_KEY_TYPE_RSA_2048
	case keystore.RSA3072:
		return firmav1.KeyType_KEY_TYPE_RSA_3072
	}
	return firmav1.KeyType_KEY_TYPE_UNSPECIFIED
}

// KeyModeProto returns the wire enum of a key mode.
func KeyModeProto(m keystore.Mode) firmav1.KeyMode {
	switch m {
	case keystore.ModeToken:
		return firmav1.KeyMode_KEY_MODE_TOKEN
	case keystore.ModeWrapped:
		return firmav1.KeyMode_KEY_MODE_WRAPPED
	}
	return firmav1.KeyMode_KEY_MODE_UNSPECIFIED
}

// GenerateKey makes a key pair in the HSM for req.Owner.
func (s *KeyService) GenerateKey(ctx context.Context, req *firmav1.GenerateKeyRequest) (*firmav1.GenerateKeyResponse, error) {
	const method = "GenerateKey"
	if err := checkOwner(req.GetOwner()); err != nil {
		return nil, err
	}
	t, ok := keyTypes[req.GetType()]
	if !ok {
		return nil, invalidArg("type", fmt.Sprintf("unknown key type %d", req.GetType()))
	}
	var m keystore.Mode
	switch req.GetMode() {
	case firmav1.KeyMode_KEY_MODE_UNSPECIFIED:
		m = s.ks.Mode()
	case firmav1.KeyMode_KEY_MODE_TOKEN:
		m = keystore.ModeToken
	case firmav1.KeyMode_KEY_MODE_WRAPPED:
		m = keystore.ModeWrapped
	default:
		return nil, invalidArg("mode", fmt.Sprintf("unknown key mode %d", req.GetMode()))
	}
	k, err := s.ks.GenerateMode(ctx, req.GetOwner(), t, m)
	if err != nil {
		return nil, toStatus(ctx, s.log, method, err, "owner", req.GetOwner())
	}
	pk, err := keyProto(k)
	if err != nil {
		return nil, toStatus(ctx, s.log, method, err, "key_id", k.ID)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "key generated", slog.String("key_id", k.ID), slog.String("owner", k.Owner),
		slog.String("type", string(k.Type)), slog.String("mode", string(k.Mode)), slog.String("operator", Operator(ctx)))
	return &firmav1.GenerateKeyResponse{Key: pk}, nil
}

// GetPublicKey returns a key's public half, live or destroyed.
func (s *KeyService) GetPublicKey(ctx context.Context, req *firmav1.GetPublicKeyRequest) (*firmav1.GetPublicKeyResponse, error) {
	if err := checkKeyID(req.GetKeyId()); err != nil {
		return nil, err
	}
	k, err := s.ks.Key(ctx, req.GetKeyId())
	if err != nil {
		return nil, toStatus(ctx, s.log, "GetPublicKey", err, "key_id", req.GetKeyId())
	}
	pk, err := keyProto(k)
	if err != nil {
		return nil, toStatus(ctx, s.log, "GetPublicKey", err, "key_id", k.ID)
	}
	return &firmav1.GetPublicKeyResponse{Key: pk}, nil
}

// ListKeys pages through keys ordered by ID.
func (s *KeyService) ListKeys(ctx context.Context, req *firmav1.ListKeysRequest) (*firmav1.ListKeysResponse, error) {
	if req.GetOwner() != "" {
		if err := checkOwner(req.GetOwner()); err != nil {
			return nil, err
		}
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, invalidArg("page_size", "must not be negative")
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	after, err := decodePageToken(req.GetPageToken(), req.GetOwner())
	if err != nil {
		return nil, err
	}
	// One more than asked tells whether another page follows.
	keys, err := s.ks.Keys(ctx, req.GetOwner(), after, size+1)
	if err != nil {
		return nil, toStatus(ctx, s.log, "ListKeys", err)
	}
	resp := &firmav1.ListKeysResponse{}
	if len(keys) > size {
		keys = keys[:size]
		resp.NextPageToken = encodePageToken(req.GetOwner(), keys[size-1].ID)
	}
	resp.Keys = make([]*firmav1.Key, 0, len(keys))
	for _, k := range keys {
		pk, err := keyProto(k)
		if err != nil {
			return nil, toStatus(ctx, s.log, "ListKeys", err, "key_id", k.ID)
		}
		resp.Keys = append(resp.Keys, pk)
	}
	return resp, nil
}

// DestroyKey removes a private key from the HSM.
func (s *KeyService) DestroyKey(ctx context.Context, req *firmav1.DestroyKeyRequest) (*firmav1.DestroyKeyResponse, error) {
	const method = "DestroyKey"
	if err := checkKeyID(req.GetKeyId()); err != nil {
		return nil, err
	}
	if err := s.ks.Destroy(ctx, req.GetKeyId()); err != nil {
		return nil, toStatus(ctx, s.log, method, err, "key_id", req.GetKeyId())
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "key destroyed", slog.String("key_id", req.GetKeyId()), slog.String("operator", Operator(ctx)))
	k, err := s.ks.Key(ctx, req.GetKeyId())
	if err != nil {
		return nil, toStatus(ctx, s.log, method, err, "key_id", req.GetKeyId())
	}
	pk, err := keyProto(k)
	if err != nil {
		return nil, toStatus(ctx, s.log, method, err, "key_id", k.ID)
	}
	return &firmav1.DestroyKeyResponse{Key: pk}, nil
}

// keyProto converts a key to its wire form with DER and PEM public keys.
func keyProto(k *keystore.Key) (*firmav1.Key, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		return nil, fmt.Errorf("key %s: marshal public key: %w", k.ID, err)
	}
	pk := &firmav1.Key{
		Id:           k.ID,
		Owner:        k.Owner,
		Type:         KeyTypeProto(k.Type),
		Mode:         KeyModeProto(k.Mode),
		PublicKeyDer: der,
		PublicKeyPem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		CreateTime:   timestamppb.New(k.CreatedAt),
	}
	if !k.DestroyedAt.IsZero() {
		pk.DestroyTime = timestamppb.New(k.DestroyedAt)
	}
	return pk, nil
}

// checkOwner accepts any printable user identifier: the registry of later
// issues owns the DNI/NIE rules; this only keeps junk out of the store.
func checkOwner(owner string) error {
	switch {
	case owner == "":
		return invalidArg("owner", "must be set (the user's DNI/NIE)")
	case len(owner) > maxOwnerLen:
		return invalidArg("owner", fmt.Sprintf("longer than %d bytes", maxOwnerLen))
	case !utf8.ValidString(owner):
		return invalidArg("owner", "is not valid UTF-8")
	case strings.IndexFunc(owner, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0:
		return invalidArg("owner", "must not contain spaces or control characters")
	}
	return nil
}

func checkKeyID(id string) error {
	switch {
	case id == "":
		return invalidArg("key_id", "must be set")
	case len(id) > maxKeyIDLen:
		return invalidArg("key_id", fmt.Sprintf("longer than %d bytes", maxKeyIDLen))
	}
	return nil
}

// Page tokens carry the owner filter with the last ID so that a token
// cannot be replayed against another filter.
func encodePageToken(owner, after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(owner + "\x00" + after))
}

func decodePageToken(tok, owner string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", invalidArg("page_token", "is not a token this service issued")
	}
	o, after, ok := strings.Cut(string(b), "\x00")
	if !ok || after == "" {
		return "", invalidArg("page_token", "is not a token this service issued")
	}
	if o != owner {
		return "", invalidArg("page_token", "was issued for another owner filter")
	}
	return after, nil
}
