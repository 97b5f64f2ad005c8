package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

const packUsage = `usage: p4tcd pack [-o FILE] [-p4info FILE] DIR

Builds the P4Runtime device config (p4_device_config, a p4tcd.v1.DeviceConfig)
of the pipeline in DIR. DIR holds, for a pipeline named NAME by its
introspection json:

  NAME.json          the P4TC introspection json (p4c tc backend format)
  NAME.o             the TC datapath object (clang -target bpf)
  NAME_xdp.o         optional: the XDP tier's object
  NAME.entries.txt   optional: initial/const entries, a text p4.v1.WriteRequest of INSERTs
  NAME.p4tcd.txt     optional: per-table settings, a text p4tcd.v1.DeviceConfig holding "tables"
  NAME.p4info.txt    optional: the P4Info, to check the result against (or -p4info)

The result is written to FILE (default DIR/NAME.devcfg); push it with the P4Info as a
ForwardingPipelineConfig (p4runtime-shell: --config NAME.p4info.txt,NAME.devcfg).
`

// runPack is the `p4tcd pack` subcommand.
func runPack(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("p4tcd pack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, packUsage) }
	out := fs.String("o", "", "output file (default DIR/NAME.devcfg; - for stdout)")
	p4infoPath := fs.String("p4info", "", "P4Info text file to check the device config against (default DIR/NAME.p4info.txt if present)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("pack: want exactly one directory")
	}
	dc, name, err := packDir(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("pack %s: %w", fs.Arg(0), err)
	}
	if *p4infoPath == "" {
		if p := filepath.Join(fs.Arg(0), name+".p4info.txt"); fileExists(p) {
			*p4infoPath = p
		}
	}
	b, err := proto.Marshal(dc)
	if err != nil {
		return err
	}
	if *p4infoPath != "" {
		if err := checkPacked(*p4infoPath, b); err != nil {
			return fmt.Errorf("pack %s: %w", fs.Arg(0), err)
		}
	}
	switch *out {
	case "-":
		_, err = stdout.Write(b)
		return err
	case "":
		*out = filepath.Join(fs.Arg(0), name+".devcfg")
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "p4tcd pack: wrote %s (%d bytes)\n", *out, len(b))
	return nil
}

// packDir reads a pipeline directory into a DeviceConfig.
func packDir(dir string) (*p4tcdv1.DeviceConfig, string, error) {
	jsons, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, "", err
	}
	if len(jsons) != 1 {
		return nil, "", fmt.Errorf("want one introspection json in the directory, found %d", len(jsons))
	}
	js, err := os.ReadFile(jsons[0])
	if err != nil {
		return nil, "", err
	}
	var head struct {
		PipelineName string `json:"pipeline_name"`
	}
	if err := json.Unmarshal(js, &head); err != nil || head.PipelineName == "" {
		return nil, "", fmt.Errorf("%s: not an introspection json with a pipeline_name (%v)", jsons[0], err)
	}
	name := head.PipelineName
	path := func(suffix string) string { return filepath.Join(dir, name+suffix) }
	tc, err := os.ReadFile(path(".o"))
	if err != nil {
		return nil, "", fmt.Errorf("the TC object: %w (build it with make)", err)
	}
	dc := &p4tcdv1.DeviceConfig{
		Format: translator.DeviceConfigFormat, PipelineName: name,
		IntrospectionJson: js, TcObject: tc,
	}
	if b, err := os.ReadFile(path("_xdp.o")); err == nil {
		dc.XdpObject = b
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	if b, err := os.ReadFile(path(".entries.txt")); err == nil {
		var w p4v1.WriteRequest
		if err := prototext.Unmarshal(b, &w); err != nil {
			return nil, "", fmt.Errorf("%s: %w", path(".entries.txt"), err)
		}
		dc.InitialEntries = w.GetUpdates()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	if b, err := os.ReadFile(path(".p4tcd.txt")); err == nil {
		var extra p4tcdv1.DeviceConfig
		if err := prototext.Unmarshal(b, &extra); err != nil {
			return nil, "", fmt.Errorf("%s: %w", path(".p4tcd.txt"), err)
		}
		dc.Tables = extra.GetTables()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	return dc, name, nil
}

// checkPacked compiles the device config with its P4Info, as
// SetForwardingPipelineConfig VERIFY would before any datapath check.
func checkPacked(p4infoPath string, devcfg []byte) error {
	b, err := os.ReadFile(p4infoPath)
	if err != nil {
		return err
	}
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(b, &info); err != nil {
		return fmt.Errorf("%s: %w", p4infoPath, err)
	}
	if _, err := translator.CompileConfig(&p4v1.ForwardingPipelineConfig{P4Info: &info, P4DeviceConfig: devcfg}); err != nil {
		return fmt.Errorf("check against %s: %w", p4infoPath, err)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
