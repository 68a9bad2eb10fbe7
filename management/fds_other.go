//go:build !unix

package management

// openFDs is not known here: 0.
func openFDs() int { return 0 }

// maxFDs is not known here: 0.
func maxFDs() uint64 { return 0 }
