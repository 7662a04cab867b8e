package harness

import (
	"os"
	"testing"
)

func TestReadProcStats(t *testing.T) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	before, err := ReadProcStats(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.FDs <= 0 || before.RSSKiB <= 0 || before.Threads <= 0 {
		t.Errorf("ReadProcStats(self) = %+v, want every figure > 0", before)
	}
	f.Close()
	after, err := ReadProcStats(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.FDs != before.FDs-1 {
		t.Errorf("after closing one file: %d descriptors, want %d", after.FDs, before.FDs-1)
	}
	if _, err := ReadProcStats(1 << 30); err == nil {
		t.Error("ReadProcStats of a pid that does not exist: no error")
	}
}
