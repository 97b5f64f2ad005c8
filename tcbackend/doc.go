// Package tcbackend is p4tcd's P4TC kernel backend: on a kernel that carries
// P4TC (the out-of-tree module), it realises a P4Runtime pipeline as P4TC
// template objects and writes its entries as P4TC runtime entries, over
// rtnetlink, as P4TC's own tools do.
//
// # Operations and their tc equivalents
//
//   - [Backend.Commit]: the p4c `.template` script. `tc p4template del
//     pipeline/<p>`, `create pipeline/<p> numtables <n>`, per action
//     `create action/<p>/<cb>/<a> actid <id> param <name> type <type> id <id>`
//     and `update action/... state active`, per table `create
//     table/<p>/<cb>/<t> tblid <id> type <exact|lpm|ternary> keysz <bits>
//     permissions <hex> tentries <n> nummasks <n> [num_timer_profiles <n>]
//     table_acts act name <a> [flags tableonly|defaultonly] ...` and `update
//     table/... default_miss_action permissions <hex> action <a> [param ...]`,
//     then `update pipeline/<p> state ready`.
//   - [Backend.Apply]: `tc p4ctrl create|update|delete <p>/table/<cb>/<t>
//     <key> [prio <n>] [dynamic aging <ms>] action <a> param ... [skip_sw|
//     skip_hw]`, up to 16 entries per message; a default action change is
//     `tc p4ctrl update ... tbl_attrs default_miss_action ...`; an idle
//     timeout P4TC has no timer profile for first takes one with `tbl_attrs
//     timer_profile id <n> aging <ms>`.
//   - [Backend.Get], [Backend.Dump], [Backend.Flush]: `tc p4ctrl get` with and
//     without a key, `tc p4ctrl delete` without one.
//   - [Backend.Events]: `tc monitor` (v17: `tc mon p4 events`).
//   - [Probe]: whether the kernel answers RTM_GETP4TEMPLATE at all, and which
//     ABI it speaks.
//
// # Translation
//
// Names and ids come from the introspection JSON in the device config
// (translator.Program): P4Info's dotted names map to P4TC's "<cb>/<name>"
// and small ids. P4TC's key blob is exactly ceil(keysz/8) bytes; the
// translator lays key fields out in native containers (u8, u16, u32, u64, as
// the p4c `tc` backend's BPF key structs do), which for fields that are not
// whole bytes can take more room. tcbackend sends the first ceil(keysz/8)
// bytes of that layout — the bytes the datapath's key struct starts with —
// and Verify refuses a table whose key bits would fall past them. Exact
// tables send no priority. P4TC's ternary lookup prefers the smallest
// priority and wants it unique per table, P4Runtime's the largest, possibly
// shared: P4Runtime priority p (1..2^23-1) becomes P4TC priority
// ((2^23-p)<<8) + slot, with 256 slots per P4Runtime priority. Entry
// placement (translator.Placement, from the device config's table settings)
// travels as TCA_ACT_FLAGS on the entry's action: skip_hw for software only,
// skip_sw for hardware only, none for both. Kernel errors become the
// translator's sentinels with the kernel's extended-ack text.
//
// # ABIs
//
// P4TC renumbered attributes between releases. Each ABI tcbackend encodes
// (series 1 as posted up to v13, the out-of-tree LK13 branch, v17) is one
// table of numbers in abi.go, chosen by [Probe] or by Options.ABI
// (--p4tc-abi).
//
// # Testing
//
// No machine tcbackend was written on has a P4TC kernel. The tests check the
// messages against bytes written by hand from the uAPI headers, against
// `tc p4template` and `tc p4ctrl` command lines encoded as iproute2-p4tc
// does, and drive the Backend against a stand-in for a P4TC kernel over
// NETLINK_USERSOCK. See README.md for what that does and does not prove.
package tcbackend
