package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/testutil"
)

// httpdScript prints the container's address, then serves "hello from
// NAME" on port 80 with busybox httpd.
func httpdScript(name string) string {
	return fmt.Sprintf("hostname -i; mkdir -p /www && echo 'hello from %s' > /www/index.html && exec httpd -f -p 80 -h /www", name)
}

// waitLog polls a container's log until it has a first line.
func (e *env) waitLog(name string) string {
	e.t.Helper()
	for i := 0; i < 100; i++ {
		if out := e.berth("logs", name).stdout; strings.Contains(out, "\n") {
			return strings.SplitN(out, "\n", 2)[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("container %s logged nothing", name)
	return ""
}

func TestDefaultBridge(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	port := testutil.FreePort(t)
	e.ok("run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), ref, "sh", "-c", httpdScript("web"))
	ip := e.waitLog("web")
	if !strings.HasPrefix(ip, "10.79.") {
		t.Fatalf("container address %q is not in the env's default subnet", ip)
	}
	// Another container reaches it by address through the bridge.
	var out string
	for i := 0; i < 50; i++ {
		if r := e.berth("run", "--rm", ref, "wget", "-qO-", "http://"+ip+"/"); r.code == 0 {
			out = r.stdout
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out != "hello from web\n" {
		t.Fatalf("container to container: got %q", out)
	}
	// The host reaches the published port on loopback.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("published port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from web\n" {
		t.Fatalf("published port: got %q", body)
	}
	// The port is taken while web runs, and free again once it is gone.
	r := e.berth("run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), ref, "true")
	if r.code != 125 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("second use of port %d: exit %d stderr %q", port, r.code, r.stderr)
	}
	e.ok("rm", "-f", "web")
	e.ok("run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), ref, "true")
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Fatalf("port %d still answers after its container was removed", port)
	}
}
