package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestParseAndPrint(t *testing.T) {
	in := `goos: linux
pkg: github.com/p4tcd/p4tcd/integration
BenchmarkPrivilegedWritePath/exact/x1-2  	 30	 6314438 ns/op	 316742 entries/s	 0.08185 of-raw	 3869610 raw-entries/s
2026/11/26 22:12:33 INFO pipeline set
pkg: github.com/p4tcd/p4tcd/translator
BenchmarkDeviceWrite/lpm-2  	 300	 863021 ns/op	 2317451 entries/s	 11.05 ratio_to_map	 1003739 B/op	 6028 allocs/op
PASS
`
	var progress bytes.Buffer
	rows, failed, err := parse(strings.NewReader(in), &progress)
	if err != nil || failed || len(rows) != 2 {
		t.Fatalf("rows %+v failed %v err %v", rows, failed, err)
	}
	if want := "bench: integration\nbench:   PrivilegedWritePath/exact/x1 (1 done)\nbench: translator\nbench:   DeviceWrite/lpm (2 done)\n"; progress.String() != want {
		t.Errorf("progress:\n%s\nwant\n%s", progress.String(), want)
	}
	if rows[1].name != "DeviceWrite/lpm" || len(rows[1].metrics) != 2 {
		t.Errorf("row %+v: want DeviceWrite/lpm with entries/s and ratio_to_map only", rows[1])
	}
	var out bytes.Buffer
	print(&out, rows)
	for _, want := range []string{"2.32M entries/s", "11.1 ratio_to_map", "0.0819 of-raw", "3.87M raw-entries/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if _, failed, _ := parse(strings.NewReader("--- FAIL: BenchmarkX\n"), io.Discard); !failed {
		t.Error("a failed benchmark was not noticed")
	}
}
