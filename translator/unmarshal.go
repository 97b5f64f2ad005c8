package translator

import (
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"
)

// UnmarshalConfig compiles a config serialized by Config.Marshal. Backends
// that keep the committed config next to a datapath that outlives the
// daemon use it to read that datapath back (Restorer), without handling
// protobuf types themselves.
func UnmarshalConfig(b []byte) (*Config, error) {
	var raw p4v1.ForwardingPipelineConfig
	if err := proto.Unmarshal(b, &raw); err != nil {
		return nil, errorf(ErrInvalid, "config: %v", err)
	}
	return CompileConfig(&raw)
}
