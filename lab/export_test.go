package lab

// CheckSysctlsOnMachine is CheckSysctls as run where the machine has the
// sysctl files (paths under /proc/sys) in files, as its initial namespace
// has them: from inside the test sandbox, global keys are nowhere.
func CheckSysctlsOnMachine(l *Lab, files map[string]bool) error {
	return checkSysctlsWith(l, fakeMachine(files))
}

type fakeMachine map[string]bool

func (m fakeMachine) state(path string) sysctlState {
	if m[path] {
		return sysctlWritable
	}
	return procSys{}.state(path)
}

func (fakeMachine) try(string, string) error { panic("tries run in the scratch namespace") }
