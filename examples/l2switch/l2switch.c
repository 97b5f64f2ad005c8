// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Copyright The p4tcd Authors. */

/*
 * l2switch datapath: l2switch.p4 written against P4TC's datapath interface
 * (bpf_p4tc_tbl_read) and p4tcd's packet I/O and digests (p4tc_stream.h).
 * One program, attached at tc ingress of every port and of the CPU port.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "l2switch_tables.h"
#include <p4tc_runtime.h>
#include <p4tc_stream.h>

/* P4Info ids (l2switch.p4info.txt). */
#define L2SWITCH_DIGEST_LEARN_T 385875969

/* @controller_header("packet_in") / ("packet_out"): one 32-bit port each. */
struct packet_in_hdr {
	__be32 ingress_port;
};
struct packet_out_hdr {
	__be32 egress_port;
};

/* learn_t { mac_t src; PortId_t port; }: fields in their containers (u64,
 * u32), network order. */
struct __attribute__((__packed__)) learn_t {
	__u8 pad[2];
	__u8 src[6];
	__be32 port;
};

SEC("tc")
int p4tc_ingress(struct __sk_buff *skb)
{
	struct p4tc_table_entry_act_bpf_params params = {0};
	struct p4tc_table_entry_act_bpf *act;
	void *data, *end;
	struct ethhdr *eth;
	__u32 in_port;

	/* MainParserImpl: packet-outs carry the packet_out header. */
	if (p4tc_from_cpu(skb)) {
		struct packet_out_hdr po;
		__u32 ifindex;

		if (p4tc_take_header(skb, &po, sizeof(po)))
			return TC_ACT_SHOT;
		ifindex = p4tc_port_to_ifindex(bpf_ntohl(po.egress_port));
		return ifindex ? bpf_redirect(ifindex, 0) : TC_ACT_SHOT;
	}
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_SHOT;
	in_port = p4tc_ingress_port(skb);

	/* smac.apply(): an unknown source is learnt through a digest. */
	{
		struct l2switch_smac_key key;

		__builtin_memset(&key, 0, sizeof(key));
		key.keysz = 48;
		__builtin_memcpy(key.src, eth->h_source, ETH_ALEN);
		params.tblid = L2SWITCH_SMAC_TBLID;
		act = bpf_p4tc_tbl_read(skb, &params, sizeof(params), &key, sizeof(key));
		if (act && act->act_id == L2SWITCH_SMAC_ACT_LEARN) {
			struct learn_t l = {0};

			__builtin_memcpy(l.src, eth->h_source, ETH_ALEN);
			l.port = bpf_htonl(in_port);
			p4tc_digest_pack(L2SWITCH_DIGEST_LEARN_T, l);
		}
	}

	/* dmac.apply(): forward, or ask the controller (it floods). */
	{
		struct l2switch_dmac_key key;
		struct l2switch_dmac_value *v;

		__builtin_memset(&key, 0, sizeof(key));
		key.keysz = 48;
		__builtin_memcpy(key.dst, eth->h_dest, ETH_ALEN);
		params.tblid = L2SWITCH_DMAC_TBLID;
		act = bpf_p4tc_tbl_read(skb, &params, sizeof(params), &key, sizeof(key));
		if (act && act->act_id == L2SWITCH_DMAC_ACT_FORWARD) {
			v = (struct l2switch_dmac_value *)act;
			return bpf_redirect(v->u.forward.port, 0);
		}
	}
	{
		struct packet_in_hdr pi = { .ingress_port = bpf_htonl(in_port) };

		return p4tc_send_to_cpu(skb, &pi, sizeof(pi));
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
