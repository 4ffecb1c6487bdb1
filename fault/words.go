package fault

import (
	"strings"
)

// ParseWords reads a Spec in netem's word order, as "nsnet fault set" takes
// it:
//
//	delay 20ms [5ms [25%]] [distribution normal]
//	loss [random] 10% [25%]  |  loss gemodel 1% [25% [100% [0%]]]
//	duplicate 1%  reorder 25%  corrupt 0.1%
//	rate 10mbit [burst 32kb] [limit 64kb]
//	down | blackhole
//
// Keywords may come in any order, each at most once; "none" alone is the
// zero Spec. The result is validated.
func ParseWords(words []string) (Spec, error) {
	var s Spec
	if len(words) == 1 && words[0] == "none" {
		return s, nil
	}
	if len(words) == 0 {
		return s, &Error{Rule: "no fault given (want " + strings.Join(keywords, ", ") + ", or none)"}
	}
	seen := map[string]bool{}
	i := 0
	next := func() (string, bool) {
		if i < len(words) && !isKeyword(words[i]) {
			i++
			return words[i-1], true
		}
		return "", false
	}
	for i < len(words) {
		kw := words[i]
		i++
		if !isKeyword(kw) {
			return Spec{}, &Error{Field: "", Value: "", Rule: "unknown keyword " + quote(kw) + " (want " + strings.Join(keywords, ", ") + ")"}
		}
		canon := kw
		if kw == FieldJitter {
			canon = FieldDelay + " jitter"
		}
		if seen[canon] {
			return Spec{}, &Error{Field: kw, Rule: "given twice"}
		}
		seen[canon] = true
		var err error
		switch kw {
		case FieldDelay:
			v, ok := next()
			if !ok {
				return Spec{}, &Error{Field: kw, Rule: "needs a duration such as 20ms"}
			}
			if s.Delay, err = ParseDuration(FieldDelay, v); err != nil {
				return Spec{}, err
			}
			if v, ok := next(); ok {
				if seen[FieldDelay+" jitter"] {
					return Spec{}, &Error{Field: FieldJitter, Rule: "given twice"}
				}
				seen[FieldDelay+" jitter"] = true
				if s.Jitter, err = ParseDuration(FieldJitter, v); err != nil {
					return Spec{}, err
				}
				if v, ok := next(); ok {
					if s.Correlation, err = ParsePercent(FieldCorrelation, v); err != nil {
						return Spec{}, err
					}
				}
			}
		case FieldJitter:
			v, ok := next()
			if !ok {
				return Spec{}, &Error{Field: kw, Rule: "needs a duration such as 5ms"}
			}
			if s.Jitter, err = ParseDuration(FieldJitter, v); err != nil {
				return Spec{}, err
			}
		case FieldDistribution:
			v, ok := next()
			if !ok {
				return Spec{}, &Error{Field: kw, Rule: "needs one of " + distributionNames()}
			}
			s.Distribution = Distribution(v)
		case FieldLoss:
			if s.Loss, err = parseLossWords(next); err != nil {
				return Spec{}, err
			}
		case FieldDuplicate, FieldReorder, FieldCorrupt:
			v, ok := next()
			if !ok {
				return Spec{}, &Error{Field: kw, Rule: "needs a percentage such as 1%"}
			}
			p, err := ParsePercent(kw, v)
			if err != nil {
				return Spec{}, err
			}
			switch kw {
			case FieldDuplicate:
				s.Duplicate = p
			case FieldReorder:
				s.Reorder = p
			default:
				s.Corrupt = p
			}
		case FieldRate:
			v, ok := next()
			if !ok {
				return Spec{}, &Error{Field: kw, Rule: "needs a rate such as 10mbit"}
			}
			if s.Rate.Bits, err = ParseRate(FieldRate, v); err != nil {
				return Spec{}, err
			}
		case FieldBurst, FieldLimit:
			if !seen[FieldRate] {
				return Spec{}, &Error{Field: kw, Rule: "needs a rate before it (rate 10mbit " + kw + " 32kb)"}
			}
			v, ok := next()
			if !ok {
				return Spec{}, &Error{Field: kw, Rule: "needs a size such as 32kb"}
			}
			n, err := ParseSize(FieldRate+"."+kw, v)
			if err != nil {
				return Spec{}, err
			}
			if kw == FieldBurst {
				s.Rate.Burst = n
			} else {
				s.Rate.Limit = n
			}
		case FieldDown:
			s.Down = true
		case FieldBlackhole:
			s.Blackhole = true
		}
		if v, ok := next(); ok {
			return Spec{}, &Error{Field: kw, Value: v, Rule: "unexpected value after " + kw}
		}
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

func parseLossWords(next func() (string, bool)) (Loss, error) {
	v, ok := next()
	if !ok {
		return Loss{}, &Error{Field: FieldLoss, Rule: "needs a percentage such as 10% (or gemodel P R)"}
	}
	var l Loss
	var err error
	switch v {
	case "random":
		if v, ok = next(); !ok {
			return Loss{}, &Error{Field: FieldLoss, Rule: "needs a percentage such as 10%"}
		}
		fallthrough
	default:
		if l.P, err = ParsePercent(FieldLoss, v); err != nil {
			return Loss{}, err
		}
		if v, ok := next(); ok {
			if l.Correlation, err = ParsePercent(FieldLoss+".correlation", v); err != nil {
				return Loss{}, err
			}
		}
	case "gemodel":
		v, ok := next()
		if !ok {
			return Loss{}, &Error{Field: FieldLoss, Rule: "gemodel needs P [R [1-H [1-K]]], e.g. gemodel 1% 25%"}
		}
		if l.P, err = ParsePercent(FieldLoss+".p", v); err != nil {
			return Loss{}, err
		}
		// netem's defaults: r = 1-p, 1-h = 100%, 1-k = 0%.
		l.R, l.BadLoss = 100-l.P, 100
		for _, f := range []struct {
			name string
			dst  *Percent
		}{{".r", &l.R}, {".1-h", &l.BadLoss}, {".1-k", &l.GoodLoss}} {
			v, ok := next()
			if !ok {
				break
			}
			if *f.dst, err = ParsePercent(FieldLoss+f.name, v); err != nil {
				return Loss{}, err
			}
		}
		if l.R == 0 {
			return Loss{}, &Error{Field: FieldLoss + ".r", Value: "0%", Rule: "must be more than 0%: a burst would never end"}
		}
	case "state":
		return Loss{}, &Error{Field: FieldLoss, Value: "state", Rule: "the 4-state model is not supported; use gemodel P R"}
	}
	return l, nil
}

func isKeyword(w string) bool {
	switch w {
	case FieldDelay, FieldJitter, FieldDistribution, FieldLoss, FieldDuplicate, FieldReorder,
		FieldCorrupt, FieldRate, FieldBurst, FieldLimit, FieldDown, FieldBlackhole:
		return true
	}
	return false
}

func quote(s string) string { return `"` + s + `"` }
