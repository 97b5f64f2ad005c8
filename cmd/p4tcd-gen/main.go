// Command p4tcd-gen generates the files a datapath is compiled with.
//
//	p4tcd-gen tables --p4info l3router.p4info.txt --introspection l3router.json -o l3router_tables.h
//
// "tables" writes the tables header of a pipeline for the ebpf datapath's
// runtime (ebpfdp/bpf/include/p4tc_runtime.h): the part `tc p4template
// create table/...` plays on a P4TC kernel.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/p4tcd/p4tcd/ebpfdp"
	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "p4tcd-gen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "tables" {
		return errors.New("usage: p4tcd-gen tables --p4info FILE --introspection FILE [-o FILE]")
	}
	fs := flag.NewFlagSet("p4tcd-gen tables", flag.ContinueOnError)
	fs.SetOutput(stderr)
	p4info := fs.String("p4info", "", "P4Info file (text or binary protobuf)")
	intro := fs.String("introspection", "", "P4TC introspection json (p4c tc backend format)")
	out := fs.String("o", "", "output file (default: standard output)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *p4info == "" || *intro == "" || fs.NArg() > 0 {
		return errors.New("tables: --p4info and --introspection are required, and nothing else")
	}
	cfg, err := loadConfig(*p4info, *intro)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := ebpfdp.WriteTablesHeader(&buf, cfg); err != nil {
		return fmt.Errorf("generate tables header: %w", err)
	}
	if *out == "" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	return os.WriteFile(*out, buf.Bytes(), 0o644)
}

// loadConfig compiles a P4Info and an introspection json as p4tcd would
// receive them in a device config.
func loadConfig(p4infoPath, introPath string) (*translator.Config, error) {
	raw, err := os.ReadFile(p4infoPath)
	if err != nil {
		return nil, err
	}
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(raw, &info); err != nil {
		if berr := proto.Unmarshal(raw, &info); berr != nil {
			return nil, fmt.Errorf("read p4info %s: %w", p4infoPath, err)
		}
	}
	js, err := os.ReadFile(introPath)
	if err != nil {
		return nil, err
	}
	in, err := translator.ParseIntrospection(js)
	if err != nil {
		return nil, fmt.Errorf("read introspection %s: %w", introPath, err)
	}
	dc, err := proto.Marshal(&p4tcdv1.DeviceConfig{
		Format: translator.DeviceConfigFormat, PipelineName: in.PipelineName, IntrospectionJson: js,
	})
	if err != nil {
		return nil, err
	}
	return translator.CompileConfig(&p4v1.ForwardingPipelineConfig{P4Info: &info, P4DeviceConfig: dc})
}
