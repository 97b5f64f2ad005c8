package ebpfdp

import (
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/translator"
)

// TableCounters are the counters of one table, as `tc -s` shows them for
// a P4TC table.
type TableCounters struct {
	// Table is the P4Info name; ID the P4Info id.
	Table string
	ID    uint32
	// Counters are the tc tier's.
	Counters
	// XDP are the XDP tier's, when the pipeline has one (packets the XDP
	// tier handles never reach the tc tier's counters).
	XDP *Counters
}

// ReadPinnedCounters reads the counters of every table of the pipeline
// pinned under pinRoot, in each tier, from outside the daemon that runs it, like
// `bpftool map dump pinned <root>/g<N>/maps/p4tc_t<id>_stat` summed over
// CPUs. It reads the newest generation.
func ReadPinnedCounters(pinRoot string) ([]TableCounters, error) {
	b := &Backend{root: pinRoot}
	gs, err := b.gens()
	if err != nil {
		return nil, err
	}
	if len(gs) == 0 {
		return nil, fmt.Errorf("read counters: no pipeline pinned under %s", pinRoot)
	}
	dir := b.genDir(gs[len(gs)-1])
	cm, err := ebpf.LoadPinnedMap(filepath.Join(dir, configMapName), &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	defer cm.Close()
	raw, err := readConfigMap(cm)
	if err != nil {
		return nil, err
	}
	c, err := translator.UnmarshalConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("read counters: pinned config: %w", err)
	}
	plans, err := plan(c)
	if err != nil {
		return nil, fmt.Errorf("read counters: pinned config: %w", err)
	}
	out := make([]TableCounters, 0, len(plans))
	read := func(dir string, p *tablePlan) (Counters, error) {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "maps", p.statsMap()), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			return Counters{}, fmt.Errorf("read counters: %w", err)
		}
		defer m.Close()
		return (&tableState{plan: p, stats: m}).counters()
	}
	for _, p := range plans {
		cs, err := read(dir, p)
		if err != nil {
			return nil, err
		}
		tc := TableCounters{Table: p.table.Name, ID: p.table.ID, Counters: cs}
		if len(c.Program.XDPObject) > 0 {
			xs, err := read(tierDir(dir, tierXDP), p)
			if err != nil {
				return nil, err
			}
			tc.XDP = &xs
		}
		out = append(out, tc)
	}
	return out, nil
}
