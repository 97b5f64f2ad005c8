package translator

import (
	"encoding/json"
	"strings"
)

// Introspection is the P4TC introspection JSON the p4c `tc` backend writes
// next to a program (`<pipeline>.json`, schema_version 1.0.0): P4TC's names
// and ids of tables, actions and externs, the P4TC types of key fields and
// parameters, and table properties. iproute2-p4tc reads the same file.
type Introspection struct {
	SchemaVersion string             `json:"schema_version"`
	PipelineName  string             `json:"pipeline_name"`
	Tables        []IntrospectTable  `json:"tables"`
	Externs       []IntrospectExtern `json:"externs,omitempty"`
	Raw           json.RawMessage    `json:"-"`
	byName        map[string]*IntrospectTable
}

// IntrospectTable is one table of the introspection JSON.
type IntrospectTable struct {
	Name        string             `json:"name"` // "<control block>/<table>"
	ID          uint32             `json:"id"`
	TEntries    uint32             `json:"tentries"`
	Permissions string             `json:"permissions"`
	NumMask     uint32             `json:"nummask"`
	KeySize     uint32             `json:"keysize"`
	KeyFields   []IntrospectField  `json:"keyfields"`
	Actions     []IntrospectAction `json:"actions"`
}

// IntrospectField is a key field or an action parameter.
type IntrospectField struct {
	ID        uint32 `json:"id"`
	Name      string `json:"name"`
	Type      string `json:"type"` // "bit32", "ipv4", "macaddr", "dev", ...
	MatchType string `json:"match_type,omitempty"`
	Bitwidth  int    `json:"bitwidth"`
	Attr      string `json:"attr,omitempty"`
}

// IntrospectAction is one action of a table.
type IntrospectAction struct {
	ID                uint32            `json:"id"`
	Name              string            `json:"name"` // "<control block>/<action>"
	Scope             string            `json:"action_scope"`
	Annotations       []string          `json:"annotations"`
	Params            []IntrospectField `json:"params"`
	DefaultHitAction  bool              `json:"default_hit_action"`
	DefaultMissAction bool              `json:"default_miss_action"`
}

// IntrospectExtern is an extern type with its instances.
type IntrospectExtern struct {
	Name        string `json:"name"`
	ID          string `json:"id"`
	Permissions string `json:"permissions"`
	Instances   []struct {
		Name   string            `json:"inst_name"`
		ID     uint32            `json:"inst_id"`
		Type   string            `json:"inst_type,omitempty"`
		Params []IntrospectField `json:"params"`
	} `json:"instances"`
}

// ParseIntrospection decodes an introspection JSON.
func ParseIntrospection(b []byte) (*Introspection, error) {
	var in Introspection
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, errorf(ErrInvalid, "introspection json: %v", err)
	}
	if in.PipelineName == "" {
		return nil, errorf(ErrInvalid, "introspection json: no pipeline_name")
	}
	in.Raw = append(json.RawMessage(nil), b...)
	in.byName = map[string]*IntrospectTable{}
	for i := range in.Tables {
		t := &in.Tables[i]
		if t.Name == "" || t.ID == 0 {
			return nil, errorf(ErrInvalid, "introspection json: table %d has no name or id", i)
		}
		if _, dup := in.byName[t.Name]; dup {
			return nil, errorf(ErrInvalid, "introspection json: table %q listed twice", t.Name)
		}
		in.byName[t.Name] = t
	}
	return &in, nil
}

// Table finds the introspection table of a P4Info table name. P4Info names
// are dotted ("ingress.nh_table", "MainControlImpl.nh_table"); P4TC's are
// "<control block>/<table>". The match tries the dotted name with '/' and
// then the last two components.
func (in *Introspection) Table(p4name string) *IntrospectTable {
	if t := in.byName[strings.ReplaceAll(p4name, ".", "/")]; t != nil {
		return t
	}
	parts := strings.Split(p4name, ".")
	if len(parts) >= 2 {
		if t := in.byName[parts[len(parts)-2]+"/"+parts[len(parts)-1]]; t != nil {
			return t
		}
	}
	return nil
}

// Action finds an action of the table by P4Info action name.
func (t *IntrospectTable) Action(p4name string) *IntrospectAction {
	want := strings.ReplaceAll(p4name, ".", "/")
	short := shortName(p4name)
	for i := range t.Actions {
		a := &t.Actions[i]
		if a.Name == want || a.Name == short || strings.HasSuffix(a.Name, "/"+short) {
			return a
		}
	}
	return nil
}

// hintOf turns a P4TC type name into a layout hint.
func hintOf(typ string) FieldHint {
	h := FieldHint{Type: typ}
	switch typ {
	case "macaddr", "ipv4", "ipv6", "be16", "be32", "be64":
	case "dev":
		h.Port, h.HostOrder = true, true
	default:
		// bitN, uN, sN, bool: plain numbers in host byte order.
		h.HostOrder = typ != ""
	}
	return h
}
