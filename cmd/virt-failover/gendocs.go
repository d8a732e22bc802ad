//go:build gendocs

// Built with -tags gendocs the program writes the files the package makes from its command
// definitions, and nothing else: "go run -tags gendocs ./cmd/virt-failover -out DIR -policy-doc
// docs/policy.md" writes DIR/usr/share/man/man1/*.1.gz, DIR/usr/share/man/man5/virt-failover-policy.5.gz
// and the bash, zsh and fish completions. The date on the pages is SOURCE_DATE_EPOCH's, else
// today's. (Apart from the program, so that its Markdown renderer never weighs on a hook call.)

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/internal/manpage"
	"github.com/virt-failover/virt-failover/internal/manpage/mdpage"
)

func init() {
	if err := genDocs(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func genDocs(args []string) error {
	fs := flag.NewFlagSet("gendocs", flag.ContinueOnError)
	out := fs.String("out", "", "the package's tree to write into")
	policyDoc := fs.String("policy-doc", "docs/policy.md", "the policy's document")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out DIR is required")
	}
	date := time.Now().UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		date = time.Unix(sec, 0).UTC()
	}
	meta := manpage.Meta{Date: date.Format("2006-01-02"), Source: programName + " " + version(), Manual: programName + " manual"}

	doc, err := os.ReadFile(*policyDoc)
	if err != nil {
		return err
	}
	pp, err := mdpage.FromMarkdown(policyPage, 5, policyBlurb, doc, meta)
	if err != nil {
		return err
	}
	write := func(rel string, b []byte) error {
		p := filepath.Join(*out, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, b, 0o644)
	}
	for _, p := range append(commandPages(meta), pp) {
		// Compressed as Debian wants man pages: best compression, and no name or time in the
		// header, so the same page makes the same file.
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(p.Roff)
		if err := zw.Close(); err != nil {
			return err
		}
		if err := write(fmt.Sprintf("usr/share/man/man%d/%s.gz", p.Section, p.File()), buf.Bytes()); err != nil {
			return err
		}
	}
	for _, sh := range completionShells {
		var stdout, stderr bytes.Buffer
		if code := runCLI(context.Background(), []string{programName, "completion", sh[0]}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
			return fmt.Errorf("completion %s: exit %d: %s", sh[0], code, stderr.String())
		}
		if err := write(sh[1], stdout.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
