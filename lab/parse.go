package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nsnet/nsnet/internal/echo"
)

// MaxFileSize bounds a lab file. A lab of 10,000 nodes is about a megabyte.
const MaxFileSize = 32 << 20

// The raw lab file: every value with its location, before any rule beyond
// "is this the right YAML shape" is applied.

type sval struct {
	V  string
	At loc
}

func (s sval) set() bool { return s.At.Line > 0 }

// pos is where a value read without its path sits: a big lab has tens of
// thousands of routes and link ends, and a field's path is its entry's and
// the field's name, built (in) only for a message.
type pos struct{ Line, Col int32 }

func (p pos) set() bool { return p.Line > 0 }

// in is where the value is: inside the entry at parent, as its field leaf
// (".to").
func (p pos) in(parent loc, leaf string) loc {
	return loc{Line: p.Line, Col: p.Col, Path: parent.Path + leaf}
}

func posOf(n *yaml.Node) pos { return pos{int32(n.Line), int32(n.Column)} }

// fval is a string read without its path (see strIn).
type fval struct {
	V string
	pos
}

type ival struct {
	V  int
	At loc
}

func (v ival) set() bool { return v.At.Line > 0 }

type spec struct {
	Name    sval
	At      loc
	Nodes   []*nodeSpec
	Bridges []*bridgeSpec
	Links   []*linkSpec
	Expect  []*expectSpec
	Hosts   []*hostSpec // see hosts.go
	VXLAN   *vxlanSpec
}

type nodeSpec struct {
	Name    sval // At is the key's position, Path "nodes.NAME"
	Netns   fval // see in: path Name's and ".netns"
	Routes  []routeSpec
	Sysctls []sysctlSpec
	Procs   []*procSpec
	Resps   []sval
	// RespAlways is responders.always (set: "true" or "false", where
	// written), see expect.go.
	RespAlways fval
	// Count makes the entry compact: its name holds %d, and it stands for
	// nodes 1 to Count (compact.go).
	Count ival
	Host  sval
}

// routeSpec is a route as written. Its path is its node's and its index
// (resolve builds it): a big lab has tens of thousands of routes.
type routeSpec struct {
	pos
	To, Via, Dev fval
}

type sysctlSpec struct {
	Key, Value sval
}

type procSpec struct {
	At   loc
	Argv []string
}

type bridgeSpec struct {
	Name      sval
	Node      sval
	Subnets   []sval
	MTU       ival
	Addresses []sval
	Static    sval // static_neighbours: true or false
}

type linkSpec struct {
	At     loc
	A, B   *endSpec
	MTU    fint // see in: path At's and ".mtu"
	VNI    fint
	Faults *faultSpec
	// Ends is what resolve keeps of A and B once it has made their
	// interfaces and dropped them (see keepEnds); nil until then.
	Ends *[2]endRest
}

// endRest is what is read of a link end after its interface is made.
type endRest struct {
	Addresses []sval
	Faults    *faultSpec
}

// keepEnds keeps what is still to be read of the link's ends and drops the
// rest: at 10,000 links the ends are a sixth of what is live while
// resolve makes the interfaces.
func (ls *linkSpec) keepEnds() {
	ls.Ends = new([2]endRest)
	for i, e := range []*endSpec{ls.A, ls.B} {
		if e != nil {
			ls.Ends[i] = endRest{Addresses: e.Addresses, Faults: e.Faults}
		}
	}
	ls.A, ls.B = nil, nil
}

type endSpec struct {
	At        loc
	Node      fval // see in: path At's and ".node"
	Bridge    fval
	Name      fval
	Addresses []sval
	Faults    *faultSpec
}

// parser turns YAML nodes into a spec, recording shape errors as it goes so
// that one run reports every problem.
type parser struct {
	problems
}

func at(n *yaml.Node, path string) loc {
	return loc{Line: int32(n.Line), Col: int32(n.Column), Path: path}
}

// parseSpec parses the YAML text. Only a document that is not YAML at all
// stops it early; every other problem is collected. A big file is read in
// pieces when it can be (split.go), with the same result.
func parseSpec(file string, data []byte) (*spec, *problems) {
	p := &parser{problems{file: file}}
	if len(data) > MaxFileSize {
		p.add(loc{Line: 1, Col: 1}, "file is larger than %d bytes", MaxFileSize)
		return nil, &p.problems
	}
	if sp, ok := splitFile(data); ok {
		if s, err := p.read(sp.skeleton, sp); err == nil {
			return s, &p.problems
		}
		p = &parser{problems{file: file}}
	}
	s, _ := p.read(data, nil)
	return s, &p.problems
}

// read parses text, whose sections nodes and links come from sp's pieces
// when sp is not nil. It fails (errWhole) only when a piece is not what
// the splitter took it for.
func (p *parser) read(text []byte, sp *split) (*spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if sp != nil {
			return nil, errWhole
		}
		if errors.Is(err, io.EOF) {
			p.add(loc{Line: 1, Col: 1}, "file is empty: a lab needs at least \"lab: NAME\"")
		} else {
			p.add(yamlErrLoc(err), "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil, nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		if sp != nil {
			return nil, errWhole
		}
		p.add(at(&extra, ""), "a lab file holds one YAML document; this is a second one")
	} else if !errors.Is(err, io.EOF) {
		if sp != nil {
			return nil, errWhole
		}
		p.add(yamlErrLoc(err), "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	s := &spec{At: at(root, "")}
	fields := p.fields(root, "", "lab", "nodes", "bridges", "links", "expect", "hosts", "vxlan")
	if f, ok := fields.get("lab"); ok {
		s.Name = p.str(f, "lab")
	} else if root.Kind == yaml.MappingNode {
		p.add(at(root, "lab"), "missing: every lab needs a name (lab: NAME)")
	}
	if f, ok := fields.get("hosts"); ok {
		s.Hosts = p.hosts(f)
	}
	if f, ok := fields.get("vxlan"); ok {
		s.VXLAN = p.vxlan(f)
	}
	// The YAML tree is the biggest thing nsnet ever holds (about 3 KB per
	// node of a big lab): each part is dropped as soon as it is read.
	if f, ok := fields.get("nodes"); ok {
		seen := map[string]loc{}
		err := parts(sp, "nodes", f, yaml.MappingNode, func(n *yaml.Node) {
			kvs := p.entriesSeen(n, "nodes", seen)
			n.Content = nil
			for i := range kvs {
				s.Nodes = append(s.Nodes, p.node(kvs[i]))
				kvs[i].Value = nil
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if f, ok := fields.get("bridges"); ok {
		for _, kv := range p.entries(f, "bridges") {
			s.Bridges = append(s.Bridges, p.bridge(kv))
		}
	}
	if f, ok := fields.get("links"); ok {
		err := parts(sp, "links", f, yaml.SequenceNode, func(n *yaml.Node) {
			items := p.seq(n, "links")
			for i, n := range items {
				s.Links = append(s.Links, p.link(n, index("links", len(s.Links))))
				items[i] = nil
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if f, ok := fields.get("expect"); ok {
		for i, n := range p.seq(f, "expect") {
			s.Expect = append(s.Expect, p.expect(n, fmt.Sprintf("expect[%d]", i)))
		}
	}
	return s, nil
}

// parts passes a section to fn: the section's own node, or, when sp split
// it, each batch of its entries in turn.
func parts(sp *split, name string, f *yaml.Node, want yaml.Kind, fn func(*yaml.Node)) error {
	if sp == nil || sp.entries[name] == nil {
		fn(f)
		return nil
	}
	for _, run := range batches(sp.entries[name]) {
		n, err := sp.decode(run, want)
		if err != nil {
			return err
		}
		fn(n)
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlErrLoc digs the line out of a yaml.v3 syntax error, which carries it
// only in the message.
func yamlErrLoc(err error) loc {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return loc{Line: int32(n), Col: 1}
		}
	}
	return loc{Line: 1, Col: 1}
}

// resolveAlias refuses YAML aliases: expanding them could make a small file
// describe an enormous lab, and labs are easier to read without them.
func (p *parser) plain(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode {
		p.add(at(n, path), "YAML aliases (*%s) are not supported in lab files", echo.Clip(n.Value))
		return false
	}
	return true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

type keyValue struct {
	Key   sval
	Value *yaml.Node
}

// entries reads a mapping whose keys are names chosen by the user, in file
// order. Duplicate keys are reported.
func (p *parser) entries(n *yaml.Node, path string) []keyValue {
	return p.entriesSeen(n, path, map[string]loc{})
}

// entriesSeen is entries for one of several parts of a mapping: seen holds
// the names of the parts read before.
func (p *parser) entriesSeen(n *yaml.Node, path string, seen map[string]loc) []keyValue {
	if !p.plain(n, path) || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.add(at(n, path), "must be a mapping of names to definitions, not %s", kindName(n))
		return nil
	}
	var out []keyValue
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !p.plain(k, path) {
			continue
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			p.add(at(k, path), "names must be plain strings, not %s", kindName(k))
			continue
		}
		kp := path + "." + echo.Clip(k.Value)
		if prev, dup := seen[k.Value]; dup {
			p.add(at(k, kp), "duplicate name %s (first defined at line %d)", echo.Quote(k.Value), prev.Line)
			continue
		}
		seen[k.Value] = at(k, kp)
		out = append(out, keyValue{Key: sval{V: k.Value, At: at(k, kp)}, Value: v})
	}
	return out
}

// fieldSet is a mapping's known fields, as fields read them.
type fieldSet struct {
	names []string
	vals  [maxFields]*yaml.Node
}

// maxFields is the most fields a mapping of a lab file knows.
const maxFields = 12

// get is the value of the named field, if the mapping has it.
func (f *fieldSet) get(name string) (*yaml.Node, bool) {
	for i, n := range f.names {
		if n == name {
			return f.vals[i], f.vals[i] != nil
		}
	}
	return nil, false
}

// fields reads a mapping with a fixed set of keys, reporting unknown and
// duplicate ones. It makes no map: it runs for every entry of a big file.
func (p *parser) fields(n *yaml.Node, path string, allowed ...string) fieldSet {
	if len(allowed) > maxFields {
		// A mapping's fields are the code's, not the file's: more than
		// vals holds is a mistake here, never taken for unknown fields.
		panic(fmt.Sprintf("lab: fields: %d known fields, more than maxFields (%d)", len(allowed), maxFields))
	}
	out := fieldSet{names: allowed}
	if !p.plain(n, path) || isNull(n) {
		return out
	}
	if n.Kind != yaml.MappingNode {
		where := path
		if where == "" {
			where = "the file"
		}
		p.add(at(n, path), "%s must be a mapping with keys %s, not %s", where, strings.Join(allowed, ", "), kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.add(at(k, path), "keys must be plain strings, not %s", kindName(k))
			continue
		}
		known := -1
		for j, a := range out.names {
			if a == k.Value {
				known = j
			}
		}
		if known < 0 {
			p.add(at(k, join(path, echo.Clip(k.Value))), "unknown field %s (known: %s)", echo.Quote(k.Value), strings.Join(allowed, ", "))
			continue
		}
		if out.vals[known] != nil {
			p.add(at(k, join(path, echo.Clip(k.Value))), "field %q given twice", k.Value)
			continue
		}
		out.vals[known] = v
	}
	return out
}

// index is the path of a list's i-th element.
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (p *parser) seq(n *yaml.Node, path string) []*yaml.Node {
	if !p.plain(n, path) || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(at(n, path), "must be a list, not %s", kindName(n))
		return nil
	}
	return n.Content
}

// str reads a scalar as written. Numbers are accepted as strings (a node may
// be called 1), but null, lists and mappings are not.
func (p *parser) str(n *yaml.Node, path string) sval {
	if !p.plain(n, path) {
		return sval{}
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.add(at(n, path), "must be a string, not %s", kindName(n))
		return sval{}
	}
	return sval{V: n.Value, At: at(n, path)}
}

// strIn is str for the field leaf of the entry at path, the value kept
// without its path (see fval), which is built only for a message.
func (p *parser) strIn(n *yaml.Node, path, leaf string) fval {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.str(n, path+leaf) // says what it is instead
		return fval{}
	}
	return fval{V: n.Value, pos: posOf(n)}
}

// fint is a whole number read without its path, as fval is a string.
type fint struct {
	V int
	pos
}

// intIn is int for the field leaf of the entry at path, kept without its
// path (see fint).
func (p *parser) intIn(n *yaml.Node, path, leaf string) fint {
	v := p.int(n, path+leaf)
	if !v.set() {
		return fint{}
	}
	return fint{V: v.V, pos: pos{v.At.Line, v.At.Col}}
}

func (p *parser) int(n *yaml.Node, path string) ival {
	if !p.plain(n, path) {
		return ival{}
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.add(at(n, path), "must be a whole number, not %s", kindName(n))
		return ival{}
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 32)
	if err != nil {
		p.add(at(n, path), "must be a whole number that fits in 32 bits, not %s", echo.Clip(n.Value))
		return ival{}
	}
	return ival{V: int(v), At: at(n, path)}
}

func (p *parser) strs(n *yaml.Node, path string) []sval {
	var out []sval
	for i, e := range p.seq(n, path) {
		if s := p.str(e, index(path, i)); s.set() {
			out = append(out, s)
		}
	}
	return out
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!int", "!!float":
			return "the number " + echo.Clip(n.Value)
		case "!!bool":
			return "the boolean " + echo.Clip(n.Value)
		}
		return echo.Quote(n.Value)
	}
	return "an empty document"
}

func (p *parser) node(kv keyValue) *nodeSpec {
	path := kv.Key.At.Path
	ns := &nodeSpec{Name: kv.Key}
	f := p.fields(kv.Value, path, "netns", "routes", "sysctls", "processes", "responders", "host", "count")
	if v, ok := f.get("count"); ok {
		if ns.Count = p.int(v, path+".count"); !ns.Count.set() {
			ns.Count = ival{V: countBad, At: at(v, path+".count")} // reported
		}
	}
	if v, ok := f.get("host"); ok {
		ns.Host = p.str(v, path+".host")
	}
	if v, ok := f.get("responders"); ok {
		p.responders(v, path+".responders", ns)
	}
	if v, ok := f.get("netns"); ok {
		ns.Netns = p.strIn(v, path, ".netns")
	}
	if v, ok := f.get("routes"); ok {
		rs := p.seq(v, path+".routes")
		if len(rs) > 0 {
			ns.Routes = make([]routeSpec, len(rs))
		}
		for i, r := range rs {
			rp := index(path+".routes", i)
			rs := &ns.Routes[i]
			rs.pos = posOf(r)
			rf := p.fields(r, rp, "to", "via", "dev")
			if x, ok := rf.get("to"); ok {
				rs.To = p.strIn(x, rp, ".to")
			} else if r.Kind == yaml.MappingNode {
				p.add(at(r, rp), "missing \"to\" (a prefix such as 10.2.0.0/24, or default)")
			}
			if x, ok := rf.get("via"); ok {
				rs.Via = p.strIn(x, rp, ".via")
			}
			if x, ok := rf.get("dev"); ok {
				rs.Dev = p.strIn(x, rp, ".dev")
			}
		}
	}
	if v, ok := f.get("sysctls"); ok {
		for _, e := range p.entries(v, path+".sysctls") {
			val := p.scalar(e.Value, e.Key.At.Path)
			if val.set() {
				ns.Sysctls = append(ns.Sysctls, sysctlSpec{Key: e.Key, Value: val})
			}
		}
	}
	if v, ok := f.get("processes"); ok {
		for i, e := range p.seq(v, path+".processes") {
			pp := index(path+".processes", i)
			ps := &procSpec{At: at(e, pp)}
			pf := p.fields(e, pp, "cmd")
			c, ok := pf.get("cmd")
			if !ok {
				if e.Kind == yaml.MappingNode {
					p.add(ps.At, "missing \"cmd\" (the command and its arguments)")
				}
				continue
			}
			cp := pp + ".cmd"
			switch {
			case c.Kind == yaml.ScalarNode && !isNull(c):
				ps.Argv = strings.Fields(c.Value)
			case c.Kind == yaml.SequenceNode:
				for _, a := range p.strs(c, cp) {
					ps.Argv = append(ps.Argv, a.V)
				}
			default:
				p.add(at(c, cp), "must be a command line or a list of arguments, not %s", kindName(c))
				continue
			}
			if len(ps.Argv) == 0 {
				p.add(at(c, cp), "command is empty")
				continue
			}
			ps.At = at(c, cp)
			ns.Procs = append(ns.Procs, ps)
		}
	}
	return ns
}

// scalar reads a sysctl value: a number or a string, kept as written.
func (p *parser) scalar(n *yaml.Node, path string) sval {
	if !p.plain(n, path) {
		return sval{}
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.add(at(n, path), "must be a number or a string, not %s", kindName(n))
		return sval{}
	}
	return sval{V: n.Value, At: at(n, path)}
}

func (p *parser) bridge(kv keyValue) *bridgeSpec {
	path := kv.Key.At.Path
	b := &bridgeSpec{Name: kv.Key}
	f := p.fields(kv.Value, path, "node", "subnets", "mtu", "addresses", "static_neighbours")
	if v, ok := f.get("node"); ok {
		b.Node = p.str(v, path+".node")
	}
	if v, ok := f.get("subnets"); ok {
		b.Subnets = p.strs(v, path+".subnets")
	}
	if v, ok := f.get("mtu"); ok {
		b.MTU = p.int(v, path+".mtu")
	}
	if v, ok := f.get("addresses"); ok {
		b.Addresses = p.strs(v, path+".addresses")
	}
	if v, ok := f.get("static_neighbours"); ok {
		b.Static = p.str(v, path+".static_neighbours")
	}
	return b
}

func (p *parser) link(n *yaml.Node, path string) *linkSpec {
	l := &linkSpec{At: at(n, path)}
	f := p.fields(n, path, "a", "b", "mtu", "vni", "faults")
	if v, ok := f.get("vni"); ok {
		l.VNI = p.intIn(v, path, ".vni")
	}
	for _, side := range []string{"a", "b"} {
		v, ok := f.get(side)
		if !ok {
			if n.Kind == yaml.MappingNode {
				p.add(l.At, "missing %q: a link has two ends, a and b", side)
			}
			continue
		}
		e := p.end(v, path+"."+side)
		if side == "a" {
			l.A = e
		} else {
			l.B = e
		}
	}
	if v, ok := f.get("mtu"); ok {
		l.MTU = p.intIn(v, path, ".mtu")
	}
	if v, ok := f.get("faults"); ok {
		l.Faults = p.faults(v, path+".faults")
	}
	return l
}

func (p *parser) end(n *yaml.Node, path string) *endSpec {
	e := &endSpec{At: at(n, path)}
	f := p.fields(n, path, "node", "bridge", "name", "addresses", "faults")
	if v, ok := f.get("node"); ok {
		e.Node = p.strIn(v, path, ".node")
	}
	if v, ok := f.get("bridge"); ok {
		e.Bridge = p.strIn(v, path, ".bridge")
	}
	if v, ok := f.get("name"); ok {
		e.Name = p.strIn(v, path, ".name")
	}
	if v, ok := f.get("addresses"); ok {
		e.Addresses = p.strs(v, path+".addresses")
	}
	if v, ok := f.get("faults"); ok {
		e.Faults = p.faults(v, path+".faults")
	}
	return e
}

// readFile reads a lab file, refusing ones too large to be a lab.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Path = echo.Clip(pe.Path) // the user's, and unbounded
		}
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	return b, nil
}
