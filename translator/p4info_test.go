package translator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/encoding/prototext"
)

// loadP4Info reads a P4Info text file from testdata/p4info.
func loadP4Info(t testing.TB, name string) *p4configv1.P4Info {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "p4info", name))
	if err != nil {
		t.Fatal(err)
	}
	var info p4configv1.P4Info
	if err := (prototext.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &info); err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return &info
}

// TestCompileRealWorldP4Info loads the P4Info files other projects wrote.
func TestCompileRealWorldP4Info(t *testing.T) {
	files, err := filepath.Glob("testdata/p4info/*.txt")
	if err != nil || len(files) < 4 {
		t.Fatalf("want the real-world p4info files, got %v (%v)", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			info := loadP4Info(t, filepath.Base(f))
			p, err := Compile(info)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Tables) != len(info.GetTables()) || len(p.Actions) != len(info.GetActions()) {
				t.Errorf("indexed %d tables, %d actions; p4info has %d, %d", len(p.Tables), len(p.Actions), len(info.GetTables()), len(info.GetActions()))
			}
			for _, tbl := range p.TableOrder {
				if p.TableByName(tbl.Name) != tbl {
					t.Errorf("table %s not found by name", tbl.Name)
				}
			}
		})
	}
}

func TestCompileTableKinds(t *testing.T) {
	p, err := Compile(loadP4Info(t, "p4runtime-shell-unittest.p4info.pb.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]TableKind{
		"ExactOne": TableExact, "LpmOne": TableLPM, "LpmTwo": TableTernary, "TernaryOne": TableTernary,
		"RangeOne": TableTernary, "OptionalOne": TableTernary, "MixMany": TableTernary,
		"StringMatchKeyTable": TableExact,
	}
	for name, kind := range want {
		tbl := p.TableByName(name)
		if tbl == nil {
			t.Fatalf("no table %s", name)
		}
		if tbl.Kind != kind {
			t.Errorf("%s: kind %v, want %v", name, tbl.Kind, kind)
		}
	}
	if l := p.TableByName("StringMatchKeyTable").Layout; l != nil {
		t.Errorf("string-keyed table has a kernel layout %+v; want none", l)
	}
	if l := p.TableByName("ExactOne").Layout; l == nil || l.Size != 4 || l.Bits != 32 || l.BPFKeySize() != 16 {
		t.Errorf("ExactOne layout = %+v, want 4 bytes, 32 bits, 16-byte BPF key", l)
	}
	if p.TableByName("ConstDefaultActionTable").ConstDefault == nil {
		t.Error("ConstDefaultActionTable has no const default action")
	}
	if !p.TableByName("IdleTimeoutTable").IdleTimeout {
		t.Error("IdleTimeoutTable: idle timeout not supported")
	}
}

// TestCompileErrors breaks a valid P4Info one way at a time; every break must
// be refused with ErrInvalid and a message naming the object.
func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*p4configv1.P4Info)
		wantMsg string
	}{
		{"duplicate id", func(p *p4configv1.P4Info) { p.Actions[1].Preamble.Id = p.Actions[0].Preamble.Id }, "reuses id"},
		{"id across kinds", func(p *p4configv1.P4Info) { p.Tables[0].Preamble.Id = p.Actions[0].Preamble.Id }, "reuses id"},
		{"duplicate table name", func(p *p4configv1.P4Info) { p.Tables[1].Preamble.Name = p.Tables[0].Preamble.Name }, "two tables named"},
		{"zero id", func(p *p4configv1.P4Info) { p.Tables[0].Preamble.Id = 0 }, "has id 0"},
		{"unknown action ref", func(p *p4configv1.P4Info) { p.Tables[0].ActionRefs[0].Id = 0x01abcdef }, "is not an action"},
		{"action ref to a table", func(p *p4configv1.P4Info) { p.Tables[0].ActionRefs[0].Id = p.Tables[1].Preamble.Id }, "it is a table"},
		{"bad match kind", func(p *p4configv1.P4Info) {
			p.Tables[0].MatchFields[0].Match = &p4configv1.MatchField_MatchType_{MatchType: p4configv1.MatchField_UNSPECIFIED}
		}, "not a valid match kind"},
		{"other match kind", func(p *p4configv1.P4Info) {
			p.Tables[0].MatchFields[0].Match = &p4configv1.MatchField_OtherMatchType{OtherMatchType: "dleft"}
		}, `"dleft" is not supported`},
		{"zero bitwidth", func(p *p4configv1.P4Info) { p.Tables[0].MatchFields[0].Bitwidth = 0 }, "bitwidth 0"},
		{"absurd bitwidth", func(p *p4configv1.P4Info) { p.Tables[0].MatchFields[0].Bitwidth = 1 << 20 }, "bitwidth 1048576"},
		{"duplicate field id", func(p *p4configv1.P4Info) {
			p.Tables[0].MatchFields = append(p.Tables[0].MatchFields, &p4configv1.MatchField{Id: p.Tables[0].MatchFields[0].Id, Name: "x", Bitwidth: 8, Match: &p4configv1.MatchField_MatchType_{MatchType: p4configv1.MatchField_EXACT}})
		}, "two match fields with id"},
		{"param bitwidth", func(p *p4configv1.P4Info) {
			for _, a := range p.Actions {
				if len(a.Params) > 0 {
					a.Params[0].Bitwidth = -3
					return
				}
			}
		}, "bitwidth -3"},
		{"const default not in table", func(p *p4configv1.P4Info) { p.Tables[0].ConstDefaultActionId = 0x01abcdef }, "const default action"},
		{"negative size", func(p *p4configv1.P4Info) { p.Tables[0].Size = -1 }, "negative size"},
		{"implementation not a profile", func(p *p4configv1.P4Info) { p.Tables[0].ImplementationId = p.Actions[0].Preamble.Id }, "not an action profile"},
		{"direct resource of another table", func(p *p4configv1.P4Info) {
			p.Tables[1].DirectResourceIds = append(p.Tables[1].DirectResourceIds, p.DirectCounters[0].Preamble.Id)
		}, "belongs to table"},
		{"unknown new type", func(p *p4configv1.P4Info) {
			p.Tables[0].MatchFields[0].TypeName = &p4configv1.P4NamedType{Name: "nope_t"}
		}, `type "nope_t"`},
		{"no actions", func(p *p4configv1.P4Info) { p.Tables[0].ActionRefs = nil }, "no actions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := loadP4Info(t, "p4runtime-shell-unittest.p4info.pb.txt")
			tc.mutate(info)
			_, err := Compile(info)
			if err == nil {
				t.Fatal("Compile accepted a broken P4Info")
			}
			if !isErr(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
		})
	}
}
