// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Copyright The p4tcd Authors. */

/*
 * l3router datapath: l3router.p4 written by hand against P4TC's datapath
 * interface, the way the p4c tc backend writes its C: each table apply
 * fills the table's P4TC key struct, calls bpf_p4tc_tbl_read() with
 * {pipeid, tblid}, and switches on the act_id of the result. On a P4TC
 * kernel the call is a kfunc; here p4tc_runtime.h implements it over the
 * maps p4tcd fills, and l3router_tables.h (p4tcd-gen tables) declares the
 * tables.
 *
 * One program, attached at tc ingress of every port: the parser, the
 * control block and the deparser's incremental checksum update.
 *
 * Built with -DL3ROUTER_XDP (l3router_xdp.o), the same pipeline is p4tcd's
 * XDP tier: it calls xdp_p4tc_tbl_read(), handles a packet only when every
 * table it applies hits, and passes anything else (a miss, or a packet
 * for the host) to the tc tier with XDP_PASS, where the tables hold the
 * entries placed sw and the default actions decide.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "l3router_tables.h"
#include <p4tc_runtime.h>

#ifdef L3ROUTER_XDP
#define CTX struct xdp_md
#define TBL_READ xdp_p4tc_tbl_read
#define SECTION "xdp"
#define PASS XDP_PASS
#define SHOT XDP_DROP
/* The XDP tier handles a packet only if the table hit; else tc decides. */
#define MISS_TO_TC(act)                        \
	do {                                   \
		if (!(act) || !(act)->hit)     \
			return XDP_PASS;       \
	} while (0)
#else
#define CTX struct __sk_buff
#define TBL_READ bpf_p4tc_tbl_read
#define SECTION "tc"
#define PASS TC_ACT_OK
#define SHOT TC_ACT_SHOT
#define MISS_TO_TC(act) do { } while (0)
#endif

/* The PNA metadata this program uses (pna_global_metadata). */
struct meta {
	bool drop;
	__u32 egress_port; /* ifindex; 0: to the host stack */
	__u16 nhop_id;
};

SEC(SECTION)
#ifdef L3ROUTER_XDP
int p4tc_xdp(CTX *skb)
#else
int p4tc_ingress(CTX *skb)
#endif
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct p4tc_table_entry_act_bpf_params params = {0};
	struct p4tc_table_entry_act_bpf *act;
	struct meta meta = {0};
	__u16 sport = 0, dport = 0;
	struct ethhdr *eth = data;
	struct iphdr *ip;

	/* MainParserImpl */
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
		return PASS;
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
		__be16 *ports = (void *)ip + ip->ihl * 4;

		if ((void *)(ports + 2) > end)
			return PASS;
		sport = bpf_ntohs(ports[0]);
		dport = bpf_ntohs(ports[1]);
	}

	/* MainControlImpl */
	if (ip->ttl <= 1)
		return PASS;

	/* acl.apply() */
	{
		struct l3router_acl_key key;

		__builtin_memset(&key, 0, sizeof(key)); /* padding too: it is hashed */
		key.keysz = 104;
		key.src = ip->saddr;
		key.dst = ip->daddr;
		key.proto = ip->protocol;
		key.sport = sport;
		key.dport = dport;
		params.tblid = L3ROUTER_ACL_TBLID;
		act = TBL_READ(skb, &params, sizeof(params), &key, sizeof(key));
		MISS_TO_TC(act);
		if (act) {
			switch (act->act_id) {
			case L3ROUTER_ACL_ACT_DENY:
				meta.drop = true;
				break;
			case L3ROUTER_ACL_ACT_PERMIT:
				break;
			}
		}
	}

	/* ipv4_lpm.apply() */
	{
		struct l3router_ipv4_lpm_key key;
		struct l3router_ipv4_lpm_value *v;

		__builtin_memset(&key, 0, sizeof(key));
		key.keysz = 32;
		key.dst = ip->daddr;
		params.tblid = L3ROUTER_IPV4_LPM_TBLID;
		act = TBL_READ(skb, &params, sizeof(params), &key, sizeof(key));
		MISS_TO_TC(act);
		v = (void *)act;
		if (v) {
			switch (v->act_id) {
			case L3ROUTER_IPV4_LPM_ACT_SET_NHOP:
				meta.nhop_id = v->u.set_nhop.nhop_id;
				break;
			case L3ROUTER_IPV4_LPM_ACT_DROP:
				meta.drop = true;
				break;
			}
		}
	}

	/* nexthop.apply() */
	{
		struct l3router_nexthop_key key;
		struct l3router_nexthop_value *v;

		__builtin_memset(&key, 0, sizeof(key));
		key.keysz = 16;
		key.nhop_id = meta.nhop_id;
		params.tblid = L3ROUTER_NEXTHOP_TBLID;
		act = TBL_READ(skb, &params, sizeof(params), &key, sizeof(key));
		MISS_TO_TC(act);
		v = (void *)act;
		if (v) {
			switch (v->act_id) {
			case L3ROUTER_NEXTHOP_ACT_FORWARD:
				__builtin_memcpy(eth->h_dest, v->u.forward.dmac, ETH_ALEN);
				__builtin_memcpy(eth->h_source, v->u.forward.smac, ETH_ALEN);
				ip->ttl--;
				meta.egress_port = v->u.forward.port;
				break;
			case L3ROUTER_NEXTHOP_ACT_DROP:
				meta.drop = true;
				break;
			}
		}
	}

	if (meta.drop)
		return SHOT;
	if (meta.egress_port == 0)
		return PASS;

	/*
	 * MainDeparserImpl: only the TTL changed, so update the checksum
	 * incrementally, as the kernel's ip_decrease_ttl() does: the TTL is the
	 * high byte of its 16-bit word, so the header's one's complement sum
	 * dropped by 0x0100 and the checksum rises by 0x0100, end-around carry
	 * included (RFC 1624).
	 */
	{
		__u32 sum = ip->check + (__u32)bpf_htons(0x0100);

		ip->check = (__u16)(sum + (sum >= 0xFFFF));
	}
	return bpf_redirect(meta.egress_port, 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
