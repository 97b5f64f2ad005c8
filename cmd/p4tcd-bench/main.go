// Command p4tcd-bench turns `go test -bench` output into the one table
// `make bench` prints: every benchmark with the metrics it reports (rates,
// ns per packet, and the ratio to the baseline it measured in the same run),
// leaving out the per-op bookkeeping Go adds (ns/op, B/op, allocs/op).
//
//	go test -run '^$' -bench . ./... | p4tcd-bench
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	rows, failed, err := parse(os.Stdin, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "p4tcd-bench:", err)
		os.Exit(1)
	}
	print(os.Stdout, rows)
	if failed {
		fmt.Fprintln(os.Stderr, "p4tcd-bench: some benchmarks failed (see the go test output)")
		os.Exit(1)
	}
}

// row is one benchmark result.
type row struct {
	pkg, name string
	metrics   []metric
}

type metric struct {
	value float64
	unit  string
}

// skipped are the units Go adds to every benchmark.
var skipped = map[string]bool{"ns/op": true, "B/op": true, "allocs/op": true, "MB/s": true}

// parse reads go test output: "pkg: X" lines name the package of the
// benchmark lines that follow; a benchmark line is
// "BenchmarkName-P  N  v unit  v unit ...". As it goes it writes a line
// per package and per result to progress, so that a run of several
// minutes shows where it is.
func parse(r io.Reader, progress io.Writer) ([]row, bool, error) {
	var rows []row
	pkg, failed := "", false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(strings.TrimPrefix(line, "pkg: "), "github.com/p4tcd/p4tcd/")
			fmt.Fprintf(progress, "bench: %s\n", pkg)
		case strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "FAIL"):
			failed = true
		case strings.HasPrefix(line, "Benchmark"):
			f := strings.Fields(line)
			if len(f) < 4 {
				continue
			}
			if _, err := strconv.Atoi(f[1]); err != nil {
				continue // a log line that starts with the name
			}
			name := f[0]
			if i := strings.LastIndexByte(name, '-'); i > 0 {
				name = name[:i]
			}
			rw := row{pkg: pkg, name: strings.TrimPrefix(name, "Benchmark")}
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil || skipped[f[i+1]] {
					continue
				}
				rw.metrics = append(rw.metrics, metric{v, f[i+1]})
			}
			if len(rw.metrics) > 0 {
				rows = append(rows, rw)
				fmt.Fprintf(progress, "bench:   %s (%d done)\n", rw.name, len(rows))
			}
		}
	}
	return rows, failed, sc.Err()
}

func print(w io.Writer, rows []row) {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].pkg < rows[j].pkg })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "package\tbenchmark\tresult\tratio to the baseline of the same run")
	for _, r := range rows {
		var res, ratios []string
		for _, m := range r.metrics {
			s := human(m.value) + " " + m.unit
			if strings.Contains(m.unit, "ratio") || strings.HasPrefix(m.unit, "of-") || m.unit == "x" {
				ratios = append(ratios, fmt.Sprintf("%.3g %s", m.value, m.unit))
				continue
			}
			res = append(res, s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.pkg, r.name, strings.Join(res, ", "), strings.Join(ratios, ", "))
	}
	tw.Flush()
}

// human prints large rates with an SI suffix.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v == float64(int64(v)):
		return strconv.FormatInt(int64(v), 10)
	}
	return fmt.Sprintf("%.3g", v)
}
