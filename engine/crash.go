package engine

import (
	"os"
	"syscall"
)

// crashAt is the test hook for crash-safety tests: when BERTH_TEST_CRASH_AT
// names a point, the process SIGKILLs itself on reaching it, exactly as a
// kill -9 there would. Points: create-recorded, create-snapshot,
// start-recorded, start-mounted, start-network, start-spawned,
// remove-marked, remove-runtime, remove-snapshot; in setupNetwork
// after-netns, after-attach, after-etc; and package network's
// "network:STEP" points inside Attach.
var crashAt = os.Getenv("BERTH_TEST_CRASH_AT")

func crashPoint(name string) {
	if crashAt == name {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}
