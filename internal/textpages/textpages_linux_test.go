package textpages

import (
	"bytes"
	"os"
	"strconv"
	"testing"
)

func TestReadOnlyMappings(t *testing.T) {
	// Each mapping as smaps shows it, with the lines that matter.
	entry := func(hdr string, anon, swap int) string {
		return hdr + "\nSize:  1024 kB\nRss:  512 kB\nAnonymous:  " + strconv.Itoa(anon) + " kB\nSwap:  " + strconv.Itoa(swap) + " kB\n"
	}
	maps := []byte(entry("00400000-00c00000 r-xp 00000000 08:01 42 /opt/kc/bin/keyceremony", 0, 0) +
		entry("00c00000-01400000 r--p 00800000 08:01 42 /opt/kc/bin/keyceremony", 0, 0) +
		// RELRO: read-only now, but the loader wrote it.
		entry("01400000-01401000 r--p 01000000 08:01 42 /opt/kc/bin/keyceremony", 4, 0) +
		entry("01401000-01402000 r--p 01001000 08:01 42 /opt/kc/bin/keyceremony", 0, 4) +
		entry("01402000-01500000 rw-p 01002000 08:01 42 /opt/kc/bin/keyceremony", 0, 0) +
		entry("01500000-01600000 rw-p 00000000 00:00 0", 100, 0) +
		entry("7f0000000000-7f0000100000 r-xp 00000000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6", 0, 0) +
		entry("7f0000200000-7f0000300000 r-xp 00000000 08:01 43 /opt/kc/bin/keyceremony (deleted)", 0, 0) +
		entry("7f0000400000-7f0000500000 r-xp 00000000 08:01 44 /opt/kc/my dir/keyceremony", 0, 0) +
		"garbage line\n")
	// Code and read-only data of the executable and of libraries, also of
	// a file deleted since; never relocated read-only data, writable data,
	// anonymous memory, devices or the kernel's mappings.
	maps = append(maps, []byte(entry("7f0000600000-7f0000700000 r--s 00000000 00:05 9 /dev/dri/card0", 0, 0)+
		entry("7f0000700000-7f0000701000 r--s 00000000 00:01 10 /memfd:wayland (deleted)", 0, 0)+
		entry("7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]", 0, 0))...)
	want := []mapping{
		{0x400000, 0xc00000, "/opt/kc/bin/keyceremony"},
		{0xc00000, 0x1400000, "/opt/kc/bin/keyceremony"},
		{0x7f0000000000, 0x7f0000100000, "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		{0x7f0000200000, 0x7f0000300000, "/opt/kc/bin/keyceremony (deleted)"},
		{0x7f0000400000, 0x7f0000500000, "/opt/kc/my dir/keyceremony"},
	}
	got := readOnlyMappings(maps)
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("mapping %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// rssFileKB reads the process's resident file-backed memory.
func rssFileKB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if f := bytes.Fields(l); len(f) >= 2 && string(f[0]) == "RssFile:" {
			n, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// The test binary's own code is resident after start-up; Release unmaps it
// and the process keeps running (the pages fault back in).
func TestReleaseUnmapsTheExecutablesCode(t *testing.T) {
	before := rssFileKB(t)
	advised, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFileKB(t)
	if advised == 0 {
		t.Fatal("no read-only mapping of the executable found")
	}
	// The test binary maps several MiB of its code at start; what the test
	// touches again between the two reads is a small part of it.
	if after >= before-512 {
		t.Errorf("RssFile %d kB before, %d kB after: the executable's pages were not released", before, after)
	}
	t.Logf("RssFile %d kB -> %d kB (%d MiB advised)", before, after, advised>>20)
}
