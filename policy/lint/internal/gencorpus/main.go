// Command gencorpus writes the linter's benchmark corpus to a directory, for the whole-process
// comparison in docs/benchmarks.md:
//
//	go run ./policy/lint/internal/gencorpus -n 1000 -o /tmp/vfo-corpus
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/virt-failover/virt-failover/policy/lint/internal/corpus"
)

func main() {
	n := flag.Int("n", 1000, "number of domains")
	out := flag.String("o", "corpus", "directory to write")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "gencorpus:", err)
		os.Exit(1)
	}
	for i := 0; i < *n; i++ {
		if err := os.WriteFile(filepath.Join(*out, fmt.Sprintf("vm-%04d.xml", i)), corpus.Domain(i), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gencorpus:", err)
			os.Exit(1)
		}
	}
}
