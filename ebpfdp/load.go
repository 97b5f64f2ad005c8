package ebpfdp

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/translator"
)

// ingressProgram and xdpProgram are the names p4tcd looks for when an
// object holds several tc or XDP programs.
const (
	ingressProgram = "p4tc_ingress"
	xdpProgram     = "p4tc_xdp"
)

// binding is what p4tcd learnt from a datapath object about its tables.
type binding struct {
	spec *ebpf.CollectionSpec
	// prog is the name of the program attached at tc ingress.
	prog string
	// masks is the mask list capacity of each ternary table, by P4TC id.
	masks map[uint32]int
	// tier is the tier the object is for.
	tier tierKind
	// ext is the pipeline's extern plan (the same for both tiers).
	ext *externPlan
}

// parseObject reads a datapath object of a tier and checks its maps
// against the plans: every table's maps exist, with the kind, key and
// value sizes the plan requires ("maps do not match the P4Info"
// otherwise), and every p4tc_t<id> map belongs to a table. It sizes the
// entry maps from the plans (the tc tier's exact tables with room for
// their pools). Programs in P4TC's sections ("p4tc/main") are tc programs;
// the XDP tier's object must hold one XDP program (or one named
// p4tc_xdp).
func parseObject(obj []byte, plans []*tablePlan, k tierKind) (*binding, error) {
	what := map[tierKind]string{tierTC: "tc_object", tierXDP: "xdp_object"}[k]
	if len(obj) == 0 {
		return nil, translator.Errorf(translator.ErrInvalid, "ebpf datapath: the device config has no %s", what)
	}
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj))
	if err != nil {
		return nil, translator.Errorf(translator.ErrInvalid, "%s: %v", what, err)
	}
	b := &binding{spec: spec, masks: map[uint32]int{}, tier: k}
	ids := map[uint32]bool{}
	for _, p := range plans {
		ids[p.id] = true
		if err := b.bindTable(p); err != nil {
			return nil, err
		}
	}
	for name := range spec.Maps {
		if id, ok := tableMapID(name); ok && !ids[id] {
			return nil, translator.Errorf(translator.ErrInvalid, "maps do not match the P4Info: map %s is for P4TC table %d, which no P4Info table has", name, id)
		}
	}
	want, named := ebpf.SchedCLS, ingressProgram
	if k == tierXDP {
		want, named = ebpf.XDP, xdpProgram
	}
	var progs []string
	for name, ps := range spec.Programs {
		if ps.Type == ebpf.UnspecifiedProgram && strings.HasPrefix(ps.SectionName, "p4tc/") {
			ps.Type = ebpf.SchedCLS
		}
		if ps.Type == want {
			progs = append(progs, name)
		}
	}
	sort.Strings(progs)
	switch {
	case len(progs) == 1:
		b.prog = progs[0]
	case spec.Programs[named] != nil && spec.Programs[named].Type == want:
		b.prog = named
	default:
		return nil, translator.Errorf(translator.ErrInvalid, "%s: want one %v program (or one named %s) to attach, found %d %q", what, want, named, len(progs), progs)
	}
	return b, nil
}

var tableMapRE = regexp.MustCompile(`^p4tc_t([0-9]+)(_masks|_mprio|_dflt|_stat|_pool|_dcnt|_dmtr)?$`)

// tableMapID extracts the P4TC table id from a runtime map name.
func tableMapID(name string) (uint32, bool) {
	m := tableMapRE.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	id, err := strconv.ParseUint(m[1], 10, 32)
	return uint32(id), err == nil
}

func (b *binding) bindTable(p *tablePlan) error {
	maps := b.spec.Maps
	want := func(name string, typ ebpf.MapType, key, value uint32) (*ebpf.MapSpec, error) {
		ms := maps[name]
		if ms == nil {
			return nil, mismatch(p, "map %s is missing", name)
		}
		if ms.Type != typ || ms.KeySize != key || (value != 0 && ms.ValueSize != value) {
			return nil, mismatch(p, "map %s is %v with %d-byte keys and %d-byte values; want %v, %d, %d",
				name, ms.Type, ms.KeySize, ms.ValueSize, typ, key, value)
		}
		return ms, nil
	}
	innerArray := func(ms *ebpf.MapSpec) error {
		if ms.InnerMap == nil || ms.InnerMap.Type != ebpf.Array || ms.InnerMap.MaxEntries != 1 {
			return mismatch(p, "map %s must hold a one-slot array", ms.Name)
		}
		return nil
	}
	dflt, err := want(p.defaultsMap(), ebpf.ArrayOfMaps, 4, 4)
	if err != nil {
		return err
	}
	if err := innerArray(dflt); err != nil {
		return err
	}
	if dflt.InnerMap.ValueSize != slotSize {
		return mismatch(p, "map %s holds %d-byte slots; want %d", dflt.Name, dflt.InnerMap.ValueSize, slotSize)
	}
	if _, err := want(p.statsMap(), ebpf.PerCPUArray, 4, statsSize); err != nil {
		return err
	}
	ks, vs := uint32(p.keySize), uint32(p.valueSize())
	switch p.kind {
	case kindExact:
		ms, err := want(p.entriesMap(), ebpf.Hash, ks, vs)
		if err != nil {
			return err
		}
		ms.MaxEntries = p.entriesCap()
		if b.tier == tierXDP {
			// Entries the datapath creates live in the tc tier.
			ms.MaxEntries = p.entries
		}
		pm, err := want(p.poolMap(), ebpf.Array, 4, 8)
		if err != nil {
			return err
		}
		if pm.MaxEntries != 1 || pm.Flags&bpfFMmapable == 0 {
			return mismatch(p, "map %s must be an mmapable one-slot array", pm.Name)
		}
	case kindLPM:
		ms, err := want(p.entriesMap(), ebpf.LPMTrie, ks, vs)
		if err != nil {
			return err
		}
		ms.MaxEntries = p.entries
	case kindTSS:
		ms, err := want(p.entriesMap(), ebpf.Hash, ks, vs)
		if err != nil {
			return err
		}
		ms.MaxEntries = p.tssKeyCap()
		mm, err := want(p.masksMap(), ebpf.ArrayOfMaps, 4, 4)
		if err != nil {
			return err
		}
		if err := innerArray(mm); err != nil {
			return err
		}
		n := int(mm.InnerMap.ValueSize) - 8
		if n <= 0 || n%p.keySize != 0 {
			return mismatch(p, "map %s holds %d-byte mask lists, not 8 + n*%d", mm.Name, mm.InnerMap.ValueSize, p.keySize)
		}
		b.masks[p.id] = n / p.keySize
		mp, err := want(p.mprioMap(), ebpf.Array, 4, 4)
		if err != nil {
			return err
		}
		if mp.MaxEntries != uint32(b.masks[p.id]) || mp.Flags&bpfFMmapable == 0 {
			return mismatch(p, "map %s must be an mmapable array of %d priorities", mp.Name, b.masks[p.id])
		}
	}
	return nil
}

func mismatch(p *tablePlan, format string, args ...any) error {
	return translator.Errorf(translator.ErrInvalid, "maps do not match the P4Info: table %s (P4TC id %d, %v): %s; regenerate the tables header with p4tcd-gen tables",
		p.table.Name, p.id, p.kind, fmt.Sprintf(format, args...))
}

// verifierLines is how much of a verifier log an error quotes.
const verifierLines = 12

// loadError explains why a collection did not load: the verifier's last
// words, or the errno of a map that could not be created.
func loadError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		log := ve.Log
		if len(log) > verifierLines {
			log = log[len(log)-verifierLines:]
		}
		return translator.Errorf(translator.ErrInvalid, "the kernel verifier rejected the datapath: %v\n%s", ve.Cause, strings.Join(log, "\n"))
	}
	return translator.Errorf(translator.ErrInvalid, "load datapath: %v", err)
}
