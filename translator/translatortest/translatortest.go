// Package translatortest builds translator values for backend tests without
// the backends touching protobuf: a compiled pipeline config from a P4Info
// in text format and an introspection JSON, and the ops a Device hands its
// backend for Write updates given in text format.
//
// Backends (tcbackend, ebpfdp) must not import the P4Runtime protobuf
// packages, tests included; this package is where that boundary is crossed
// for them.
package translatortest

import (
	"fmt"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

// Pipeline describes a p4tcd pipeline config.
type Pipeline struct {
	// P4Info is a p4.config.v1.P4Info in protobuf text format.
	P4Info string
	// Name is the device config's pipeline_name.
	Name string
	// Introspection is the P4TC introspection JSON (may be nil).
	Introspection []byte
	// Tables holds device config table settings in protobuf text format,
	// each a p4tcd.v1.TableConfig.
	Tables []string
}

// Harness is a Device whose backend records what it is asked to do.
type Harness struct {
	Device *translator.Device
	// Config is the committed config.
	Config *translator.Config

	rec *recorder
}

// recorder is a backend that accepts everything, externs included, and
// remembers the ops.
type recorder struct {
	ops   []translator.Op
	steps []translator.Step
}

var _ translator.ExternBackend = (*recorder)(nil)

func (*recorder) Verify(*translator.Config) error                         { return nil }
func (*recorder) Commit(*translator.Config) error                         { return nil }
func (*recorder) Reconcile(*translator.Config, []*translator.Entry) error { return nil }
func (r *recorder) Apply(ops []translator.Op) (int, error) {
	r.ops = append(r.ops, ops...)
	for i := range ops {
		op := ops[i]
		r.steps = append(r.steps, translator.Step{Op: &op})
	}
	return len(ops), nil
}
func (*recorder) Close() error                                  { return nil }
func (*recorder) Externs() translator.ExternSet                 { return translator.AllExterns }
func (*recorder) ReadCounters([]translator.CounterCell) error   { return nil }
func (*recorder) ReadRegisters([]translator.RegisterCell) error { return nil }
func (r *recorder) ApplyExterns(ops []translator.ExternOp) (int, error) {
	for i := range ops {
		x := ops[i]
		r.steps = append(r.steps, translator.Step{Extern: &x})
	}
	return len(ops), nil
}

// ForwardingPipelineConfig marshals p as a P4Runtime pipeline config.
func (p Pipeline) forwardingPipelineConfig() (*p4v1.ForwardingPipelineConfig, error) {
	var info p4configv1.P4Info
	if err := prototext.Unmarshal([]byte(p.P4Info), &info); err != nil {
		return nil, fmt.Errorf("parse P4Info: %w", err)
	}
	dc := &p4tcdv1.DeviceConfig{Format: translator.DeviceConfigFormat, PipelineName: p.Name, IntrospectionJson: p.Introspection}
	for i, s := range p.Tables {
		var tc p4tcdv1.TableConfig
		if err := prototext.Unmarshal([]byte(s), &tc); err != nil {
			return nil, fmt.Errorf("parse table config %d: %w", i, err)
		}
		dc.Tables = append(dc.Tables, &tc)
	}
	b, err := proto.Marshal(dc)
	if err != nil {
		return nil, err
	}
	return &p4v1.ForwardingPipelineConfig{P4Info: &info, P4DeviceConfig: b}, nil
}

// Compile compiles p as SetForwardingPipelineConfig would.
func Compile(p Pipeline) (*translator.Config, error) {
	fpc, err := p.forwardingPipelineConfig()
	if err != nil {
		return nil, err
	}
	return translator.CompileConfig(fpc)
}

// New commits p on a Device with a recording backend.
func New(tb testing.TB, p Pipeline) *Harness {
	tb.Helper()
	fpc, err := p.forwardingPipelineConfig()
	if err != nil {
		tb.Fatal(err)
	}
	rec := &recorder{}
	d := translator.NewDevice(rec)
	if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, fpc); err != nil {
		tb.Fatalf("commit pipeline: %v", err)
	}
	return &Harness{Device: d, Config: d.Config(), rec: rec}
}

// Ops writes updates, each a p4.v1.Update in protobuf text format, in one
// CONTINUE_ON_ERROR batch and returns the ops the Device gave its backend.
// It fails the test if any update fails.
func (h *Harness) Ops(tb testing.TB, updates ...string) []translator.Op {
	tb.Helper()
	us := make([]*p4v1.Update, len(updates))
	for i, s := range updates {
		var u p4v1.Update
		if err := prototext.Unmarshal([]byte(s), &u); err != nil {
			tb.Fatalf("parse update %d: %v", i, err)
		}
		us[i] = &u
	}
	h.rec.ops, h.rec.steps = nil, nil
	errs, err := h.Device.Write(us, p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
	if err != nil {
		tb.Fatalf("write: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			tb.Fatalf("update %d: %v", i, e)
		}
	}
	return h.rec.ops
}

// Steps writes updates like Ops and returns every op the Device gave its
// backend, table and extern alike, in order: what an ExternBackend's Apply
// and ApplyExterns see for P4Runtime writes of externs (members, groups,
// one-shot entries, counters, meters, registers, PRE, value sets).
func (h *Harness) Steps(tb testing.TB, updates ...string) []translator.Step {
	tb.Helper()
	h.Ops(tb, updates...)
	return h.rec.steps
}
