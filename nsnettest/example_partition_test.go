package nsnettest_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nsnet/nsnet/fault"
	"github.com/nsnet/nsnet/nsnettest"
)

const replicaLab = `
lab: replicas
nodes:
  app: {}
  db1: {}
  sw: {}
bridges:
  br0: {node: sw, subnets: [10.5.0.0/24]}
links:
  - a: {node: app, name: eth0, addresses: [10.5.0.1/24]}
    b: {bridge: br0}
  - a: {node: db1, name: eth0, addresses: [10.5.0.11/24]}
    b: {bridge: br0}
`

// get is a client with retries, as a real one has: each try is bounded,
// and it gives up when its context ends.
func get(ctx context.Context, l *nsnettest.Lab) (string, error) {
	for {
		try, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		c, err := l.Node("app").Dial(try, "tcp", "db1:5432")
		cancel()
		if err == nil {
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil {
				return line[:len(line)-1], nil
			}
			err = rerr
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("gave up: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A client that retries across a partition: while the database is cut
// off, every try fails and the client gives up; after Heal, it recovers.
func Example_partition() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	l, err := nsnettest.New(replicaLab, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	ln, _ := l.Node("db1").Listen("tcp", ":5432")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "row 1")
			c.Close()
		}
	}()

	show := func(what string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		v, err := get(ctx, l)
		if err != nil {
			fmt.Println(what+":", err)
			return
		}
		fmt.Println(what+":", v)
	}
	show("before")
	l.SetPartition(fault.Partition{Groups: [][]string{{"app"}, {"db1"}}})
	show("partitioned")
	l.HealPartition()
	show("healed")
	// Output:
	// before: row 1
	// partitioned: gave up: context deadline exceeded
	// healed: row 1
}
