package delayer

import (
	"strings"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/netns"
)

// OpenForTest serves queue num of ns by words with a kernel queue of
// maxlen packets, to overload it on purpose.
func OpenForTest(ns *netns.NS, num uint16, words string, maxlen uint32) (counters func() Counters, stop func(), err error) {
	spec, err := fault.ParseWords(strings.Fields(words))
	if err != nil {
		return nil, nil, err
	}
	q, err := openQueue("test", ns, num, spec, 1)
	if err != nil {
		return nil, nil, err
	}
	q.maxlen.Store(maxlen)
	q.poke()
	return q.counters, q.close, nil
}
