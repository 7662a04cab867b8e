//go:build !linux

package main

// redirectStderr is a no-op outside Linux.
func redirectStderr(r *runLog) error { return nil }
