// Package atomicfile writes files so that readers never see a half-written
// one: data goes to a temporary file in the same directory, is synced, and is
// renamed over the destination. A failed write (a directory in the way, a
// full disk) removes its temporary file; only an interrupted process can
// leave a stray ".NAME.tmp*" file behind, and any previous file is intact.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write atomically replaces path with data (mode 0644).
func Write(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp) // e.g. a directory in the way: leave nothing behind
		return err
	}
	// Make the rename durable; not every platform can sync a directory.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
