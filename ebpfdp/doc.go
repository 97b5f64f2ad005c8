// Package ebpfdp is p4tcd's datapath for stock kernels: the P4TC objects
// live in BPF maps, and a BPF-side runtime implements P4TC's datapath
// interface over them, so datapath C written for P4TC (the p4c tc backend's
// style: fill the table's key struct, call bpf_p4tc_tbl_read, switch on
// act_id) compiles with clang and runs on any kernel with tcx (6.6+) or
// clsact, with no kernel module. docs/ebpf-datapath.md is the long form.
//
// # Pieces
//
//   - bpf/include/p4tc_runtime.h: bpf_p4tc_tbl_read (tc) and
//     xdp_p4tc_tbl_read (XDP) with P4TC's names, argument and result
//     structs, implemented over maps named p4tc_t<tblid>...; and
//     bpf/include/pna.h, a stand-in for the p4c tc backend's runtime header.
//   - [WriteTablesHeader] (cmd/p4tcd-gen tables): the generated header that
//     declares a pipeline's tables to the runtime, from its P4Info and P4TC
//     introspection json.
//   - [Backend]: a translator.Backend that verifies, loads, attaches and
//     pins datapath objects, and writes table entries into their maps.
//
// # Tables in maps
//
// Every table has a default action slot (p4tc_t<id>_dflt, an
// ARRAY_OF_MAPS whose one slot holds a one-entry array that is replaced,
// never edited, so a packet never reads half a default action) and per-CPU
// hit/miss counters (p4tc_t<id>_stat). Its entries live by kind:
//
//   - exact: BPF_MAP_TYPE_HASH, preallocated, keyed by the whole P4TC key
//     struct {keysz, maskid, fields...} the datapath passes.
//   - one LPM field (and exact ones): BPF_MAP_TYPE_LPM_TRIE keyed by the
//     same struct, keysz standing in for the trie's prefixlen and maskid
//     (always 0) as the first 32 bits of data. The LPM field must be last
//     and in network byte order; an entry's prefixlen is 32 + the bits
//     before the prefix + the prefix length.
//   - ternary, range, optional, or several LPM fields: tuple space search.
//     The mask list (p4tc_t<id>_masks, replaced whole like the default
//     slot, only when masks come or go) names each mask by id and slot;
//     p4tc_t<id>_mprio holds each slot's top priority, changed in place
//     with atomic stores through an mmap. A hash holds each entry under its
//     masked key, with maskid set to the mask's id, and a value that
//     carries the priority. The datapath walks the list with bpf_loop,
//     keeps the best priority and skips masks whose top priority cannot
//     beat it. p4tcd keeps masks refcounted, resolves entries that share a
//     masked key (the winner is in the map, the runner-up comes back when
//     it goes), expands ranges into prefixes, and ranks tables without
//     priorities (several LPM fields) by total prefix length.
//
// Entry values are the P4TC act_bpf head (act_id, one byte of flags: hit,
// default miss, default hit) followed by the action's parameter blob; P4TC
// type dev parameters hold the ifindex of the --port they name.
//
// # Backend
//
// Verify loads the object with cilium/ebpf, checks its maps against the
// P4Info ("maps do not match the P4Info"), runs the kernel verifier (its
// last lines are in the error) and checks the ports. Commit loads,
// pins under the pin root and attaches with tcx (clsact and cls_bpf in
// direct-action mode where tcx is missing); existing tcx links are updated
// in place, so a port never runs nothing. Reconcile fills the new maps
// before swapping. Apply batches consecutive ops on a table into
// BatchUpdate/BatchDelete and maps E2BIG/ENOSPC to translator.ErrFull.
//
// What maps cannot hold (metadata, controller metadata, range bounds,
// entries that lose their masked key, placements) goes to a pinned side
// map, so that Restore gives a restarted p4tcd back exactly the entries it
// had. A batch journal, pinned too, records before each map change of a
// Write what undoes it (translator.BatchJournal); Restore takes back a
// Write p4tcd began and died before answering (kill -9), so a restarted
// p4tcd holds exactly the Writes it acknowledged.
//
// # Entry kinds and tiers
//
// Controller entries are placed sw, hw or both (translator.Placement). The
// tc program is the software tier; with the device config's XDP object,
// the same pipeline runs at XDP in front of it as the hardware tier, with
// maps of its own holding the hw and both entries, attached natively or
// generically ([XDPMode]). Entries the datapath creates itself
// (bpf_p4tc_entry_create_on_miss, PNA add-on-miss) live in the tc tier's
// exact tables, each taking a slot of the table's preallocated pool; they
// are aged by their timer profile, listed live by Reads
// (translator.DatapathCreator) and removed with the program that created
// them. Tables with idle timeouts or datapath creates record each entry's
// last hit; an aging sweep reports idle controller entries
// (Options.OnIdle) and deletes idle datapath-created ones.
// docs/ebpf-datapath.md §7 has the details.
//
// The Backend does not implement translator.AtomicBackend: making a batch
// visible all at once needs every table read of a packet to see one
// generation, and P4TC's interface, one kfunc call per table read, has no
// per-packet point where a generation could be chosen; shadow tables would
// also cost a copy of every touched table per batch. DATAPLANE_ATOMIC
// writes are answered UNIMPLEMENTED.
package ebpfdp
