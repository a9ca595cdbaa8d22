package blasbackend_test

import (
	"fmt"
	"os"

	"github.com/certify-mli/certify/internal/blasbackend"
)

// ExampleSelect installs the fastest self-tested BLAS of this machine for
// the whole process — OpenBLAS when it is installed, else gonum's pure Go —
// and says which (the output depends on the machine, so it is not checked).
func ExampleSelect() {
	b, note, err := blasbackend.Select("auto")
	if err != nil { // only for "openblas" or a library file that cannot be loaded
		fmt.Fprintln(os.Stderr, err)
		return
	}
	b.Use()
	fmt.Println(b.Describe()) // e.g. openblas (Haswell, 2 threads), libopenblas.so.0 loaded at run time (/usr/lib/…/libopenblasp-r0.3.21.so)
	fmt.Println(note)
}
