package backend

import (
	"sync"

	"github.com/nsnet/nsnet/kernel"
	"github.com/nsnet/nsnet/netns"
)

// Conns keeps one rtnetlink handle, one tc and one nftables connection per
// namespace for a run of changes, so that faults on a thousand links that
// share a far end open its sockets once, not a thousand times. A nil *Conns
// is valid: each call then opens its own connection and closes it after.
type Conns struct {
	mu  sync.Mutex
	h   map[*netns.NS]*kernel.Handle
	tc  map[*netns.NS]*kernel.TC
	nft map[*netns.NS]*kernel.NFT
	// One user of a namespace's nftables connection at a time: two dumps
	// at once on one netlink socket fail with EBUSY.
	nftMu map[*netns.NS]*sync.Mutex
}

// NewConns is an empty set of connections; Close releases them.
func NewConns() *Conns {
	return &Conns{h: map[*netns.NS]*kernel.Handle{}, tc: map[*netns.NS]*kernel.TC{}, nft: map[*netns.NS]*kernel.NFT{}, nftMu: map[*netns.NS]*sync.Mutex{}}
}

// Handle is ns's rtnetlink handle; done releases it when c is nil.
func (c *Conns) Handle(ns *netns.NS) (h *kernel.Handle, done func(), err error) {
	if c == nil {
		h, err := kernel.Open(ns)
		if err != nil {
			return nil, nil, err
		}
		return h, h.Close, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.h[ns]; ok {
		return h, func() {}, nil
	}
	if h, err = kernel.Open(ns); err != nil {
		return nil, nil, err
	}
	c.h[ns] = h
	return h, func() {}, nil
}

// TC is ns's tc connection.
func (c *Conns) TC(ns *netns.NS) (*kernel.TC, func(), error) {
	if c == nil {
		t, err := kernel.OpenTC(ns)
		if err != nil {
			return nil, nil, err
		}
		return t, func() { t.Close() }, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tc[ns]; ok {
		return t, func() {}, nil
	}
	t, err := kernel.OpenTC(ns)
	if err != nil {
		return nil, nil, err
	}
	c.tc[ns] = t
	return t, func() {}, nil
}

// NFT is ns's nftables connection, the caller's alone until it calls done.
func (c *Conns) NFT(ns *netns.NS) (n *kernel.NFT, done func(), err error) {
	if c == nil {
		n, err := kernel.OpenNFT(ns)
		if err != nil {
			return nil, nil, err
		}
		return n, func() { n.Close() }, nil
	}
	c.mu.Lock()
	mu, ok := c.nftMu[ns]
	if !ok {
		mu = &sync.Mutex{}
		c.nftMu[ns] = mu
	}
	c.mu.Unlock()
	mu.Lock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.nft[ns]; ok {
		return n, mu.Unlock, nil
	}
	if n, err = kernel.OpenNFT(ns); err != nil {
		mu.Unlock()
		return nil, nil, err
	}
	c.nft[ns] = n
	return n, mu.Unlock, nil
}

// Close releases every connection. The nftables ones close all at once:
// closing one in a namespace whose rules were just changed waits for the
// kernel to free the old rules after an RCU grace period (nf_tables'
// release notifier flushes its destroy work), ~10 ms each; in parallel the
// waits overlap.
func (c *Conns) Close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	for _, n := range c.nft {
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer func() { <-sem; wg.Done() }(); n.Close() }()
	}
	for _, h := range c.h {
		h.Close()
	}
	for _, t := range c.tc {
		t.Close()
	}
	wg.Wait()
	clear(c.h)
	clear(c.tc)
	clear(c.nft)
	clear(c.nftMu)
}
