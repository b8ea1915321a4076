package validate

import (
	"bufio"
	"bytes"

	"sigs.k8s.io/yaml"
)

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// stripComments drops full-line comments, so that a document of comments
// only counts as empty.
func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// yamlUnmarshal decodes the fields a test reads from someone else's file,
// leniently: strictness is that file's owner's test.
func yamlUnmarshal(b []byte, v any) error { return yaml.Unmarshal(b, v) }
