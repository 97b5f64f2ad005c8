package ebpfdp

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/translator"
)

var update = flag.Bool("update", false, "rewrite the golden tables headers")

func TestTablesHeaderGolden(t *testing.T) {
	for _, tc := range []struct{ p4info, json, golden string }{
		{l3P4Info, l3JSON, exampleDir + "/l3router_tables.h"},
		{ctP4Info, ctJSON, ctDir + "/conntrack_tables.h"},
		{kindsP4Info, kindsJSON, "testdata/kinds_tables.h"},
		{ecmpP4Info, ecmpJSON, ecmpDir + "/ecmp_tables.h"},
		{ctP4Info, "testdata/ctcrud.json", "testdata/ctcrud_tables.h"},
		{"testdata/xtss.p4info.txt", "testdata/xtss.json", "testdata/xtss_tables.h"},
	} {
		c, err := p4test.Compile(tc.p4info, tc.json, nil)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteTablesHeader(&buf, c); err != nil {
			t.Fatalf("%s: %v", tc.golden, err)
		}
		if *update {
			if err := os.WriteFile(tc.golden, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(tc.golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s is stale: run go test ./ebpfdp -run TestTablesHeaderGolden -update (then make generate-bpf to rebuild the objects)", tc.golden)
		}
	}
}

// onePipeline is a one-table P4Info and introspection json for testing
// what plan refuses.
func onePipeline(fields, jsFields string) ([]byte, []byte) {
	p4info := `tables {
  preamble { id: 33554433 name: "ingress.t" alias: "t" }
  ` + fields + `
  action_refs { id: 16777217 }
  size: 16
}
actions {
  preamble { id: 16777217 name: "ingress.a" alias: "a" }
  params { id: 1 name: "port" bitwidth: 32 }
}`
	js := `{"schema_version":"1.0.0","pipeline_name":"one","tables":[{"name":"ingress/t","id":1,"tentries":16,
  "keyfields":[` + jsFields + `],
  "actions":[{"id":1,"name":"ingress/a","action_scope":"TableAndDefault","params":[{"id":1,"name":"port","type":"dev","bitwidth":32}]}]}]}`
	return []byte(p4info), []byte(js)
}

func TestPlanRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, fields, js, want string
	}{
		{"lpm not last",
			`match_fields { id: 1 name: "dst" bitwidth: 32 match_type: LPM } match_fields { id: 2 name: "vrf" bitwidth: 16 match_type: EXACT }`,
			`{"id":1,"name":"dst","type":"ipv4","bitwidth":32},{"id":2,"name":"vrf","type":"bit16","bitwidth":16}`,
			"lpm field dst must be the last key field"},
		{"lpm in host order",
			`match_fields { id: 1 name: "dst" bitwidth: 32 match_type: LPM }`,
			`{"id":1,"name":"dst","type":"bit32","bitwidth":32}`,
			"lpm field dst must be in network byte order"},
		{"ternary port",
			`match_fields { id: 1 name: "port" bitwidth: 32 match_type: TERNARY }`,
			`{"id":1,"name":"port","type":"dev","bitwidth":32}`,
			"field port is a port (type dev) matched ternary"},
		{"wide range",
			`match_fields { id: 1 name: "r" bitwidth: 72 match_type: RANGE }`,
			`{"id":1,"name":"r","type":"bit72","bitwidth":72}`,
			"range field r is 72 bits"},
		{"key too wide",
			`match_fields { id: 1 name: "a" bitwidth: 264 match_type: EXACT } match_fields { id: 2 name: "b" bitwidth: 264 match_type: EXACT }`,
			`{"id":1,"name":"a","type":"bit264","bitwidth":264},{"id":2,"name":"b","type":"bit264","bitwidth":264}`,
			"P4TC keys are at most 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p4info, js := onePipeline(tc.fields, tc.js)
			c, err := p4test.CompileText(p4info, js, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = plan(c)
			if !errors.Is(err, translator.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("plan: %v, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
}

func TestPlanLayouts(t *testing.T) {
	c, err := p4test.Compile(kindsP4Info, kindsJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	plans, err := plan(c)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		kind         mapKind
		keySize, vsz int
		lpmBase      int
		rankByPrefix bool
	}{
		{kindKeyless, 8, 16, 0, false},
		{kindExact, 24, 16, 0, false},
		{kindLPM, 32, 8, 32 + 16, false},
		{kindTSS, 16, 16, 0, true},
		{kindTSS, 16, 16, 0, false},
	} {
		p := plans[i]
		if p.kind != want.kind || p.keySize != want.keySize || p.valueSize() != want.vsz || p.lpmBase != want.lpmBase || p.rankByPrefix != want.rankByPrefix {
			t.Errorf("table %s: kind %v key %d value %d lpmBase %d rank %v; want %+v",
				p.name, p.kind, p.keySize, p.valueSize(), p.lpmBase, p.rankByPrefix, want)
		}
	}
}

func TestParseObjectMismatch(t *testing.T) {
	// The l3router object against the kinds P4Info: every map is wrong.
	obj, err := os.ReadFile(l3Object)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p4test.Compile(kindsP4Info, kindsJSON, obj)
	if err != nil {
		t.Fatal(err)
	}
	plans, err := plan(c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = parseObject(c.Program.TCObject, plans, tierTC)
	if !errors.Is(err, translator.ErrInvalid) || !strings.Contains(err.Error(), "maps do not match the P4Info") {
		t.Errorf("parse l3router.o for kinds: %v", err)
	}
	// And the right one binds, sizing maps from the P4Info.
	c, err = p4test.Compile(l3P4Info, l3JSON, obj)
	if err != nil {
		t.Fatal(err)
	}
	plans, _ = plan(c)
	b, err := parseObject(c.Program.TCObject, plans, tierTC)
	if err != nil {
		t.Fatal(err)
	}
	if b.prog != "p4tc_ingress" || b.masks[1] != 32 || b.spec.Maps["p4tc_t1"].MaxEntries != 2*4096 {
		t.Errorf("binding: prog %s masks %v acl entries %d", b.prog, b.masks, b.spec.Maps["p4tc_t1"].MaxEntries)
	}
}
