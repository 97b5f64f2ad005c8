package translator

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
)

// p4tcSamples are the pipelines of testdata/p4tc, indexed by the fuzz
// targets' sample argument.
var p4tcSamples = []string{"router", "l2fwd", "acl"}

// p4tcSample is one sample pipeline's files, parsed.
type p4tcSample struct {
	info    *p4configv1.P4Info
	json    []byte
	tables  []*p4tcdv1.TableConfig
	initial []*p4v1.Update
}

func loadP4TCSample(tb testing.TB, name string) p4tcSample {
	tb.Helper()
	read := func(suffix string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "p4tc", name+suffix))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			tb.Fatal(err)
		}
		return b
	}
	var s p4tcSample
	s.info = &p4configv1.P4Info{}
	if err := prototext.Unmarshal(read(".p4info.txt"), s.info); err != nil {
		tb.Fatalf("%s P4Info: %v", name, err)
	}
	s.json = read(".json")
	for _, l := range strings.Split(strings.TrimSpace(string(read(".tables.txt"))), "\n") {
		if l == "" {
			continue
		}
		var tc p4tcdv1.TableConfig
		if err := prototext.Unmarshal([]byte(l), &tc); err != nil {
			tb.Fatalf("%s table config %q: %v", name, l, err)
		}
		s.tables = append(s.tables, &tc)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(read(".initial.txt"))), "\n") {
		var u p4v1.Update
		if err := prototext.Unmarshal([]byte(l), &u); err != nil {
			tb.Fatalf("%s initial entry %q: %v", name, l, err)
		}
		s.initial = append(s.initial, &u)
	}
	return s
}

// sentinels are the errors a config may be refused with.
var sentinels = []error{ErrInvalid, ErrOutOfRange, ErrNotFound, ErrExists, ErrFull, ErrPermission, ErrUnsupported}

// cleanError fails the test unless err wraps a sentinel and its text is
// UTF-8 (it becomes a gRPC status message).
func cleanError(t *testing.T, what string, err error) {
	t.Helper()
	if !isValidUTF8(err.Error()) {
		t.Fatalf("%s: error is not UTF-8: %q", what, err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s: error %q wraps no sentinel", what, err)
}

// FuzzCompileConfig feeds arbitrary p4_device_config bytes, with one of
// the sample P4Infos, to SetForwardingPipelineConfig's path: CompileConfig
// and the initial entries. It must never panic; a refusal must be a clean
// sentinel error; an accepted config must index every table it configures
// and store exactly its initial entries.
func FuzzCompileConfig(f *testing.F) {
	samples := make([]p4tcSample, len(p4tcSamples))
	for i, name := range p4tcSamples {
		s := loadP4TCSample(f, name)
		samples[i] = s
		dc := &p4tcdv1.DeviceConfig{Format: DeviceConfigFormat, PipelineName: name, IntrospectionJson: s.json,
			TcObject: []byte("\x7fELF"), Tables: s.tables, InitialEntries: s.initial}
		b, err := proto.Marshal(dc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
		dc.IntrospectionJson, dc.InitialEntries = nil, nil
		b, _ = proto.Marshal(dc)
		f.Add(uint8(i), b)
	}
	f.Add(uint8(0), []byte("opaque device config"))

	f.Fuzz(func(t *testing.T, sample uint8, b []byte) {
		s := samples[int(sample)%len(samples)]
		raw := &p4v1.ForwardingPipelineConfig{P4Info: proto.Clone(s.info).(*p4configv1.P4Info), P4DeviceConfig: b}
		c, err := CompileConfig(raw)
		if err != nil {
			cleanError(t, "CompileConfig", err)
			return
		}
		if c.Program != nil {
			for id := range c.Program.Tables {
				if c.Tables[id] == nil {
					t.Fatalf("settings for table id %#x, which the pipeline lacks", id)
				}
			}
			if in := c.Program.Introspection; in != nil {
				for _, tbl := range c.TableOrder {
					if c.Program.Tables[tbl.ID].P4TC == nil {
						t.Fatalf("table %s has no introspection record", tbl.Name)
					}
				}
			}
		}
		d := NewDevice(NewNoneBackend())
		if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, raw); err != nil {
			cleanError(t, "SetPipeline", err)
			return
		}
		if got, want := d.st.count(), len(c.initial); got != want {
			t.Fatalf("%d entries stored for %d initial entries", got, want)
		}
	})
}

// FuzzIntrospection feeds arbitrary introspection JSON to
// ParseIntrospection and applies what parses to a sample P4Info. It must
// never panic; a refusal must be a clean ErrInvalid; an accepted
// introspection must give every table a record and layouts that hold its
// fields.
func FuzzIntrospection(f *testing.F) {
	samples := make([]p4tcSample, len(p4tcSamples))
	for i, name := range p4tcSamples {
		samples[i] = loadP4TCSample(f, name)
		f.Add(uint8(i), samples[i].json)
	}
	f.Add(uint8(0), []byte(`{"pipeline_name":"p","tables":[{"name":"ingress/fib","id":1}]}`))

	f.Fuzz(func(t *testing.T, sample uint8, b []byte) {
		in, err := ParseIntrospection(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseIntrospection error %q is not ErrInvalid", err)
			}
			cleanError(t, "ParseIntrospection", err)
			return
		}
		s := samples[int(sample)%len(samples)]
		p, err := Compile(proto.Clone(s.info).(*p4configv1.P4Info))
		if err != nil {
			t.Fatal(err)
		}
		prog := &Program{Name: in.PipelineName, Introspection: in, Tables: map[uint32]TableSettings{}}
		if err := applyIntrospection(p, prog, in); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("applyIntrospection error %q is not ErrInvalid", err)
			}
			cleanError(t, "applyIntrospection", err)
			return
		}
		for _, tbl := range p.TableOrder {
			if prog.Tables[tbl.ID].P4TC == nil {
				t.Fatalf("table %s has no introspection record", tbl.Name)
			}
			if tbl.Layout != nil && tbl.Layout.Size < len(tbl.Fields) {
				t.Fatalf("table %s: layout of %d bytes for %d fields", tbl.Name, tbl.Layout.Size, len(tbl.Fields))
			}
		}
	})
}
