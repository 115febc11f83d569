package loadtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// Proc names a process whose CPU a CPUMeter measures.
type Proc struct {
	Name string // metric prefix: "gateway" reports gateway_cpu_µs/pair
	Pid  int
}

// CPUMeter measures the CPU time (user plus system, all threads) that
// other processes and this one spend between Start and Report, so a
// benchmark can say where its CPU goes: the server under test, Redis, or
// the load generator itself, which is an instrument and should cost
// little.
type CPUMeter struct {
	self  string
	procs []Proc
	start []time.Duration // procs' CPU at Start; the last entry is this process
}

// NewCPUMeter meters procs and this process, reported as self
// ("loadgen" when this process only drives the load, "process" when the
// server runs in it too).
func NewCPUMeter(self string, procs ...Proc) *CPUMeter {
	return &CPUMeter{self: self, procs: procs}
}

// Start takes the first sample.
func (m *CPUMeter) Start() error {
	s, err := m.sample()
	m.start = s
	return err
}

// Report takes the second sample and reports each process's CPU per
// pair in µs as <name>_cpu_µs/pair. It fails the benchmark if a process
// cannot be read (it ended, or Start was not called).
func (m *CPUMeter) Report(b *testing.B, pairs int) {
	b.Helper()
	end, err := m.sample()
	if err != nil || len(m.start) != len(end) {
		b.Errorf("loadtest: CPU meter: %v (started: %v)", err, m.start != nil)
		return
	}
	for i, p := range append(m.procs, Proc{Name: m.self}) {
		us := float64((end[i] - m.start[i]).Nanoseconds()) / 1e3
		b.ReportMetric(us/float64(pairs), p.Name+"_cpu_µs/pair")
	}
}

func (m *CPUMeter) sample() ([]time.Duration, error) {
	s := make([]time.Duration, 0, len(m.procs)+1)
	for _, p := range m.procs {
		d, err := ProcessCPU(p.Pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		s = append(s, d)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return nil, fmt.Errorf("getrusage: %w", err)
	}
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return append(s, self), nil
}

// ProcessCPU returns the CPU time process pid has used, user plus system,
// summed over all its threads, including threads that have ended.
//
// It reads the process's CPU-time clock (clock_gettime on the clock id
// clock_getcpuclockid(3) builds), which Linux keeps in nanoseconds. Its
// fallback is utime+stime from /proc/<pid>/stat, in clock ticks of 10 ms.
// /proc/<pid>/schedstat is precise as well but counts one thread only,
// and a multi-threaded process (any Go program, redis-server's I/O
// threads) spends its time on many.
func ProcessCPU(pid int) (time.Duration, error) {
	if d, err := cpuClock(pid); err == nil {
		return d, nil
	}
	return statCPU(pid)
}

// cpuClock reads the process CPU-time clock of pid: the kernel's
// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), which is what glibc's
// clock_getcpuclockid returns.
func cpuClock(pid int) (time.Duration, error) {
	const cpuclockSched = 2
	id := int32(^pid<<3 | cpuclockSched)
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, uintptr(id), uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0, fmt.Errorf("clock_gettime of pid %d: %w", pid, e)
	}
	return time.Duration(ts.Nano()), nil
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports (getconf CLK_TCK).
const clockTick = 10 * time.Millisecond

// statCPU reads utime+stime (fields 14 and 15) from /proc/<pid>/stat.
func statCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("process CPU: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses itself: count fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("process CPU: /proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("process CPU: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("process CPU: /proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}
