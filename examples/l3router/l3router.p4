/* Copyright The p4tcd Authors. SPDX-License-Identifier: Apache-2.0 */

/*
 * l3router: an IPv4 router for the PNA architecture and P4TC.
 *
 *   acl       ternary 5-tuple ACL with priorities: permit or deny
 *   ipv4_lpm  longest-prefix match on the destination: next hop id
 *   nexthop   exact next hop id: rewrite the MACs, send to a port
 *
 * Forwarded packets have their TTL decremented and the IPv4 checksum
 * updated incrementally. Non-IPv4 frames go to the host stack.
 *
 * This source is the reference for l3router.p4info.txt and l3router.json;
 * the datapath that runs is l3router.c, written by hand against the P4TC
 * interface the p4c tc backend targets (see README.md).
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

/* The first four bytes of TCP and UDP. */
header l4_ports_t {
    bit<16> srcPort;
    bit<16> dstPort;
}

struct headers_t {
    ethernet_t   ethernet;
    ipv4_t       ipv4;
    l4_ports_t   l4;
}

struct main_metadata_t {
    bit<16> nhop_id;
    bit<16> sport;
    bit<16> dport;
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
        meta.sport = hdr.l4.srcPort;
        meta.dport = hdr.l4.dstPort;
        transition accept;
    }
}

control PreControlImpl(in headers_t hdr, inout main_metadata_t meta,
                       in pna_pre_input_metadata_t istd, inout pna_pre_output_metadata_t ostd) {
    apply { }
}

control MainControlImpl(inout headers_t hdr, inout main_metadata_t meta,
                        in pna_main_input_metadata_t istd, inout pna_main_output_metadata_t ostd) {
    @id(0x01000001) action drop() {
        drop_packet();
    }
    @id(0x01000002) action set_nhop(bit<16> nhop_id) {
        meta.nhop_id = nhop_id;
    }
    @id(0x01000003) action forward(@tc_type("macaddr") bit<48> dmac,
                                   @tc_type("macaddr") bit<48> smac,
                                   @tc_type("dev") PortId_t port) {
        hdr.ethernet.dstAddr = dmac;
        hdr.ethernet.srcAddr = smac;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
        send_to_port(port);
    }
    @id(0x01000004) action permit() { }
    @id(0x01000005) action deny() {
        drop_packet();
    }

    @id(0x02000001) table acl {
        key = {
            hdr.ipv4.srcAddr : ternary @name("src");
            hdr.ipv4.dstAddr : ternary @name("dst");
            hdr.ipv4.protocol : optional @name("proto");
            meta.sport : range @name("sport");
            meta.dport : range @name("dport");
        }
        actions = { permit; deny; }
        default_action = permit();
        size = 4096;
        @numMask(32)
    }

    @id(0x02000002) table ipv4_lpm {
        key = {
            hdr.ipv4.dstAddr : lpm @name("dst");
        }
        actions = { set_nhop; drop; }
        default_action = drop();
        size = 4096;
    }

    @id(0x02000003) table nexthop {
        key = {
            meta.nhop_id : exact @name("nhop_id");
        }
        actions = { forward; drop; }
        default_action = drop();
        size = 4096;
    }

    apply {
        /* Other frames, and packets whose TTL would expire, go to the
         * host stack (which answers with ICMP time exceeded). */
        if (hdr.ipv4.isValid() && hdr.ipv4.ttl > 1) {
            acl.apply();
            ipv4_lpm.apply();
            nexthop.apply();
        }
    }
}

control MainDeparserImpl(packet_out pkt, inout headers_t hdr, in main_metadata_t meta,
                         in pna_main_output_metadata_t ostd) {
    InternetChecksum() ck;
    apply {
        ck.clear();
        ck.add({ hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen,
                 hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset,
                 hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr });
        hdr.ipv4.hdrChecksum = ck.get();
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.l4);
    }
}

PNA_NIC(MainParserImpl(), PreControlImpl(), MainControlImpl(), MainDeparserImpl()) main;
