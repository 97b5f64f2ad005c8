/* Copyright The p4tcd Authors. SPDX-License-Identifier: Apache-2.0 */

/*
 * conntrack: a stateful firewall between an inside and an outside port,
 * for the PNA architecture and P4TC, built on PNA add-on-miss.
 *
 *   port_zone  exact ingress port: which side it is, and its peer port
 *   allow      longest-prefix match on the destination of inside traffic:
 *              may the inside open flows there?
 *   ct         exact 5-tuple, inside address and port first, so that both
 *              directions of a flow find one entry. add_on_miss: the first
 *              allowed packet of a flow from the inside creates the entry
 *              (ct_flow, recording the inside port); return traffic from
 *              the outside passes only while it exists. Entries expire
 *              after the aging of timer profile 0 without traffic.
 *
 * Frames cross unchanged (a bump in the wire); non-IPv4 frames and IPv4
 * other than TCP and UDP go to the host stack.
 *
 * This source is the reference for conntrack.p4info.txt and
 * conntrack.json; the datapath that runs is conntrack.c, written by hand
 * against the P4TC interface the p4c tc backend targets (see README.md).
 */
#include <core.p4>
#include <tc/pna.p4>

header ethernet_t {
    @tc_type("macaddr") bit<48> dstAddr;
    @tc_type("macaddr") bit<48> srcAddr;
    bit<16> etherType;
}

header ipv4_t {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  diffserv;
    bit<16> totalLen;
    bit<16> identification;
    bit<3>  flags;
    bit<13> fragOffset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdrChecksum;
    @tc_type("ipv4") bit<32> srcAddr;
    @tc_type("ipv4") bit<32> dstAddr;
}

header l4_ports_t {
    bit<16> srcPort;
    bit<16> dstPort;
}

struct headers_t {
    ethernet_t ethernet;
    ipv4_t     ipv4;
    l4_ports_t l4;
}

struct main_metadata_t {
    bit<8>   inside;
    PortId_t peer;
    @tc_type("ipv4") bit<32> inside_addr;
    @tc_type("ipv4") bit<32> outside_addr;
    bit<16>  inside_port;
    bit<16>  outside_port;
}

parser MainParserImpl(packet_in pkt, out headers_t hdr, inout main_metadata_t meta,
                      in pna_main_parser_input_metadata_t istd) {
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x0800: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        transition select(hdr.ipv4.protocol) {
            6: parse_l4;
            17: parse_l4;
            default: accept;
        }
    }
    state parse_l4 {
        pkt.extract(hdr.l4);
        transition accept;
    }
}

control MainControlImpl(inout headers_t hdr, inout main_metadata_t meta,
                        in pna_main_input_metadata_t istd,
                        inout pna_main_output_metadata_t ostd) {
    @id(0x01000001) action set_zone(bit<8> inside, @tc_type("dev") PortId_t peer) {
        meta.inside = inside;
        meta.peer = peer;
    }
    @id(0x01000003) action drop() {
        drop_packet();
    }
    @id(0x01000004) action permit() {
        /* Track the flow; a full pool leaves it untracked (miss path). */
        add_entry(action_name = "ct_flow", action_params = { istd.input_port },
                  expire_time_profile_id = 0);
    }
    @id(0x01000005) action deny() {
        drop_packet();
    }
    @id(0x01000002) action ct_flow(@tc_type("dev") PortId_t inside_port) {
    }
    @id(0x01000006) action ct_miss() {
        if (meta.inside == 1) {
            allow.apply();
        } else {
            drop_packet();
        }
    }

    @id(0x02000001) table port_zone {
        key = { istd.input_port : exact @name("input_port") @tc_type("dev"); }
        actions = { set_zone; @defaultonly drop; }
        default_action = drop();
        size = 64;
    }

    @id(0x02000002) table allow {
        key = { hdr.ipv4.dstAddr : lpm @name("dst"); }
        actions = { permit; @defaultonly deny; }
        default_action = deny();
        size = 1024;
    }

    @id(0x02000003) table ct {
        key = {
            meta.inside_addr  : exact @name("inside_addr");
            meta.outside_addr : exact @name("outside_addr");
            hdr.ipv4.protocol : exact @name("proto");
            meta.inside_port  : exact @name("inside_port");
            meta.outside_port : exact @name("outside_port");
        }
        actions = { ct_flow; @defaultonly ct_miss; }
        default_action = ct_miss();
        add_on_miss = true;
        pna_idle_timeout = PNA_IdleTimeout_t.NOTIFY_CONTROL;
        size = 1024;
    }

    apply {
        if (!hdr.l4.isValid()) {
            return; /* to the host stack */
        }
        port_zone.apply();
        if (meta.inside == 1) {
            meta.inside_addr = hdr.ipv4.srcAddr;  meta.outside_addr = hdr.ipv4.dstAddr;
            meta.inside_port = hdr.l4.srcPort;    meta.outside_port = hdr.l4.dstPort;
        } else {
            meta.inside_addr = hdr.ipv4.dstAddr;  meta.outside_addr = hdr.ipv4.srcAddr;
            meta.inside_port = hdr.l4.dstPort;    meta.outside_port = hdr.l4.srcPort;
        }
        ct.apply();
        send_to_port(meta.peer);
    }
}

control MainDeparserImpl(packet_out pkt, in headers_t hdr, in main_metadata_t meta,
                         in pna_main_output_metadata_t ostd) {
    apply {
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.l4);
    }
}

PNA_NIC(MainParserImpl(), MainControlImpl(), MainDeparserImpl()) main;
