package ebpfdp

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/p4tcd/p4tcd/translator"
)

// mapKind is the data structure that holds a table's entries.
type mapKind uint8

const (
	// kindKeyless: no entries map, only the default action.
	kindKeyless mapKind = iota
	// kindExact: BPF_MAP_TYPE_HASH keyed by the P4TC key struct.
	kindExact
	// kindLPM: BPF_MAP_TYPE_LPM_TRIE keyed by the P4TC key struct.
	kindLPM
	// kindTSS: tuple space search, a mask list and a BPF_MAP_TYPE_HASH
	// keyed by the masked key.
	kindTSS
)

// cName is the kind as the runtime header spells it.
func (k mapKind) cName() string {
	return [...]string{"KEYLESS", "EXACT", "LPM", "TERNARY"}[k]
}

func (k mapKind) String() string {
	return [...]string{"keyless", "exact", "lpm", "ternary"}[k]
}

// Limits of the runtime (p4tc_runtime.h) and of P4TC.
const (
	// maxKeyBytes bounds the key fields: P4TC_MAX_KEYSZ is 512 bits.
	maxKeyBytes = 64
	// maxParamBytes bounds an action's parameters: the params array of
	// struct p4tc_table_entry_act_bpf.
	maxParamBytes = 124
	// maxMasks bounds the masks of a ternary table (P4TC_MAX_MASKS; P4TC's
	// own P4TC_MAX_TMASKS).
	maxMasks = 1024
	// defaultMasks is the mask count of a ternary table whose
	// introspection gives none (P4TC_DEFAULT_TMASKS).
	defaultMasks = 8
	// defaultEntries sizes a table that neither P4Info nor the
	// introspection sizes (P4TC_DEFAULT_TENTRIES).
	defaultEntries = 256
	// headSize is the size of struct p4tc_table_entry_act_bpf without its
	// params: act_id and the byte its three packed bit-fields take.
	headSize = 5
	// slotSize is the size of a default action slot: struct
	// p4tc_table_entry_act_bpf (packed: 129 bytes).
	slotSize = headSize + maxParamBytes
)

// flag bits of the byte after act_id (the bit-fields hit,
// is_default_miss_act and is_default_hit_act of struct
// p4tc_table_entry_act_bpf).
const (
	flagHit         = 1 << 0
	flagDefaultMiss = 1 << 1
)

// Table flags (P4TC_TF_* of p4tc_runtime.h, the tables header's flags
// column).
const (
	// tfAged: entry values end in struct p4tc_aged (last hit, profile,
	// origin), for idle timeouts and aging.
	tfAged = 1 << 0
	// tfDataCreate, tfDataUpdate, tfDataDelete: the datapath may create,
	// update and delete (its own) entries: the table's data-path C, U
	// and D permissions, exact tables only.
	tfDataCreate = 1 << 1
	tfDataUpdate = 1 << 2
	tfDataDelete = 1 << 3
)

// P4TC's data-path permission bits (include/uapi/linux/p4tc.h).
const (
	permDataCreate = 1 << 6
	permDataUpdate = 1 << 4
	permDataDelete = 1 << 3
)

// agedSize is the size of struct p4tc_aged: u64 last_hit, u32 profile_id,
// u32 flags.
const agedSize = 16

// agedDatapath is P4TC_AGED_DATAPATH: the entry was created by the
// datapath.
const agedDatapath = 1 << 0

// statsSize is the size of struct p4tc_table_stats.
const statsSize = 32

// tablePlan is how one P4Info table lives in BPF maps. The generator and
// the loader compute it from the same Config, so the header the datapath
// was compiled with and the maps p4tcd fills agree.
type tablePlan struct {
	table *translator.Table
	// id is P4TC's table id: the tblid datapaths pass, and the number in
	// the map names (p4tc_t<id>...).
	id     uint32
	name   string // P4TC name, "<control block>/<table>"
	kind   mapKind
	layout *translator.KeyLayout // nil for keyless tables
	// keySize is the map key: the whole p4tc_table_entry_key struct.
	keySize int
	// paramSize is the largest parameter blob of the table's actions.
	paramSize int
	// entries is the table's capacity in entries (P4Info size first).
	entries uint32
	// masks is the mask capacity a ternary table's header declares.
	masks int
	// lpmField is the index of the LPM field (kindLPM).
	lpmField int
	// lpmBase is the trie prefixlen of a key whose LPM field is /0: the
	// 32 maskid bits, the bits of the fields before the LPM field and the
	// unused high bits of its container.
	lpmBase int
	// rankByPrefix: a TSS table without priorities (several LPM fields)
	// ranks entries by total prefix length.
	rankByPrefix bool
	// flags are the table's tf* flags.
	flags uint32
	// acts has bit i set when P4TC action i may be an entry's action
	// (ids below 64): what the datapath may create entries with.
	acts uint64
	// pool is the number of entries the datapath may create (device
	// config datapath_pool_size); the entries map has room for entries +
	// pool.
	pool uint32
	// settings are the device config's settings of the table.
	settings translator.TableSettings
	// actions maps P4TC action ids to P4Info actions, for decoding.
	actions map[uint32]*translator.Action
}

// bits is P4TC's keysz for the table.
func (p *tablePlan) bits() int {
	if p.layout == nil {
		return 0
	}
	return p.layout.Bits
}

// valueSize is the size of an entry value: the act head and the
// parameters padded to 8 bytes, the aged tail of aged tables and, for TSS,
// the priority and owner.
func (p *tablePlan) valueSize() int {
	n := pad8(headSize + p.paramSize)
	if p.aged() {
		n += agedSize
	}
	if p.direct() {
		n += directSize
	}
	if p.kind == kindTSS {
		n += 8
	}
	return n
}

// aged reports whether entry values carry the aged tail.
func (p *tablePlan) aged() bool { return p.flags&tfAged != 0 }

// agedOff is the offset of the aged tail in an entry value.
func (p *tablePlan) agedOff() int { return pad8(headSize + p.paramSize) }

// entriesCap is the capacity of the entries map: the table's size and,
// for exact tables, the pool of datapath-created entries.
func (p *tablePlan) entriesCap() uint32 {
	if p.kind == kindExact {
		return p.entries + p.pool
	}
	return p.entries
}

// tssKeyCap is the number of TSS hash entries: ranges expand to several
// masked keys, so the hash has room for twice the table's entries.
func (p *tablePlan) tssKeyCap() uint32 { return 2 * p.entries }

// masklistSize is the size of the mask list value for masks masks.
func (p *tablePlan) masklistSize(masks int) int { return 8 + masks*p.keySize }

func pad8(n int) int { return (n + 7) &^ 7 }

// Map names, by convention with p4tc_runtime.h.
func (p *tablePlan) entriesMap() string  { return fmt.Sprintf("p4tc_t%d", p.id) }
func (p *tablePlan) masksMap() string    { return fmt.Sprintf("p4tc_t%d_masks", p.id) }
func (p *tablePlan) defaultsMap() string { return fmt.Sprintf("p4tc_t%d_dflt", p.id) }
func (p *tablePlan) statsMap() string    { return fmt.Sprintf("p4tc_t%d_stat", p.id) }
func (p *tablePlan) mprioMap() string    { return fmt.Sprintf("p4tc_t%d_mprio", p.id) }
func (p *tablePlan) poolMap() string     { return fmt.Sprintf("p4tc_t%d_pool", p.id) }

// plan computes the table plans of a config, in P4Info table order. It
// refuses, as ErrInvalid naming the table and field, what the runtime
// cannot hold.
func plan(c *translator.Config) ([]*tablePlan, error) {
	if c.Program == nil {
		return nil, translator.Errorf(translator.ErrInvalid, "ebpf datapath: the device config is not a p4tcd device config (format %q)", translator.DeviceConfigFormat)
	}
	if c.Program.Introspection == nil {
		return nil, translator.Errorf(translator.ErrInvalid, "ebpf datapath: the device config has no P4TC introspection json")
	}
	plans := make([]*tablePlan, 0, len(c.TableOrder))
	byID := map[uint32]string{}
	for _, t := range c.TableOrder {
		p, err := planTable(c, t)
		if err != nil {
			return nil, err
		}
		if other, dup := byID[p.id]; dup {
			return nil, translator.Errorf(translator.ErrInvalid, "introspection json: tables %s and %s share P4TC id %d", other, t.Name, p.id)
		}
		byID[p.id] = t.Name
		plans = append(plans, p)
	}
	return plans, nil
}

func planTable(c *translator.Config, t *translator.Table) (*tablePlan, error) {
	it := c.Program.Tables[t.ID].P4TC
	if it == nil {
		return nil, translator.Errorf(translator.ErrInvalid, "introspection json: no table for P4Info table %s", t.Name)
	}
	p := &tablePlan{table: t, id: it.ID, name: it.Name, actions: map[uint32]*translator.Action{}}
	switch t.Kind {
	case translator.TableKeyless:
		p.kind = kindKeyless
	case translator.TableExact:
		p.kind = kindExact
	case translator.TableLPM:
		p.kind = kindLPM
	default:
		p.kind = kindTSS
		p.rankByPrefix = !t.NeedsPriority()
	}
	if p.kind != kindKeyless {
		if t.Layout == nil {
			return nil, translator.Errorf(translator.ErrInvalid, "table %s: a key field has no fixed width (sdn_string); the ebpf datapath needs one", t.Name)
		}
		p.layout = t.Layout
		if p.layout.Size > maxKeyBytes {
			return nil, translator.Errorf(translator.ErrInvalid, "table %s: the key is %d bytes; P4TC keys are at most %d", t.Name, p.layout.Size, maxKeyBytes)
		}
		p.keySize = p.layout.BPFKeySize()
	} else {
		p.keySize = 8
	}
	for i, f := range t.Fields {
		fl := &p.layout.Fields[i]
		if fl.Port {
			if f.Kind != translator.MatchExact && f.Kind != translator.MatchOptional {
				return nil, translator.Errorf(translator.ErrInvalid, "table %s: field %s is a port (type dev) matched %v; ports hold ifindexes, so only exact and optional matches work", t.Name, f.Name, f.Kind)
			}
			if fl.Size != 4 {
				return nil, translator.Errorf(translator.ErrInvalid, "table %s: field %s is a port (type dev) of %d bits; an ifindex needs a 32-bit container", t.Name, f.Name, f.Bits)
			}
		}
		if f.Kind == translator.MatchRange && f.Bits > maxRangeBits {
			return nil, translator.Errorf(translator.ErrInvalid, "table %s: range field %s is %d bits; the ebpf datapath expands ranges of at most %d bits", t.Name, f.Name, f.Bits, maxRangeBits)
		}
		if f.Kind == translator.MatchLPM && p.kind == kindLPM {
			if i != len(t.Fields)-1 {
				return nil, translator.Errorf(translator.ErrInvalid, "table %s: lpm field %s must be the last key field for the ebpf datapath's LPM trie", t.Name, f.Name)
			}
			if fl.HostOrder {
				return nil, translator.Errorf(translator.ErrInvalid, "table %s: lpm field %s must be in network byte order (@tc_type ipv4, ipv6, be16, be32 or be64), not %q", t.Name, f.Name, fl.Type)
			}
			p.lpmField = i
			p.lpmBase = 32 + 8*fl.Offset + 8*fl.Size - fl.Bits
		}
	}
	switch {
	case t.Size > 0:
		p.entries = uint32(min(t.Size, 1<<26))
	case it.TEntries > 0:
		p.entries = it.TEntries
	default:
		p.entries = defaultEntries
	}
	if p.kind == kindTSS {
		p.masks = int(it.NumMask)
		if p.masks <= 0 {
			p.masks = defaultMasks
		}
		p.masks = min(p.masks, maxMasks)
	}
	perms, err := parsePermissions(it.Permissions)
	if err != nil {
		return nil, translator.Errorf(translator.ErrInvalid, "introspection json: table %s: %v", it.Name, err)
	}
	if t.IdleTimeout {
		p.flags |= tfAged
	}
	if p.kind == kindExact && perms&permDataCreate != 0 {
		// An add-on-miss table (p4c gives them data-path create).
		p.flags |= tfAged | tfDataCreate
		if perms&permDataUpdate != 0 {
			p.flags |= tfDataUpdate
		}
		if perms&permDataDelete != 0 {
			p.flags |= tfDataDelete
		}
	}
	if t.DirectCounter != nil || t.DirectMeter != nil {
		p.flags |= tfDirect
	}
	p.settings = c.Program.Settings(t.ID)
	p.pool = p.settings.PoolSize
	if p.pool > 0 && t.Profile != nil {
		return nil, translator.Errorf(translator.ErrInvalid, "table %s: datapath_pool_size %d, but the table is implemented by action profile %s: the datapath creates entries with actions, not members", t.Name, p.pool, t.Profile.Name)
	}
	if p.pool > 0 && p.flags&tfDataCreate == 0 {
		return nil, translator.Errorf(translator.ErrInvalid, "table %s: datapath_pool_size %d, but its introspection permissions %s do not let the datapath create entries (data-path C, bit 6; p4c sets it for add_on_miss tables)", t.Name, p.pool, it.Permissions)
	}
	if p.pool > maxPool {
		return nil, translator.Errorf(translator.ErrInvalid, "table %s: datapath_pool_size %d; the ebpf datapath allows %d", t.Name, p.pool, maxPool)
	}
	for _, ar := range t.ActionOrder {
		a := ar.Action
		if a.Layout == nil {
			return nil, translator.Errorf(translator.ErrInvalid, "table %s: action %s has a parameter without fixed width (sdn_string)", t.Name, a.Name)
		}
		if a.Layout.Size > maxParamBytes {
			return nil, translator.Errorf(translator.ErrInvalid, "table %s: action %s has %d bytes of parameters; P4TC allows %d", t.Name, a.Name, a.Layout.Size, maxParamBytes)
		}
		for i, pl := range a.Layout.Params {
			if pl.Port && pl.Size != 4 {
				return nil, translator.Errorf(translator.ErrInvalid, "action %s: param %s is a port (type dev) of %d bits; an ifindex needs a 32-bit container", a.Name, a.Params[i].Name, pl.Bits)
			}
		}
		if a.P4TCID == 0 && a.Name != "NoAction" {
			return nil, translator.Errorf(translator.ErrInvalid, "table %s: action %s has no P4TC id in the introspection json", t.Name, a.Name)
		}
		if other := p.actions[a.P4TCID]; other != nil {
			return nil, translator.Errorf(translator.ErrInvalid, "table %s: actions %s and %s share P4TC id %d", t.Name, other.Name, a.Name, a.P4TCID)
		}
		p.actions[a.P4TCID] = a
		p.paramSize = max(p.paramSize, a.Layout.Size)
		if t.Profile != nil {
			// Entries hold a member or group id (P4TC_ACT_MEMBER,
			// P4TC_ACT_GROUP): a __u32 in the params.
			p.paramSize = max(p.paramSize, 4)
		}
		if !ar.DefaultOnly {
			if a.P4TCID >= 64 && p.flags&tfDataCreate != 0 {
				return nil, translator.Errorf(translator.ErrInvalid, "table %s: action %s has P4TC id %d; the datapath creates entries only with actions below 64", t.Name, a.Name, a.P4TCID)
			}
			if a.P4TCID < 64 {
				p.acts |= 1 << a.P4TCID
			}
		}
	}
	return p, nil
}

// maxPool bounds a table's pool of datapath-created entries.
const maxPool = 1 << 24

// parsePermissions reads P4TC permissions from the introspection ("0x3da4");
// empty is p4c's default for tables, 0x3da4 (no data-path writes).
func parsePermissions(s string) (uint16, error) {
	if s == "" {
		return 0x3da4, nil
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("permissions %q: not a 16-bit hex number", s)
	}
	return uint16(v), nil
}

// sortedActions returns the table's actions by P4TC id.
func (p *tablePlan) sortedActions() []*translator.Action {
	out := make([]*translator.Action, 0, len(p.actions))
	for _, a := range p.actions {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].P4TCID < out[j].P4TCID })
	return out
}
