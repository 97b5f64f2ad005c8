package translator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
)

// failBackend fails the op it is told to, counting every op it is handed
// (Apply and ApplyAtomic alike) from 0, and logs the ops it applied.
type failBackend struct {
	noneBackend
	// failAt is the op that fails; negative: none does.
	failAt int
	n      int
	log    []string
}

func (b *failBackend) Apply(ops []Op) (int, error) {
	for i, op := range ops {
		if b.n == b.failAt {
			b.n++
			return i, errors.New("datapath says no")
		}
		b.n++
		b.log = append(b.log, fmt.Sprintf("%v %x", op.Kind, op.Entry.skey))
	}
	return len(ops), nil
}

func (b *failBackend) ApplyAtomic(ops []Op) error {
	if b.failAt >= b.n && b.failAt < b.n+len(ops) {
		b.n += len(ops)
		return errors.New("datapath says no to the batch")
	}
	for _, op := range ops {
		b.n++
		b.log = append(b.log, fmt.Sprintf("%v %x", op.Kind, op.Entry.skey))
	}
	return nil
}

// preDevice is a Device on wireP4Info with a failBackend, pre-parsing
// every Write (on) or none (off).
func preDevice(t *testing.T, info string, on bool) (*Device, *failBackend) {
	t.Helper()
	b := &failBackend{failAt: -1}
	d := NewDevice(b)
	d.preparseMin = -1
	if on {
		d.preparseMin = 1
	}
	setP4Info(t, d, info)
	return d, b
}

// setP4Info commits a P4Info given as text.
func setP4Info(t *testing.T, d *Device, info string) {
	t.Helper()
	var pi p4configv1.P4Info
	if err := prototext.Unmarshal([]byte(info), &pi); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: &pi}); err != nil {
		t.Fatal(err)
	}
}

// preBatch builds a random Write of n updates on wireP4Info's tables, the
// same for the same seed: INSERT, MODIFY and DELETE of a few keys (so
// that they collide with each other and with the base entries), MODIFY
// without action, values with leading zeros, default entries, bad
// entries of many kinds, and now and then a TableEntry shared with the
// update before.
func preBatch(seed uint64, n int) []*p4v1.Update {
	r := rand.New(rand.NewPCG(seed, 7))
	pad := func(b []byte) []byte {
		if r.IntN(4) == 0 {
			return append([]byte{0, 0}[:1+r.IntN(2)], b...)
		}
		return b
	}
	mac := func() []byte { return pad([]byte{2, 0, 0, 0, 0, byte(r.IntN(4))}) }
	var ups []*p4v1.Update
	for len(ups) < n {
		typ := []p4v1.Update_Type{p4v1.Update_INSERT, p4v1.Update_INSERT, p4v1.Update_MODIFY, p4v1.Update_DELETE}[r.IntN(4)]
		if len(ups) > 0 && r.IntN(20) == 0 {
			// The same TableEntry again, as a Go caller may pass it.
			prev := ups[len(ups)-1].GetEntity().GetTableEntry()
			if prev != nil {
				ups = append(ups, &p4v1.Update{Type: typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: prev}}})
				continue
			}
		}
		k := byte(r.IntN(6))
		te := &p4v1.TableEntry{}
		switch r.IntN(3) {
		case 0:
			te.TableId = 1
			te.Match = []*p4v1.FieldMatch{wexact(1, pad([]byte{0x10, k})...)}
			if r.IntN(2) == 0 {
				te.Action = waction(10, pad([]byte{k + 1}), mac())
			} else {
				te.Action = waction(11, pad([]byte{k}), pad([]byte{1, k}), []byte{2, 0, k}, []byte{3, 0, 0, k}, pad([]byte{4, 0, 0, 0, k}))
			}
			if r.IntN(4) == 0 {
				te.IdleTimeoutNs = 1e9
			}
		case 1:
			te.TableId = 2
			te.Match = []*p4v1.FieldMatch{wlpm(1, 24, pad([]byte{10, k, 0, 0})...)}
			te.Action = waction(10, pad([]byte{k}), mac())
		default:
			te.TableId = 3
			te.Priority = int32(1 + r.IntN(2))
			te.Match = []*p4v1.FieldMatch{wtern(1, pad([]byte{10, 0, 0, k}), pad([]byte{0xff, 0, 0, 0xff})), wexact(3, pad([]byte{0, k})...)}
			if r.IntN(2) == 0 {
				te.Match = append(te.Match, wtern(2, []byte{k}, []byte{0x0f}))
			}
			te.Action = waction(11, []byte{k}, []byte{1, k}, pad([]byte{2, 0, k}), []byte{3, 0, 0, k}, []byte{4, 0, 0, 0, k})
		}
		if r.IntN(3) == 0 {
			te.ControllerMetadata, te.Metadata = uint64(k), []byte{'m', k}
		}
		if typ == p4v1.Update_MODIFY && r.IntN(3) == 0 {
			te.Action = nil // MODIFY without action keeps the stored one
		}
		switch r.IntN(14) {
		case 0:
			te.Match[0].FieldId = 9 // no such field
		case 1:
			te.Match[0] = wexact(1, 1, 2, 3) // too wide, or the wrong kind
		case 2:
			te.TableId = 0x99 // no such table
		case 3:
			te.IsConst = true
		case 4:
			te.Priority += 5 // tables 1 and 2 take none
		case 5:
			if a := te.GetAction().GetAction(); a != nil {
				a.Params = a.Params[1:]
			}
		case 6:
			// A default entry: parsed under the lock.
			te.Match, te.Priority, te.IdleTimeoutNs = nil, 0, 0
			te.IsDefaultAction = true
			typ = p4v1.Update_MODIFY
		case 7:
			te.Match = append(te.Match, te.Match[0]) // a field twice
		case 8:
			if te.TableId == 2 {
				te.IdleTimeoutNs = 5 // table 2 does not age
			}
		case 9:
			te.CounterData = &p4v1.CounterData{PacketCount: 1} // no direct counter
		}
		ups = append(ups, &p4v1.Update{Type: typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}})
		if r.IntN(25) == 0 {
			ups = append(ups, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_DigestEntry{DigestEntry: &p4v1.DigestEntry{DigestId: 5}}}})
		}
	}
	return ups
}

// preBase is the state every equivalence case starts from: keys 0 to 2
// of every table.
func preBase(t *testing.T, d *Device) {
	t.Helper()
	var ups []*p4v1.Update
	for k := range byte(3) {
		for _, te := range []*p4v1.TableEntry{
			{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x10, k)}, Action: waction(10, []byte{9}, []byte{2, 0, 0, 0, 0, 9})},
			{TableId: 2, Match: []*p4v1.FieldMatch{wlpm(1, 24, 10, k, 0, 0)}, Action: waction(10, []byte{9}, []byte{2, 0, 0, 0, 0, 9})},
			{TableId: 3, Priority: 1, Match: []*p4v1.FieldMatch{wtern(1, []byte{10, 0, 0, k}, []byte{0xff, 0, 0, 0xff}), wexact(3, k)}, Action: waction(11, []byte{1}, []byte{2}, []byte{3}, []byte{4}, []byte{5})},
		} {
			ups = append(ups, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}})
		}
	}
	if errs, err := d.Write(ups, p4v1.WriteRequest_CONTINUE_ON_ERROR, nil); err != nil || errs != nil {
		t.Fatalf("base: %v %v", err, errs)
	}
}

// storeText renders everything a Write leaves behind that the pre-parse
// could change: every stored entry (Read form, match, blobs, params,
// direct resources, placement, const, origin) and the default entries.
func storeText(d *Device) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []string
	for _, id := range []uint32{1, 2, 3} {
		ts := d.st.tables[id]
		for _, e := range ts.entries {
			s := fmt.Sprintf("%s wire=%x %v key=%x mask=%x idle=%d place=%v const=%v origin=%v direct=%v",
				prototext.Format(e.readProto()), e.wire, e.Match, e.Key, e.Mask, e.IdleTimeoutNs, e.Placement, e.Const, e.Origin, e.Direct)
			if e.Action != nil {
				s += fmt.Sprintf(" action=%s params=%x", e.Action.Action.Name, e.Action.Params)
			}
			out = append(out, s)
		}
		out = append(out, "default "+prototext.Format(ts.deflt.readProto()))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// errStrings renders a Write's results.
func errStrings(errs []error, err error) string {
	s := fmt.Sprintf("err=%v", err)
	for i, e := range errs {
		if e != nil {
			s += fmt.Sprintf("\n%d: %v", i, e)
		}
	}
	return s
}

// updatesText renders updates as the Write left them (canonicalised in
// place, or not).
func updatesText(ups []*p4v1.Update) string {
	var b strings.Builder
	for _, u := range ups {
		b.WriteString(prototext.Format(u))
		b.WriteString("\n")
	}
	return b.String()
}

// TestPreparseMatchesLockedParse: Writes through the pre-parse answer,
// store, apply and leave their updates exactly as with the parse under
// the lock, in every atomicity mode, with and without wires, for any
// role, whichever op the backend fails.
func TestPreparseMatchesLockedParse(t *testing.T) {
	sw := PlaceSW
	scopes := []struct {
		name string
		sc   *Scope
	}{
		{"default role", nil},
		{"role without table 2", &Scope{Role: "r", Writable: map[uint32]bool{1: true, 3: true, 5: true}}},
		{"role placing in sw", &Scope{Role: "p", Placement: &sw}},
	}
	atomicities := []p4v1.WriteRequest_Atomicity{p4v1.WriteRequest_CONTINUE_ON_ERROR, p4v1.WriteRequest_ROLLBACK_ON_ERROR, p4v1.WriteRequest_DATAPLANE_ATOMIC}
	for seed := range uint64(12) {
		for _, sc := range scopes {
			for _, at := range atomicities {
				for _, failAt := range []int{-1, 0, 5, 17} {
					for _, viaWire := range []bool{false, true} {
						name := fmt.Sprintf("seed%d/%s/%v/fail%d/wire%v", seed, sc.name, at, failAt, viaWire)
						t.Run(name, func(t *testing.T) {
							comparePreparse(t, func() []*p4v1.Update { return preBatch(seed, 40) }, sc.sc, at, failAt, viaWire)
						})
					}
				}
			}
		}
	}
}

// TestPreparseRestaged: an update tried again after a backend failure
// (CONTINUE_ON_ERROR) is parsed again, not staged from its pre-parse,
// which its first staging changed: a MODIFY without action that first
// took the action of the failed MODIFY before it must now keep the
// stored one; a DELETE of a key whose INSERT failed finds nothing.
func TestPreparseRestaged(t *testing.T) {
	up := func(typ p4v1.Update_Type, te *p4v1.TableEntry) *p4v1.Update {
		return &p4v1.Update{Type: typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}
	}
	key := func(k ...byte) []*p4v1.FieldMatch { return []*p4v1.FieldMatch{wexact(1, k...)} }
	mac := []byte{2, 0, 0, 0, 0, 1}
	batches := map[string]func() []*p4v1.Update{
		"modify without action": func() []*p4v1.Update {
			return []*p4v1.Update{
				up(p4v1.Update_MODIFY, &p4v1.TableEntry{TableId: 1, Match: key(0x10, 0), Action: waction(10, []byte{7}, mac)}),
				up(p4v1.Update_MODIFY, &p4v1.TableEntry{TableId: 1, Match: key(0, 0x10, 0), Metadata: []byte("m")}),
				up(p4v1.Update_INSERT, &p4v1.TableEntry{TableId: 1, Match: key(0, 0x10, 5), Action: waction(10, []byte{0, 8}, mac)}),
			}
		},
		"delete of a failed insert": func() []*p4v1.Update {
			return []*p4v1.Update{
				up(p4v1.Update_INSERT, &p4v1.TableEntry{TableId: 3, Priority: 2, Match: []*p4v1.FieldMatch{wexact(3, 0, 9), wtern(2, []byte{1}, []byte{0, 0xff})}, Action: waction(11, []byte{1}, []byte{2}, []byte{3}, []byte{4}, []byte{5})}),
				up(p4v1.Update_DELETE, &p4v1.TableEntry{TableId: 3, Priority: 2, Match: []*p4v1.FieldMatch{wtern(2, []byte{0, 1}, []byte{0xff}), wexact(3, 9)}}),
				up(p4v1.Update_INSERT, &p4v1.TableEntry{TableId: 3, Priority: 2, Match: []*p4v1.FieldMatch{wexact(3, 0, 9), wtern(2, []byte{1}, []byte{0, 0xff})}, Action: waction(11, []byte{1}, []byte{2}, []byte{3}, []byte{4}, []byte{5})}),
				up(p4v1.Update_DELETE, &p4v1.TableEntry{TableId: 1, Match: key(0x10, 1)}),
			}
		},
	}
	for name, batch := range batches {
		for _, at := range []p4v1.WriteRequest_Atomicity{p4v1.WriteRequest_CONTINUE_ON_ERROR, p4v1.WriteRequest_ROLLBACK_ON_ERROR, p4v1.WriteRequest_DATAPLANE_ATOMIC} {
			for failAt := -1; failAt < 4; failAt++ {
				for _, viaWire := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%v/fail%d/wire%v", name, at, failAt, viaWire), func(t *testing.T) {
						comparePreparse(t, batch, nil, at, failAt, viaWire)
					})
				}
			}
		}
	}
}

// comparePreparse runs one batch through a pre-parsing Device and one
// that parses under the lock, and compares everything.
func comparePreparse(t *testing.T, batch func() []*p4v1.Update, sc *Scope, at p4v1.WriteRequest_Atomicity, failAt int, viaWire bool) {
	type run struct {
		errs, state, ups string
		log              []string
	}
	var runs [2]run
	for k, on := range []bool{true, false} {
		d, b := preDevice(t, wireP4InfoDigest, on)
		preBase(t, d)
		b.failAt, b.n, b.log = failAt, 0, nil
		ups := batch()
		var errs []error
		var err error
		used := false
		d.afterPreparse = func(p *preparsed) { used = p != nil }
		if viaWire {
			wups, wires, scribble := wireUpdates(t, ups)
			errs, err = d.WriteWire(wups, wires, at, sc)
			scribble()
		} else {
			errs, err = d.Write(ups, at, sc)
		}
		if used != on {
			t.Fatalf("pre-parse %v, want %v", used, on)
		}
		runs[k] = run{errStrings(errs, err), storeText(d), updatesText(ups), b.log}
	}
	on, off := runs[0], runs[1]
	if on.errs != off.errs {
		t.Fatalf("results differ:\npre-parsed: %s\nunder the lock: %s", on.errs, off.errs)
	}
	if on.state != off.state {
		t.Fatalf("stores differ:\npre-parsed:\n%s\nunder the lock:\n%s", on.state, off.state)
	}
	if !slices.Equal(on.log, off.log) {
		t.Fatalf("backends saw\n%v\nand\n%v", on.log, off.log)
	}
	if !viaWire && on.ups != off.ups {
		t.Fatalf("updates left differ:\npre-parsed:\n%s\nunder the lock:\n%s", on.ups, off.ups)
	}
}

// wireP4InfoDigest is wireP4Info with a digest, so that batches mix in
// updates of another kind.
const wireP4InfoDigest = wireP4Info + `
digests { preamble { id: 5 name: "w.learn" } type_spec { bitstring { bit { bitwidth: 8 } } } }
`

// wireP4InfoNarrow is wireP4Info with table w.exact's key 8 bits wide
// instead of 16: a config under which the same updates parse otherwise.
var wireP4InfoNarrow = strings.Replace(wireP4Info, `name: "k" bitwidth: 16`, `name: "k" bitwidth: 8`, 1)

// TestPreparseConfigChanged: when the config changes between a Write's
// pre-parse and its taking the lock, the Write parses every update
// against the new config from what the client sent — as a Write that
// came after the change does.
func TestPreparseConfigChanged(t *testing.T) {
	if wireP4InfoNarrow == wireP4Info {
		t.Fatal("wireP4InfoNarrow is wireP4Info")
	}
	batch := func() []*p4v1.Update {
		var ups []*p4v1.Update
		for k := range byte(20) {
			// Leading zeros: canonical under both configs, but only the
			// first has room for 0x01xx.
			v := []byte{0, 0, k}
			if k%2 == 1 {
				v = []byte{0, 1, k}
			}
			te := &p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, v...)}, Action: waction(10, []byte{0, 1}, []byte{0, 2, 0, 0, 0, 0, k})}
			ups = append(ups, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}})
		}
		return ups
	}
	for _, viaWire := range []bool{false, true} {
		for _, at := range []p4v1.WriteRequest_Atomicity{p4v1.WriteRequest_CONTINUE_ON_ERROR, p4v1.WriteRequest_ROLLBACK_ON_ERROR} {
			t.Run(fmt.Sprintf("%v/wire%v", at, viaWire), func(t *testing.T) {
				write := func(d *Device, ups []*p4v1.Update) (errs []error, err error) {
					if !viaWire {
						return d.Write(ups, at, nil)
					}
					wups, wires, scribble := wireUpdates(t, ups)
					defer scribble()
					return d.WriteWire(wups, wires, at, nil)
				}
				d, _ := preDevice(t, wireP4Info, true)
				fellBack := false
				d.afterPreparse = func(p *preparsed) {
					if p == nil || p.cfg != d.Config() {
						t.Fatal("no pre-parse against the current config")
					}
					setP4Info(t, d, wireP4InfoNarrow)
					fellBack = p.cfg != d.Config()
				}
				ups := batch()
				errs, err := write(d, ups)
				if !fellBack {
					t.Fatal("the config did not change under the Write")
				}
				ref, _ := preDevice(t, wireP4InfoNarrow, false)
				refUps := batch()
				refErrs, refErr := write(ref, refUps)
				if got, want := errStrings(errs, err), errStrings(refErrs, refErr); got != want {
					t.Fatalf("results:\n%s\nwant:\n%s", got, want)
				}
				if at == p4v1.WriteRequest_CONTINUE_ON_ERROR && !strings.Contains(errStrings(errs, err), "0x000101 does not fit") {
					t.Fatalf("want an error quoting the value as sent: %s", errStrings(errs, err))
				}
				if got, want := storeText(d), storeText(ref); got != want {
					t.Fatalf("store:\n%s\nwant:\n%s", got, want)
				}
				if !viaWire {
					if got, want := updatesText(ups), updatesText(refUps); got != want {
						t.Fatalf("updates left:\n%s\nwant:\n%s", got, want)
					}
				}
			})
		}
	}
}

// TestPreparseRacesConfigChanges: Writes race pipeline changes between
// two configs; each Write must be wholly under one of them (the race
// detector watches the pre-parse's reads of the config).
func TestPreparseRacesConfigChanges(t *testing.T) {
	d, _ := preDevice(t, wireP4Info, true)
	var infos [2]*p4configv1.P4Info
	for i, text := range []string{wireP4Info, wireP4InfoNarrow} {
		infos[i] = &p4configv1.P4Info{}
		if err := prototext.Unmarshal([]byte(text), infos[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: infos[i%2]}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	// Each writer's batches, built here: the writers must not call
	// t.Fatal.
	type write struct {
		ups      []*p4v1.Update
		wires    [][]byte
		scribble func()
	}
	var batches [2][50]write
	for w := range batches {
		for round := range batches[w] {
			// INSERT then DELETE keys 0x00xx, which fit both configs,
			// and 0x01xx, which fit only the wide one; each writer its
			// own.
			var ups []*p4v1.Update
			for _, typ := range []p4v1.Update_Type{p4v1.Update_INSERT, p4v1.Update_DELETE} {
				for _, hi := range []byte{0, 1} {
					for k := range byte(16) {
						te := &p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, hi, byte(w)*16+k)}}
						if typ == p4v1.Update_INSERT {
							te.Action = waction(10, []byte{0, 1}, []byte{2, 0, 0, 0, 0, 1})
						}
						ups = append(ups, &p4v1.Update{Type: typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}})
					}
				}
			}
			b := write{ups: ups}
			if round%2 == 1 {
				b.ups, b.wires, b.scribble = wireUpdates(t, ups)
			}
			batches[w][round] = b
		}
	}
	var writers sync.WaitGroup
	for w := range batches {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for _, b := range batches[w] {
				errs, err := d.WriteWire(b.ups, b.wires, p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
				if b.scribble != nil {
					b.scribble()
				}
				if err != nil {
					t.Error(err)
					return
				}
				// Either every update of a 0x01xx key failed (narrow)
				// or none did (wide); 0x00xx keys never fail.
				failed := 0
				for k, e := range errs {
					if e != nil && k/16%2 == 0 {
						t.Errorf("update %d: %v", k, e)
					}
					if e != nil {
						failed++
					}
				}
				if failed != 0 && failed != 32 {
					t.Errorf("%d of 32 updates of wide keys failed: a Write saw two configs", failed)
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	wg.Wait()
}

// TestPreparseKeepsNoRequestMemory: the pre-parse's reused buffers hold
// on to nothing of a Write once it is over.
func TestPreparseKeepsNoRequestMemory(t *testing.T) {
	d, _ := preDevice(t, wireP4Info, true)
	preBase(t, d)
	ups := preBatch(3, 64)
	if _, err := d.Write(ups, p4v1.WriteRequest_CONTINUE_ON_ERROR, nil); err != nil {
		t.Fatal(err)
	}
	p, _ := d.prePool.Get().(*preparsed)
	if p == nil {
		t.Skip("the pool dropped the buffers")
	}
	if p.cfg != nil {
		t.Fatal("pooled pre-parse keeps its config")
	}
	for _, e := range p.dels[:cap(p.dels)] {
		if e.Table != nil || e.Match != nil || e.skey != "" {
			t.Fatalf("pooled delete Entry keeps %+v", e)
		}
	}
	for _, fm := range p.delMatch[:cap(p.delMatch)] {
		if fm.Value != nil || fm.Mask != nil || fm.High != nil {
			t.Fatalf("pooled match keeps %+v", fm)
		}
	}
	for _, it := range p.items[:cap(p.items)] {
		if it.e != nil || it.err != nil {
			t.Fatal("pooled item keeps its entry")
		}
	}
	for _, c := range p.canon[:cap(p.canon)] {
		if c.at != nil || c.was != nil {
			t.Fatal("pooled record keeps request memory")
		}
	}
	if cap(p.dels) == 0 || cap(p.items) == 0 {
		t.Fatal("the batch pre-parsed no deletes")
	}
}

// TestPreparseThreshold: small Writes, Writes before any config and
// Devices with pre-parsing off are parsed under the lock.
func TestPreparseThreshold(t *testing.T) {
	d := NewDevice(NewNoneBackend())
	var got []bool
	d.afterPreparse = func(p *preparsed) { got = append(got, p != nil) }
	big := preBatch(1, defaultPreparseMin)
	if _, err := d.Write(big, p4v1.WriteRequest_CONTINUE_ON_ERROR, nil); err == nil {
		t.Fatal("a Write before any config succeeded")
	}
	setP4Info(t, d, wireP4Info)
	d.Write(preBatch(1, defaultPreparseMin-1)[:defaultPreparseMin-1], p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
	d.Write(preBatch(1, defaultPreparseMin), p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
	if want := []bool{false, false, true}; !slices.Equal(got, want) {
		t.Fatalf("pre-parsed %v, want %v", got, want)
	}
	off, _ := preDevice(t, wireP4Info, false)
	off.afterPreparse = func(p *preparsed) {
		if p != nil {
			t.Fatal("pre-parsed with pre-parsing off")
		}
	}
	off.Write(preBatch(2, 64), p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
}
