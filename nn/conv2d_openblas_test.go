package nn

import (
	"os"
	"testing"

	"github.com/certify-mli/certify/internal/blasbackend"
)

// BenchmarkConv2dJetBLAS is BenchmarkConv2dJet with the BLAS that
// $CERTIFY_BLAS selects (OpenBLAS when present), as certify's commands use.
func BenchmarkConv2dJetBLAS(b *testing.B) {
	be, _, err := blasbackend.Select(os.Getenv("CERTIFY_BLAS"))
	if err != nil {
		b.Skip(err)
	}
	be.Use()
	defer blasbackend.PureGo().Use()
	b.Log(be.Describe())
	BenchmarkConv2dJet(b)
}
