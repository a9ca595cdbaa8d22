package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestBarDrawsPercentAndIsSilentOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := NewWriter(&buf, "train")
	b.Update(5, 10, "loss 0.5")
	if s := buf.String(); !strings.Contains(s, "train") || !strings.Contains(s, " 50%") || !strings.Contains(s, "5/10") || !strings.Contains(s, "loss 0.5") {
		t.Errorf("bar drew %q", s)
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	q := New(f, "x")
	q.Update(1, 2, "")
	q.Done()
	st, _ := f.Stat()
	if st.Size() != 0 {
		t.Errorf("a bar on a regular file wrote %d bytes", st.Size())
	}
	var nilBar *Bar
	nilBar.Update(1, 2, "") // must not panic
}
