// Command rulesdoc writes docs/rules.md from the lint rule registry:
//
//	go generate ./policy/lint     (runs: go run ./internal/rulesdoc -o ../../docs/rules.md)
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/virt-failover/virt-failover/policy/lint"
)

func main() {
	out := flag.String("o", "docs/rules.md", "file to write")
	flag.Parse()
	if err := os.WriteFile(*out, lint.Markdown(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rulesdoc:", err)
		os.Exit(1)
	}
}
