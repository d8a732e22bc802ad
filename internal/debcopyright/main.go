// Command debcopyright writes the Debian package's copyright file (the machine-readable format,
// https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/) for a static Go binary:
// one paragraph for the program, one for the Go standard library and one for each module the
// binary was linked with, each with the copyright lines and the license of its LICENSE file.
// The modules are read from the binary's build information, so the file follows go.mod.
//
//	go run ./internal/debcopyright -bin bin/virt-failover -o bin/deb/root/usr/share/doc/virt-failover/copyright
package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	bin := flag.String("bin", "bin/virt-failover", "the binary the package ships")
	out := flag.String("o", "", "the file to write (default: stdout)")
	src := flag.String("src", ".", "the repository: its LICENSE file, when it has one, is the program's")
	flag.Parse()
	b, err := copyright(*bin, *src)
	if err == nil {
		if *out == "" {
			_, err = os.Stdout.Write(b)
		} else {
			err = os.WriteFile(*out, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "debcopyright: %v\n", err)
		os.Exit(1)
	}
}

func copyright(bin, src string) ([]byte, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(bi.Main.Path)
	var w bytes.Buffer
	w.WriteString("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
	fmt.Fprintf(&w, "Upstream-Name: %s\n", name)
	fmt.Fprintf(&w, "Comment: /usr/bin/%s is a static Go binary: besides %s's own code it holds the Go\n"+
		" standard library and the Go modules below, each under its own license.\n", name, name)

	var errs []error
	own, err := os.ReadFile(filepath.Join(src, "LICENSE"))
	switch {
	case err == nil:
		errs = append(errs, paragraph(&w, "*", name, "", own))
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(&w, "\nFiles: *\nCopyright: the %s authors\nLicense: none\n"+
			" The repository holds no LICENSE file: %s has not declared a license.\n", name, name)
	default:
		errs = append(errs, err)
	}

	goroot, err := goEnv("GOROOT")
	if err != nil {
		return nil, err
	}
	text, err := os.ReadFile(filepath.Join(goroot, "LICENSE"))
	if err != nil {
		return nil, err
	}
	errs = append(errs, paragraph(&w, "go/*", "the Go standard library and runtime", bi.GoVersion, text))

	for _, m := range bi.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		dir, err := moduleDir(m.Path, m.Version)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		text, err := licenseText(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", m.Path, m.Version, err))
			continue
		}
		errs = append(errs, paragraph(&w, m.Path+"/*", "Go module "+m.Path, m.Version, text))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// paragraph writes one Files paragraph: the copyright lines of the license text (or its
// authors), the license's short name, and its full text unless Debian ships it in
// /usr/share/common-licenses.
func paragraph(w *bytes.Buffer, files, what, version string, text []byte) error {
	short, common := licenseName(text)
	if short == "" {
		return fmt.Errorf("%s: a license this program does not know; add it to licenseName", what)
	}
	var holders []string
	for _, l := range strings.Split(string(text), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "Copyright") && !strings.Contains(l, "[yyyy]") && !strings.Contains(l, "{yyyy}") {
			holders = append(holders, strings.TrimSpace(strings.TrimPrefix(l, "Copyright")))
		}
	}
	if len(holders) == 0 {
		holders = []string{"the authors of " + what}
	}
	fmt.Fprintf(w, "\nFiles: %s\nCopyright: %s\n", files, strings.Join(holders, "\n "))
	if version != "" {
		fmt.Fprintf(w, "Comment: %s %s\n", what, version)
	}
	fmt.Fprintf(w, "License: %s\n", short)
	if common {
		fmt.Fprintf(w, " On Debian systems the full text of the license is in\n /usr/share/common-licenses/%s.\n", short)
		return nil
	}
	for _, l := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
		if l = strings.TrimRight(l, " \t\r"); l == "" {
			w.WriteString(" .\n")
		} else {
			w.WriteString(" " + l + "\n")
		}
	}
	return nil
}

// licenseName names the license of a LICENSE file as the copyright format does, and says
// whether Debian ships its text in /usr/share/common-licenses.
func licenseName(text []byte) (short string, common bool) {
	t := strings.Join(strings.Fields(string(text)), " ")
	switch {
	case strings.Contains(t, "Apache License") && strings.Contains(t, "Version 2.0"):
		return "Apache-2.0", true
	case strings.Contains(t, "Mozilla Public License Version 2.0"):
		return "MPL-2.0", true
	case strings.Contains(t, "Permission is hereby granted, free of charge"):
		return "Expat", false
	case strings.Contains(t, "Redistribution and use in source and binary forms") && strings.Contains(t, "Neither the name"):
		return "BSD-3-clause", false
	case strings.Contains(t, "Redistribution and use in source and binary forms"):
		return "BSD-2-clause", false
	}
	return "", false
}

// licenseText reads a module's license file.
func licenseText(dir string) ([]byte, error) {
	for _, n := range []string{"LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING", "LICENCE"} {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("no LICENSE file in %s", dir)
}

// moduleDir is where the module proxy's copy of the module is, downloaded when needed.
func moduleDir(path, version string) (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", path+"@"+version).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", path, version, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", err
	}
	if m.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", path, version, m.Error)
	}
	return m.Dir, nil
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
