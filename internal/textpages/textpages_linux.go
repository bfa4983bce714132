package textpages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Release unmaps from this process the resident pages of every read-only
// mapping of a regular file that holds no modified page (the executable's
// code and read-only data, and its shared libraries') and returns how many
// bytes of address space it advised. A failure changes nothing the process
// relies on; the caller may ignore it.
func Release() (int64, error) {
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("release code pages: %w", err)
	}
	var advised int64
	for _, m := range readOnlyMappings(smaps) {
		// Raw addresses, not a Go slice: these bytes are not Go memory.
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); errno != 0 {
			if errno == syscall.EINVAL {
				continue // a mapping the kernel will not drop (locked, special): leave it
			}
			return advised, fmt.Errorf("release code pages %#x-%#x %s: %w", m.start, m.end, m.path, errno)
		}
		advised += int64(m.end - m.start)
	}
	return advised, nil
}

type mapping struct {
	start, end uintptr
	path       string
}

// readOnlyMappings parses /proc/self/smaps (a header "start-end perms
// offset dev inode path", then "Key: value kB" lines) and returns the
// mappings of regular files that are not writable and hold no anonymous or
// swapped page. Devices, shared memory and the kernel's own mappings
// ([vdso], [stack]...) are left alone. The second condition matters as much as the first: a dynamically
// linked executable's relocated data (RELRO: the GOT the cgo calls go
// through) is mapped read-only after the loader wrote it, so its pages are
// private modified copies; dropping them would bring back the file's
// unrelocated bytes and the next call through them would jump to zero.
func readOnlyMappings(smaps []byte) []mapping {
	var out []mapping
	var cur *mapping // the candidate whose fields are being read
	var modified bool
	flush := func() {
		if cur != nil && !modified {
			out = append(out, *cur)
		}
		cur, modified = nil, false
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 0 {
			continue
		}
		if m, ok := header(f); ok {
			flush()
			if len(f) >= 6 && len(f[1]) >= 2 && f[1][1] == '-' {
				m.path = string(bytes.Join(f[5:], []byte(" ")))
				if regularFile(m.path) {
					cur = &m
				}
			}
			continue
		}
		if cur != nil && len(f) >= 2 && (string(f[0]) == "Anonymous:" || string(f[0]) == "Swap:") && string(f[1]) != "0" {
			modified = true
		}
	}
	flush()
	return out
}

// header parses a mapping's first line: its address range.
func header(f [][]byte) (mapping, bool) {
	se := bytes.SplitN(f[0], []byte("-"), 2)
	if len(f) < 5 || len(se) != 2 {
		return mapping{}, false
	}
	start, err1 := strconv.ParseUint(string(se[0]), 16, 64)
	end, err2 := strconv.ParseUint(string(se[1]), 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return mapping{}, false
	}
	return mapping{start: uintptr(start), end: uintptr(end)}, true
}

// regularFile tells a mapped file's path from devices, shared memory and
// the kernel's pseudo-paths, whose pages are not clean copies of a file.
func regularFile(path string) bool {
	for _, p := range []string{"/dev/", "/memfd:", "/SYSV", "/proc/", "/sys/"} {
		if strings.HasPrefix(path, p) {
			return false
		}
	}
	return strings.HasPrefix(path, "/")
}
