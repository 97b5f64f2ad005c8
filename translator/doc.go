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
//     DATAPLANE_ATOMIC) and consistent snapshots for Read.
//
// Protobuf types stop here: backends receive [Entry] values, with typed ids
// and byte blobs of known layout. The translator never talks gRPC, netlink or
// the bpf syscall.
//
// Errors wrap the sentinels of errors.go; server maps them to gRPC codes in
// one place.
package translator
