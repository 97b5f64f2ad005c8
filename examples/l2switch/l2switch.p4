/* l2switch: a learning switch for PNA (reference for l2switch.c; p4tcd
 * does not compile P4 — the datapath is the C next to it).
 *
 *  - smac: a source MAC the controller does not know yet is sent to it as
 *    a digest {src, ingress port} (learning);
 *  - dmac: a known destination MAC is forwarded to its port; an unknown one
 *    goes to the controller as a packet-in, and the controller floods it with
 *    packet-outs; entries age out by idle timeout (the controller deletes
 *    them on IdleTimeoutNotification);
 *  - packet-outs from the controller leave by the port they name.
 */
#include <core.p4>
#include <tc/pna.p4>

typedef bit<48> mac_t;
typedef bit<32> PortId_t;

header ethernet_t { mac_t dst; mac_t src; bit<16> type; }

@controller_header("packet_in")
header packet_in_t { PortId_t ingress_port; }

@controller_header("packet_out")
header packet_out_t { PortId_t egress_port; }

struct headers_t { packet_out_t packet_out; packet_in_t packet_in; ethernet_t eth; }
struct learn_t { mac_t src; PortId_t port; }
struct metadata_t { }

parser MainParserImpl(packet_in pkt, out headers_t hdr, inout metadata_t meta,
                      in pna_main_parser_input_metadata_t istd) {
    state start {
        transition select(istd.input_port) {
            PNA_PORT_CPU: parse_packet_out;
            default: parse_ethernet;
        }
    }
    state parse_packet_out { pkt.extract(hdr.packet_out); transition parse_ethernet; }
    state parse_ethernet { pkt.extract(hdr.eth); transition accept; }
}

control MainControlImpl(inout headers_t hdr, inout metadata_t meta,
                        in pna_main_input_metadata_t istd, inout pna_main_output_metadata_t ostd) {
    Digest<learn_t>() learn_digest;

    action known() { }
    action learn() { learn_digest.pack({hdr.eth.src, (PortId_t)istd.input_port}); }
    @tc_type("dev") action forward(@tc_type("dev") PortId_t port) { send_to_port(port); }
    action to_cpu() {
        hdr.packet_in.setValid();
        hdr.packet_in.ingress_port = (PortId_t)istd.input_port;
        send_to_port(PNA_PORT_CPU);
    }

    table smac {
        key = { hdr.eth.src: exact @tc_type("macaddr") @name("src"); }
        actions = { known; @defaultonly learn; }
        default_action = learn();
        size = 4096;
    }
    table dmac {
        key = { hdr.eth.dst: exact @tc_type("macaddr") @name("dst"); }
        actions = { forward; @defaultonly to_cpu; }
        default_action = to_cpu();
        pna_idle_timeout = PNA_IdleTimeout_t.NOTIFY_CONTROL;
        size = 4096;
    }

    apply {
        if (hdr.packet_out.isValid()) {
            send_to_port((PortId_t)hdr.packet_out.egress_port);
            hdr.packet_out.setInvalid();
            return;
        }
        smac.apply();
        dmac.apply();
    }
}

control MainDeparserImpl(packet_out pkt, inout headers_t hdr, in metadata_t meta,
                         in pna_main_output_metadata_t ostd) {
    apply { pkt.emit(hdr.packet_in); pkt.emit(hdr.eth); }
}

PNA_NIC(MainParserImpl(), MainControlImpl(), MainDeparserImpl()) main;
