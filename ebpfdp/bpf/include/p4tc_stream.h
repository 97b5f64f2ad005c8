/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Copyright The p4tcd Authors. */

/*
 * p4tc_stream.h: packet I/O with the controller and digests, for datapaths
 * on p4tcd's eBPF runtime (include it after p4tc_runtime.h).
 *
 * P4TC has no packet-in/packet-out channel: "to CPU" is the host stack. On
 * p4tcd, the CPU port is a veth pair that p4tcd creates and owns
 * (`--cpu-port N`): its datapath end is port N of the pipeline, like any
 * `--port`, and p4tcd reads and writes the other end.
 *
 *   packet-in   the program prepends the P4 program's packet_in header
 *               (@controller_header("packet_in")) and redirects the packet to
 *               the CPU port: p4tc_send_to_cpu(). p4tcd turns the header into
 *               PacketIn metadata.
 *   packet-out  p4tcd writes packet_out header + packet into the CPU port: the
 *               packet enters the pipeline on port N with the header in front.
 *               The program takes the header off with p4tc_take_header() and
 *               decides (forward to the requested port, or run the pipeline).
 *
 * Controller headers are P4 headers: fields in P4Info order, bit-packed most
 * significant bit first, padded to whole bytes.
 *
 * Digests: p4tc_digest_pack() appends a record {P4Info digest id, size,
 * data} to the ring buffer p4tc_digests; p4tcd batches them into DigestLists.
 * The data is the digest's fields in their native containers (u8, u16, u32,
 * u64 or byte arrays), network byte order, packed.
 *
 * p4tcd fills p4tc_ports (ifindex -> P4 port), p4tc_port_ifindex (the
 * reverse) and p4tc_cpu (the CPU port's ifindex and number) when it commits
 * the pipeline.
 */
#ifndef P4TC_STREAM_H
#define P4TC_STREAM_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#ifndef P4TC_MAX_PORTS
#define P4TC_MAX_PORTS 1024
#endif

/* Largest frame p4tc_take_header() moves (a jumbo frame). */
#define P4TC_MAX_FRAME 9216

/* ifindex -> P4 port number of every port of the pipeline. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, P4TC_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} p4tc_ports SEC(".maps");

struct p4tc_cpu_port {
	__u32 ifindex; /* datapath end of the CPU veth; 0: no CPU port */
	__u32 port;    /* its P4 port number */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct p4tc_cpu_port);
} p4tc_cpu SEC(".maps");

/* P4 port number -> ifindex, for packet-outs to a port. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, P4TC_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} p4tc_port_ifindex SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} p4tc_digests SEC(".maps");

/* The P4 port a packet came in on; 0 when the interface is not a port. */
static __always_inline __u32 p4tc_ingress_port(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ingress_ifindex;
	__u32 *port = bpf_map_lookup_elem(&p4tc_ports, &ifindex);

	return port ? *port : 0;
}

/* The ifindex of P4 port port; 0 when it is not a port. */
static __always_inline __u32 p4tc_port_to_ifindex(__u32 port)
{
	__u32 *ifindex = bpf_map_lookup_elem(&p4tc_port_ifindex, &port);

	return ifindex ? *ifindex : 0;
}

static __always_inline struct p4tc_cpu_port *p4tc__cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&p4tc_cpu, &zero);
}

/* Whether the packet is a packet-out: it came in on the CPU port. */
static __always_inline int p4tc_from_cpu(struct __sk_buff *skb)
{
	struct p4tc_cpu_port *cpu = p4tc__cpu();

	return cpu && cpu->ifindex && skb->ingress_ifindex == cpu->ifindex;
}

/*
 * p4tc_send_to_cpu prepends hdr (the packet_in header, len bytes) to the
 * packet and redirects it to the CPU port; return its result from the
 * program. Without a CPU port, or if the header does not fit, the packet is
 * dropped.
 */
static __always_inline long p4tc_send_to_cpu(struct __sk_buff *skb, const void *hdr, __u32 len)
{
	struct p4tc_cpu_port *cpu = p4tc__cpu();

	if (!cpu || !cpu->ifindex || len == 0 || len > 64)
		return TC_ACT_SHOT;
	if (bpf_skb_change_head(skb, len, 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 0, hdr, len, 0))
		return TC_ACT_SHOT;
	return bpf_redirect(cpu->ifindex, 0);
}

struct p4tc__shift {
	struct __sk_buff *skb;
	__u32 hlen; /* bytes to remove from the front */
	__u32 len;  /* bytes after them */
};

/* Moves 64 bytes of a packet hlen bytes towards its front. */
static long p4tc__shift_chunk(__u32 i, void *arg)
{
	struct p4tc__shift *s = arg;
	__u8 buf[64];
	__u32 off = i * 64, n;

	if (off >= s->len)
		return 1;
	n = s->len - off;
	if (n > 64)
		n = 64;
	if (n == 0)
		return 1;
	if (bpf_skb_load_bytes(s->skb, s->hlen + off, buf, n))
		return 1;
	if (bpf_skb_store_bytes(s->skb, off, buf, n, 0))
		return 1;
	return 0;
}

/*
 * p4tc_take_header copies the len-byte header at the front of the packet
 * into hdr and removes it (the packet_out header of a packet-out). It
 * returns 0, or a negative error (the packet is then unchanged or must be
 * dropped).
 */
static __always_inline int p4tc_take_header(struct __sk_buff *skb, void *hdr, __u32 len)
{
	struct p4tc__shift s = { .skb = skb, .hlen = len };

	if (len == 0 || len > 64 || skb->len <= len || skb->len > P4TC_MAX_FRAME)
		return -1;
	if (bpf_skb_load_bytes(skb, 0, hdr, len))
		return -1;
	s.len = skb->len - len;
	bpf_loop((s.len + 63) / 64, p4tc__shift_chunk, &s, 0);
	return bpf_skb_change_tail(skb, s.len, 0) ? -1 : 0;
}

/*
 * p4tc_digest_pack(ID, OBJ) sends one digest message (Digest<T>.pack in P4):
 * the bytes of OBJ, a struct of the digest's fields in their containers,
 * network order, for the digest with P4Info id ID. The record in
 * p4tc_digests is {__u32 digest id; __u32 size; data}. It returns 0, or a
 * negative error when the ring buffer is full (the message is lost, which
 * P4Runtime allows).
 */
#define p4tc_digest_pack(ID, OBJ)                                             \
	({                                                                    \
		struct __attribute__((__packed__)) {                          \
			__u32 digest_id;                                      \
			__u32 size;                                           \
			__typeof__(OBJ) data;                                 \
		} __rec = { (ID), sizeof(OBJ), (OBJ) };                       \
		bpf_ringbuf_output(&p4tc_digests, &__rec, sizeof(__rec), 0); \
	})

#endif /* P4TC_STREAM_H */
