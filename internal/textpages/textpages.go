// Package textpages lets a process give back the resident pages of its
// read-only file mappings (its code and read-only data, and its shared
// libraries') before a memory-hard step.
//
// Why: a ceremony's peak memory is one scrypt block (256 MiB at work factor
// 2^18, fixed by the KDF) plus what the process holds anyway, and much of
// the latter is not memory the process needs: the release binary has 38 MiB
// of its 42 MB of code mapped after start-up (package initialisation and the
// kernel's fault-around), of which the scrypt loop uses a few pages. Those
// pages are clean copies of files: unmapping them loses nothing (they stay
// in the page cache and fault back in on the next use, a minor fault).
//
// Only pages that cannot have been written are touched: a writable private
// mapping may hold modified pages, and so may a read-only one the loader
// wrote before protecting it (relocations, the GOT cgo calls go through);
// mappings holding any anonymous or swapped page are skipped. On platforms
// other than Linux Release does nothing.
package textpages
