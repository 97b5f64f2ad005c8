// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Copyright The p4tcd Authors. */

/*
 * ecmp datapath: ecmp.p4 written by hand against P4TC's datapath interface
 * and p4tcd's externs (p4tc_externs.h, p4tc_pre.h). It uses every extern
 * p4tcd realises:
 *
 *   port_pkts     register<bit<32>>[64]: packets per ingress port, counted
 *                 in place (the controller may write it; the count goes on)
 *   port_stats    counter[64] (packets and bytes) per ingress port
 *   flood         multicast group 1: broadcast frames go to every replica
 *                 but the ingress port
 *   policer       meter[64] (packets) per ingress port: RED drops
 *   mirror_ports  parser value set of UDP/TCP destination ports: such
 *                 packets are cloned to clone session 1
 *   route         LPM on the IPv4 destination, implemented by the action
 *                 selector ecmp_selector (hash of the 5-tuple, watch
 *                 ports), with the direct counter route_counter and the
 *                 direct meter route_meter (bytes: RED drops)
 *
 * Forwarded packets get their MACs from the member's forward() and their
 * TTL decremented (checksum updated incrementally).
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ecmp_tables.h"
#include <p4tc_runtime.h>
#include <p4tc_stream.h>
#include <p4tc_pre.h>

/* const bit<32> FLOOD_GROUP = 1; const bit<16> MIRROR_SESSION = 1; */
#define FLOOD_GROUP    1
#define MIRROR_SESSION 1

/* The fields ecmp_selector hashes: the IPv4 5-tuple. */
struct five_tuple {
	__be32 src;
	__be32 dst;
	__u8 proto;
	__u8 pad[3];
	__be16 sport;
	__be16 dport;
};

SEC("tc")
int p4tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct p4tc_table_entry_act_bpf_params params = { .tblid = ECMP_ROUTE_TBLID };
	struct p4tc_ext_bpf_params ext;
	struct p4tc_table_entry_act_bpf *act;
	struct ecmp_route_value *v;
	struct five_tuple ft = {};
	struct ecmp_route_key key;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	bool mirror = false;
	__u32 port, *pkts;
	int color;

	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	port = p4tc_ingress_port(skb);

	/* port_pkts[port] = port_pkts[port] + 1 */
	pkts = p4tc_register_cell(ECMP_REGISTER_PORT_PKTS, port);
	if (pkts)
		__sync_fetch_and_add(pkts, 1);

	/* port_stats.count(port), P4TC's way */
	__builtin_memset(&ext, 0, sizeof(ext));
	ext.ext_id = P4TC_EXTERN_COUNTER_ID;
	ext.inst_id = ECMP_COUNTER_PORT_STATS;
	ext.index = port;
	ext.flags = P4TC_EXT_CNT_INDIRECT;
	bpf_p4tc_extern_count_pktsnbytes(skb, &ext, sizeof(ext), NULL, 0);

	/* Broadcast: one copy to every member of the flood group but the
	 * ingress port; the original is consumed. */
	if ((eth->h_dest[0] & eth->h_dest[1] & eth->h_dest[2] & eth->h_dest[3] &
	     eth->h_dest[4] & eth->h_dest[5]) == 0xff) {
		p4tc_multicast(skb, FLOOD_GROUP, skb->ingress_ifindex);
		return TC_ACT_SHOT;
	}

	/* MainParserImpl */
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl != 5)
		return TC_ACT_OK;
	ft.src = ip->saddr;
	ft.dst = ip->daddr;
	ft.proto = ip->protocol;
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
		__be16 *l4 = (void *)(ip + 1);
		struct ecmp_mirror_ports_key vk;

		if ((void *)(l4 + 2) > end)
			return TC_ACT_OK;
		ft.sport = l4[0];
		ft.dport = l4[1];
		/* select(hdr.l4.dstPort) { mirror_ports: parse_mirror; } */
		__builtin_memset(&vk, 0, sizeof(vk));
		vk.keysz = 16;
		vk.dstPort = l4[1];
		mirror = p4tc_value_set_match(ECMP_VALUE_SET_MIRROR_PORTS, &vk, sizeof(vk));
	}
	if (ip->ttl <= 1)
		return TC_ACT_OK;

	/* MainControlImpl */

	/* policer.execute(port), colour-blind, P4TC's way */
	__builtin_memset(&ext, 0, sizeof(ext));
	ext.ext_id = P4TC_EXTERN_METER_ID;
	ext.inst_id = ECMP_METER_POLICER;
	ext.index = port;
	ext.flags = P4TC_EXT_METER_INDIRECT;
	if (bpf_p4tc_extern_meter_pkts(skb, &ext, sizeof(ext), NULL, 0) == P4TC_METER_RED)
		return TC_ACT_SHOT;

	/* Mirror before any change (PSA's ingress-to-egress clone). */
	if (mirror)
		p4tc_clone(skb, MIRROR_SESSION);

	/* route.apply() */
	__builtin_memset(&key, 0, sizeof(key));
	key.keysz = 32;
	key.dstAddr = ft.dst;
	act = bpf_p4tc_tbl_read(skb, &params, sizeof(params), &key, sizeof(key));
	if (!act)
		return TC_ACT_SHOT;

	/* The direct resources of the entry that matched (or of the default). */
	__builtin_memset(&ext, 0, sizeof(ext));
	ext.tbl_id = ECMP_ROUTE_TBLID;
	ext.flags = P4TC_EXT_CNT_DIRECT;
	bpf_p4tc_extern_count_pktsnbytes(skb, &ext, sizeof(ext), &key, sizeof(key));
	ext.flags = P4TC_EXT_METER_DIRECT;
	color = bpf_p4tc_extern_meter_bytes(skb, &ext, sizeof(ext), &key, sizeof(key));
	if (color == P4TC_METER_RED)
		return TC_ACT_SHOT;

	/* ecmp_selector: a member, or the member of a group the hash picks. */
	act = p4tc_action_select(ECMP_PROFILE_ECMP_SELECTOR, act, p4tc_hash(&ft, sizeof(ft)));
	v = (void *)act;
	if (!v || v->act_id != ECMP_ROUTE_ACT_FORWARD)
		return TC_ACT_SHOT;

	/* Cloning may have moved the packet: find the headers again. */
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return TC_ACT_SHOT;
	__builtin_memcpy(eth->h_dest, v->u.forward.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, v->u.forward.smac, ETH_ALEN);
	ip->ttl--;
	{
		/* RFC 1624: the TTL is the high byte of its 16-bit word. */
		__u32 sum = ip->check + (__u32)bpf_htons(0x0100);

		ip->check = (__u16)(sum + (sum >= 0xFFFF));
	}
	return bpf_redirect(v->u.forward.port, 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
