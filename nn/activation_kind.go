package nn

import (
	"fmt"
	"strings"
)

// ActivationKind is the elementwise function of an Activation layer; its
// value is the model.json layer type ("relu", …), which String, MarshalText
// and UnmarshalText use, so JSON holds the same strings as before the type
// existed. It is a string type so that an untyped constant such as "relu"
// is still an ActivationKind.
type ActivationKind string

// The activation kinds, PyTorch's definitions (Activation.Eval).
const (
	ReLU      ActivationKind = "relu"
	LeakyReLU ActivationKind = "leaky_relu"
	Tanh      ActivationKind = "tanh"
	Sigmoid   ActivationKind = "sigmoid"
	GELU      ActivationKind = "gelu"
	Softplus  ActivationKind = "softplus"
	// IdentityKind and Flatten are the identity on flat batches.
	IdentityKind ActivationKind = "identity"
	Flatten      ActivationKind = "flatten"
)

// ActivationKinds lists every kind, in model.json's documentation order.
var ActivationKinds = []ActivationKind{ReLU, LeakyReLU, Tanh, Sigmoid, GELU, Softplus, IdentityKind, Flatten}

// String returns the model.json name of k.
func (k ActivationKind) String() string { return string(k) }

// Valid reports whether k is one of ActivationKinds.
func (k ActivationKind) Valid() bool {
	for _, v := range ActivationKinds {
		if k == v {
			return true
		}
	}
	return false
}

// ParseActivationKind returns the kind named s, or an error naming s and
// the kinds there are.
func ParseActivationKind(s string) (ActivationKind, error) {
	if k := ActivationKind(s); k.Valid() {
		return k, nil
	}
	names := make([]string, len(ActivationKinds))
	for i, k := range ActivationKinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("nn: activation %q: want one of %s", s, strings.Join(names, ", "))
}

// MarshalText implements encoding.TextMarshaler: the model.json name; an
// unknown kind is an error.
func (k ActivationKind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		_, err := ParseActivationKind(string(k))
		return nil, err
	}
	return []byte(k), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with
// ParseActivationKind.
func (k *ActivationKind) UnmarshalText(b []byte) error {
	v, err := ParseActivationKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}
