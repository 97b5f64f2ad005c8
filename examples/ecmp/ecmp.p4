/* Copyright The p4tcd Authors. SPDX-License-Identifier: Apache-2.0 */

/*
 * ecmp: an IPv4 ECMP router for the PNA architecture that uses every
 * extern p4tcd realises on its eBPF datapath.
 *
 *   route         LPM on the destination, implemented by the action
 *                 selector ecmp_selector (hash of the 5-tuple; members
 *                 forward to a port with the next hop's MACs; groups with
 *                 weights and watch ports); direct counter route_counter,
 *                 direct meter route_meter (bytes; RED drops)
 *   port_stats    counter per ingress port (packets and bytes)
 *   port_pkts     register per ingress port, incremented per packet
 *   policer       meter per ingress port (packets; RED drops)
 *   mirror_ports  parser value set of L4 destination ports: such packets
 *                 are cloned (clone session MIRROR_SESSION) before routing
 *   broadcast     frames to ff:ff:ff:ff:ff:ff go to multicast group
 *                 FLOOD_GROUP, every replica but the ingress port's
 *
 * This source is the reference for ecmp.p4info.txt and ecmp.json; the
 * datapath that runs is ecmp.c, written by hand against P4TC's interface
 * and p4tcd's extern calls (see README.md). PNA has no multicast or clone
 * extern of this shape and no action selector in the p4c tc backend: the
 * calls below name what ecmp.c does.
 */
#include <core.p4>
#include <tc/pna.p4>

const bit<32> FLOOD_GROUP = 1;
const bit<16> MIRROR_SESSION = 1;

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
    bool mirror;
}

parser MainParserImpl(packet_in pkt, out headers_t hdr, inout main_metadata_t meta,
                      in pna_main_parser_input_metadata_t istd) {
    @id(0x03000001) value_set<bit<16>>(8) mirror_ports;

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
        transition select(hdr.l4.dstPort) {
            mirror_ports: mark_mirror;
            default: accept;
        }
    }
    state mark_mirror {
        meta.mirror = true;
        transition accept;
    }
}

control PreControlImpl(in headers_t hdr, inout main_metadata_t meta,
                       in pna_pre_input_metadata_t istd, inout pna_pre_output_metadata_t ostd) {
    apply { }
}

control MainControlImpl(inout headers_t hdr, inout main_metadata_t meta,
                        in pna_main_input_metadata_t istd, inout pna_main_output_metadata_t ostd) {
    @id(0x12000001) Counter<bit<64>, PortId_t>(64, PNA_CounterType_t.PACKETS_AND_BYTES) port_stats;
    @id(0x16000001) Register<bit<32>, PortId_t>(64) port_pkts;
    @id(0x14000001) Meter<PortId_t>(64, PNA_MeterType_t.PACKETS) policer;
    @id(0x13000001) DirectCounter<bit<64>>(PNA_CounterType_t.PACKETS_AND_BYTES) route_counter;
    @id(0x15000001) DirectMeter(PNA_MeterType_t.BYTES) route_meter;
    @id(0x11000001) ActionSelector(PNA_HashAlgorithm_t.CRC32, 1024, 16) ecmp_selector;

    @id(0x01000001) action forward(@tc_type("dev") PortId_t port,
                                   @tc_type("macaddr") bit<48> dmac,
                                   @tc_type("macaddr") bit<48> smac) {
        route_counter.count();
        if (route_meter.execute() == PNA_MeterColor_t.RED) {
            drop_packet();
        } else {
            hdr.ethernet.dstAddr = dmac;
            hdr.ethernet.srcAddr = smac;
            hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
            send_to_port(port);
        }
    }
    @id(0x01000002) action drop() {
        route_counter.count();
        drop_packet();
    }

    @id(0x02000001) table route {
        key = {
            hdr.ipv4.dstAddr : lpm;
            hdr.ipv4.srcAddr : selector;
            hdr.ipv4.dstAddr : selector;
            hdr.ipv4.protocol : selector;
            hdr.l4.srcPort : selector;
            hdr.l4.dstPort : selector;
        }
        actions = { forward; drop; }
        default_action = drop();
        implementation = ecmp_selector;
        pna_direct_counter = route_counter;
        pna_direct_meter = route_meter;
        size = 1024;
    }

    apply {
        port_pkts.write(istd.input_port, port_pkts.read(istd.input_port) + 1);
        port_stats.count(istd.input_port);
        if (hdr.ethernet.dstAddr == 0xffffffffffff) {
            multicast(FLOOD_GROUP);          /* every replica but the ingress port */
        } else if (hdr.ipv4.isValid() && hdr.ipv4.ttl > 1) {
            if (policer.execute(istd.input_port) == PNA_MeterColor_t.RED) {
                drop_packet();
            } else {
                if (meta.mirror) {
                    mirror_packet(0, MIRROR_SESSION);
                }
                route.apply();
            }
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
