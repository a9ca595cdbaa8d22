// Package torchpt reads checkpoints written by torch.save — the zip format of
// torch ≥ 1.6, ARCHIVE/data.pkl plus one record per storage — without running
// any code from them.
//
// The pickle in data.pkl is interpreted by a small restricted machine (pickle
// protocols 2–5, the opcodes torch.save emits) that admits only the globals
// a state_dict needs: collections.OrderedDict, torch's typed storages
// (torch.FloatStorage, …) and torch._utils._rebuild_tensor_v2 /
// _rebuild_parameter. Any other global — os.system, builtins.eval, the class
// of a pickled nn.Module — is refused when the GLOBAL opcode names it, so a
// hostile checkpoint whose __reduce__ would run a command in Python is inert
// here. Sizes come from the file: a storage must fit its record and a tensor
// may not hold more elements than its storage, so memory stays bounded by
// the file size whatever the pickle declares.
//
// github.com/nlpodyssey/gopickle was considered: its torch loader allocates
// each storage from the element count the pickle declares before reading the
// record (dataType.New(size, …)), finds records by base name only, and its
// legacy-format path panics on some inputs; bounding memory by the file size
// and refusing every global outside an allow-list needed a reader of our
// own, ~600 lines.
package torchpt
