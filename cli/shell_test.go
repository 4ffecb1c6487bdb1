package cli_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExecShell: nsnet exec LAB NODE without a command gives a shell on the
// terminal, inside the node (its interfaces, its hosts file), with a prompt
// naming the node; the shell's exit status is exec's.
func TestExecShell(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	env := []string{"NSNET_STATE_DIR=" + filepath.Join(dir, "state"), "NSNET_ETC_NETNS=" + filepath.Join(dir, "etc")}
	file := filepath.Join(dir, "sh.yaml")
	os.WriteFile(file, []byte("lab: shl\nnodes: {a: {}, b: {}}\nlinks:\n  - {a: {node: a, name: eth0, addresses: [10.77.0.1/24]}, b: {node: b, name: eth0, addresses: [10.77.0.2/24]}}\n"), 0o644)
	if r := nsnetIn(t, env, "up", file); r.code != 0 {
		t.Fatalf("up: %+v", r)
	}
	t.Cleanup(func() { nsnetIn(t, env, "down", "shl") })
	for _, sh := range []string{"/bin/sh", "/bin/bash"} {
		if _, err := os.Stat(sh); err != nil {
			t.Logf("no %s here", sh)
			continue
		}
		t.Run(filepath.Base(sh), func(t *testing.T) {
			master, slave := openPTY(t)
			cmd := exec.Command(nsnetBin, "exec", "shl", "a")
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(nsnetBin)+":"+os.Getenv("PATH"), "SHELL="+sh, "HOME="+dir)
			cmd.Env = append(cmd.Env, env...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			slave.Close()
			defer cmd.Process.Kill()
			out := make(chan string, 1)
			go func() {
				var b strings.Builder
				r := bufio.NewReader(master)
				for {
					line, err := r.ReadString('\n')
					b.WriteString(line)
					if err != nil || strings.Contains(line, "bye") && !strings.Contains(line, "echo") {
						break
					}
				}
				out <- b.String()
			}()
			master.Write([]byte("nsnet -br addr show eth0; nsnet ping -c1 -W2 b; echo b''ye; exit 3\n"))
			var got string
			select {
			case got = <-out:
			case <-time.After(20 * time.Second):
				t.Fatal("the shell did not answer")
			}
			for _, want := range []string{"(shl a) ", "10.77.0.1/24", "PING b (10.77.0.2)", "1 received", "bye"} {
				if !strings.Contains(got, want) {
					t.Errorf("%q not in the terminal's output:\n%s", want, got)
				}
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the shell did not exit")
			}
			if code := cmd.ProcessState.ExitCode(); code != 3 {
				t.Errorf("exit status %d, want the shell's 3", code)
			}
		})
	}
}
