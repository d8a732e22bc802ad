package harness

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// ModulePath is the import path of the module the harness tests.
const ModulePath = "github.com/virt-failover/virt-failover"

// ModuleRoot finds the module's root directory, walking up from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module "+ModulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the " + ModulePath + " module")
		}
		dir = parent
	}
}
