// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Copyright The p4tcd Authors. */

/*
 * l3router_baseline: the floor the l3router datapath is measured against
 * (ebpfdp BenchmarkPrivilegedL3Router). It forwards like l3router with the
 * same three lookups done directly on plain maps, the way one would write
 * the router by hand without P4: an ACL with a single mask (one masked hash
 * lookup), an LPM trie on the destination, an exact next hop hash. No
 * counters, no default action slots, no P4TC key structs.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct acl_key {
	__be32 src, dst;
	__u8 proto, pad;
	__u16 sport, dport;
	__u16 pad2;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct acl_key);
} base_acl_mask SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct acl_key);
	__type(value, __u32); /* 1: deny */
} base_acl SEC(".maps");

struct lpm_key {
	__u32 prefixlen;
	__be32 dst;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct lpm_key);
	__type(value, __u16);
} base_lpm SEC(".maps");

struct nexthop {
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u32 ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, struct nexthop);
} base_nexthop SEC(".maps");

SEC("tc")
int baseline_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct acl_key ak = {0}, *mask;
	struct lpm_key lk;
	struct nexthop *nh;
	struct iphdr *ip;
	__u32 zero = 0, *deny;
	__u16 *nhop;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
		return TC_ACT_OK;
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
		__be16 *ports = (void *)ip + ip->ihl * 4;

		if ((void *)(ports + 2) > end)
			return TC_ACT_OK;
		ak.sport = bpf_ntohs(ports[0]);
		ak.dport = bpf_ntohs(ports[1]);
	}
	if (ip->ttl <= 1)
		return TC_ACT_OK;

	mask = bpf_map_lookup_elem(&base_acl_mask, &zero);
	if (!mask)
		return TC_ACT_SHOT;
	ak.src = ip->saddr & mask->src;
	ak.dst = ip->daddr & mask->dst;
	ak.proto = ip->protocol & mask->proto;
	ak.sport &= mask->sport;
	ak.dport &= mask->dport;
	deny = bpf_map_lookup_elem(&base_acl, &ak);
	if (deny && *deny)
		return TC_ACT_SHOT;

	lk.prefixlen = 32;
	lk.dst = ip->daddr;
	nhop = bpf_map_lookup_elem(&base_lpm, &lk);
	if (!nhop)
		return TC_ACT_SHOT;
	nh = bpf_map_lookup_elem(&base_nexthop, nhop);
	if (!nh)
		return TC_ACT_SHOT;
	__builtin_memcpy(eth->h_dest, nh->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, nh->smac, ETH_ALEN);
	ip->ttl--;
	{
		__u32 sum = ip->check + (__u32)bpf_htons(0x0100);

		ip->check = (__u16)(sum + (sum >= 0xFFFF));
	}
	return bpf_redirect(nh->ifindex, 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
