package integration

import (
	"os"
	"os/exec"
	"testing"
)

// TestDockerPyRunOutputRace runs docker-py's containers.run(remove=True)
// many times: it asks for the log stream, then waits for and removes the
// container before reading the stream, so the service must have the log
// open before it sends the stream's header (it lost the output about one
// run in six when the header went out first).
func TestDockerPyRunOutputRace(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	svc := startService(t, e)
	script := `
import docker, sys
c = docker.DockerClient(base_url="unix://` + svc.sock + `", version="auto")
bad = [i for i in range(25) if c.containers.run("` + ref + `", ["echo", "x"], remove=True) != b"x\n"]
sys.exit("runs without their output: %s" % bad if bad else 0)
`
	cmd := exec.Command("python3", "-c", script)
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
