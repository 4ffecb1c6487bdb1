package lab

// linkIndexes maps a namespace's link names to the ifindexes learnt so far.
// A lab keeps one for each namespace it works in, 10,000 at once, and a
// node's namespace holds two or three links: a slice until it has more than
// fewLinks (a map of one entry costs 250 bytes), then a map (the host of a
// big lab holds thousands).
type linkIndexes struct {
	few  []linkIndex
	many map[string]int
}

type linkIndex struct {
	name  string
	index int
}

const fewLinks = 8

// The loopback is not stored: it is loIndex in every namespace.
func (x *linkIndexes) get(name string) (int, bool) {
	if name == "lo" {
		return loIndex, true
	}
	if x.many != nil {
		i, ok := x.many[name]
		return i, ok
	}
	for _, e := range x.few {
		if e.name == name {
			return e.index, true
		}
	}
	return 0, false
}

func (x *linkIndexes) set(name string, index int) {
	if name == "lo" {
		return
	}
	if x.many != nil {
		x.many[name] = index
		return
	}
	for k := range x.few {
		if x.few[k].name == name {
			x.few[k].index = index
			return
		}
	}
	if len(x.few) < fewLinks {
		x.few = append(x.few, linkIndex{name, index})
		return
	}
	x.many = make(map[string]int, 2*fewLinks)
	for _, e := range x.few {
		x.many[e.name] = e.index
	}
	x.few = nil
	x.many[name] = index
}

func (x *linkIndexes) del(name string) {
	if x.many != nil {
		delete(x.many, name)
		return
	}
	for k := range x.few {
		if x.few[k].name == name {
			x.few = append(x.few[:k], x.few[k+1:]...)
			return
		}
	}
}
