package convert

import (
	"path"
	"reflect"
	"testing"

	"github.com/containerd/errdefs"
)

func TestCreate(t *testing.T) {
	body := `{"Image":"busybox","Cmd":["sh","-c","true"],"Env":["A=1"],"Tty":true,"OpenStdin":true,
	  "ExposedPorts":{"80/tcp":{}},"Labels":{"k":"v"},"StopSignal":"SIGINT","Volumes":{"/anon":{},"/data":{}},
	  "HostConfig":{"AutoRemove":true,"Binds":["/host:/h:ro","vol:/data"],"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]},
	    "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2},"NetworkMode":"mynet","CapAdd":["NET_ADMIN"],
	    "SecurityOpt":["no-new-privileges"],"LogConfig":{"Type":"json-file","Config":{"max-size":"1m"}},
	    "Tmpfs":{"/run":"size=1m"}}}`
	p, err := Create("/web", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	o := p.Opts
	if o.Name != "web" || o.Image != "busybox" || o.Pull != "never" || !o.AutoRemove || o.StopSignal != "SIGINT" {
		t.Errorf("options %+v", o)
	}
	if !reflect.DeepEqual(o.Run.Cmd, []string{"sh", "-c", "true"}) || o.Run.EntrypointSet || !o.Run.Tty || !o.Run.OpenStdin || !o.Run.NoNewPrivileges {
		t.Errorf("run options %+v", o.Run)
	}
	if o.Restart.Name != "on-failure" || o.Restart.MaximumRetryCount != 2 || o.LogOpts["max-size"] != "1m" {
		t.Errorf("restart %+v, log opts %v", o.Restart, o.LogOpts)
	}
	if o.Network.Mode != "mynet" || !reflect.DeepEqual(o.Network.Publish, []string{"127.0.0.1:8080:80/tcp"}) || !reflect.DeepEqual(o.Network.Expose, []string{"80/tcp"}) {
		t.Errorf("network %+v", o.Network)
	}
	if len(o.Run.Mounts) != 2 || o.Run.Mounts[0].Source != "/host" || o.Run.Mounts[0].Options[1] != "ro" || o.Run.Mounts[1].Type != "tmpfs" {
		t.Errorf("mounts %+v", o.Run.Mounts)
	}
	want := []VolumeRef{{Name: "vol", Destination: "/data"}, {Destination: "/anon"}}
	if !reflect.DeepEqual(p.Volumes, want) {
		t.Errorf("volumes %+v, want %+v", p.Volumes, want)
	}
	for _, bad := range []string{`{`, `{"Image":""}`, `{}`, `{"Image":"x","HostConfig":{"Binds":["rel:dst"]}}`,
		`{"Image":"x","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}`, `{"Image":"x","HostConfig":{"Mounts":[{"Type":"npipe","Target":"/x"}]}}`} {
		if _, err := Create("", []byte(bad)); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Create(%s) = %v, want invalid argument", bad, err)
		}
	}
}

// FuzzCreate feeds arbitrary bodies to the create decoder: it must
// never panic, must refuse with ErrInvalidArgument only, and what it
// accepts must name an image and mount only at absolute destinations.
func FuzzCreate(f *testing.F) {
	f.Add([]byte(`{"Image":"busybox","Cmd":["echo","hi"]}`))
	f.Add([]byte(`{"Image":"b","HostConfig":{"Binds":["v:/d:ro,z"],"PortBindings":{"53/udp":[{"HostPort":"53"}]}}}`))
	f.Add([]byte(`{"Image":"b","Volumes":{"/x":{}},"HostConfig":{"Mounts":[{"Type":"tmpfs","Target":"/t"}],"Ulimits":[{"Name":"nofile","Soft":1,"Hard":2}]}}`))
	f.Add([]byte(`{"Image":"b","NetworkingConfig":{"EndpointsConfig":{"n":{"Aliases":["a"],"IPAMConfig":{"IPv4Address":"10.0.0.2"}}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Create("n", body)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error %v is not an invalid argument", err)
			}
			return
		}
		if p.Opts.Image == "" {
			t.Fatal("accepted a request without an image")
		}
		for _, m := range p.Opts.Run.Mounts {
			if !path.IsAbs(m.Destination) {
				t.Fatalf("relative mount destination %q", m.Destination)
			}
		}
		for _, v := range p.Volumes {
			if !path.IsAbs(v.Destination) {
				t.Fatalf("relative volume destination %q", v.Destination)
			}
		}
	})
}
