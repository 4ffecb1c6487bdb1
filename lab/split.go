package lab

import (
	"bytes"
	"errors"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// A lab file's YAML tree is about twenty-five times the size of its text (67
// MB for the 2.8 MB of 10,000 nodes), and the YAML library builds a
// document's whole tree before handing it over. So a file whose big
// sections are written in the plain block style is read in pieces: the
// sections nodes and links entry by entry, each entry as a small document of
// its own, decoded, read into the spec and dropped before the next; the rest
// of the file as a skeleton with those entries blanked out. Positions are
// kept (an entry's lines are numbered from where it stands in the file). Any
// file the splitter is not sure of, and any piece the YAML library rejects,
// is read whole instead, so every message is the same either way.

// errWhole says a piece did not decode as a piece: read the file whole.
var errWhole = errors.New("read the file whole")

// piece is an entry of a big section: lines [from, to) of the file.
type piece struct{ from, to int }

// split is a file cut into a skeleton and the entries of its big sections.
type split struct {
	lines    [][]byte // the file's lines, without their newlines
	skeleton []byte
	entries  map[string][]piece // "nodes", "links"
}

var (
	topKey   = regexp.MustCompile(`^(nodes|links):[ \t]*(#.*)?$`)
	nodeKey  = regexp.MustCompile(`^[A-Za-z0-9_][^:#'"]*:([ \t]|$)`)
	linkItem = regexp.MustCompile(`^-([ \t]|$)`)
)

// indentOf is a line's indentation, or -1 for a blank or comment line.
func indentOf(l []byte) int {
	for i, c := range l {
		switch c {
		case ' ':
			continue
		case '#':
			return -1
		}
		return i
	}
	return -1
}

// splitFile cuts data into pieces, or reports that it must be read whole.
func splitFile(data []byte) (*split, bool) {
	if bytes.IndexByte(data, '\t') >= 0 || bytes.Contains(data, []byte("\r")) {
		return nil, false
	}
	sp := &split{lines: bytes.Split(data, []byte("\n")), entries: map[string][]piece{}}
	blank := make([]bool, len(sp.lines))
	for i := 0; i < len(sp.lines); i++ {
		l := sp.lines[i]
		if indentOf(l) != 0 {
			continue
		}
		switch l[0] {
		case '-', '.', '%', '{', '[', '?', '&', '*', '!', '|', '>', '\'', '"', '@', '`':
			return nil, false // documents, directives, flow or odd keys
		}
		m := topKey.FindSubmatch(l)
		if m == nil {
			continue // a section read with the skeleton
		}
		name := string(m[1])
		if _, twice := sp.entries[name]; twice {
			return nil, false
		}
		// The section's body: up to the next line at indent 0.
		end := i + 1
		for end < len(sp.lines) && indentOf(sp.lines[end]) != 0 {
			end++
		}
		var ps []piece
		indent := -1
		for j := i + 1; j < end; j++ {
			in := indentOf(sp.lines[j])
			if in < 0 {
				continue
			}
			if indent < 0 {
				indent = in
			}
			switch {
			case in < indent:
				return nil, false
			case in == indent:
				rest := sp.lines[j][in:]
				if name == "nodes" && !nodeKey.Match(rest) || name == "links" && !linkItem.Match(rest) {
					return nil, false
				}
				if len(ps) > 0 {
					ps[len(ps)-1].to = j
				}
				ps = append(ps, piece{from: j, to: end})
			}
		}
		if len(ps) == 0 {
			return nil, false
		}
		ps[0].from = i + 1 // comments before the first entry go with it
		for j := i + 1; j < end; j++ {
			blank[j] = true
		}
		sp.entries[name] = ps
		i = end - 1
	}
	if len(sp.entries) == 0 {
		return nil, false // nothing big to spare
	}
	var sk bytes.Buffer
	for i, l := range sp.lines {
		if i > 0 {
			sk.WriteByte('\n')
		}
		if !blank[i] {
			sk.Write(l)
		}
	}
	sp.skeleton = sk.Bytes()
	return sp, true
}

// decode reads one entry as a document of its own, numbering its lines as
// they stand in the file; want is the kind its root must have.
func (sp *split) decode(pc piece, want yaml.Kind) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(bytes.Join(sp.lines[pc.from:pc.to], []byte("\n")), &doc); err != nil {
		return nil, errWhole
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != want || len(doc.Content[0].Content) == 0 {
		return nil, errWhole
	}
	shiftLines(doc.Content[0], pc.from)
	return doc.Content[0], nil
}

func shiftLines(n *yaml.Node, by int) {
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}
