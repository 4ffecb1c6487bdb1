package fault

import (
	"errors"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DecodeYAML reads a Spec from a YAML node, for lab files. The node is
// either a string in netem's word order ("delay 20ms loss 1%") or a mapping
// with the same names:
//
//	delay: 20ms
//	jitter: 5ms
//	distribution: normal      # uniform (default) or normal
//	correlation: 25%          # of the jitter
//	loss: 10%                 # or {p: 10%, correlation: 25%}
//	                          # or bursty (Gilbert-Elliott): {p: 1%, r: 25%[, 1-h: 100%, 1-k: 0%]}
//	duplicate: 1%
//	reorder: 25%              # needs a delay
//	corrupt: 0.1%
//	rate: 10mbit              # or {rate: 10mbit, burst: 32kb, limit: 64kb}
//	down: true                # or blackhole: true
//
// A rejected value is an *Error with the Line and Col of the node at fault.
func DecodeYAML(n *yaml.Node) (Spec, error) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return Spec{}, nil
		}
		s, err := ParseWords(strings.Fields(n.Value))
		return s, at(n, err)
	case yaml.MappingNode:
	default:
		return Spec{}, at(n, &Error{Rule: "must be a mapping (delay: 20ms) or a string (\"delay 20ms loss 1%\")"})
	}
	var s Spec
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return Spec{}, at(k, &Error{Field: k.Value, Rule: "given twice"})
		}
		seen[k.Value] = true
		if err := decodeField(&s, k.Value, v); err != nil {
			return Spec{}, at(v, err)
		}
	}
	if err := s.Validate(); err != nil {
		return Spec{}, at(n, err)
	}
	return s, nil
}

func decodeField(s *Spec, key string, v *yaml.Node) error {
	var err error
	switch key {
	case FieldDelay:
		s.Delay, err = ParseDuration(key, scalar(v))
	case FieldJitter:
		s.Jitter, err = ParseDuration(key, scalar(v))
	case FieldDistribution:
		s.Distribution = Distribution(scalar(v))
		if !validDistribution(s.Distribution) {
			return &Error{Field: key, Value: scalar(v), Rule: "must be one of " + distributionNames()}
		}
	case FieldCorrelation:
		s.Correlation, err = ParsePercent(key, scalar(v))
	case FieldLoss:
		s.Loss, err = decodeLoss(v)
	case FieldDuplicate:
		s.Duplicate, err = ParsePercent(key, scalar(v))
	case FieldReorder:
		s.Reorder, err = ParsePercent(key, scalar(v))
	case FieldCorrupt:
		s.Corrupt, err = ParsePercent(key, scalar(v))
	case FieldRate:
		s.Rate, err = decodeRate(v)
	case FieldDown:
		s.Down, err = boolean(key, v)
	case FieldBlackhole:
		s.Blackhole, err = boolean(key, v)
	default:
		return &Error{Rule: "unknown field " + quote(key) + " (want delay, jitter, distribution, correlation, loss, duplicate, reorder, corrupt, rate, down, blackhole)"}
	}
	return err
}

func decodeLoss(v *yaml.Node) (Loss, error) {
	if v.Kind != yaml.MappingNode {
		p, err := ParsePercent(FieldLoss, scalar(v))
		return Loss{P: p}, err
	}
	var l Loss
	seen := map[string]bool{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, x := v.Content[i], v.Content[i+1]
		if seen[k.Value] {
			return Loss{}, at(k, &Error{Field: FieldLoss + "." + k.Value, Rule: "given twice"})
		}
		seen[k.Value] = true
		var dst *Percent
		switch k.Value {
		case "p":
			dst = &l.P
		case "r":
			dst = &l.R
		case "1-h":
			dst = &l.BadLoss
		case "1-k":
			dst = &l.GoodLoss
		case "correlation":
			dst = &l.Correlation
		default:
			return Loss{}, at(k, &Error{Field: FieldLoss, Rule: "unknown field " + quote(k.Value) + " (want p, correlation, or p, r, 1-h, 1-k for bursty loss)"})
		}
		p, err := ParsePercent(FieldLoss+"."+k.Value, scalar(x))
		if err != nil {
			return Loss{}, at(x, err)
		}
		*dst = p
	}
	if !seen["p"] {
		return Loss{}, &Error{Field: FieldLoss, Rule: "needs p (the loss, or the chance of a burst)"}
	}
	if seen["r"] {
		if l.R == 0 {
			return Loss{}, &Error{Field: FieldLoss + ".r", Value: "0%", Rule: "must be more than 0%: a burst would never end"}
		}
		if !seen["1-h"] {
			l.BadLoss = 100
		}
	} else if seen["1-h"] || seen["1-k"] {
		return Loss{}, &Error{Field: FieldLoss, Rule: "1-h and 1-k need r (bursty loss: {p: 1%, r: 25%})"}
	}
	return l, nil
}

func decodeRate(v *yaml.Node) (Rate, error) {
	if v.Kind != yaml.MappingNode {
		b, err := ParseRate(FieldRate, scalar(v))
		return Rate{Bits: b}, err
	}
	var r Rate
	seen := map[string]bool{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, x := v.Content[i], v.Content[i+1]
		if seen[k.Value] {
			return Rate{}, at(k, &Error{Field: FieldRate + "." + k.Value, Rule: "given twice"})
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case FieldRate:
			r.Bits, err = ParseRate(FieldRate, scalar(x))
		case FieldBurst:
			r.Burst, err = ParseSize(FieldRate+".burst", scalar(x))
		case FieldLimit:
			r.Limit, err = ParseSize(FieldRate+".limit", scalar(x))
		default:
			return Rate{}, at(k, &Error{Field: FieldRate, Rule: "unknown field " + quote(k.Value) + " (want rate, burst, limit)"})
		}
		if err != nil {
			return Rate{}, at(x, err)
		}
	}
	if !seen[FieldRate] {
		return Rate{}, &Error{Field: FieldRate, Rule: "needs rate (rate: {rate: 10mbit, burst: 32kb})"}
	}
	return r, nil
}

func scalar(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return "<" + kind(n) + ">"
	}
	return n.Value
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

func boolean(field string, n *yaml.Node) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		return false, &Error{Field: field, Value: scalar(n), Rule: "must be true or false"}
	}
	return b, nil
}

// at gives err the position of n unless it already has one.
func at(n *yaml.Node, err error) error {
	var e *Error
	if err == nil || !errors.As(err, &e) {
		return err
	}
	if e.Line == 0 {
		e.Line, e.Col = n.Line, n.Column
	}
	return e
}
