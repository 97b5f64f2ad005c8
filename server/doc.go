// Package server is p4tcd's P4Runtime v1.5 gRPC service.
//
// It owns what the protocol owns: arbitration per (device, role) and the
// StreamChannel (§5), the checks each RPC makes before any work (device id,
// role, primary), chunked Read responses, the pipeline config RPCs, and the
// one mapping from domain errors to gRPC status codes (status.go). Entities
// are validated, stored and applied by a translator.Device; the server never
// touches the kernel.
//
// Typical use:
//
//	dev := translator.NewDevice(translator.NewNoneBackend())
//	srv := server.New(1, dev, server.WithLogger(log))
//	g := grpc.NewServer(server.GRPCOptions()...)
//	srv.Register(g)
//	g.Serve(lis)
package server
