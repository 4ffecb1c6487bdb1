package lab

import (
	"errors"

	"go.yaml.in/yaml/v3"

	"github.com/nsnet/nsnet/fault"
)

// faultSpec is a faults: entry as read, on a link or on one of its ends.
type faultSpec struct {
	At   loc
	Spec fault.Spec
}

// faults reads a faults: value with the fault package's decoder (netem's
// words in a string, or a mapping of the same names), so the lab file and
// nsnet fault set take the same language and give the same messages.
func (p *parser) faults(n *yaml.Node, path string) *faultSpec {
	if !p.plain(n, path) {
		return nil
	}
	s, err := fault.DecodeYAML(n)
	if err != nil {
		where := at(n, path)
		var fe *fault.Error
		if errors.As(err, &fe) {
			if fe.Line > 0 {
				where.Line, where.Col = int32(fe.Line), int32(fe.Col)
			}
			if fe.Field != "" {
				where.Path = path + "." + fe.Field
			}
		}
		p.add(where, "%v", err)
		return nil
	}
	return &faultSpec{At: at(n, path), Spec: s}
}

// linkFaults gives each end of each link what leaves it: the link's faults
// (which apply in both directions) with the end's own over them, field by
// field.
func (r *resolver) linkFaults(s *spec) {
	for _, ls := range s.Links {
		l := r.linkOf[ls]
		if l == nil {
			continue
		}
		for _, e := range []struct {
			i  *Interface
			es *endRest
		}{{l.A, &ls.Ends[0]}, {l.B, &ls.Ends[1]}} {
			var spec fault.Spec
			at := loc{}
			if ls.Faults != nil {
				spec, at = ls.Faults.Spec, ls.Faults.At
			}
			if e.es.Faults != nil {
				spec, at = overlay(spec, e.es.Faults.Spec), e.es.Faults.At
			}
			if spec.IsZero() {
				continue
			}
			if err := spec.Validate(); err != nil {
				// Each part was valid alone; together they are not.
				r.add(at, "with the link's faults: %v", err)
				continue
			}
			e.i.faults = &spec
		}
	}
}

// overlay is base with every field top sets replaced by top's.
func overlay(base, top fault.Spec) fault.Spec {
	out := base
	if top.Delay != 0 {
		out.Delay = top.Delay
	}
	if top.Jitter != 0 {
		out.Jitter = top.Jitter
	}
	if top.Distribution != "" {
		out.Distribution = top.Distribution
	}
	if top.Correlation != 0 {
		out.Correlation = top.Correlation
	}
	if !top.Loss.IsZero() {
		out.Loss = top.Loss
	}
	if top.Duplicate != 0 {
		out.Duplicate = top.Duplicate
	}
	if top.Reorder != 0 {
		out.Reorder = top.Reorder
	}
	if top.Corrupt != 0 {
		out.Corrupt = top.Corrupt
	}
	if !top.Rate.IsZero() {
		out.Rate = top.Rate
	}
	out.Down = out.Down || top.Down
	out.Blackhole = out.Blackhole || top.Blackhole
	return out
}

// Faulted lists the interfaces that have faults in the lab file, in file
// order.
func (l *Lab) Faulted() []*Interface {
	var out []*Interface
	for _, k := range l.Links {
		for _, i := range []*Interface{k.A, k.B} {
			if i.faults != nil {
				out = append(out, i)
			}
		}
	}
	return out
}
