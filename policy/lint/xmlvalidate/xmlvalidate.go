// Package xmlvalidate runs libvirt's schema validator, virt-xml-validate, for the linter's
// --schema option. It is apart from package lint so that the rules stay free of programs and I/O.
package xmlvalidate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Command is the validator; tests may point it elsewhere.
var Command = "virt-xml-validate"

// Timeout bounds one run.
var Timeout = 60 * time.Second

// Available reports why the validator cannot run (nil when it can): virt-xml-validate comes with
// libvirt-clients, and needs xmllint (libxml2-utils).
func Available() error {
	if _, err := exec.LookPath(Command); err != nil {
		return fmt.Errorf("%s is not installed (Debian: apt-get install libvirt-clients libxml2-utils)", Command)
	}
	if _, err := exec.LookPath("xmllint"); err != nil {
		return errors.New("xmllint is not installed, and virt-xml-validate needs it (Debian: apt-get install libxml2-utils)")
	}
	return nil
}

// Run validates a domain definition and returns the validator's output and whether it rejected
// the document (lint.ParseValidatorOutput reads the output). The document is written to a
// temporary file, since the validator reads files; file names it in errors.
func Run(file string, src []byte) (out string, failed bool, err error) {
	f, err := os.CreateTemp("", "virt-failover-lint-*.xml")
	if err != nil {
		return "", false, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(src); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Close(); err != nil {
		return "", false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Command, f.Name(), "domain")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	if ctx.Err() != nil {
		return "", false, fmt.Errorf("%s %s: no answer within %s", Command, file, Timeout)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return "", false, fmt.Errorf("%s %s: %w", Command, file, err)
	}
	return buf.String(), err != nil, nil
}
