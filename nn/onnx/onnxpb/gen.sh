#!/usr/bin/env bash
# Regenerates onnx.pb.go from onnx.proto (copied unchanged from
# github.com/onnx/onnx, onnx/onnx.proto, Apache-2.0).
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-go:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
set -euo pipefail
cd "$(dirname "$0")"
PATH="$(go env GOPATH)/bin:$PATH" protoc --go_out=. --go_opt=paths=source_relative \
  --go_opt=Monnx.proto=github.com/certify-mli/certify/nn/onnx/onnxpb onnx.proto
