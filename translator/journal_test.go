package translator_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

// journalBackend records how the Device drives a BatchJournal; an op
// whose port parameter is 99 fails in the datapath.
type journalBackend struct {
	kindsBackend
	events []string
}

func (b *journalBackend) BeginBatch()  { b.events = append(b.events, "begin") }
func (b *journalBackend) CommitBatch() { b.events = append(b.events, "commit") }
func (b *journalBackend) Apply(ops []translator.Op) (int, error) {
	for i, op := range ops {
		if a := op.Entry.Action; a != nil && len(a.Params) == 1 && a.Params[0][0] == 99 {
			b.events = append(b.events, fmt.Sprintf("apply %d of %d", i, len(ops)))
			return i, translator.Errorf(translator.ErrInvalid, "port 99")
		}
	}
	b.events = append(b.events, fmt.Sprintf("apply %d", len(ops)))
	return b.kindsBackend.Apply(ops)
}

// The Device opens a batch before a Write's first Apply and commits it
// after the last one — the Device's own rollback included — before Write
// returns (the caller answers after); while the pipeline is only saved
// (VERIFY_AND_SAVE), Writes reach no datapath and open no batch.
func TestWriteJournalsBatches(t *testing.T) {
	var info p4configv1.P4Info
	if err := prototext.Unmarshal([]byte(kindsP4Info), &info); err != nil {
		t.Fatal(err)
	}
	dc, err := proto.Marshal(&p4tcdv1.DeviceConfig{Format: translator.DeviceConfigFormat, PipelineName: "kinds"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &p4v1.ForwardingPipelineConfig{P4Info: &info, P4DeviceConfig: dc}
	b := &journalBackend{}
	d := translator.NewDevice(b)
	ins := func(tes ...*p4v1.TableEntry) []*p4v1.Update {
		var us []*p4v1.Update
		for _, te := range tes {
			us = append(us, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}})
		}
		return us
	}
	for _, tc := range []struct {
		name   string
		action p4v1.SetForwardingPipelineConfigRequest_Action
		atom   p4v1.WriteRequest_Atomicity
		us     []*p4v1.Update
		want   []string
	}{
		{"saved", p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_SAVE, p4v1.WriteRequest_CONTINUE_ON_ERROR,
			ins(routeEntry(1)), nil},
		{"committed", p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, p4v1.WriteRequest_CONTINUE_ON_ERROR,
			ins(routeEntry(1), routeEntry(2)), []string{"begin", "apply 2", "commit"}},
		{"nothing to apply", p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, p4v1.WriteRequest_CONTINUE_ON_ERROR,
			nil, []string{"begin", "commit"}},
		{"continue on error", p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, p4v1.WriteRequest_CONTINUE_ON_ERROR,
			ins(routeEntry(1), ctEntry(1, 99), routeEntry(2)), []string{"begin", "apply 1 of 3", "apply 1", "commit"}},
		{"rolled back", p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, p4v1.WriteRequest_ROLLBACK_ON_ERROR,
			ins(routeEntry(1), routeEntry(2), ctEntry(1, 99)), []string{"begin", "apply 2 of 3", "apply 2", "commit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := d.SetPipeline(tc.action, cfg); err != nil {
				t.Fatal(err)
			}
			b.events = nil
			if _, err := d.Write(tc.us, tc.atom, nil); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(b.events, tc.want) {
				t.Errorf("events %q, want %q", strings.Join(b.events, ", "), strings.Join(tc.want, ", "))
			}
		})
	}
}
