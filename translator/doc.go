// Package translator turns P4Runtime into p4tcd's canonical, typed model and
// keeps the shadow store that serves Reads.
//
// It owns:
//
//   - the P4Info index and its validation ([Compile], [Pipeline]);
//   - P4Runtime entity ⇄ canonical entry translation with every check of the
//     P4Runtime v1.5 spec (§9 "P4 Entity Messages", §"Bytestrings");
//   - the P4TC key and parameter blob layouts ([KeyLayout]), shared by both
//     kernel backends, so that the netlink key attribute and the BPF map key
//     are the same bytes;
//   - the [Backend] interface that kernel backends implement, and the
//     control-plane-only backend ([NewNoneBackend]);
//   - the [Device]: the shadow store plus the transactional Write engine
//     (in-order, strictly serializable, CONTINUE_ON_ERROR, ROLLBACK_ON_ERROR and
//     DATAPLANE_ATOMIC) and consistent snapshots for Read;
//   - the P4 externs of §9.2-§9.8 (action profile members and groups, one-shot
//     action sets, counters and direct counters, meters and direct meters,
//     registers, multicast groups and clone sessions, value sets, digest
//     configs) in the same transactional flow, and the optional
//     [ExternBackend] hooks through which a kernel backend realises them.
//
// # Externs and backends
//
// Every extern write is staged in the store with an undo and handed to the
// backend in update order: table ops through [Backend.Apply], extern ops
// ([ExternOp]) through [ExternBackend.ApplyExterns]. A one-shot table entry
// is realised as hidden members and a hidden group (§9.2.3 allows it), so a
// backend only ever sees members, groups and entries that point at them;
// reads still return the action set as written. A backend declares the
// extern kinds it realises ([ExternSet]); a kind it lacks answers
// UNIMPLEMENTED per write and per read, while the pipeline is accepted.
// Counters and registers are data plane volatile: Reads take them live from
// [ExternBackend.ReadCounters] and [ExternBackend.ReadRegisters]. The
// control-plane-only backend realises every kind and, having no dataplane,
// reports the values last written. Meter configs are returned exactly as
// written whatever a datapath quantises.
//
// Protobuf types stop here: backends receive [Entry] values, with typed ids
// and byte blobs of known layout. The translator never talks gRPC, netlink or
// the bpf syscall.
//
// Errors wrap the sentinels of errors.go; server maps them to gRPC codes in
// one place.
package translator
