package helper

import (
	"strings"
	"testing"

	"github.com/berthproject/berth/privsep"
	"github.com/containerd/errdefs"
)

var conf = Confinement{Root: "/var/lib/berth", RunRoot: "/run/berth"}

const id64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// refusal is a request body the decoder must refuse with
// invalid-argument, and a text its message must contain.
type refusal struct{ name, body, want string }

func wantRefused(t *testing.T, cases []refusal) {
	t.Helper()
	for _, c := range cases {
		_, err := DecodeRequest([]byte(c.body), conf)
		if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v; want invalid argument containing %q", c.name, err, c.want)
		}
	}
}

// wantAccepted checks that each body decodes, and that what the client
// encodes from the result decodes to the same request again.
func wantAccepted(t *testing.T, bodies []string) {
	t.Helper()
	for _, body := range bodies {
		req, err := DecodeRequest([]byte(body), conf)
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		again, err := privsep.EncodeRequest(req.Op, req.Args)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRequest(again, conf); err != nil {
			t.Errorf("re-encoded %s: %v", again, err)
		}
	}
}

func TestDecodeRequestRefuses(t *testing.T) {
	wantRefused(t, []refusal{
		{"unknown op", `{"op":"container.exec","args":{}}`, "unknown request"},
		{"no op", `{"args":{}}`, "unknown request"},
		{"unknown top field", `{"op":"container.get","args":{"ref":"a1"},"uid":0}`, "unknown field"},
		{"unknown arg field", `{"op":"container.get","args":{"ref":"a1","path":"/"}}`, "unknown field"},
		{"trailing data", `{"op":"options"} {}`, "trailing"},
		{"not JSON", `op=options`, "malformed"},
		{"wrong type", `{"op":"container.kill","args":{"ref":"a1","signal":"9"}}`, "malformed"},
		{"bad id", `{"op":"container.exit-status","args":{"id":"../../etc"}}`, "64-hex"},
		{"resize traversal", `{"op":"container.resize","args":{"ref":"../x","height":1,"width":1}}`, "not a valid name"},
		{"resize by id field", `{"op":"container.resize","args":{"id":"` + id64 + `","height":1,"width":1}}`, "unknown field"},
		{"inspect traversal", `{"op":"container.inspect","args":{"ref":"a/../b","size":true}}`, "not a valid name"},
		{"image remove volumes", `{"op":"image.remove","args":{"ref":"busybox","volumes":true}}`, "volumes"},
		{"upper id", `{"op":"container.attach-stdin","args":{"id":"` + strings.ToUpper(id64) + `"}}`, "64-hex"},
		{"traversal name", `{"op":"container.get","args":{"ref":"../x"}}`, "not a valid name"},
		{"empty name", `{"op":"container.start","args":{"ref":""}}`, "not a valid name"},
		{"slash in name", `{"op":"network.remove","args":{"ref":"a/b"}}`, "not a valid name"},
		{"bad image", `{"op":"image.pull","args":{"ref":"UPPER/Case"}}`, "invalid reference"},
		{"bad platform", `{"op":"image.pull","args":{"ref":"busybox","platform":"../x"}}`, "platform"},
		{"bad volume", `{"op":"volume.remove","args":{"name":"../etc"}}`, "invalid name"},
		{"signal 0", `{"op":"container.kill","args":{"ref":"a1","signal":0}}`, "out of range"},
		{"signal 99", `{"op":"container.kill","args":{"ref":"a1","signal":99}}`, "out of range"},
		{"negative timeout", `{"op":"container.stop","args":{"ref":"a1","timeout":-1}}`, "out of range"},
		{"huge resize", `{"op":"container.resize","args":{"ref":"web","height":70000,"width":1}}`, "out of range"},
		{"tail", `{"op":"container.logs","args":{"ref":"a1","tail":-5}}`, "tail"},
		{"relative bind", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"etc"}]}}}`, "absolute and clean"},
		{"unclean bind", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/var/lib/berth/volumes/v/_data/../../../berth.db"}]}}}`, "absolute and clean"},
		{"bind of berth state", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/var/lib/berth/berth.db"}]}}}`, "inside berth's state"},
		{"bind of the root's parent", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/var/lib"}]}}}`, "contains berth's state"},
		{"bind of /", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","source":"/"}]}}}`, "contains berth's state"},
		{"bind of runroot", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/run/berth"}]}}}`, "inside berth's state"},
		{"bind of volumes dir", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/var/lib/berth/volumes/v"}]}}}`, "inside berth's state"},
		{"engine-set netns", `{"op":"container.create","args":{"image":"busybox","run":{"NetworkNamespace":"/proc/1/ns/net"}}}`, "engine's to set"},
		{"engine-set init", `{"op":"container.create","args":{"image":"busybox","run":{"InitPath":"/bin/sh"}}}`, "engine's to set"},
		{"bad pull policy", `{"op":"container.create","args":{"image":"busybox","pull":"sometimes"}}`, "pull policy"},
		{"runtime path", `{"op":"container.create","args":{"image":"busybox","runtime":"/tmp/evil"}}`, "unknown or invalid runtime name"},
		{"runtime unknown", `{"op":"container.create","args":{"image":"busybox","runtime":"bogus"}}`, "unknown or invalid runtime name"},
		{"event type", `{"op":"event.append","args":{"event":{"type":"daemon","action":"reload"}}}`, "malformed"},
		{"event time", `{"op":"event.append","args":{"event":{"type":"image","action":"pull","timeNano":5}}}`, "malformed"},
		{"network driver", `{"op":"network.create","args":{"options":{"Name":"n","Driver":"macvlan"}}}`, "driver"},
		{"exec no cmd", `{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":[]}}`, "no command"},
		{"exec empty cmd", `{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":[""]}}`, "no command"},
		{"exec bad id", `{"op":"exec.start","args":{"id":"x","container":"` + id64 + `","cmd":["sh"]}}`, "64-hex"},
		{"exec container name", `{"op":"exec.start","args":{"id":"` + id64 + `","container":"web","cmd":["sh"]}}`, "64-hex"},
		{"exec NUL arg", `{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":["sh","a\u0000b"]}}`, "malformed argument"},
		{"exec env key", `{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":["sh"],"env":["=x"]}}`, "environment"},
		{"exec env NUL", `{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":["sh"],"env":["A=\u0000"]}}`, "environment"},
		{"exec user", `{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":["sh"],"user":"../etc"}}`, "invalid user"},
		{"exec relative dir", `{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":["sh"],"workingDir":"tmp"}}`, "absolute and clean"},
		{"exec unclean dir", `{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":["sh"],"workingDir":"/a/../b"}}`, "absolute and clean"},
		{"exec detach field", `{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":["sh"],"detach":true}}`, "unknown field"},
		{"exec resize range", `{"op":"exec.resize","args":{"id":"` + id64 + `","height":1,"width":70000}}`, "out of range"},
		{"exec resize id", `{"op":"exec.resize","args":{"id":"web","height":1,"width":1}}`, "64-hex"},
	})
}

func TestDecodeRequestAccepts(t *testing.T) {
	wantAccepted(t, []string{
		`{"op":"options"}`,
		`{"op":"options","args":null}`,
		`{"op":"container.get","args":{"ref":"/web"}}`,
		`{"op":"container.get","args":{"ref":"3f2a"}}`,
		`{"op":"container.exit-status","args":{"id":"` + id64 + `"}}`,
		`{"op":"image.pull","args":{"ref":"127.0.0.1:5000/busybox:latest","platform":"linux/arm64/v8"}}`,
		`{"op":"image.inspect","args":{"ref":"sha256:` + id64 + `"}}`,
		`{"op":"image.remove","args":{"ref":"busybox@sha256:` + id64 + `","force":true}}`,
		`{"op":"container.create","args":{"name":"web","image":"busybox","run":{"Cmd":["sh"],"Mounts":[{"destination":"/d","type":"bind","source":"/var/lib/berth/volumes/v1/_data","options":["rbind","rw"]},{"destination":"/h","type":"bind","source":"/home/me"}]},"network":{"mode":"container:db"}}}`,
		`{"op":"container.stop","args":{"ref":"web","signal":"SIGTERM","timeout":1000000000}}`,
		`{"op":"event.append","args":{"event":{"type":"container","action":"exec_start: sh","id":"x","attributes":{"name":"web"}}}}`,
		`{"op":"network.create","args":{"options":{"Name":"apinet","Labels":{"a":"b"}}}}`,
		`{"op":"volume.create","args":{"name":"","driver":"local"}}`,
		`{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":["sh","-c","echo $A"],"env":["A=1","B"],"user":"1:1","workingDir":"/tmp","tty":true,"stdin":true}}`,
		`{"op":"exec.resize","args":{"id":"` + id64 + `","height":24,"width":80}}`,
		`{"op":"container.inspect","args":{"ref":"web","size":true}}`,
		`{"op":"container.remove","args":{"ref":"web","force":true,"volumes":true}}`,
		`{"op":"container.resize","args":{"ref":"/web","height":24,"width":80}}`,
	})
}

func TestDecodeVerbsRefuses(t *testing.T) {
	wantRefused(t, []refusal{
		{"top traversal", `{"op":"container.top","args":{"ref":"../x","psArgs":[]}}`, "not a valid name"},
		{"top shell chars", `{"op":"container.top","args":{"ref":"web","psArgs":["-o","pid;rm -rf /"]}}`, "invalid ps argument"},
		{"top too many", `{"op":"container.top","args":{"ref":"web","psArgs":[` + strings.Repeat(`"a",`, 40) + `"a"]}}`, "ps arguments"},
		{"stats none", `{"op":"container.stats","args":{"refs":[],"interval":0}}`, "containers"},
		{"stats interval", `{"op":"container.stats","args":{"refs":["web"],"interval":60000000000}}`, "interval"},
		{"stats bad ref", `{"op":"container.stats","args":{"refs":["a/b"]}}`, "not a valid name"},
		{"pause bad ref", `{"op":"container.pause","args":{"ref":""}}`, "not a valid name"},
		{"rename bad name", `{"op":"container.rename","args":{"ref":"web","name":"a b"}}`, "Invalid container name"},
		{"rename empty", `{"op":"container.rename","args":{"ref":"web","name":""}}`, "Invalid container name"},
		{"stat NUL path", `{"op":"container.path-stat","args":{"ref":"web","path":"/etc\u0000x"}}`, "invalid path"},
		{"stat empty path", `{"op":"container.path-stat","args":{"ref":"web","path":""}}`, "invalid path"},
		{"copy-from rename slash", `{"op":"container.copy-from","args":{"ref":"web","path":"/etc","rename":"../x"}}`, "invalid entry name"},
		{"copy-from rename dotdot", `{"op":"container.copy-from","args":{"ref":"web","path":"/etc","rename":".."}}`, "invalid entry name"},
		{"copy-to long path", `{"op":"container.copy-to","args":{"ref":"web","path":"/` + strings.Repeat("a", 5000) + `"}}`, "invalid path"},
		{"copy-to unknown field", `{"op":"container.copy-to","args":{"ref":"web","path":"/tmp","data":"x"}}`, "unknown field"},
		{"connect bad ip", `{"op":"network.connect","args":{"network":"n","container":"web","ip":"::1"}}`, "IPv4"},
		{"connect bad alias", `{"op":"network.connect","args":{"network":"n","container":"web","aliases":["a b"]}}`, "alias"},
		{"connect no container", `{"op":"network.connect","args":{"network":"n","container":""}}`, "not a valid name"},
		{"disconnect traversal", `{"op":"network.disconnect","args":{"network":"../n","container":"web"}}`, "not a valid name"},
		{"push id", `{"op":"image.push","args":{"ref":"` + id64 + `"}}`, "image ID"},
		{"push bad ref", `{"op":"image.push","args":{"ref":"a b:c"}}`, "invalid reference"},
	})
}

func TestDecodeVerbsAccepts(t *testing.T) {
	wantAccepted(t, []string{
		`{"op":"container.top","args":{"ref":"web","psArgs":["-o","pid,comm,%cpu"]}}`,
		`{"op":"container.top","args":{"ref":"web","psArgs":null}}`,
		`{"op":"container.stats","args":{"refs":["web","3f2a"],"interval":1000000000}}`,
		`{"op":"container.pause","args":{"ref":"web"}}`,
		`{"op":"container.unpause","args":{"ref":"web"}}`,
		`{"op":"container.rename","args":{"ref":"web","name":"/web2"}}`,
		`{"op":"container.path-stat","args":{"ref":"web","path":"relative/../x","followLink":true}}`,
		`{"op":"container.copy-from","args":{"ref":"web","path":"/etc/.","rename":".","keepOwner":true}}`,
		`{"op":"container.copy-to","args":{"ref":"web","path":"/tmp/"}}`,
		`{"op":"network.connect","args":{"network":"net1","container":"web","ip":"10.1.2.3","aliases":["db","db.local"]}}`,
		`{"op":"network.disconnect","args":{"network":"net1","container":"web","force":true}}`,
		`{"op":"image.push","args":{"ref":"127.0.0.1:5000/x/y:v1"}}`,
	})
}

// Every op of the closed set has a validation rule (none falls through
// to "no validation rule").
func TestEveryOpValidated(t *testing.T) {
	for _, op := range privsep.Ops() {
		args, _ := privsep.NewArgs(op)
		if err := Validate(op, args, conf); err != nil && strings.Contains(err.Error(), "no validation rule") {
			t.Errorf("%s: %v", op, err)
		}
	}
}

func TestOversizedRequest(t *testing.T) {
	big := `{"op":"container.get","args":{"ref":"` + strings.Repeat("a", privsep.MaxRequest) + `"}}`
	if _, err := DecodeRequest([]byte(big), conf); !errdefs.IsInvalidArgument(err) {
		t.Errorf("oversized request body: %v", err)
	}
}

// FuzzDecode feeds arbitrary frames to the helper's decoder: it must not
// panic, and whatever it accepts must be a known op whose argument passes
// validation again.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"op":"options"}`))
	f.Add([]byte(`{"op":"container.get","args":{"ref":"web"}}`))
	f.Add([]byte(`{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/x"}]}}}`))
	f.Add([]byte(`{"op":"container.resize","args":{"ref":"web","height":24,"width":80}}`))
	f.Add([]byte(`{"op":"container.inspect","args":{"ref":"web","size":true}}`))
	f.Add([]byte(`{"op":"event.append","args":{"event":{"type":"image","action":"pull"}}}`))
	f.Add([]byte(`{"op":"network.create","args":{"options":{"Name":"n","Subnet":"10.1.0.0/16"}}}`))
	f.Add([]byte(`{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":["sh"],"env":["A=1"],"workingDir":"/"}}`))
	f.Add([]byte(`{"op":"exec.resize","args":{"id":"` + id64 + `","height":24,"width":80}}`))
	f.Add([]byte(`{"op":"image.prune","args":{"filtered":true,"ids":["sha256:` + id64 + `"]}}`))
	f.Add([]byte(`{"op":"image.login","args":{"server":"127.0.0.1:5000","username":"u","password":"p"}}`))
	f.Add([]byte(`{"op":"container.commit","args":{"ref":"web","reference":"snap:1","changes":["CMD [\"sh\"]"]}}`))
	f.Add([]byte(`{"op":"image.import","args":{"name":"i:1","changes":["ENV A=1"],"platform":"linux/amd64"}}`))
	f.Add([]byte(`{"op":"image.save","args":{"refs":["busybox"]}}`))
	f.Add([]byte(`{"op":"image.pull","args":{"ref":"busybox","auth":{"username":"u","password":"p"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body, conf)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("refusal without the invalid-argument category: %v", err)
			}
			return
		}
		if _, ok := privsep.NewArgs(req.Op); !ok {
			t.Fatalf("accepted unknown op %q", req.Op)
		}
		if err := Validate(req.Op, req.Args, conf); err != nil {
			t.Fatalf("accepted %s but it does not validate: %v", req.Op, err)
		}
	})
}
