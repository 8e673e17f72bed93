package sqlite

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func frameOf(from, n int64) ([]*store.AuditRecord, []store.AuditHash, []byte) {
	var (
		recs   []*store.AuditRecord
		hashes []store.AuditHash
	)
	for i := from; i < from+n; i++ {
		r := &store.AuditRecord{Index: i, Time: time.Unix(1_700_000_000, i).UTC(), Event: "key.used", Outcome: "success",
			ActorRole: "portal", ActorID: "p", Citizen: fmt.Sprintf("c%d", i), Portal: "p", KeyID: "k", RequestID: "ñ",
			Documents: int(i % 5), Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
		recs = append(recs, r)
		hashes = append(hashes, store.AuditHash{Index: 2 * i, Hash: sha256.Sum256(r.Data)}, store.AuditHash{Index: 2*i + 1})
	}
	return recs, hashes, encodeFrame(recs, hashes)
}

// A frame decodes to what was encoded, and says how long it is.
func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int64{1, 3, 300} {
		recs, hashes, frame := frameOf(40, n)
		got, gotHashes, size, err := decodeFrame(append(frame, 0xff, 0xff))
		if err != nil || size != len(frame) {
			t.Fatalf("%d records: %v, length %d of %d", n, err, size, len(frame))
		}
		if len(got) != len(recs) || fmt.Sprint(gotHashes) != fmt.Sprint(hashes) {
			t.Fatalf("%d records: %d records and hashes %v back", n, len(got), gotHashes)
		}
		for i := range got {
			if fmt.Sprintf("%+v", *got[i]) != fmt.Sprintf("%+v", *recs[i]) {
				t.Fatalf("record %d\n got %+v\nwant %+v", i, *got[i], *recs[i])
			}
		}
	}
}

// FuzzDecodeFrame: whatever the bytes, decoding returns an error or a
// frame that encodes back to the same bytes; it never panics, and never
// claims more bytes than it was given.
func FuzzDecodeFrame(f *testing.F) {
	_, _, one := frameOf(0, 1)
	_, _, many := frameOf(7, 5)
	f.Add(one)
	f.Add(many)
	f.Add(one[:len(one)-1])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, hashes, n, err := decodeFrame(b)
		if n > len(b) {
			t.Fatalf("claims %d bytes of %d", n, len(b))
		}
		if err != nil {
			return
		}
		if again := encodeFrame(recs, hashes); !bytes.Equal(again, b[:n]) {
			t.Fatalf("decoded frame encodes differently")
		}
	})
}

// FuzzDecodePayload is FuzzDecodeFrame past the checksum: the bytes are
// sealed in a frame with the right length and CRC, so the fuzzer reaches
// the decoding of records and hashes. A payload that decodes must survive
// another round trip unchanged.
func FuzzDecodePayload(f *testing.F) {
	for _, n := range []int64{1, 4} {
		_, _, frame := frameOf(3, n)
		f.Add(frame[frameHeader:])
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, payload []byte) {
		frame := make([]byte, frameHeader, frameHeader+len(payload))
		binary.LittleEndian.PutUint32(frame, uint32(len(payload)))
		binary.LittleEndian.PutUint32(frame[4:], crc32.Checksum(payload, crcTable))
		frame = append(frame, payload...)
		recs, hashes, n, err := decodeFrame(frame)
		if err != nil {
			return
		}
		if n != len(frame) {
			t.Fatalf("length %d of %d", n, len(frame))
		}
		again, againHashes, _, err := decodeFrame(encodeFrame(recs, hashes))
		if err != nil || fmt.Sprint(againHashes) != fmt.Sprint(hashes) || len(again) != len(recs) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range again {
			if fmt.Sprintf("%+v", *again[i]) != fmt.Sprintf("%+v", *recs[i]) {
				t.Fatalf("record %d changed in a round trip", i)
			}
		}
	})
}
