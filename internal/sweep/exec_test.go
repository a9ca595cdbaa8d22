package sweep

import (
	"os/exec"
	"testing"
)

func execSh(t *testing.T, script string) (string, error) {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", script).Output()
	return string(out), err
}
