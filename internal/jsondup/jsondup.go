// Package jsondup finds duplicate object keys in JSON text. encoding/json
// silently keeps the last of two equal keys; a run's files refuse them
// instead (RUN_FORMAT.md: bad input names the file and the field).
package jsondup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Check returns an error naming the first duplicate key of data, as a path
// from the top ("layers[2].out"), or nil when there is none. Malformed JSON
// is not its concern: it returns nil and leaves the error to the decoder.
func Check(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	path, err := walk(dec, "")
	if err != nil {
		return nil // malformed: the caller's decoder says where
	}
	if path != "" {
		return fmt.Errorf("%s: duplicate key (the JSON has it twice; which one is meant is not guessed)", path)
	}
	return nil
}

// walk reads one value from dec and returns the path of the first
// duplicate key inside it ("" if none).
func walk(dec *json.Decoder, path string) (string, error) {
	t, err := dec.Token()
	if err != nil {
		return "", err
	}
	d, ok := t.(json.Delim)
	if !ok {
		return "", nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", err
			}
			k, _ := kt.(string)
			kp := k
			if path != "" {
				kp = path + "." + k
			}
			if seen[k] {
				return kp, nil
			}
			seen[k] = true
			if dup, err := walk(dec, kp); dup != "" || err != nil {
				return dup, err
			}
		}
	case '[':
		for i := 0; dec.More(); i++ {
			if dup, err := walk(dec, path+"["+strconv.Itoa(i)+"]"); dup != "" || err != nil {
				return dup, err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return "", err
}
