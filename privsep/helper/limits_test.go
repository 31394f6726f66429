package helper

import (
	"encoding/binary"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/privsep"
	"golang.org/x/sys/unix"
)

func TestStreamingKinds(t *testing.T) {
	cases := []struct {
		req  Request
		want bool
	}{
		{Request{privsep.OpEventRead, &privsep.EventReadArgs{Follow: true}}, true},
		{Request{privsep.OpEventRead, &privsep.EventReadArgs{}}, false},
		{Request{privsep.OpContainerLogs, &privsep.LogsArgs{Ref: "c", Follow: true}}, true},
		{Request{privsep.OpContainerLogs, &privsep.LogsArgs{Ref: "c"}}, false},
		{Request{privsep.OpContainerFollow, &privsep.FollowArgs{}}, true},
		{Request{privsep.OpExecStart, &privsep.ExecStartArgs{}}, true},
		{Request{privsep.OpContainerList, &privsep.ListArgs{}}, false},
	}
	for _, c := range cases {
		if got := streaming(c.req); got != c.want {
			t.Errorf("streaming(%s %+v) = %v, want %v", c.req.Op, c.req.Args, got, c.want)
		}
	}
}

// TestStreamsDoNotBlockShortCalls: with every streaming slot taken by
// idle followed event reads, short calls are still served at once and a
// further stream is refused as unavailable, not queued.
func TestStreamsDoNotBlockShortCalls(t *testing.T) {
	c, ctrl, _ := startHelperWith(t, func(h *Helper) { h.MaxCalls, h.MaxStreams = 2, 3 })
	body := []byte(`{"op":"event.read","args":{"follow":true}}`)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	frame = append(frame, body...)
	open := func() *os.File {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ctrl.WriteMsgUnix([]byte{'c'}, unix.UnixRights(fds[1]), nil); err != nil {
			t.Fatal(err)
		}
		unix.Close(fds[1])
		f := os.NewFile(uintptr(fds[0]), "call")
		t.Cleanup(func() { f.Close() })
		if _, err := f.Write(frame); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for range 3 {
		open()
	}
	time.Sleep(300 * time.Millisecond) // let the helper admit them
	extra := open()
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	rb, err := privsep.ReadFrame(extra, privsep.MaxReply)
	if err != nil {
		t.Fatalf("stream beyond the limit got no answer: %v", err)
	}
	var r privsep.Reply
	if err := privsep.DecodeStrict(rb, &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != privsep.KindError || r.Category != "unavailable" {
		t.Errorf("stream beyond the limit: %+v, want an unavailable error", r)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := c.Containers(t.Context(), true); err != nil {
				t.Errorf("list while streams are open: %v", err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("short calls took %s while streams were open", d)
	}
}
