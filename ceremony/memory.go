package ceremony

import "runtime/debug"

// releaseKDFMemory returns to the system, right after a share file was
// encrypted or opened, the 256 MiB scrypt (work factor 2^18) took: without
// it the garbage collector keeps several of them at once when custodians
// follow one another, and a ceremony peaked at about 830 MB. The KDF itself
// is unchanged.
func releaseKDFMemory() { debug.FreeOSMemory() }
