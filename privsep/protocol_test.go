package privsep

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

var conf = Confinement{Root: "/var/lib/berth", RunRoot: "/run/berth"}

const id64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestDecodeRequestRefuses(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"unknown op", `{"op":"container.exec","args":{}}`, "unknown request"},
		{"no op", `{"args":{}}`, "unknown request"},
		{"unknown top field", `{"op":"container.get","args":{"ref":"a1"},"uid":0}`, "unknown field"},
		{"unknown arg field", `{"op":"container.get","args":{"ref":"a1","path":"/"}}`, "unknown field"},
		{"trailing data", `{"op":"options"} {}`, "trailing"},
		{"not JSON", `op=options`, "malformed"},
		{"wrong type", `{"op":"container.kill","args":{"ref":"a1","signal":"9"}}`, "malformed"},
		{"bad id", `{"op":"container.exit-status","args":{"id":"../../etc"}}`, "64-hex"},
		{"short id", `{"op":"container.resize","args":{"id":"abc","height":1,"width":1}}`, "64-hex"},
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
		{"huge resize", `{"op":"container.resize","args":{"id":"` + id64 + `","height":70000,"width":1}}`, "out of range"},
		{"tail", `{"op":"container.logs","args":{"ref":"a1","tail":-5}}`, "tail"},
		{"relative bind", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"etc"}]}}}`, "absolute and clean"},
		{"unclean bind", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/var/lib/berth/volumes/v/_data/../../../berth.db"}]}}}`, "absolute and clean"},
		{"bind of berth state", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/var/lib/berth/berth.db"}]}}}`, "inside berth's state"},
		{"bind of runroot", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/run/berth"}]}}}`, "inside berth's state"},
		{"bind of volumes dir", `{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/var/lib/berth/volumes/v"}]}}}`, "inside berth's state"},
		{"engine-set netns", `{"op":"container.create","args":{"image":"busybox","run":{"NetworkNamespace":"/proc/1/ns/net"}}}`, "engine's to set"},
		{"engine-set init", `{"op":"container.create","args":{"image":"busybox","run":{"InitPath":"/bin/sh"}}}`, "engine's to set"},
		{"bad pull policy", `{"op":"container.create","args":{"image":"busybox","pull":"sometimes"}}`, "pull policy"},
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
	}
	for _, c := range cases {
		_, err := DecodeRequest([]byte(c.body), conf)
		if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v; want invalid argument containing %q", c.name, err, c.want)
		}
	}
}

func TestDecodeRequestAccepts(t *testing.T) {
	cases := []string{
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
	}
	for _, body := range cases {
		req, err := DecodeRequest([]byte(body), conf)
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		// What the client encodes, the helper decodes to the same request.
		again, err := EncodeRequest(req.Op, req.Args)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRequest(again, conf); err != nil {
			t.Errorf("re-encoded %s: %v", again, err)
		}
	}
}

// Every op of the closed set has a validation rule (none falls through
// to "no validation rule").
func TestEveryOpValidated(t *testing.T) {
	for op, mk := range ops {
		if err := Validate(op, mk(), conf); err != nil && strings.Contains(err.Error(), "no validation rule") {
			t.Errorf("%s: %v", op, err)
		}
	}
}

func TestFrameLimits(t *testing.T) {
	var b bytes.Buffer
	hdr := make([]byte, 4)
	binary.BigEndian.PutUint32(hdr, MaxRequest+1)
	b.Write(hdr)
	if _, err := readFrame(&b, MaxRequest); !errdefs.IsInvalidArgument(err) {
		t.Errorf("oversized frame: %v, want invalid argument", err)
	}
	b.Reset()
	binary.BigEndian.PutUint32(hdr, 10)
	b.Write(hdr)
	b.WriteString("short")
	if _, err := readFrame(&b, MaxRequest); err == nil {
		t.Error("truncated frame accepted")
	}
	b.Reset()
	writeFrame(&b, []byte(`{"op":"options"}`))
	body, err := readFrame(&b, MaxRequest)
	if err != nil || string(body) != `{"op":"options"}` {
		t.Errorf("round trip: %q %v", body, err)
	}
	big := `{"op":"container.get","args":{"ref":"` + strings.Repeat("a", MaxRequest) + `"}}`
	if _, err := DecodeRequest([]byte(big), conf); !errdefs.IsInvalidArgument(err) {
		t.Errorf("oversized request body: %v", err)
	}
}

func TestErrorCategoriesCross(t *testing.T) {
	for name, cat := range categories {
		r := errorReply(&RemoteError{Message: "m", Category: cat})
		if r.Category != name {
			t.Errorf("%v: sent as %q, want %q", cat, r.Category, name)
		}
		if err := replyError(r); categoryOf(err) != name {
			t.Errorf("%q: received as %q", name, categoryOf(err))
		}
	}
}

// FuzzDecode feeds arbitrary frames to the helper's decoder: it must not
// panic, and whatever it accepts must be a known op whose argument passes
// validation again.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"op":"options"}`))
	f.Add([]byte(`{"op":"container.get","args":{"ref":"web"}}`))
	f.Add([]byte(`{"op":"container.create","args":{"image":"busybox","run":{"Mounts":[{"destination":"/d","type":"bind","source":"/x"}]}}}`))
	f.Add([]byte(`{"op":"container.resize","args":{"id":"` + id64 + `","height":24,"width":80}}`))
	f.Add([]byte(`{"op":"event.append","args":{"event":{"type":"image","action":"pull"}}}`))
	f.Add([]byte(`{"op":"network.create","args":{"options":{"Name":"n","Subnet":"10.1.0.0/16"}}}`))
	f.Add([]byte(`{"op":"exec.start","args":{"id":"` + id64 + `","container":"` + id64 + `","cmd":["sh"],"env":["A=1"],"workingDir":"/"}}`))
	f.Add([]byte(`{"op":"exec.resize","args":{"id":"` + id64 + `","height":24,"width":80}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body, conf)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("refusal without the invalid-argument category: %v", err)
			}
			return
		}
		if _, ok := ops[req.Op]; !ok {
			t.Fatalf("accepted unknown op %q", req.Op)
		}
		if err := Validate(req.Op, req.Args, conf); err != nil {
			t.Fatalf("accepted %s but it does not validate: %v", req.Op, err)
		}
	})
}

// The descriptor rules of the exec ops: exec.start with stdin takes
// exactly the read end of a pipe; everything else takes none.
func TestExecInput(t *testing.T) {
	start := func(stdin bool) Request {
		return Request{Op: OpExecStart, Args: &ExecStartArgs{ID: id64, Container: id64, Cmd: []string{"sh"}, Stdin: stdin}}
	}
	pipe := func() (r, w int) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		return p[0], p[1]
	}
	r, w := pipe()
	defer unix.Close(w)
	f, err := execInput(start(true), r)
	if err != nil || f == nil {
		t.Fatalf("read end of a pipe refused: %v", err)
	}
	f.Close()
	if _, err := execInput(start(true), -1); !errdefs.IsInvalidArgument(err) {
		t.Errorf("stdin without a descriptor: %v", err)
	}
	r2, w2 := pipe()
	defer unix.Close(r2)
	if _, err := execInput(start(true), w2); !errdefs.IsInvalidArgument(err) {
		t.Errorf("write end accepted as stdin: %v", err)
	}
	if unix.Close(w2) == nil {
		t.Error("a refused descriptor was left open")
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[1])
	if _, err := execInput(start(true), sp[0]); !errdefs.IsInvalidArgument(err) {
		t.Errorf("socket accepted as stdin: %v", err)
	}
	r3, w3 := pipe()
	defer unix.Close(w3)
	if _, err := execInput(start(false), r3); !errdefs.IsInvalidArgument(err) {
		t.Errorf("descriptor accepted without stdin: %v", err)
	}
	r4, w4 := pipe()
	defer unix.Close(w4)
	if _, err := execInput(Request{Op: OpExecResize, Args: &ResizeArgs{ID: id64}}, r4); !errdefs.IsInvalidArgument(err) {
		t.Errorf("descriptor accepted by exec.resize: %v", err)
	}
	if f, err := execInput(start(false), -1); f != nil || err != nil {
		t.Errorf("no stdin, no descriptor: %v %v", f, err)
	}
}
