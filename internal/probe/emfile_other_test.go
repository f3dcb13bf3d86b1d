//go:build !unix

package probe

import "os"

// helperEMFILE needs setrlimit: the test that runs it skips off unix.
func helperEMFILE() { os.Exit(5) }
