package loadtest

import (
	"os/exec"
	"testing"
	"time"
)

// spin burns CPU in a child process until it is killed.
func spin(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func TestProcessCPU(t *testing.T) {
	cmd := spin(t)
	pid := cmd.Process.Pid
	before, err := ProcessCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	after, err := ProcessCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	// The spinner gets most of a core, but the machine is shared.
	if d := after - before; d < 30*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("a spinning process used %v of CPU in 300 ms", d)
	}
	// The precise clock and /proc/<pid>/stat's ticks agree within ticks.
	clk, err := cpuClock(pid)
	if err != nil {
		t.Fatal(err)
	}
	stat, err := statCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if d := clk - stat; d < -3*clockTick || d > 3*clockTick {
		t.Errorf("CPU clock %v, /proc/%d/stat %v", clk, pid, stat)
	}
}

func TestProcessCPUGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if d, err := ProcessCPU(cmd.Process.Pid); err == nil {
		t.Errorf("ProcessCPU of an ended process: %v, nil error", d)
	}
}

func TestCPUMeter(t *testing.T) {
	cmd := spin(t)
	m := NewCPUMeter("self", Proc{Name: "spinner", Pid: cmd.Process.Pid})
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	end, err := m.sample()
	if err != nil {
		t.Fatal(err)
	}
	if len(end) != 2 || end[0] <= m.start[0] || end[1] < m.start[1] {
		t.Errorf("samples %v then %v", m.start, end)
	}
	// 1<<22 is PID_MAX_LIMIT, never a pid.
	if _, err := NewCPUMeter("self", Proc{Name: "none", Pid: 1 << 22}).sample(); err == nil {
		t.Error("meter of a pid that does not exist: no error")
	}
}
