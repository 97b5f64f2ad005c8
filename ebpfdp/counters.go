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
	Counters
}

// ReadPinnedCounters reads the hit and miss counters of every table of the
// pipeline pinned under pinRoot, from outside the daemon that runs it, like
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
	for _, p := range plans {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "maps", p.statsMap()), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("read counters: %w", err)
		}
		cs, err := (&tableState{plan: p, stats: m}).counters()
		m.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, TableCounters{Table: p.table.Name, ID: p.table.ID, Counters: cs})
	}
	return out, nil
}
