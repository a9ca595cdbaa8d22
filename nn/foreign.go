package nn

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/proto"

	pb "github.com/certify-mli/certify/nn/onnx/onnxpb"
)

// ImportHint is the advice given for files that `certify import` converts
// (errors naming a PyTorch or ONNX file where a checkpoint was expected).
const ImportHint = "convert it with `certify import --init A --final B [--model model.json] --data FILE --out DIR` (docs/from-pytorch.md)"

// foreignFormat says what a checkpoint that failed to read as safetensors
// is, when it is something `certify import` reads: "a PyTorch torch.save
// archive", "a legacy PyTorch torch.save file", "an .npz archive", "an ONNX
// model", or "" when it is none of these.
func foreignFormat(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return "a zip archive (a PyTorch torch.save checkpoint, or an .npz)"
	case len(head) >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5:
		return "a pickle (a legacy PyTorch torch.save file)"
	}
	// An ONNX model: a protobuf ModelProto with a graph (read at most 2 GiB).
	if st, err := f.Stat(); err == nil && st.Size() < 2<<30 {
		if b, err := os.ReadFile(path); err == nil {
			var m pb.ModelProto
			if proto.Unmarshal(b, &m) == nil && m.GetGraph() != nil && len(m.GetGraph().GetNode()) > 0 {
				return "an ONNX model"
			}
		}
	}
	return ""
}

// explainForeign rewrites a safetensors read error for a file that is in
// fact a PyTorch or ONNX file.
func explainForeign(path string, err error) error {
	if what := foreignFormat(path); what != "" {
		return fmt.Errorf("%s: this is %s, not safetensors: %s", path, what, ImportHint)
	}
	return err
}
