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
// entries of the sections nodes and links in batches (a few dozen entries,
// or a few dozen kilobytes, each batch a document of its own), each batch
// decoded, read into the spec and dropped before the next; the rest of the
// file as a skeleton with those entries blanked out. A batch rather than an
// entry per document, because each document costs a YAML parser of its own
// (its buffers and token queue grow from empty every time). Positions are
// kept (a batch's lines are numbered from where they stand in the file). Any
// file the splitter is not sure of, and any batch the YAML library rejects or
// reads as other than the entries the splitter found, is read whole instead,
// so every message is the same either way.

// errWhole says a batch did not decode as one: read the file whole.
var errWhole = errors.New("read the file whole")

// piece is an entry of a big section: the file's bytes [start, end), which
// begin at line line (numbered from 0).
type piece struct{ line, start, end int }

// Bounds of a batch: this many entries, or (past the first entry) this much
// text. Bigger batches cost fewer parsers; smaller ones a smaller tree.
const (
	batchEntries = 64
	batchBytes   = 32 << 10
)

// split is a file cut into a skeleton and the entries of its big sections.
type split struct {
	data     []byte
	skeleton []byte
	entries  map[string][]piece // "nodes", "links"
}

var (
	topKey   = regexp.MustCompile(`^(nodes|links):([ \t]+(#.*)?)?$`)
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
	// starts[i] is where line i begins; the last entry is past the end.
	starts := make([]int, 1, bytes.Count(data, []byte("\n"))+2)
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	nlines := len(starts)
	starts = append(starts, len(data)+1)
	line := func(i int) []byte { return data[starts[i] : starts[i+1]-1] }
	sp := &split{data: data, entries: map[string][]piece{}}
	// blanked[k] is a section body cut out of the skeleton: lines [from, to).
	var blanked [][2]int
	for i := 0; i < nlines; i++ {
		l := line(i)
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
		for end < nlines && indentOf(line(end)) != 0 {
			end++
		}
		var ps []piece
		indent := -1
		for j := i + 1; j < end; j++ {
			in := indentOf(line(j))
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
				rest := line(j)[in:]
				if name == "nodes" && !nodeKey.Match(rest) || name == "links" && !linkItem.Match(rest) {
					return nil, false
				}
				if len(ps) > 0 {
					ps[len(ps)-1].end = starts[j]
				}
				ps = append(ps, piece{line: j, start: starts[j]})
			}
		}
		if len(ps) == 0 {
			return nil, false
		}
		// Comments before the first entry go with it.
		ps[0].line, ps[0].start = i+1, starts[i+1]
		ps[len(ps)-1].end = min(starts[end], len(data))
		blanked = append(blanked, [2]int{i + 1, end})
		sp.entries[name] = ps
		i = end - 1
	}
	if len(sp.entries) == 0 {
		return nil, false // nothing big to spare
	}
	// The skeleton keeps every line (blanked ones empty), so that its
	// positions are the file's.
	var sk bytes.Buffer
	sk.Grow(len(data) / 8)
	at := 0
	for _, b := range blanked {
		sk.Write(data[at:starts[b[0]]])
		for k := b[0]; k < b[1]; k++ {
			if k+1 < len(starts) && starts[k+1] <= len(data) {
				sk.WriteByte('\n')
			}
		}
		at = min(starts[b[1]], len(data))
	}
	sk.Write(data[at:])
	sp.skeleton = sk.Bytes()
	return sp, true
}

// batches cuts a section's pieces into runs to decode together.
func batches(ps []piece) [][]piece {
	var out [][]piece
	for len(ps) > 0 {
		n := 1
		for n < len(ps) && n < batchEntries && ps[n].end-ps[0].start <= batchBytes {
			n++
		}
		out = append(out, ps[:n])
		ps = ps[n:]
	}
	return out
}

// decode reads a run of consecutive entries as one document, numbering its
// lines as they stand in the file. Its root must be of kind want and hold
// exactly those entries; anything else is errWhole.
func (sp *split) decode(run []piece, want yaml.Kind) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(sp.data[run[0].start:run[len(run)-1].end], &doc); err != nil {
		return nil, errWhole
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != want {
		return nil, errWhole
	}
	n := doc.Content[0]
	per := 1
	if want == yaml.MappingNode {
		per = 2
	}
	if len(n.Content) != per*len(run) {
		return nil, errWhole
	}
	shiftLines(n, run[0].line)
	return n, nil
}

func shiftLines(n *yaml.Node, by int) {
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}
