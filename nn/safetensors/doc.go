// Package safetensors reads and writes checkpoints in the safetensors format,
// the checkpoint format of a certify run directory (RUN_FORMAT.md, "Files"):
// θ0 (init.safetensors), θT (final.safetensors), intermediate θ_t and the
// evaluation data.
//
// # Format
//
// A file is
//
//	N        8 bytes, unsigned little-endian: length of the header
//	header   N bytes of UTF-8 JSON, possibly padded with trailing spaces
//	data     raw little-endian elements of every tensor, row-major (C order)
//
// The header is a JSON object mapping each tensor name to
// {"dtype": D, "shape": [d0, d1, ...], "data_offsets": [begin, end]}, with
// begin and end byte offsets relative to the start of the data section, and
// optionally the key "__metadata__" mapping to an object of string values.
// A tensor of shape [d0, …, dk−1] and dtype D occupies exactly
// d0·…·dk−1·size(D) bytes; shape [] is a scalar (one element) and a shape
// with a zero dimension holds no element.
//
// Reading is as strict as the reference (Rust) implementation: the header
// length is capped at [MaxHeaderSize]; every tensor's byte range must match
// its shape and dtype; the ranges, ordered by offset, must tile the data
// section exactly (no overlap, no gap, nothing after the last tensor).
// Floating dtypes F64, F32, F16 and BF16 are converted exactly to float64;
// integer dtypes I64, I32, I16, I8, U64, U32, U16, U8 and BOOL are kept
// exactly as int64. NaN and ±Inf are read and written unchanged: judging
// values is the caller's business.
//
// Tensor names follow PyTorch's nn.Sequential state_dict keys
// ("0.weight", "0.bias", "1.running_mean", "1.num_batches_tracked"), so a
// PyTorch state_dict saved with safetensors.torch.save_file is a valid
// checkpoint, and files written here load with safetensors.torch.load_file.
//
// Errors are *Error values naming the file and, where one is at fault, the
// tensor; they wrap one of the sentinel errors (ErrTruncated, ErrHeaderSize,
// ErrHeader, ErrDType, ErrOffsets, ErrShape, ErrRange, ErrName) for use with
// errors.Is.
package safetensors
