package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// listenerPid finds the process listening on TCP port on this machine:
// the socket's inode from /proc/net/tcp and tcp6, then the process whose
// file descriptors hold it. It sees only processes this user may read.
func listenerPid(port string) (int, error) {
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("no port in the URL")
	}
	hexPort := fmt.Sprintf(":%04X", p)
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fl := strings.Fields(sc.Text())
			if len(fl) > 9 && strings.HasSuffix(fl[1], hexPort) && fl[3] == "0A" { // 0A: LISTEN
				inodes["socket:["+fl[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d here", p)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procs {
		fds, err := os.ReadDir(dir + "/fd")
		if err != nil {
			continue // another user's process
		}
		for _, fd := range fds {
			if l, err := os.Readlink(dir + "/fd/" + fd.Name()); err == nil && inodes[l] {
				pid, err := strconv.Atoi(filepath.Base(dir))
				if err == nil && pid != os.Getpid() {
					return pid, nil
				}
			}
		}
	}
	return 0, errors.New("the process listening on port " + port + " is not readable by this user, or is this one")
}

// rssBytes is the resident set size of pid (VmRSS of /proc/<pid>/status),
// 0 when unreadable.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
