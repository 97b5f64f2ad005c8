package ebpfdp

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

func TestSavedRoundTrip(t *testing.T) {
	for _, se := range []translator.SavedEntry{
		{TableID: 0x02000001, IsDefault: true, ActionID: 0x01000004},
		{TableID: 7, Priority: 42, ActionID: 9, Params: [][]byte{{1, 2}, {3}},
			Match: []translator.FieldMatch{{}, {Set: true, Value: []byte{1}, Mask: []byte{0xff}},
				{Set: true, Value: []byte{0x03, 0xe8}, High: []byte{0x07, 0xd0}}, {Set: true, Value: []byte{10}, PrefixLen: 8}},
			Const: true, Origin: translator.OriginDatapath, ControllerMetadata: 1 << 60,
			Metadata: []byte("cookie"), IdleTimeoutNs: -5, Placement: translator.PlaceHW},
		{TableID: 3, ActionID: 1, Placement: translator.PlaceSW},
	} {
		b := encodeSaved(&se, 77)
		got, h, err := decodeSaved(b)
		if err != nil || h != 77 || !reflect.DeepEqual(got, se) {
			t.Errorf("round trip of %+v: %+v handle %d err %v", se, got, h, err)
		}
		if _, _, err := decodeSaved(b[:len(b)-1]); err == nil {
			t.Errorf("truncated record decoded")
		}
	}
}

func FuzzDecodeSaved(f *testing.F) {
	se := translator.SavedEntry{TableID: 1, Match: []translator.FieldMatch{{Set: true, Value: []byte{1}}}, Params: [][]byte{{2}}}
	f.Add(encodeSaved(&se, 3))
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		se, h, err := decodeSaved(b)
		if err != nil {
			return
		}
		if again, h2, err := decodeSaved(encodeSaved(&se, h)); err != nil || h2 != h || !reflect.DeepEqual(again, se) {
			t.Fatalf("re-encoding %+v: %+v %v", se, again, err)
		}
	})
}

func TestSideRows(t *testing.T) {
	ref := sideRef{table: 5, id: sideID{1, 2, 3}}
	for _, n := range []int{0, 1, sideChunkData, sideChunkData + 1, 3*sideChunkData + 7} {
		rec := make([]byte, n)
		for i := range rec {
			rec[i] = byte(i)
		}
		keys, vals := sideRows(ref, rec, nil, nil)
		want := max(1, (n+sideChunkData-1)/sideChunkData)
		if len(keys) != want {
			t.Errorf("%d bytes: %d chunks, want %d", n, len(keys), want)
		}
		var back []byte
		for i, v := range vals {
			if ne.Uint32(keys[i][4:]) != uint32(i) || ne.Uint32(v[0:]) != uint32(n) {
				t.Fatalf("%d bytes: chunk %d header wrong", n, i)
			}
			back = append(back, v[8:]...)
		}
		if string(back[:n]) != string(rec) {
			t.Errorf("%d bytes: data differs", n)
		}
	}
}

func TestEntryIDDistinguishes(t *testing.T) {
	a := []translator.FieldMatch{{Set: true, Value: []byte{1}, Mask: []byte{0xff}}}
	b := []translator.FieldMatch{{Set: true, Value: []byte{1}, Mask: []byte{0xfe}}}
	if entryID(a, 1) == entryID(b, 1) || entryID(a, 1) == entryID(a, 2) || entryID(a, 1) != entryID(a, 1) {
		t.Errorf("entry ids do not tell entries apart")
	}
}

func TestMapError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("batch update: %w", unix.E2BIG), translator.ErrFull},
		{unix.ENOSPC, translator.ErrFull},
		{unix.ENOMEM, translator.ErrFull},
		{ebpf.ErrKeyExist, translator.ErrExists},
		{fmt.Errorf("x: %w", ebpf.ErrKeyNotExist), translator.ErrNotFound},
		{unix.ENOENT, translator.ErrNotFound},
		{unix.EPERM, translator.ErrInternal},
	} {
		if got := mapError(tc.err, "table t"); !errors.Is(got, tc.want) {
			t.Errorf("mapError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
