package integration

import (
	"os"
	"os/exec"
	"testing"
)

func TestZZDebugAttach(t *testing.T) {
	if os.Getenv("BERTH_DBG") == "" {
		t.Skip()
	}
	e := newEnv(t)
	_, ref := busybox(t)
	svc := startService(t, e)
	cfg := t.TempDir()
	svc.docker(t, cfg, "pull", ref)
	r := svc.docker(t, cfg, "run", "-d", "-i", "--name", "at", ref, "sh", "-c", "read l; echo got $l; exit 7")
	t.Logf("run: %+v", r)
	r = svc.dockerIn(t, cfg, "hello\n", "attach", "at")
	t.Logf("attach: %+v", r)
	r = svc.docker(t, cfg, "logs", "at")
	t.Logf("logs: %+v", r)
	r = svc.docker(t, cfg, "ps", "-a")
	t.Logf("ps: %+v", r)
	out, _ := exec.Command("sh", "-c", "ps -ef --forest | grep -v grep | grep -B2 -A3 conmon").CombinedOutput()
	t.Logf("%s", out)
}
