package delayer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/netns"
)

// Entry is one link end the delayer serves: the queue of that number in the
// namespace at Netns.
type Entry struct {
	Name  string `json:"name"` // "h1:eth0", for counters and messages
	Netns string `json:"netns"`
	Queue uint16 `json:"queue"`
	Spec  string `json:"spec"` // netem words
}

func (e Entry) key() string { return fmt.Sprintf("%s#%d", e.Netns, e.Queue) }

// Config is what the delayer serves; it rereads it on every reload.
type Config struct {
	Queues []Entry `json:"queues"`
}

// Stats is what the delayer writes for `nsnet fault show`.
type Stats struct {
	PID     int                 `json:"pid"`
	Updated time.Time           `json:"updated"`
	Queues  map[string]Counters `json:"queues"` // by entry name
	Errors  map[string]string   `json:"errors,omitempty"`
}

// ReadConfig reads a config file; a missing one is an empty config.
func ReadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

// WriteJSON replaces path with v atomically.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// ReadStats reads the stats file; a missing one has no queues.
func ReadStats(path string) (Stats, error) {
	var s Stats
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// statsEvery is how often the counters are written out.
const statsEvery = 250 * time.Millisecond

// Run serves the config at cfgPath until ctx ends, rereading it whenever
// reload delivers, and writes counters to statsPath.
func Run(ctx context.Context, cfgPath, statsPath string, reload <-chan os.Signal) error {
	open := map[string]*queue{}
	specs := map[string]string{}
	names := map[string]string{}
	errs := map[string]string{}
	defer func() {
		for _, q := range open {
			q.close()
		}
	}()
	apply := func() {
		cfg, err := ReadConfig(cfgPath)
		if err != nil {
			errs["config"] = err.Error()
			return
		}
		delete(errs, "config")
		want := map[string]Entry{}
		for _, e := range cfg.Queues {
			want[e.key()] = e
		}
		for k, q := range open {
			if _, ok := want[k]; !ok {
				q.close()
				delete(open, k)
				delete(specs, k)
				delete(errs, names[k])
				delete(names, k)
			}
		}
		for k, e := range want {
			spec, err := fault.ParseWords(strings.Fields(e.Spec))
			if err != nil {
				errs[e.Name] = err.Error()
				continue
			}
			seed := seedOf(e)
			if q, ok := open[k]; ok && q.copies != (spec.Corrupt != 0) {
				// Corruption needs whole packets: bind again with
				// the other copy mode.
				q.close()
				delete(open, k)
			}
			if q, ok := open[k]; ok {
				if specs[k] != e.Spec {
					q.setSpec(spec, seed)
					specs[k] = e.Spec
				}
				continue
			}
			q, err := openIn(e, spec, seed)
			if err != nil {
				errs[e.Name] = err.Error()
				continue
			}
			delete(errs, e.Name)
			open[k], specs[k], names[k] = q, e.Spec, e.Name
		}
	}
	write := func() {
		st := Stats{PID: os.Getpid(), Updated: time.Now().UTC(), Queues: map[string]Counters{}}
		for k, q := range open {
			st.Queues[names[k]] = q.counters()
		}
		if len(errs) > 0 {
			st.Errors = map[string]string{}
			keys := make([]string, 0, len(errs))
			for k := range errs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				st.Errors[k] = errs[k]
			}
		}
		_ = WriteJSON(statsPath, st)
	}
	apply()
	write()
	tick := time.NewTicker(statsEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			write()
			return nil
		case <-reload:
			apply()
			write()
		case <-tick.C:
			write()
		}
	}
}

func openIn(e Entry, spec fault.Spec, seed uint64) (*queue, error) {
	ns, err := netns.Open(e.Netns)
	if err != nil {
		return nil, err
	}
	// The queue's socket is made inside the namespace and stays there;
	// the descriptor is not needed after.
	defer ns.Close()
	return openQueue(e.Name, ns, e.Queue, spec, seed)
}

// seedOf gives each end its own random sequence, stable across reloads.
func seedOf(e Entry) uint64 {
	h := fnv.New64a()
	h.Write([]byte(e.key() + " " + e.Spec))
	return h.Sum64() ^ uint64(time.Now().UnixNano())
}
